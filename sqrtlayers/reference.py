"""Float64 references and matrices of controlled conditioning, for tests and benchmarks."""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .backends.base import SqrtmBackend

__all__ = [
    "make_spd",
    "make_covariance",
    "exact_sqrtm",
    "exact_sqrtm_grad",
    "relative_error",
    "measure_errors",
]


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


def measure_errors(
    backend: str | SqrtmBackend,
    A: Tensor,
    *,
    inverse: bool = False,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Forward and gradient relative errors of ``backend`` on the float64 matrices ``A``.

    ``A`` is cast to ``dtype`` and the backend's root (or inverse root) is compared with the
    float64 exact root of ``A``; the gradient of ``L = <root, G>`` for a seeded random symmetric
    ``G`` is compared with the closed form. Returns per-matrix errors, shape ``A.shape[:-2]``.

    Example:
        >>> fwd, grad = measure_errors("eigh", make_spd(16, 1e2, batch=(4,)))
        >>> bool(fwd.max() < 1e-5) and bool(grad.max() < 1e-4)
        True
    """
    from .functional import inv_sqrtm, sqrtm

    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(A.shape, generator=gen, dtype=torch.float64)
    G = (G + G.mT) / 2
    A_low = A.detach().to(dtype).requires_grad_()
    out = (inv_sqrtm if inverse else sqrtm)(A_low, backend=backend)
    out.backward(G.to(device=out.device, dtype=out.dtype))
    A64 = A.detach().double().cpu()
    forward_error = relative_error(out.detach().cpu(), exact_sqrtm(A64, inverse))
    grad_error = relative_error(A_low.grad.cpu(), exact_sqrtm_grad(A64, G, inverse))
    return forward_error, grad_error
