"""The dtype rule shared by every backend and layer: which dtype the matrix roots are computed in."""

from __future__ import annotations

import torch

__all__ = ["compute_dtype"]

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
