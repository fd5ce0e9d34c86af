"""Matrix Taylor polynomial (MTP) of (1 - z)^{±1/2} after Frobenius normalisation."""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import Tensor

from .base import check_positive_int
from .iterative import IterativeBackend
from .normalisation import frobenius_normalise
from .paper import PAPER_MTP_DEGREE
from .polynomial import binomial_series, matrix_polynomial

__all__ = ["taylor_sqrtm", "TaylorBackend"]


def taylor_sqrtm(
    A: Tensor, sqrt_coeffs: list[float] | None, inv_sqrt_coeffs: list[float] | None
) -> tuple[Tensor | None, Tensor | None]:
    r"""Truncated series: with :math:`Z = I - A/\|A\|_F`,
    :math:`A^{1/2} \approx \sqrt{\|A\|_F} \sum_k c_k Z^k` (and :math:`A^{-1/2}` with the series
    of :math:`(1-z)^{-1/2}`, divided by :math:`\sqrt{\|A\|_F}`). A ``None`` series skips that
    output."""
    A_n, norm = frobenius_normalise(A)
    Z = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device) - A_n
    root_norm = norm.sqrt()
    root = None if sqrt_coeffs is None else matrix_polynomial(Z, sqrt_coeffs) * root_norm
    inv_root = None if inv_sqrt_coeffs is None else matrix_polynomial(Z, inv_sqrt_coeffs) / root_norm
    return root, inv_root


class TaylorBackend(IterativeBackend):
    r"""Matrix Taylor polynomial (MTP) of Song et al. (ICLR 2022).

    :math:`(1-z)^{1/2} = 1 - \sum_{k \ge 1} |\binom{1/2}{k}| z^k` truncated at ``degree`` and
    evaluated at :math:`Z = I - A/\|A\|_F` (eigenvalues in ``[0, 1)`` for SPD ``A``). The inverse
    root uses the series of :math:`(1-z)^{-1/2}` (all coefficients positive).

    Args:
        degree: highest power kept. Default: :data:`~sqrtlayers.backends.paper.PAPER_MTP_DEGREE`.
        lya_iters: sign-iteration steps of the Lyapunov backward (``mtp-lya``:
            :data:`~sqrtlayers.backends.paper.PAPER_LYA_ITERS`), or ``None``
            for autograd through the polynomial (``mtp``).

    Numerics: an eigenvalue ``lambda`` of ``A/||A||_F`` leaves a truncation error of order
    ``(1-lambda)^{degree}``; Frobenius scaling puts most eigenvalues of an ill-conditioned
    matrix close to 0, so the error grows quickly with the condition number (docs/METHODS.md, "Anchors").

    Example:
        >>> import torch, sqrtlayers as sl
        >>> Y = sl.sqrtm(torch.eye(3), backend="mtp")
        >>> torch.allclose(Y, torch.eye(3))
        True
    """

    name = "mtp"

    def __init__(self, degree: int = PAPER_MTP_DEGREE, *, lya_iters: int | None = None) -> None:
        super().__init__(lya_iters=lya_iters)
        self.degree = check_positive_int(degree, "degree")
        self._sqrt_coeffs = [float(c) for c in binomial_series(Fraction(1, 2), self.degree)]
        self._inv_sqrt_coeffs = [float(c) for c in binomial_series(Fraction(-1, 2), self.degree)]

    def options(self) -> dict[str, object]:
        return {"degree": self.degree, **super().options()}

    def forward_method(self, A: Tensor, root: bool, inverse: bool) -> tuple[Tensor | None, Tensor | None]:
        return taylor_sqrtm(A, self._sqrt_coeffs if root else None, self._inv_sqrt_coeffs if inverse else None)
