"""Float64 references and matrices of controlled conditioning, for tests and benchmarks."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["make_spd", "make_covariance", "exact_sqrtm", "exact_sqrtm_grad", "relative_error"]


def make_spd(
    n: int,
    kappa: float,
    *,
    batch: tuple[int, ...] = (),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Tensor:
    """SPD matrices ``Q diag(lambda) Q^T`` with ``lambda`` log-spaced from 1 down to ``1/kappa``
    and ``Q`` a random orthogonal matrix (seeded), built in float64 and cast to ``dtype``.

    Example:
        >>> A = make_spd(8, 1e3)
        >>> float(torch.linalg.cond(A)) == __import__("pytest").approx(1e3, rel=1e-6)
        True
    """
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=gen, dtype=torch.float64))
    evals = torch.logspace(0.0, -math.log10(kappa), n, dtype=torch.float64)
    return ((Q * evals) @ Q.mT).to(dtype=dtype, device=device)


def make_covariance(
    n: int,
    samples: int,
    eps: float,
    *,
    batch: tuple[int, ...] = (),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Tensor:
    """Centred sample covariance of ``samples`` Gaussian vectors plus ``eps * I`` (the ZCA case:
    rank ``min(samples - 1, n)`` before the ``eps``)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(*batch, n, samples, generator=gen, dtype=torch.float64)
    X = X - X.mean(-1, keepdim=True)
    cov = X @ X.mT / samples + eps * torch.eye(n, dtype=torch.float64)
    return cov.to(dtype=dtype, device=device)


def exact_sqrtm(A: Tensor, inverse: bool = False) -> Tensor:
    """``A^{1/2}`` (or ``A^{-1/2}``) in float64 by ``eigh``, for reference only."""
    evals, V = torch.linalg.eigh(A.double())
    s = evals.clamp_min(0).sqrt()
    return (V * (s.reciprocal() if inverse else s).unsqueeze(-2)) @ V.mT


def exact_sqrtm_grad(A: Tensor, G: Tensor, inverse: bool = False) -> Tensor:
    """``dL/dA`` for ``L = <A^{±1/2}, G>``, in float64, from the closed form in the eigenbasis."""
    evals, V = torch.linalg.eigh(A.double())
    s = evals.clamp_min(0).sqrt()
    kernel = (s.unsqueeze(-1) + s.unsqueeze(-2)).reciprocal()
    if inverse:
        kernel = -kernel / (s.unsqueeze(-1) * s.unsqueeze(-2))
    return V @ ((V.mT @ G.double() @ V) * kernel) @ V.mT


def relative_error(approx: Tensor, exact: Tensor) -> Tensor:
    """``||approx - exact||_F / ||exact||_F`` per matrix, computed in float64."""
    exact = exact.double()
    return torch.linalg.matrix_norm(approx.double() - exact) / torch.linalg.matrix_norm(exact)
