r"""Eigh-class accuracy with matrix products only: minimax-accelerated coupled iterations.

Forward. Scale :math:`A_s = A / u` by :math:`u = \|A^2\|_F^{1/2} = (\operatorname{tr} A^4)^{1/4}`,
an upper bound on :math:`\lambda_{\max}` that is loose by at most :math:`n^{1/4}` and costs the
product :math:`A^2`, which the first step needs anyway. Then run the coupled iteration

.. math::
    X_k = Z_k Y_k,\quad T_k = a_k I + b_k X_k + c_k X_k^2,\quad Y_{k+1} = Y_k T_k,\quad
    Z_{k+1} = T_k Z_k,\qquad Y_0 = A_s,\ Z_0 = I,

so :math:`Y \to A_s^{1/2}` and :math:`Z \to A_s^{-1/2}`. In the eigenbasis, with
:math:`\sigma = \sqrt{x}`, one step maps :math:`\sigma \mapsto q_k(\sigma) = a_k\sigma + b_k\sigma^3 +
c_k\sigma^5`; Newton-Schulz is the fixed choice :math:`q = (15\sigma - 10\sigma^3 + 3\sigma^5)/8`
(or its cubic sibling). Here each :math:`q_k` is the minimax (Remez) approximation of 1 on the
interval that the previous steps leave, as in the "Polar Express" and CANS work on the polar
factor: small eigenvalues grow up to ~25x per step instead of 2.25x, so a condition number of
``1e6`` converges in 8 steps (30 products) where Newton-Schulz needs ~25.

Backward. With :math:`B = A_s^{1/2}`, the gradient solves :math:`B X + X B = G/\sqrt{u}`; the
sign of :math:`M = [[B, C], [0, -B]]` gives it (:mod:`sqrtlayers.backends.lyapunov`). The
spectrum of :math:`B` is the forward's :math:`\sigma`-interval, so the same minimax polynomials
apply: :math:`M \leftarrow q_k(M)`, nine products per step on the two blocks. Backward keeps only
the normalised root (and the inverse root for ``inv_sqrtm``) and the scale.

The number of steps and the coefficients are fixed at construction from ``kappa`` (the largest
condition number the caller promises) and the dtype's precision; nothing depends on the data,
so the backend compiles with ``fullgraph=True`` and can be captured in a CUDA graph.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import SqrtmBackend
from .fused import scaled_matmul_add
from .normalisation import frobenius_normalise

__all__ = ["minimax_odd_quintic", "minimax_schedule", "AccurateBackend"]

Quintic = tuple[float, float, float]


def _solve4(M: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for the 4x4 Remez system (float64)."""
    rows = [row[:] + [r] for row, r in zip(M, rhs)]
    n = len(rows)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            f = rows[r][col] / rows[col][col]
            rows[r] = [a - f * b for a, b in zip(rows[r], rows[col])]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (rows[r][n] - sum(rows[r][c] * x[c] for c in range(r + 1, n))) / rows[r][r]
    return x


def minimax_odd_quintic(lo: float, hi: float, max_iter: int = 50) -> tuple[Quintic, float, float]:
    r"""Coefficients ``(a, b, c)`` of :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` that minimise
    :math:`\max_{\sigma \in [lo, hi]} |1 - q(\sigma)|`, by the Remez exchange algorithm, and the
    range ``(min q, max q)`` over ``[lo, hi]`` (the next step's interval).

    Example:
        >>> (a, b, c), qmin, qmax = minimax_odd_quintic(0.999, 1.001)
        >>> round(a, 3), round(b, 3), round(c, 3)  # Newton-Schulz's quintic, 15/8, -10/8, 3/8
        (1.875, -1.25, 0.375)
    """
    if not 0.0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo}, hi={hi}")
    ref = [lo + (hi - lo) * t for t in (0.0, 0.25, 0.75, 1.0)]
    coeffs: Quintic = (1.0, 0.0, 0.0)
    for _ in range(max_iter):
        system = [[s, s**3, s**5, (-1.0) ** i] for i, s in enumerate(ref)]
        a, b, c, _ = _solve4(system, [1.0] * 4)
        coeffs = (a, b, c)
        # Interior extrema of q: roots of q'(s) = a + 3b s^2 + 5c s^4, a quadratic in s^2.
        disc = 9 * b * b - 20 * a * c
        if c == 0 or disc < 0:
            break
        roots = sorted(math.sqrt(r) for r in ((-3 * b - math.sqrt(disc)) / (10 * c), (-3 * b + math.sqrt(disc)) / (10 * c)) if r > 0)
        interior = [r for r in roots if lo < r < hi]
        if len(interior) != 2:
            break
        new_ref = [lo, interior[0], interior[1], hi]
        if max(abs(x - y) for x, y in zip(new_ref, ref)) <= 1e-15 * hi:
            break
        ref = new_ref
    q_min, q_max = _range_on(coeffs, lo, hi)
    return coeffs, q_min, q_max


def _range_on(coeffs: Quintic, lo: float, hi: float) -> tuple[float, float]:
    a, b, c = coeffs
    points = [lo, hi]
    disc = 9 * b * b - 20 * a * c
    if c != 0 and disc >= 0:
        for r in ((-3 * b - math.sqrt(disc)) / (10 * c), (-3 * b + math.sqrt(disc)) / (10 * c)):
            if r > 0 and lo < math.sqrt(r) < hi:
                points.append(math.sqrt(r))
    values = [a * s + b * s**3 + c * s**5 for s in points]
    return min(values), max(values)


@functools.lru_cache(maxsize=64)
def minimax_schedule(sigma_min: float, tol: float, max_steps: int = 40) -> tuple[Quintic, ...]:
    """The per-step quintics that take every ``sigma`` in ``[sigma_min, 1]`` to within ``tol`` of 1.

    Example:
        >>> len(minimax_schedule(1e-2, 1e-7))  # kappa = 1e4 with an exact bound: 6 steps
        6
    """
    lo, hi = sigma_min, 1.0
    steps: list[Quintic] = []
    while max(1.0 - lo, hi - 1.0) > tol:
        if len(steps) == max_steps:
            raise RuntimeError(f"minimax schedule did not reach tol={tol} in {max_steps} steps from sigma_min={sigma_min}")
        coeffs, lo, hi = minimax_odd_quintic(lo, hi)
        steps.append(coeffs)
    return tuple(steps)


def _quintic_factor(X: Tensor, a: float, b: float, c: float) -> Tensor:
    """``a I + b X + c X^2`` in two kernels (a fused multiply-add, then the diagonal).

    In-place on a fresh tensor: these helpers run inside an autograd Function, never recorded.
    """
    T = scaled_matmul_add(X, X, X, beta=b, alpha=c)
    T.diagonal(dim1=-2, dim2=-1).add_(a)
    return T


def coupled_minimax_sqrtm(A: Tensor, steps: tuple[Quintic, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """``(Y, Z, u)`` with ``Y ~ (A/u)^{1/2}``, ``Z ~ (A/u)^{-1/2}``, ``u`` of shape ``(..., 1, 1)``."""
    # Frobenius-normalise first so that squaring neither underflows nor overflows.
    A_n, norm = frobenius_normalise(A)
    A_n2 = A_n @ A_n
    # r = (tr A_n^4)^{1/4} >= lambda_max(A_n), and r >= n^{-1/4} for PSD A_n != 0; the floor only
    # keeps a zero matrix (or garbage input) from dividing by zero.
    r = torch.linalg.matrix_norm(A_n2, keepdim=True).sqrt().clamp_min(torch.finfo(A.dtype).eps)
    u = norm * r
    A_s = A_n / r
    a, b, c = steps[0]
    # Step 0 has Z = I and X = A_s: T is a polynomial in A_s, using the A_n^2 already computed.
    T = torch.add(b * A_s, A_n2 / (r * r), alpha=c)
    T.diagonal(dim1=-2, dim2=-1).add_(a)
    Y, Z = A_s @ T, T
    for a, b, c in steps[1:]:
        T = _quintic_factor(Z @ Y, a, b, c)
        Y, Z = Y @ T, T @ Z
    # Y and Z are symmetric in exact arithmetic; averaging removes the rounding drift.
    return 0.5 * (Y + Y.mT), 0.5 * (Z + Z.mT), u


def minimax_lyapunov_solve(B: Tensor, C: Tensor, steps: tuple[Quintic, ...]) -> Tensor:
    r"""``X`` with ``B X + X B = C`` for ``B`` symmetric with spectrum in ``[sigma_min, 1]``, by
    the accelerated sign iteration :math:`M \leftarrow q_k(M)` on :math:`M = [[B, C], [0, -B]]`.

    Writing :math:`q(M) = M P(M^2)` with :math:`P(w) = a + b w + c w^2`, the blocks are
    :math:`M^2 = [[W, D], [0, W]]` with ``W = B B``, ``D = B C - C B``, so
    :math:`P(M^2) = [[P(W), bD + c(WD + DW)], [0, P(W)]]` and
    :math:`q(M) = [[B P(W), B\,dP + C P(W)], [0, -B P(W)]]`: nine products a step.
    """
    for a, b, c in steps:
        W = B @ B
        D = scaled_matmul_add(B @ C, C, B, beta=1.0, alpha=-1.0)
        P = _quintic_factor(W, a, b, c)
        # Top-right block of P(M^2) = a I + b M^2 + c M^4: b D + c (W D + D W).
        dP = scaled_matmul_add(scaled_matmul_add(D, W, D, beta=b, alpha=c), D, W, beta=1.0, alpha=c)
        B, C = B @ P, scaled_matmul_add(C @ P, B, dP, beta=1.0, alpha=1.0)
    return 0.5 * C


class _MinimaxSqrtm(torch.autograd.Function):
    @staticmethod
    def forward(A: Tensor, steps: tuple[Quintic, ...], inverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        Y, Z, u = coupled_minimax_sqrtm(A, steps)
        root_u = u.sqrt()
        out = Z / root_u if inverse else Y * root_u
        return out, Y, u

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, steps, inverse = inputs
        out, Y, u = output
        ctx.steps = steps
        ctx.inverse = inverse
        ctx.mark_non_differentiable(Y, u)
        ctx.save_for_backward(Y, u, out if inverse else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, *_unused: Tensor) -> tuple[Tensor | None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None
        Y, u, inv_root = ctx.saved_tensors
        G = -(inv_root @ grad_out @ inv_root) if ctx.inverse else grad_out
        return minimax_lyapunov_solve(Y, G / u.sqrt(), ctx.steps), None, None


class AccurateBackend(SqrtmBackend):
    r"""Matrix-product-only square root and inverse square root with eigh-class accuracy.

    Forward: coupled iteration with per-step minimax quintics after scaling by
    :math:`(\operatorname{tr} A^4)^{1/4}`; backward: the Lyapunov sign iteration accelerated by
    the same quintics. See :mod:`sqrtlayers.backends.accurate` for the method.

    Args:
        kappa: the largest condition number :math:`\lambda_{\max}/\lambda_{\min}` to converge
            for. Eigenvalues below :math:`\lambda_{\max}/\kappa` still come out finite, but less
            accurate. Default: ``1e6`` (8 steps for ``n <= 256``).
        tol: convergence target of the scalar iteration; ``None`` (default) picks the dtype's
            unit roundoff, so float64 gets one more step than float32.

    Cost: ``2 + 4 (k - 1)`` products forward and ``9 k`` backward for ``k`` steps (``k = 8`` at
    the defaults for ``n = 64``); ``inv_sqrtm`` adds two for ``-Z G Z``.

    Numerics (float32, ``n = 64``, log-spaced spectrum, median over 8 matrices, relative
    Frobenius error forward / gradient): sqrt ~1e-6 / 4e-6 up to ``kappa = 1e3``, 4e-6 / 8e-6 at
    ``1e4``, 1.4e-5 / 5.7e-4 at ``1e6``; inverse root 2.2e-5 / 4.6e-5 at ``1e4``. A rank-deficient
    input (covariance + ``eps I``) is as accurate as the condition number ``eps`` implies when
    that is within ``kappa``.

    Double backward is not supported (raises ``RuntimeError``).

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.diag(torch.tensor([1e-4, 1.0, 4.0]))
        >>> torch.allclose(sl.sqrtm(A, backend="accurate"), A.sqrt(), atol=1e-6)
        True
    """

    name = "accurate"

    def __init__(self, kappa: float = 1e6, tol: float | None = None) -> None:
        if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not kappa >= 1:
            raise ValueError(f"kappa must be a number >= 1, got {kappa!r}")
        if tol is not None and not (isinstance(tol, float) and 0 < tol < 1):
            raise ValueError(f"tol must be a float in (0, 1) or None, got {tol!r}")
        self.kappa = float(kappa)
        self.tol = tol

    def options(self) -> dict[str, object]:
        return {"kappa": self.kappa, **({} if self.tol is None else {"tol": self.tol})}

    def steps_for(self, n: int, dtype: torch.dtype) -> tuple[Quintic, ...]:
        """The schedule used for ``n x n`` matrices of ``dtype`` (fixed per shape and dtype)."""
        # Scaling by (tr A^4)^{1/4} overestimates lambda_max by at most n^{1/4}.
        sigma_min = 1.0 / math.sqrt(self.kappa * n**0.25)
        tol = self.tol if self.tol is not None else torch.finfo(dtype).eps / 2
        return minimax_schedule(min(sigma_min, 0.5), tol)

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        return _MinimaxSqrtm.apply(A, self.steps_for(A.shape[-1], A.dtype), inverse)[0]
