"""Backend fixtures and the one table of per-backend tolerances.

The generic tests use ``make_spd(8, 4.0, batch=(3,))``, where every method is in its comfort
zone; the error of the paper's methods there is set by the approximation, not the dtype.
"""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends import AutoBackend

# (forward, gradient) relative Frobenius error bounds on the generic matrices, per dtype.
# Measured maxima (float32 / float64, sqrt and inverse): eigh 7e-7/1.2e-6; mpa-lya 1.5e-4/5.9e-4;
# mpa 1.5e-4/2.1e-3; ns 1.3e-2/1.2e-1; ns-lya 1.3e-2/1.7e-2; mtp 3.7e-2/2.7e-1; mtp-lya 3.7e-2/1e-1.
TOLERANCES: dict[str, dict[torch.dtype, tuple[float, float]]] = {
    "eigh": {torch.float32: (1e-5, 1e-4), torch.float64: (1e-12, 1e-10)},
    "svd": {torch.float32: (1e-5, 1e-4), torch.float64: (1e-12, 1e-10)},
    "mpa": {torch.float32: (5e-4, 5e-3), torch.float64: (5e-4, 5e-3)},
    "mpa-lya": {torch.float32: (5e-4, 2e-3), torch.float64: (5e-4, 2e-3)},
    "ns": {torch.float32: (3e-2, 0.25), torch.float64: (3e-2, 0.25)},
    "ns-lya": {torch.float32: (3e-2, 5e-2), torch.float64: (3e-2, 5e-2)},
    "mtp": {torch.float32: (8e-2, 0.5), torch.float64: (8e-2, 0.5)},
    "mtp-lya": {torch.float32: (8e-2, 0.25), torch.float64: (8e-2, 0.25)},
    "accurate": {torch.float32: (1e-5, 1e-4), torch.float64: (1e-12, 1e-10)},
    "auto": {torch.float32: (1e-5, 1e-4), torch.float64: (1e-12, 1e-10)},
}
# A backend registered later without an entry gets the loosest bound of the paper's methods.
DEFAULT_TOLERANCE = {torch.float32: (8e-2, 0.5), torch.float64: (8e-2, 0.5)}


def tolerance(name: str, dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(name, DEFAULT_TOLERANCE)[dtype]


def has_custom_backward(name: str) -> bool:
    """Backends whose gradient is not plain autograd through the forward's operations."""
    backend = sl.get_backend(name)
    if isinstance(backend, AutoBackend):
        backend = backend.choose(torch.empty(4, 4))
    return not backend.differentiable_forward


def is_iterative(name: str) -> bool:
    """Backends promised to be free of host syncs (compilable, capturable). ``auto`` keeps the
    promise of whatever it picks (``eigh`` on CPUs), so it is not listed."""
    return name not in ("eigh", "svd", "auto")


@pytest.fixture(params=sl.list_backends())
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param
