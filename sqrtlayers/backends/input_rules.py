r"""The one rule every backend keeps for what it reads of its input, applied in
:meth:`SqrtmBackend._run <sqrtlayers.backends.base.SqrtmBackend>` before and after any backend's
own computation (docs/METHODS.md, "What a backend reads").

1. **The symmetric part.** A backend reads :math:`\operatorname{sym}(A) = (A + A^T)/2`: a
   non-symmetric matrix gets the root of its symmetric part from every backend, and the gradient
   is that of the root of :math:`\operatorname{sym}(A)` (a symmetric matrix for a symmetric
   upstream gradient). A symmetric input is read bitwise as it is.
2. **The PSD cone, with a rounding margin.** A matrix with an eigenvalue below
   :math:`-\delta`, :math:`\delta = (u_{in} + 4 n u)\,\|A\|_F` (``u_in``: unit roundoff of the
   input's dtype, ``u``: of the dtype computed in), is outside the cone and its root (or inverse
   root) is NaN, every entry, from every backend; the other matrices of the batch are
   unaffected. Within :math:`\delta` of the cone (a singular PSD matrix that rounding made
   slightly indefinite) a backend returns its root of the matrix as given (``eigh`` clamps the
   negative eigenvalues to zero).

The test is an in-graph Cholesky factorisation of :math:`\operatorname{sym}(A) + \delta I`
(``torch.linalg.cholesky_ex``: no host synchronisation, no data-dependent Python control flow),
costing about two matrix products. ONNX has no Cholesky factorisation, so a model exported to
ONNX skips the second rule. :func:`sqrtlayers.check_spd` remains the opt-in validator that raises.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .onnx_export import exporting_to_onnx

__all__ = ["symmetric_part", "cone_margin", "outside_psd_cone", "nan_outside_psd_cone"]


def symmetric_part(A: Tensor) -> Tensor:
    """``(A + A^T) / 2``, exactly symmetric, and bitwise ``A`` for a symmetric ``A``."""
    return (A + A.mT) * 0.5


def cone_margin(n: int, input_dtype: torch.dtype, dtype: torch.dtype) -> float:
    """:math:`\\delta / \\|A\\|_F`: how far below zero an eigenvalue may lie and still count as
    the rounding of a PSD matrix (of ``input_dtype``, factorised in ``dtype``)."""
    return torch.finfo(input_dtype).eps / 2 + 4 * n * torch.finfo(dtype).eps / 2


def outside_psd_cone(A: Tensor, input_dtype: torch.dtype | None = None) -> Tensor:
    """Boolean ``(..., 1, 1)``: which symmetric matrices of ``A`` have an eigenvalue below
    ``-delta`` (see the module docstring). ``input_dtype`` defaults to ``A.dtype``."""
    A = A.detach()
    # Scaled to largest entry 1 first, so that the factorisation neither over- nor underflows.
    scale = A.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(A.dtype).tiny)
    S = A / scale
    margin = cone_margin(A.shape[-1], input_dtype or A.dtype, A.dtype)
    # A zero matrix (S = 0) is in the cone: the shift keeps its factorisation positive.
    shift = (margin * torch.linalg.matrix_norm(S, keepdim=True)).clamp_min(torch.finfo(A.dtype).eps)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    info = torch.linalg.cholesky_ex(S + shift * eye).info
    return (info > 0)[..., None, None]


def nan_outside_psd_cone(out: Tensor, A: Tensor, input_dtype: torch.dtype) -> Tensor:
    """``out`` with the matrices whose input ``A`` is outside the PSD cone set to NaN."""
    if exporting_to_onnx() or A.numel() == 0:
        return out
    # Added rather than selected: autograd saves nothing for it (the -lya backwards keep only
    # the roots), and the gradient of a NaN root is NaN.
    return out + torch.where(outside_psd_cone(A, input_dtype), torch.nan, 0.0).to(out.dtype)
