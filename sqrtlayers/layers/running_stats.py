"""Recompute the running statistics of a model's normalisation layers over a data loader."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .zca_batchnorm import _ZCANormBase

__all__ = ["recompute_running_stats"]


def _first_tensor(batch: Any) -> Any:
    """The input of a batch: the batch itself if it is a tensor, else its first element
    (``(images, labels)``), as :func:`torch.optim.swa_utils.update_bn` takes it."""
    if isinstance(batch, (list, tuple)) and batch:
        return batch[0]
    return batch


@torch.no_grad()
def recompute_running_stats(
    module: nn.Module,
    loader: Iterable[Any],
    num_batches: int | None = None,
    device: torch.device | str | None = None,
) -> nn.Module:
    r"""Recompute the running statistics of every BatchNorm and ZCA layer of ``module`` from the
    batches of ``loader``, with the weights as they are now (in the spirit of
    :func:`torch.optim.swa_utils.update_bn`, and of "precise BN").

    Running statistics are exponential averages over training steps taken with moving weights;
    when the features move faster than the average forgets (a rank-deficient stem whose subspace
    turns as the network trains, see ``docs/METHODS.md``), eval mode computes with statistics no
    current batch has. This replaces them by plain averages over ``num_batches`` batches of the
    current network: each layer's statistics are reset, the layers are run in training mode with
    a cumulative average (``momentum=None``) under ``torch.no_grad()``, and the layers' modes and
    momenta are restored; every ZCA layer's whitening is then recomputed from its new covariance.
    Nothing else changes: dropout and the rest of the model run in the mode they are in.

    Args:
        module: the model; layers without running statistics are left alone.
        loader: an iterable of batches: tensors, or sequences whose first element is the input.
        num_batches: use at most this many batches; ``None`` for all. Default: ``None``.
        device: move each input there first; ``None`` to leave it. Default: ``None``.

    Returns:
        ``module``.

    Raises:
        ValueError: if ``num_batches`` is not ``None`` or an int >= 1, or ``loader`` yields no
            batch while the model has statistics to recompute.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from sqrtlayers.layers import ZCABatchNorm, recompute_running_stats
        >>> model = nn.Sequential(nn.Linear(4, 6), ZCABatchNorm(6, backend="eigh"))
        >>> batches = [torch.randn(32, 4) for _ in range(3)]
        >>> _ = recompute_running_stats(model, batches)
        >>> int(model[1].num_batches_tracked)
        3
    """
    if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1):
        raise ValueError(f"num_batches must be an int >= 1 or None, got {num_batches!r}")
    layers = [m for m in module.modules() if isinstance(m, (_BatchNorm, _ZCANormBase)) and m.track_running_stats]
    if not layers:
        return module
    saved = [(layer, layer.momentum, layer.training) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
        layer.training = True  # this layer only: children (a norm-act's dropout) keep their mode
    seen = 0
    try:
        for batch in islice(loader, num_batches):
            inputs = _first_tensor(batch)
            if device is not None:
                inputs = inputs.to(device)
            module(inputs)
            seen += 1
    finally:
        for layer, momentum, training in saved:
            layer.momentum = momentum
            layer.training = training
            if isinstance(layer, _ZCANormBase):
                layer.refresh_whitening()
    if seen == 0:
        raise ValueError("recompute_running_stats: the loader yielded no batch; the statistics were reset")
    return module
