"""Float64 references for the whitening and colouring transform and the Gaussian transport tests,
written group by group from the formulas of docs/METHODS.md, and features of controlled
covariance."""

from __future__ import annotations

import torch
from torch import Tensor

import sqrtlayers as sl


def covariance(x: Tensor) -> Tensor:
    """``(..., C, M) -> (..., C, C)``: the covariance over the ``M`` positions, in float64."""
    x = x.double()
    centred = x - x.mean(-1, keepdim=True)
    return centred @ centred.mT / x.shape[-1]


def features(n: int, c: int, m: int, log_kappa: float, seed: int, scale: float = 1.0) -> Tensor:
    """``(n, c, m)`` float64 features whose covariance over the ``m`` positions is exactly
    ``scale * Q diag(logspace(0, -log_kappa)) Q^T`` per sample (needs ``m > c``), with a random mean.
    A group's covariance is a principal block: its condition number is at most ``10**log_kappa``."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, m, generator=gen, dtype=torch.float64)
    z = z - z.mean(-1, keepdim=True)
    evals, V = torch.linalg.eigh(z @ z.mT / m)
    z = (V * evals.rsqrt().unsqueeze(-2)) @ V.mT @ z
    Q, _ = torch.linalg.qr(torch.randn(n, c, c, generator=gen, dtype=torch.float64))
    spectrum = torch.logspace(0.0, -log_kappa, c, dtype=torch.float64) * scale
    return (Q * spectrum.sqrt()) @ z + 3 * torch.randn(n, c, 1, generator=gen, dtype=torch.float64)


def reference_whitening_coloring(
    content: Tensor, style: Tensor | None, group_size: int | None, eps: float, backend: str = "eigh"
) -> Tensor:
    """The transform with ``alpha=1`` in float64, one group at a time (the last group short),
    its roots by ``backend`` (``eigh``: exact, with a backward that stays finite at the repeated
    eigenvalues of a ridged singular covariance)."""
    n, c = content.shape[:2]
    g = group_size or c
    x = content.double().reshape(n, c, -1)
    s = None if style is None else style.double().reshape(style.shape[0], c, -1)
    blocks = []
    for start in range(0, c, g):
        xg = x[:, start : start + g]
        k = xg.shape[1]
        eye = torch.eye(k, dtype=torch.float64)
        cov_c = covariance(xg)
        cov_c = cov_c + eps * cov_c.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye
        out = sl.inv_sqrtm(cov_c, backend=backend) @ (xg - xg.mean(-1, keepdim=True))
        if s is not None:
            sg = s[:, start : start + g]
            cov_s = covariance(sg)
            cov_s = cov_s + eps * cov_s.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye
            out = sl.sqrtm(cov_s, backend=backend) @ out + sg.mean(-1, keepdim=True)
        blocks.append(out)
    return torch.cat(blocks, 1).reshape(content.shape)


def reference_frechet_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> float:
    """One pair, float64, by SciPy's general ``sqrtm`` of the non-symmetric ``cov_a @ cov_b``
    (whose trace is that of the symmetric middle root): the way FID is usually computed."""
    import numpy as np
    from scipy import linalg

    A, B = cov_a.double().numpy(), cov_b.double().numpy()
    root = linalg.sqrtm(A @ B)
    difference = (mean_a - mean_b).double().numpy()
    return float(difference @ difference + np.trace(A) + np.trace(B) - 2 * np.trace(root).real)


def reference_frechet_gradients(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> tuple[Tensor, ...]:
    """Closed-form gradients of the squared Fréchet distance with respect to ``mean_a``,
    ``cov_a``, ``mean_b``, ``cov_b``, in float64: for symmetric ``A``, ``B``,
    ``d/dB = I - A^{1/2} (A^{1/2} B A^{1/2})^{-1/2} A^{1/2}`` and the same with ``A``, ``B``
    exchanged."""
    from sqrtlayers.reference import exact_sqrtm

    A, B = cov_a.double(), cov_b.double()
    eye = torch.eye(A.shape[-1], dtype=torch.float64)

    def gradient(P: Tensor, Q: Tensor) -> Tensor:  # d/dQ of -2 tr (P^{1/2} Q P^{1/2})^{1/2}, plus tr Q
        root = exact_sqrtm(P)
        return eye - root @ exact_sqrtm(root @ Q @ root, inverse=True) @ root

    difference = 2 * (mean_a.double() - mean_b.double())
    return difference, gradient(B, A), -difference, gradient(A, B)
