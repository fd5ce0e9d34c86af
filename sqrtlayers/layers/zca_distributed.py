"""Moments of the ZCA layers over the ranks of a process group: the autograd Functions that sum
across ranks (differentiably), and the choice of the group to sum over.

With a process group, every rank whitens with the statistics of the joint batch: the sums of the
first moment, the sample count and the centred second moment are all-reduced, and so are the
matching sums in the backward pass, since every rank's loss depends on every rank's samples. A
rank holding zero samples takes part with zero sums, so an uneven last batch does not fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

from .channel_groups import from_groups, output_memory_format, to_groups
from .ridge import magnitude

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["AllReduceSum", "GroupCentring", "active_process_group"]


class AllReduceSum(torch.autograd.Function):
    """Sum over the ranks of a process group. Every rank's loss depends on the summed value, so
    the gradient of each rank's contribution is the sum of the upstream gradients over ranks."""

    @staticmethod
    def forward(tensor: Tensor, group: ProcessGroup) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ProcessGroup], output: Tensor) -> None:
        ctx.group = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return AllReduceSum.apply(grad_output, ctx.group), None


class GroupCentring(torch.autograd.Function):
    """``(x - mean) / scale`` in the layout of :func:`~sqrtlayers.layers.channel_groups.to_groups`,
    the mean taken over the batch and spatial positions (and over the ranks of a process group),
    the scale each group's largest ``|x - mean|`` (:func:`~sqrtlayers.layers.ridge.magnitude`,
    the maximum over the ranks), treated as a constant.

    Returns ``(scaled (G, g, M), mean (G, g), count, scale (G,))``; the mean, the count (a 0-dim
    tensor, summed over ranks) and the scale are not differentiable. Written by hand because
    autograd through ``xg - xg.mean(-1)`` spends three extra full-size passes (a negation, a sum
    and an add) on what is ``grad - mean(grad)``, and the layout copy can be centred and scaled
    in place. With a process group, the sums and the count travel in one all-reduce.
    """

    @staticmethod
    def forward(
        x: Tensor, groups: int, group_size: int, process_group: ProcessGroup | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        xg = to_groups(x, groups, group_size)
        total = xg.sum(-1)
        count = xg.new_full((1,), float(xg.shape[-1]))
        if process_group is not None:
            packed = torch.cat([total.flatten(), count])
            dist.all_reduce(packed, group=process_group)
            total, count = packed[:-1].view_as(total), packed[-1:]
        # clamp: a joint batch of zero samples gives a zero mean rather than 0 / 0.
        mean = total / count.clamp_min(1)
        xg.sub_(mean.unsqueeze(-1))
        # A rank without samples takes part with 1, the smallest scale magnitude() gives.
        scale = magnitude(xg, (-2, -1)) if xg.shape[-1] > 0 else xg.new_ones(groups)
        if process_group is not None:
            dist.all_reduce(scale, op=dist.ReduceOp.MAX, group=process_group)
        return xg.div_(scale[:, None, None]), mean, count.squeeze(0), scale

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple[Tensor, Tensor, Tensor, Tensor]) -> None:
        x, _, _, ctx.process_group = inputs
        ctx.shape = x.shape
        ctx.memory_format = output_memory_format(x)
        ctx.mark_non_differentiable(output[1], output[2], output[3])
        ctx.save_for_backward(output[2], output[3])

    @staticmethod
    def backward(
        ctx: Any, grad_scaled: Tensor, _mean: None, _count: None, _scale: None
    ) -> tuple[Tensor, None, None, None]:
        count, scale = ctx.saved_tensors
        total = grad_scaled.sum(-1, keepdim=True)
        if ctx.process_group is not None:
            total = AllReduceSum.apply(total, ctx.process_group)
        # Plain differentiable operations, so double backward works through them.
        grad = (grad_scaled - total / count.clamp_min(1)) / scale[:, None, None]
        return from_groups(grad, ctx.shape, ctx.memory_format), None, None, None


def active_process_group(sync_stats: bool, process_group: ProcessGroup | None) -> ProcessGroup | None:
    """The group to sum the moments over, or ``None`` to compute them locally: ``None`` unless
    ``sync_stats`` is set, ``torch.distributed`` is initialised and the group (the world when
    ``process_group`` is ``None``) has more than one rank."""
    if not (sync_stats and dist.is_available() and dist.is_initialized()):
        return None
    group = process_group if process_group is not None else dist.group.WORLD
    return group if dist.get_world_size(group) > 1 else None
