"""Fused matrix updates over any leading batch dims (one kernel where plain code needs three)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["scaled_matmul_add"]


def scaled_matmul_add(C: Tensor, A: Tensor, B: Tensor, *, beta: float, alpha: float) -> Tensor:
    """``beta * C + alpha * (A @ B)`` in one ``baddbmm`` call.

    ``A`` and ``B`` are ``(..., n, n)`` with the same leading dims; ``C`` broadcasts against the
    result (an ``(n, n)`` identity is fine). Leading dims are flattened into one batch dim, which
    is free for contiguous inputs.
    """
    batch_shape = A.shape[:-2]
    A3 = A.reshape(-1, *A.shape[-2:])
    B3 = B.reshape(-1, *B.shape[-2:])
    C3 = C if C.dim() <= 2 else C.reshape(-1, *C.shape[-2:])
    return torch.baddbmm(C3, A3, B3, beta=beta, alpha=alpha).reshape(*batch_shape, A.shape[-2], B.shape[-1])
