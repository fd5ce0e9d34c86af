"""The backend protocol shared by every square-root method, and the input rules they all keep."""

from __future__ import annotations

import torch
from torch import Tensor

from ..dtypes import check_real_floating, compute_dtype
from .input_rules import nan_outside_psd_cone, symmetric_part

__all__ = ["SqrtmBackend", "validate_square_input", "check_positive_int", "compute_dtype"]


def validate_square_input(A: Tensor, name: str = "A") -> None:
    """Check type, dtype and shape of a batch of square matrices, without a host sync.

    Raises:
        TypeError: if ``A`` is not a floating-point tensor (integer, bool and complex are refused).
        ValueError: if ``A`` has fewer than 2 dims, or its last two dims differ, or are zero.
    """
    check_real_floating(A, name)
    if A.dim() < 2:
        raise ValueError(
            f"{name} must have at least 2 dims (..., n, n), got shape {tuple(A.shape)}"
        )
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"{name} must be square in its last two dims (..., n, n), got shape {tuple(A.shape)}"
        )
    if A.shape[-1] == 0:
        raise ValueError(f"{name} must have n >= 1, got shape {tuple(A.shape)}")


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an ``int >= 1`` (``bool`` refused), else raise ``TypeError`` or
    ``ValueError`` echoing it: the one check of every step count, degree and size argument of
    the backends and layers.

    Example:
        >>> from sqrtlayers.backends.base import check_positive_int
        >>> check_positive_int(0, "num_classes")
        Traceback (most recent call last):
        ...
        ValueError: num_classes must be an int >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value


class SqrtmBackend:
    """A configured method for the square root and inverse square root of SPD/PSD matrices.

    Subclasses implement :meth:`_compute` on float32/float64 tensors; this class validates the
    input, computes float16/bfloat16 inputs in float32 with autocast disabled, and casts back.
    It also keeps the input rules of :mod:`sqrtlayers.backends.input_rules` for every backend:
    the symmetric part :math:`(A + A^T)/2` is what is read, and a matrix outside the PSD cone
    (beyond a rounding margin) gets a NaN root.

    A backend is immutable once built: its options are fixed at construction, so a compiled or
    CUDA-graph-captured call never meets data-dependent Python control flow.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> b = sl.get_backend("eigh")
        >>> A = torch.eye(3) * 4
        >>> torch.allclose(b.sqrtm(A), 2 * torch.eye(3))
        True
    """

    #: Registry name; :func:`sqrtlayers.get_backend` sets it to the name it was built under.
    name: str = "?"

    #: True when autograd differentiates the forward's own operations (so double backward
    #: works); False when a custom backward supplies the gradient.
    differentiable_forward: bool = False

    def options(self) -> dict[str, object]:
        """The constructor options of this backend, for ``repr`` and serialisation."""
        return {}

    def sqrtm(self, A: Tensor) -> Tensor:
        """Principal square root ``A^{1/2}`` of a batch ``(..., n, n)`` of SPD/PSD matrices."""
        return self._run(A, inverse=False)

    def inv_sqrtm(self, A: Tensor) -> Tensor:
        """Inverse principal square root ``A^{-1/2}`` of a batch ``(..., n, n)`` of SPD matrices."""
        return self._run(A, inverse=True)

    def _run(self, A: Tensor, inverse: bool) -> Tensor:
        validate_square_input(A)
        in_dtype = A.dtype
        # The input rules of every backend (input_rules.py): the symmetric part is read, and a
        # matrix outside the PSD cone gets NaN.
        work = symmetric_part(A.to(compute_dtype(in_dtype)))
        with torch.autocast(device_type=A.device.type, enabled=False):
            out = self._compute_from(work, inverse, in_dtype)
            out = nan_outside_psd_cone(out, work, in_dtype)
        return out.to(in_dtype)

    def _compute_from(self, A: Tensor, inverse: bool, input_dtype: torch.dtype) -> Tensor:
        """:meth:`_compute` for ``A`` upcast from ``input_dtype``; a backend whose numerics
        depend on how coarsely the input was rounded overrides this instead."""
        return self._compute(A, inverse)

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}(name={self.name!r}{', ' + opts if opts else ''})"

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.name == other.name  # type: ignore[attr-defined]
            and self.options() == other.options()  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self), self.name, tuple(sorted(self.options().items()))))
