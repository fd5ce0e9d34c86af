"""Functional entry points: ``sqrtm``, ``inv_sqrtm`` and the opt-in validator ``check_spd``."""

from __future__ import annotations

import torch
from torch import Tensor

from .backends.base import SqrtmBackend, validate_square_input
from .backends.registry import DEFAULT_BACKEND, resolve_backend

__all__ = ["sqrtm", "inv_sqrtm", "check_spd", "NotSPDError"]


class NotSPDError(ValueError):
    """Raised by :func:`check_spd` for a matrix that is not symmetric positive (semi-)definite."""


def sqrtm(A: Tensor, backend: str | SqrtmBackend = DEFAULT_BACKEND) -> Tensor:
    r"""Differentiable principal square root :math:`A^{1/2}` of SPD/PSD matrices.

    Args:
        A: ``(..., n, n)`` symmetric positive (semi-)definite, any leading batch dims; float32 or
            float64 (float16/bfloat16 are computed in float32 and cast back, autocast is ignored).
        backend: a registered name (see :func:`list_backends`) or a configured backend from
            :func:`get_backend`. Default: :data:`~sqrtlayers.DEFAULT_BACKEND` (the paper's
            method).

    Returns:
        ``(..., n, n)``, same dtype as ``A``.

    Raises:
        TypeError: non-tensor, integer, bool or complex ``A``.
        ValueError: fewer than 2 dims, non-square, unknown backend.

    Every backend reads the symmetric part :math:`(A + A^T)/2`, and returns NaN for a matrix with
    an eigenvalue below :math:`-(u_{in} + 4 n u) \|A\|_F` (outside the PSD cone beyond rounding),
    the rest of the batch unaffected; NaN in, NaN out (:mod:`sqrtlayers.backends.input_rules`,
    docs/METHODS.md). Nothing raises on values (that would need a host sync): call
    :func:`check_spd` first when in doubt.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.tensor([[4.0, 0.0], [0.0, 9.0]])
        >>> sl.sqrtm(A, backend="eigh")
        tensor([[2., 0.],
                [0., 3.]])
    """
    return resolve_backend(backend).sqrtm(A)


def inv_sqrtm(A: Tensor, backend: str | SqrtmBackend = DEFAULT_BACKEND) -> Tensor:
    r"""Differentiable inverse principal square root :math:`A^{-1/2}` of SPD matrices.

    Arguments, dtypes and errors as for :func:`sqrtm`.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.tensor([[4.0, 0.0], [0.0, 16.0]])
        >>> sl.inv_sqrtm(A, backend="eigh")
        tensor([[0.5000, 0.0000],
                [0.0000, 0.2500]])
    """
    return resolve_backend(backend).inv_sqrtm(A)


def check_spd(A: Tensor, *, rtol: float = 1e-5, allow_semidefinite: bool = True) -> Tensor:
    """Raise :class:`NotSPDError` unless every matrix of ``A`` is finite, symmetric and PSD (or
    SPD with ``allow_semidefinite=False``); return ``A`` unchanged otherwise.

    Opt-in because it synchronises with the host and costs an eigendecomposition.

    Args:
        A: ``(..., n, n)``.
        rtol: tolerance relative to the largest absolute entry (asymmetry) or the largest
            eigenvalue (negativity) of each matrix. Default: ``1e-5``.
        allow_semidefinite: accept zero eigenvalues (within ``rtol``). Default: ``True``.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> sl.check_spd(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
        Traceback (most recent call last):
        ...
        sqrtlayers.functional.NotSPDError: A is not positive semi-definite: most negative eigenvalue -1 (matrix at batch index (), largest eigenvalue 3)
    """
    validate_square_input(A)
    work = A.detach().double()
    finite = torch.isfinite(work)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        where = tuple(int(i) for i in (~finite).nonzero()[0].tolist())
        raise NotSPDError(f"A has {bad} non-finite entries (first at index {where})")
    scale = work.abs().amax(dim=(-2, -1)).clamp_min(torch.finfo(torch.float64).tiny)
    asym = (work - work.mT).abs().amax(dim=(-2, -1))
    rel = asym / scale
    if bool((rel > rtol).any()):
        idx = int(rel.flatten().argmax())
        raise NotSPDError(
            f"A is not symmetric: max |A - A^T| = {float(asym.flatten()[idx]):.3g} "
            f"({float(rel.flatten()[idx]):.3g} relative, rtol={rtol}) at batch index "
            f"{_batch_index(A, idx)}"
        )
    evals = torch.linalg.eigvalsh(work)
    lowest, highest = evals[..., 0], evals[..., -1]
    limit = -rtol * highest.abs() if allow_semidefinite else rtol * highest.abs()
    bad_mask = lowest < limit
    if bool(bad_mask.any()):
        idx = int(torch.where(bad_mask, lowest, torch.inf).flatten().argmin())
        kind = "positive semi-definite" if allow_semidefinite else "positive definite"
        raise NotSPDError(
            f"A is not {kind}: most negative eigenvalue {float(lowest.flatten()[idx]):.6g} "
            f"(matrix at batch index {_batch_index(A, idx)}, largest eigenvalue "
            f"{float(highest.flatten()[idx]):.6g})"
        )
    return A


def _batch_index(A: Tensor, flat: int) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), A.shape[:-2])) if A.dim() > 2 else ()
