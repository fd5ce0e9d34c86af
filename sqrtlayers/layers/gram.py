"""The scaled Gram matrix ``alpha * X X^T`` of a batch, with a one-product backward."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["scaled_gram"]


class _ScaledGram(torch.autograd.Function):
    """``alpha * X X^T``. Autograd through ``bmm(X, X.mT)`` treats the two factors as different
    inputs: two products, one of them written transposed and copied back. The gradient of the
    symmetric product is one product, ``alpha (G + G^T) X``, about 2x faster on long ``X``."""

    @staticmethod
    def forward(x: Tensor, alpha: float) -> Tensor:
        return torch.bmm(x, x.mT).mul_(alpha)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, float], output: Tensor) -> None:
        x, ctx.alpha = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        (x,) = ctx.saved_tensors
        # Plain differentiable operations, so double backward works through them.
        return torch.bmm((grad_output + grad_output.mT) * ctx.alpha, x), None


def scaled_gram(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``alpha * x @ x.mT`` for ``x`` of shape ``(B, n, m)``, result ``(B, n, n)``, with a
    single-product backward (see :class:`_ScaledGram`).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers.gram import scaled_gram
        >>> x = torch.randn(2, 3, 5)
        >>> torch.allclose(scaled_gram(x, 0.2), x @ x.mT / 5)
        True
    """
    return _ScaledGram.apply(x, alpha)
