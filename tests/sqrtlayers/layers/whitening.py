"""What the ZCA tests measure on a layer's output: how far each group is from zero mean and
identity covariance."""

from __future__ import annotations

import torch


def channel_matrix(y: torch.Tensor) -> torch.Tensor:
    """``(N, C, *S) -> (C, N * prod(S))`` in float64."""
    return y.detach().transpose(0, 1).reshape(y.shape[1], -1).double()


def whitening_errors(y: torch.Tensor, group_size: int) -> tuple[float, float]:
    """(max |mean|, max |cov - I|) over the channels and the within-group covariance blocks."""
    Y = channel_matrix(y)
    centred = Y - Y.mean(1, keepdim=True)
    cov = centred @ centred.T / Y.shape[1]
    worst = 0.0
    for start in range(0, Y.shape[0], group_size):
        block = cov[start : start + group_size, start : start + group_size]
        worst = max(worst, float((block - torch.eye(block.shape[0], dtype=block.dtype)).abs().max()))
    return float(Y.mean(1).abs().max()), worst
