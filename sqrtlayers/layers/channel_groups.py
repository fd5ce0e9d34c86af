r"""Channel groups: the ``(G, g, M)`` layout in which the ZCA layers whiten ``(N, C, *S)`` input.

The ``C`` channels are cut into ``G = ceil(C / g)`` groups of ``g``; within a group each of the
``M = N * prod(S)`` batch and spatial positions is one vector of length ``g``. When ``g`` does not
divide ``C`` the last group is padded with zero channels, so that every group is one matrix of a
single batched square-root call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["resolve_group_size", "group_count", "to_groups", "from_groups", "to_group_vector", "output_memory_format"]


def resolve_group_size(num_features: int, group_size: int | None) -> int:
    """``group_size`` checked; ``None``, or a size of ``num_features`` or more, means one group of
    all channels (the one rule of the layer, its functional form and
    :func:`~sqrtlayers.convert_zca_batchnorm`, which converts layers of many widths at one size)."""
    if group_size is None:
        return num_features
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"group_size must be an int or None, got {group_size!r}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return min(group_size, num_features)


def group_count(num_features: int, group_size: int) -> int:
    """``ceil(num_features / group_size)``: the last group may be short."""
    return -(-num_features // group_size)


def to_groups(x: Tensor, groups: int, group_size: int) -> Tensor:
    """``(N, C, *S) -> (G, g, N * prod(S))`` in one copy, zero channels appended up to ``G * g``.

    The result is a fresh tensor, so callers may modify it in place.
    """
    n, c = x.shape[:2]
    positions = math.prod(x.shape[2:])
    xg = x.new_empty(groups * group_size, n, positions)
    xg[:c] = x.reshape(n, c, positions).transpose(0, 1)
    if c < groups * group_size:
        xg[c:] = 0
    return xg.view(groups, group_size, n * positions)


def from_groups(y: Tensor, shape: torch.Size, memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
    """Inverse of :func:`to_groups`: ``(G, g, N * prod(S)) -> shape``, padding dropped, in one copy
    laid out in ``memory_format``."""
    n, c = shape[:2]
    y = y.reshape(y.shape[0] * y.shape[1], n, *shape[2:])
    if y.shape[0] > c:  # slicing only when needed: its backward writes a zero-filled copy
        y = y[:c]
    return y.transpose(0, 1).contiguous(memory_format=memory_format)


def to_group_vector(v: Tensor, groups: int, group_size: int, fill: float) -> Tensor:
    """Per-channel ``(C,)`` -> ``(G, g)``, the padding channels set to ``fill``."""
    missing = groups * group_size - v.shape[0]
    return F.pad(v, (0, missing), value=fill).view(groups, group_size)


def output_memory_format(x: Tensor) -> torch.memory_format:
    """The memory format torch's BatchNorm gives its output for input ``x``: channels-last input
    (4-D or 5-D) stays channels-last."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format
