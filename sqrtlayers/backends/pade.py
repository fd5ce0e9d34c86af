"""Matrix Padé approximant (MPA) of (1 - z)^{±1/2} after Frobenius normalisation."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor

from .base import check_positive_int
from .fused import scaled_matmul_add
from .iterative import IterativeBackend
from .normalisation import frobenius_normalise
from .paper import PAPER_MPA_DEGREE
from .onnx_export import OnnxExportError, exporting_to_onnx
from .polynomial import matrix_polynomial, pade_coefficients

__all__ = ["pade_sqrtm", "newton_inverse_solve", "PadeBackend"]

_SOLVERS = ("lu", "newton")


def newton_inverse_solve(M: Tensor, R: Tensor, iters: int) -> Tensor:
    r"""``M^{-1} R`` by the Newton-Schulz inverse iteration :math:`X \leftarrow X (2I - M X)`
    from :math:`X_0 = I`, matrix products only.

    Converges when the eigenvalues of ``M`` lie in ``(0, 2)``: the error after ``k`` steps is
    :math:`(I - M)^{2^k}`. Used on Padé polynomials, whose spectrum is known in advance.
    """
    eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    X = 2 * eye - M  # the first step from X_0 = I needs no product
    for _ in range(iters - 1):
        X = X @ scaled_matmul_add(eye, M, X, beta=2.0, alpha=-1.0)
    return X @ R


def _newton_iters_for(coeffs: list[float], dtype_eps: float = 2.0**-53) -> int:
    """Steps for :func:`newton_inverse_solve` on a polynomial of ``Z`` (spectrum in ``[0, 1]``)
    to reach ``dtype_eps``: from the smallest value of the polynomial on a fine grid."""
    grid = [i / 4096 for i in range(4097)]
    values = [sum(c * z**k for k, c in enumerate(coeffs)) for z in grid]
    lowest, highest = min(values), max(values)
    if lowest <= 0 or highest >= 2:
        raise ValueError(
            f"the Padé polynomial takes values in [{lowest:.3g}, {highest:.3g}] on [0, 1]; "
            "solver='newton' needs them inside (0, 2): use solver='lu'"
        )
    contraction = max(1 - lowest, highest - 1)
    return max(1, math.ceil(math.log2(math.log(dtype_eps) / math.log(contraction))))


def pade_sqrtm(
    A: Tensor,
    p: list[float],
    q: list[float],
    root: bool,
    inverse: bool,
    newton_iters: tuple[int, int] | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    r"""Padé approximant: with :math:`Z = I - A/\|A\|_F`,
    :math:`A^{1/2} \approx \sqrt{\|A\|_F}\, Q(Z)^{-1} P(Z)` and
    :math:`A^{-1/2} \approx P(Z)^{-1} Q(Z) / \sqrt{\|A\|_F}`.

    Returns the requested ones of ``(A^{1/2}, A^{-1/2})``. ``newton_iters=None`` solves with
    ``torch.linalg.solve_ex`` (LU, no host-side error check); ``(k_Q, k_P)`` uses :func:`newton_inverse_solve` (matrix
    products only) with those step counts for ``Q^{-1}`` and ``P^{-1}``.
    """
    A_n, norm = frobenius_normalise(A)
    Z = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device) - A_n
    P = matrix_polynomial(Z, p)
    Q = matrix_polynomial(Z, q)
    root_norm = norm.sqrt()

    def solve(lhs: Tensor, rhs: Tensor, iters: int | None) -> Tensor:
        if iters is not None:
            return newton_inverse_solve(lhs, rhs, iters)
        # solve_ex without its error check: torch.linalg.solve reads LAPACK's info on the host.
        # The Padé denominators are well conditioned for SPD input, and a singular one (from
        # non-PSD input) gives non-finite values rather than an exception.
        return torch.linalg.solve_ex(lhs, rhs, check_errors=False)[0]

    k_q, k_p = (None, None) if newton_iters is None else newton_iters
    sqrt_out = solve(Q, P, k_q) * root_norm if root else None
    inv_out = solve(P, Q, k_p) / root_norm if inverse else None
    return sqrt_out, inv_out


class PadeBackend(IterativeBackend):
    r"""Matrix Padé approximant (MPA) of Song et al. (ICLR 2022).

    The ``[m/n]`` Padé approximant ``P_m(z)/Q_n(z)`` of :math:`(1-z)^{1/2}` evaluated at
    :math:`Z = I - A/\|A\|_F`. ``P`` and ``Q`` are polynomials in the same ``Z``, so they
    commute; the inverse root is :math:`P^{-1} Q` (rescaled).

    Args:
        degree: ``(m, n)``. Default: :data:`~sqrtlayers.backends.paper.PAPER_MPA_DEGREE`
            (coefficients are computed exactly for any degree).
        lya_iters: sign-iteration steps of the Lyapunov backward (``mpa-lya``:
            :data:`~sqrtlayers.backends.paper.PAPER_LYA_ITERS`), or ``None``
            for autograd through the forward (``mpa``).
        solver: ``"lu"`` (default, the paper's method: an LU solve) or ``"newton"``,
            a Newton-Schulz inverse of the denominator using only matrix products, whose step
            count is fixed at construction from the polynomial's range on ``[0, 1]`` (sized for
            float64, so float32 runs one or two more steps than it needs). Use
            ``"newton"`` to capture the backend in a CUDA graph, where a batched LU solve may
            not be capturable. While ``torch.onnx.export`` traces it, ``"lu"`` solves as
            ``"newton"`` does: ONNX has no LU solve (README, "Deploying").

    Numerics: ``[5/5]`` maps a zero eigenvalue of ``A`` to ``1/11`` of the scale rather than 0,
    and ``P(1) = 1/1024`` makes the inverse root's solve ill-conditioned: accuracy falls with
    the condition number (docs/METHODS.md, "Anchors").

    Example:
        >>> import torch, sqrtlayers as sl
        >>> Y = sl.sqrtm(4 * torch.eye(3), backend="mpa")
        >>> torch.allclose(Y, 2 * torch.eye(3))
        True
    """

    name = "mpa"

    def __init__(
        self, degree: tuple[int, int] = PAPER_MPA_DEGREE, *, lya_iters: int | None = None, solver: str = "lu"
    ) -> None:
        super().__init__(lya_iters=lya_iters)
        if not (isinstance(degree, (tuple, list)) and len(degree) == 2):
            raise ValueError(f"degree must be a pair (m, n), got {degree!r}")
        m, n = (check_positive_int(d, "degree") for d in degree)
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {list(_SOLVERS)}, got {solver!r}")
        self.degree = (m, n)
        self.solver = solver
        p, q = pade_coefficients(Fraction(1, 2), m, n)
        self._p = [float(c) for c in p]
        self._q = [float(c) for c in q]
        self._newton_iters: tuple[int, int] | None = None
        if solver == "newton":
            self._newton_iters = (_newton_iters_for(self._q), _newton_iters_for(self._p))
        # The products-only solve an ONNX export uses; None for a degree it does not converge at.
        self._export_iters = self._newton_iters
        if self._export_iters is None:
            try:
                self._export_iters = (_newton_iters_for(self._q), _newton_iters_for(self._p))
            except ValueError:
                pass

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"degree": self.degree, **super().options()}
        if self.solver != "lu":
            opts["solver"] = self.solver
        return opts

    def forward_method(self, A: Tensor, root: bool, inverse: bool) -> tuple[Tensor | None, Tensor | None]:
        newton_iters = self._newton_iters
        if newton_iters is None and exporting_to_onnx():
            if self._export_iters is None:
                raise OnnxExportError(
                    f"backend {self.name!r} with degree={self.degree} does not export to ONNX: its "
                    f"LU solve has no ONNX operator and the products-only solve does not converge "
                    f"at this degree; use degree=(5, 5) or backend='accurate'"
                )
            newton_iters = self._export_iters
        return pade_sqrtm(A, self._p, self._q, root, inverse, newton_iters)
