"""Shared plumbing for backends whose forward is a fixed sequence of matrix operations."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SqrtmBackend, check_positive_int
from .lyapunov import sqrtm_with_lyapunov_backward

__all__ = ["IterativeBackend"]


class IterativeBackend(SqrtmBackend):
    """A forward method paired with a backward method.

    Subclasses implement :meth:`forward_method`, which returns the requested ones of
    ``(A^{1/2}, A^{-1/2})`` using matrix products, solves and elementwise work. With
    ``lya_iters=None`` gradients flow by autograd through those operations (the backends named
    ``FORWARD``); with an int, autograd skips the forward and the gradient comes from the
    Lyapunov sign iteration (the backends named ``FORWARD-lya``), see
    :mod:`sqrtlayers.backends.lyapunov`.

    All options are fixed at construction, so a call has no data-dependent Python control flow
    and no host synchronisation: it compiles with ``torch.compile(fullgraph=True)``.
    """

    def __init__(self, *, lya_iters: int | None = None) -> None:
        self.lya_iters = None if lya_iters is None else check_positive_int(lya_iters, "lya_iters")

    @property
    def differentiable_forward(self) -> bool:  # type: ignore[override]
        return self.lya_iters is None

    def forward_method(self, A: Tensor, root: bool, inverse: bool) -> tuple[Tensor | None, Tensor | None]:
        """``(A^{1/2} if root else None, A^{-1/2} if inverse else None)`` by this method."""
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        return {} if self.lya_iters is None else {"lya_iters": self.lya_iters}

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        if self.lya_iters is None or not (torch.is_grad_enabled() and A.requires_grad):
            # Without a backward there is nothing for Lyapunov to do, and an inverse root does
            # not need the root beside it.
            return self.forward_method(A, not inverse, inverse)[int(inverse)]
        return sqrtm_with_lyapunov_backward(A, self.forward_method, inverse, self.lya_iters)
