"""Exact square roots by eigendecomposition, with the closed-form gradient in the eigenbasis."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import SqrtmBackend
from .normalisation import non_finite_marker
from .onnx_export import refuse_onnx_export

__all__ = ["EighBackend", "clamped_eigh"]


def clamped_eigh(A: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eigendecomposition of a PSD batch with its spectrum made safe for roots.

    Returns ``(s, V, floor)``: ``s`` the square roots of the eigenvalues clamped to ``>= 0``,
    ``V`` the eigenvectors, and ``floor = sqrt(eps) * s_max`` per matrix (shape ``(..., 1)``),
    the size below which a root counts as zero: an eigenvalue below ``eps * lambda_max`` is
    within the eigensolver's rounding of zero. A matrix with a NaN or Inf entry (in either
    triangle) gets NaN roots.
    """
    # LAPACK fails on a matrix full of NaN and eigh reads only one triangle, so a non-finite
    # matrix is decomposed as zero and its roots are made NaN afterwards: NaN out for that
    # matrix only, no error and no host sync.
    marker = non_finite_marker(A)
    evals, V = torch.linalg.eigh(torch.where(marker == 0, A, 0.0))
    s = evals.clamp_min(0).sqrt() + marker[..., 0]
    floor = torch.finfo(A.dtype).eps ** 0.5 * s[..., -1:]  # eigh sorts ascending: last is largest
    return s, V, floor


def _reconstruct(V: Tensor, values: Tensor) -> Tensor:
    return (V * values.unsqueeze(-2)) @ V.mT


def _safe_reciprocal(s: Tensor, floor: Tensor) -> Tensor:
    # A zero (or numerically zero) eigenvalue has no inverse root: using the floor keeps the
    # result finite (and equal to the inverse root of A + floor^2 I along that direction).
    return s.maximum(floor.clamp_min(torch.finfo(s.dtype).tiny)).reciprocal()


def _sqrt_gradient_kernel(s: Tensor, floor: Tensor) -> Tensor:
    """``1 / (s_i + s_j)``, zero where both roots are below the floor (the singular pairs)."""
    denom = s.unsqueeze(-1) + s.unsqueeze(-2)
    zero_root = s <= floor
    singular = zero_root.unsqueeze(-1) & zero_root.unsqueeze(-2)
    return torch.where(singular, torch.zeros_like(denom), denom.clamp_min(torch.finfo(s.dtype).tiny).reciprocal())


class _EighSqrtm(torch.autograd.Function):
    """``A^{1/2}`` (or ``A^{-1/2}``) with the Daleckii-Krein gradient in the eigenbasis."""

    @staticmethod
    def forward(A: Tensor, inverse: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        s, V, floor = clamped_eigh(A)
        values = _safe_reciprocal(s, floor) if inverse else s
        return _reconstruct(V, values), s, V, floor

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, inverse = inputs
        _, s, V, floor = output
        ctx.inverse = inverse
        ctx.save_for_backward(s, V, floor)
        ctx.mark_non_differentiable(s, V, floor)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, *_unused: Tensor) -> tuple[Tensor | None, None]:
        s, V, floor = ctx.saved_tensors
        kernel = _sqrt_gradient_kernel(s, floor)
        if ctx.inverse:
            # d(A^{-1/2}) divided difference: (1/s_i - 1/s_j) / (s_i^2 - s_j^2) = -1/(s_i s_j (s_i + s_j))
            r = _safe_reciprocal(s, floor)
            kernel = -kernel * r.unsqueeze(-1) * r.unsqueeze(-2)
        grad_in = V @ ((V.mT @ grad_out @ V) * kernel) @ V.mT
        return grad_in, None


class EighBackend(SqrtmBackend):
    r"""Exact square root by eigendecomposition, ``A = V \operatorname{diag}(\lambda) V^T``.

    Forward: :math:`A^{\pm 1/2} = V \operatorname{diag}(\lambda^{\pm 1/2}) V^T`, eigenvalues
    clamped to ``>= 0`` first (so an input indefinite within rounding gets the root of its PSD
    part; beyond that margin the root is NaN, as for every backend: see
    :mod:`sqrtlayers.backends.input_rules`).

    Backward (closed form, no autograd through ``eigh``): with :math:`s = \sqrt{\lambda}` and
    upstream gradient :math:`G`,

    .. math::
        \frac{\partial L}{\partial A} = V \left[\frac{V^T G V}{s_i + s_j}\right] V^T,\qquad
        \text{inverse: } V \left[\frac{-V^T G V}{s_i s_j (s_i + s_j)}\right] V^T,

    the solution of the Lyapunov equation :math:`S X + X S = G`. It stays bounded at repeated
    eigenvalues (unlike autograd through ``eigh``, whose ``1/(\lambda_i-\lambda_j)`` blows up).

    Singular inputs: roots below ``floor = sqrt(eps) * s_max`` (eigenvalues below
    ``eps * lambda_max``) count as zero. The gradient of the
    square root is unbounded there; this backend returns the least-norm solution of the singular
    Lyapunov equation, i.e. the components between two zero eigenvalues are set to ``0``
    (roots just above the floor give large but finite components). The
    inverse root uses ``max(s, floor)`` in place of ``s``, so it is finite (of order
    ``1/floor``) rather than infinite.

    Double backward is not supported (raises ``RuntimeError``). It does not export to ONNX,
    which has no eigendecomposition: under ``torch.onnx.export`` it raises
    :class:`~sqrtlayers.backends.onnx_export.OnnxExportError` naming ``accurate``.

    The symmetric part :math:`(A + A^T)/2` is decomposed, as every backend reads it; a NaN or Inf
    anywhere in a matrix makes its output NaN. ``svd`` is an alias of this backend.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.diag(torch.tensor([4.0, 9.0]))
        >>> sl.sqrtm(A, backend="eigh")
        tensor([[2., 0.],
                [0., 3.]])
    """

    name = "eigh"

    def __init__(self) -> None:  # no options; an explicit signature names a stray one in errors
        pass

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        refuse_onnx_export(self.name, "ONNX has no eigendecomposition")
        return _EighSqrtm.apply(A, inverse)[0]
