r"""Gradients of matrix square roots by solving a Lyapunov equation with a matrix-sign iteration.

For :math:`S = A^{1/2}` and an upstream gradient :math:`G = \partial L / \partial S`, the gradient
:math:`X = \partial L / \partial A` solves :math:`S X + X S = G`. Since

.. math::
    \operatorname{sign}\begin{pmatrix} S & G \\ 0 & -S \end{pmatrix}
    = \begin{pmatrix} I & 2X \\ 0 & -I \end{pmatrix},

the Newton-Schulz sign iteration :math:`M \leftarrow M (3I - M^2) / 2`, written on the two
non-trivial blocks, gives :math:`X` using matrix products only (Song et al., ICLR 2022, Sec. 3.2).
For :math:`Z = A^{-1/2}` the same equation is solved with :math:`-Z G Z` in place of :math:`G`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .fused import scaled_matmul_add
from .normalisation import frobenius_norm

__all__ = ["lyapunov_sign_iteration", "LyapunovSqrtm", "sqrtm_with_lyapunov_backward"]


def lyapunov_sign_iteration(S: Tensor, G: Tensor, scale: Tensor, iters: int) -> Tensor:
    r"""Solve :math:`S X + X S = G` for symmetric positive :math:`S` by the sign iteration.

    Args:
        S: ``(..., n, n)`` symmetric positive (semi-)definite, typically ``A^{1/2}``.
        G: ``(..., n, n)`` right-hand side.
        scale: ``(..., 1, 1)`` positive; ``S / scale`` must have eigenvalues in ``(0, sqrt(3))``
            for convergence, ideally close to 1 at the top. The paper uses ``sqrt(||A||_F)``.
        iters: number of iterations (the paper uses 8).

    Returns:
        ``X`` of shape ``(..., n, n)``.

    Numerics: the iteration converges quadratically once an eigenvalue of ``S / scale`` is near
    1, but an eigenvalue ``mu << 1`` first grows only by about ``1.5x`` a step, so components
    with ``mu`` below roughly ``1.5^{-iters}`` are not converged (8 steps: ``mu > ~0.04``).
    """
    B = S / scale
    C = G / scale
    for _ in range(iters):
        B2 = B @ B
        # C <- (C (3I - B^2) - B^2 C + B C B) / 2 and B <- B (3I - B^2) / 2, each term a fused
        # multiply-add: 6 kernels a step instead of 13.
        C_next = scaled_matmul_add(C, C, B2, beta=1.5, alpha=-0.5)
        C_next = scaled_matmul_add(C_next, B2, C, beta=1.0, alpha=-0.5)
        C = scaled_matmul_add(C_next, B @ C, B, beta=1.0, alpha=0.5)
        B = scaled_matmul_add(B, B, B2, beta=1.5, alpha=-0.5)
    return 0.5 * C


RootsFn = Callable[[Tensor, bool, bool], tuple["Tensor | None", "Tensor | None"]]


class LyapunovSqrtm(torch.autograd.Function):
    """Wrap a forward square-root method with the Lyapunov sign-iteration backward.

    ``roots_fn(A, root, inverse)`` returns the requested ones of ``(A^{1/2}, A^{-1/2})``.
    Autograd does not record its operations. Backward keeps the method's own ``S ~ A^{1/2}``
    (for the inverse root also ``Z ~ A^{-1/2}``, to form ``-Z G Z``) and the paper's
    sign-iteration scale ``sqrt(||A||_F)``; never the iterates.

    Double backward is not supported: it raises ``RuntimeError``.
    """

    @staticmethod
    def forward(
        A: Tensor, roots_fn: RootsFn, inverse: bool, iters: int
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        root, inv_root = roots_fn(A, True, inverse)
        scale = frobenius_norm(A).sqrt()
        # (output, scale, the root behind an inverse output); the root of a sqrt call is the output
        return (inv_root, scale, root) if inverse else (root, scale, None)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, _, inverse, iters = inputs
        out, scale, root = output
        ctx.inverse = inverse
        ctx.iters = iters
        if inverse:
            ctx.mark_non_differentiable(scale, root)
            ctx.save_for_backward(root, scale, out)
        else:
            ctx.mark_non_differentiable(scale)
            ctx.save_for_backward(out, scale, None)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, *_unused: Tensor) -> tuple[Tensor | None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        root, scale, inv_root = ctx.saved_tensors
        G = -(inv_root @ grad_out @ inv_root) if ctx.inverse else grad_out
        return lyapunov_sign_iteration(root, G, scale, ctx.iters), None, None, None


def sqrtm_with_lyapunov_backward(A: Tensor, roots_fn: RootsFn, inverse: bool, iters: int) -> Tensor:
    """``A^{1/2}`` (or ``A^{-1/2}``) by ``roots_fn`` with the Lyapunov backward; see
    :class:`LyapunovSqrtm`."""
    return LyapunovSqrtm.apply(A, roots_fn, inverse, iters)[0]
