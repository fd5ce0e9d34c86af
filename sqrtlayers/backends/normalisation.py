"""Per-matrix pre-normalisations that bring a spectrum into the range an iteration converges on."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["non_finite_marker", "frobenius_norm", "frobenius_normalise", "trace_normalise"]


def non_finite_marker(A: Tensor) -> Tensor:
    """Per matrix, shape ``(..., 1, 1)``: ``0`` when every entry of ``A`` is finite, NaN when some
    entry is NaN or infinite, without a host sync.

    Adding it to a per-matrix scale makes a non-finite input give NaN, never a finite (or
    infinite) root: clamping a scale (as :func:`trace_normalise` does) would otherwise turn a
    ``-inf`` into a small positive number. ``0 * x`` is ``0`` for finite ``x`` and NaN otherwise.
    """
    return (A * 0).sum(dim=(-2, -1), keepdim=True)


def frobenius_norm(A: Tensor) -> Tensor:
    """``||A||_F`` per matrix, shape ``(..., 1, 1)``, floored at the dtype's ``tiny`` so a zero
    matrix normalises to zero instead of NaN.

    Computed as ``m * ||A / m||_F`` with ``m`` the largest absolute entry: squaring the entries
    directly overflows float32 once they pass ~1e19, and underflows below ~1e-19.
    """
    tiny = torch.finfo(A.dtype).tiny
    largest = A.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(tiny)
    return (torch.linalg.matrix_norm(A / largest, keepdim=True) * largest).clamp_min(tiny)


def frobenius_normalise(A: Tensor) -> tuple[Tensor, Tensor]:
    """``(A / ||A||_F, ||A||_F)``: for PSD ``A`` the eigenvalues of the result lie in ``[0, 1]``."""
    norm = frobenius_norm(A)
    return A / norm, norm


def trace_normalise(A: Tensor) -> tuple[Tensor, Tensor]:
    """``(A / tr(A), tr(A))``, the iSQRT-COV pre-normalisation; ``tr(A)`` has shape ``(..., 1, 1)``."""
    trace = A.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]
    trace = trace.clamp_min(torch.finfo(A.dtype).tiny) + non_finite_marker(A)
    return A / trace, trace
