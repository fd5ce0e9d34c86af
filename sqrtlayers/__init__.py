"""sqrtlayers: fast differentiable matrix square roots and the layers that use them."""

from .backends import (
    DEFAULT_BACKEND,
    DEFAULT_POOLING_BACKEND,
    SqrtmBackend,
    get_backend,
    list_backends,
    register_backend,
    unregister_backend,
)
from .dtypes import compute_dtype
from .functional import NotSPDError, check_spd, inv_sqrtm, sqrtm
from .layers import (
    CovariancePooling,
    ISqrtCovHead,
    ISqrtCovNet,
    SecondOrderViT,
    SecondOrderViTHead,
    ZCABatchNorm,
    ZCABatchNormAct,
    attach_isqrt_cov_head,
    attach_so_vit_head,
    convert_zca_batchnorm,
    covariance_pool,
    set_zca_sync,
    triu_dim,
    zca_batch_norm,
)

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_POOLING_BACKEND",
    "sqrtm",
    "inv_sqrtm",
    "check_spd",
    "compute_dtype",
    "NotSPDError",
    "SqrtmBackend",
    "get_backend",
    "list_backends",
    "register_backend",
    "unregister_backend",
    "ZCABatchNorm",
    "ZCABatchNormAct",
    "zca_batch_norm",
    "convert_zca_batchnorm",
    "set_zca_sync",
    "CovariancePooling",
    "covariance_pool",
    "triu_dim",
    "ISqrtCovHead",
    "ISqrtCovNet",
    "attach_isqrt_cov_head",
    "SecondOrderViTHead",
    "SecondOrderViT",
    "attach_so_vit_head",
]

__version__ = "0.1.0"
