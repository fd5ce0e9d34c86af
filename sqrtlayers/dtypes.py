"""The dtype rules shared by every backend and layer: which dtypes are accepted, and which dtype
the matrix roots are computed in."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_real_floating", "compute_dtype"]

# Half-precision dtypes are computed in float32 and cast back: a covariance rounded to 8 (bfloat16)
# or 11 (float16) mantissa bits is not positive definite in general, the iterations' rounding
# accumulates over their steps, and an inverse square root amplifies both.
_UPCAST_DTYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype matrix roots (and the layers' moments) are computed in for inputs of ``dtype``:
    float32 for float16 and bfloat16, ``dtype`` itself otherwise.

    Backends apply it to their input, and layers to the statistics they feed a backend, so that a
    half-precision model is whitened or pooled as accurately as a float32 one.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> sl.compute_dtype(torch.bfloat16), sl.compute_dtype(torch.float64)
        (torch.float32, torch.float64)
    """
    return torch.float32 if dtype in _UPCAST_DTYPES else dtype


def check_real_floating(value: object, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a real floating-point tensor, the inputs every
    backend computes on (integer, bool and complex tensors are refused).

    Example:
        >>> import torch
        >>> from sqrtlayers.dtypes import check_real_floating
        >>> check_real_floating(torch.ones(2, dtype=torch.int64), "input")
        Traceback (most recent call last):
        ...
        TypeError: input must be a real floating-point tensor (float16, bfloat16, float32 or float64), got dtype torch.int64
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_complex() or not value.is_floating_point():
        raise TypeError(
            f"{name} must be a real floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {value.dtype}"
        )
