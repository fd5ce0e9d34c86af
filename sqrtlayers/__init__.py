"""sqrtlayers: fast differentiable matrix square roots and the layers that use them."""

from .backends import (
    SqrtmBackend,
    get_backend,
    list_backends,
    register_backend,
    unregister_backend,
)
from .functional import NotSPDError, check_spd, inv_sqrtm, sqrtm

__all__ = [
    "sqrtm",
    "inv_sqrtm",
    "check_spd",
    "NotSPDError",
    "SqrtmBackend",
    "get_backend",
    "list_backends",
    "register_backend",
    "unregister_backend",
]

__version__ = "0.1.0"
