r"""Model-level helpers for the ZCA layers: swap a model's BatchNorm layers for them, and switch
their cross-rank synchronisation."""

from __future__ import annotations

from collections.abc import Callable
import warnings
from copy import deepcopy
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.lazy import LazyModuleMixin

from .zca_batchnorm import ZCABatchNorm, ZCABatchNormAct, diagonal_covariance, diagonal_whitening

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["convert_zca_batchnorm", "set_zca_sync", "DEFAULT_GROUP_SIZE"]

#: ``group_size`` of the converted layers unless given. Whitening all of a deep layer's channels
#: (256 or 512) from a small batch hands the backend a covariance of rank below its size; groups of
#: 16 (DBN's choice for deep layers) keep every group well sampled, and are what every backend
#: trains a fully converted ResNet-18 with (docs/BENCHMARKS.md, "ZCA in every layer").
DEFAULT_GROUP_SIZE = 16
_CONVERT_OPTIONS = ("group_size", "eps", "momentum", "backend", "max_condition", "sync_stats", "process_group")
# What a BatchNorm holds directly; a subclass holding more cannot be carried over.
_BATCHNORM_STATE = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
# forward methods that are plain batch norm: a class using one of them needs no check.
_PLAIN_FORWARDS = (_BatchNorm.forward, nn.SyncBatchNorm.forward)
# Ranges of the random statistics and affine parameters of the probe's copy: a negative scale and
# non-zero shifts make an activation before the norm differ from one after it.
_PROBE_RANGES = {"running_mean": (-1, 1), "running_var": (0.5, 2), "weight": (-2, 2), "bias": (-1, 1)}


def convert_zca_batchnorm(
    module: nn.Module,
    *,
    predicate: Callable[[str, nn.Module], bool] | None = None,
    first_only: bool = False,
    **zca_kwargs: Any,
) -> nn.Module:
    r"""Replace the BatchNorm layers of ``module`` (every subclass of torch's ``_BatchNorm``:
    ``nn.BatchNorm1d/2d/3d``, ``nn.SyncBatchNorm``, timm's ``BatchNormAct2d``, ...) by ZCA
    layers, recursively, like :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`.

    What a converted layer keeps:

    - ``eps``, ``momentum``, ``affine``, ``track_running_stats`` (``zca_kwargs`` may override
      ``eps`` and ``momentum``) and the training mode;
    - the affine parameters (the same :class:`~torch.nn.Parameter` objects, so an optimiser
      built before still updates them), the running mean and the step count. The running
      variance becomes the diagonal whitening ``1 / sqrt(var + eps)``: until it trains, a
      converted layer in eval mode computes what the BatchNorm did;
    - the modules a subclass applies after the normalisation (timm's norm-act layers: dropout,
      then activation): the layer becomes a :class:`~sqrtlayers.layers.ZCABatchNormAct` holding
      them under their own names. Which subclasses these are is not looked up by name but
      checked: in eval mode, on a probe batch, the subclass's ``forward`` must equal plain batch
      norm followed by its child modules in registration order;
    - ``nn.SyncBatchNorm``'s intent: synchronised statistics (``sync_stats=True``) over its
      ``process_group``.

    What it cannot convert (an error names the layer, nothing is changed silently):

    - a lazy BatchNorm (``nn.LazyBatchNorm2d``, ...) that has not seen an input: its channel
      count is not known yet; run one forward pass through the model first (``ValueError``);
    - a subclass whose ``forward`` is not batch norm then its child modules in order, or which
      holds parameters or buffers of its own beyond BatchNorm's (``TypeError``). Leave such
      layers out with ``predicate``.

    Layers that are not ``_BatchNorm`` subclasses (torchvision's ``FrozenBatchNorm2d``,
    ``nn.GroupNorm``, ...) are left as they are.

    Args:
        module: the model (changed in place), or a single BatchNorm.
        predicate: ``predicate(qualified_name, batchnorm) -> bool`` chooses the layers to
            convert; ``None`` converts all. Default: ``None``.
        first_only: convert only the first chosen BatchNorm in ``named_modules()`` order (the
            DBN setting: only the first BatchNorm of the network is whitened). Default: ``False``.
        **zca_kwargs: ``group_size``, ``eps``, ``momentum``, ``backend``, ``max_condition``,
            ``sync_stats``, ``process_group`` for :class:`~sqrtlayers.ZCABatchNorm`.
            ``group_size`` defaults to :data:`DEFAULT_GROUP_SIZE` (16) here, not to one group of
            all channels as in the layer: a fully converted network whitens deep layers of 256 or
            512 channels from batches of a few hundred positions, and groups of 16 keep each
            covariance well sampled. ``group_size=None`` whitens each layer's channels as one
            group; a size larger than a layer's channel count does the same (the layer's rule).
            ``eps`` is the BatchNorm's, now relative to each group's mean variance.

    Returns:
        ``module``, or the new layer when ``module`` itself is a converted BatchNorm.

    Raises:
        TypeError: for a keyword that is not one of ``zca_kwargs``, or a layer that cannot be
            converted (see above).
        ValueError: for a lazy BatchNorm that has not been initialised.

    Example:
        >>> import torch
        >>> from torchvision.models import resnet18
        >>> from sqrtlayers.layers import ZCABatchNorm, convert_zca_batchnorm
        >>> model = convert_zca_batchnorm(resnet18(num_classes=10), first_only=True)
        >>> model.bn1
        ZCABatchNorm(64, group_size=16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
                     backend=PadeBackend(name='mpa-lya', degree=(5, 5), lya_iters=8), max_condition=10000.0,
                     sync_stats=False)
        >>> sum(isinstance(m, ZCABatchNorm) for m in model.modules())
        1
    """
    unknown = sorted(set(zca_kwargs) - set(_CONVERT_OPTIONS))
    if unknown:
        raise TypeError(
            f"convert_zca_batchnorm got unexpected keyword(s) {unknown}; accepted: {list(_CONVERT_OPTIONS)}"
        )
    budget = [1 if first_only else -1]

    def convert(mod: nn.Module, name: str) -> nn.Module:
        if isinstance(mod, _BatchNorm) and budget[0] != 0 and (predicate is None or predicate(name, mod)):
            budget[0] -= 1
            return _zca_from_batchnorm(mod, name, zca_kwargs)
        for child_name, child in mod.named_children():
            new = convert(child, f"{name}.{child_name}" if name else child_name)
            if new is not child:
                mod.add_module(child_name, new)
        return mod

    result = convert(module, "")
    if budget[0] == (1 if first_only else -1):
        warnings.warn(
            f"convert_zca_batchnorm found no BatchNorm layer to convert in {type(module).__name__}"
            + ("" if predicate is None else " that the predicate chose"),
            UserWarning,
            stacklevel=2,
        )
    return result


def _zca_from_batchnorm(bn: _BatchNorm, name: str, zca_kwargs: dict[str, Any]) -> ZCABatchNorm:
    where = f"{type(bn).__name__} {name!r}" if name else type(bn).__name__
    if isinstance(bn, LazyModuleMixin) and bn.has_uninitialized_params():
        raise ValueError(
            f"cannot convert {where}: a lazy BatchNorm learns its channel count from its first input; "
            "run one forward pass through the model before converting it"
        )
    own_state = {n for n, _ in bn.named_parameters(recurse=False)} | {n for n, _ in bn.named_buffers(recurse=False)}
    if own_state - _BATCHNORM_STATE:
        raise TypeError(
            f"cannot convert {where}: it holds {sorted(own_state - _BATCHNORM_STATE)} beyond BatchNorm's "
            f"{sorted(_BATCHNORM_STATE)}; leave it out with predicate=lambda name, layer: ..."
        )
    after = dict(bn.named_children())
    if (after or type(bn).forward not in _PLAIN_FORWARDS) and not _is_norm_then(bn, after):
        raise TypeError(
            f"cannot convert {where}: its forward is not batch norm followed by its child modules "
            f"{list(after)} in order (checked in eval mode on a probe batch); "
            "leave it out with predicate=lambda name, layer: ..."
        )

    options: dict[str, Any] = {"eps": bn.eps, "momentum": bn.momentum, "group_size": DEFAULT_GROUP_SIZE}
    if isinstance(bn, nn.SyncBatchNorm):
        options.update(sync_stats=True, process_group=bn.process_group)
    options.update(zca_kwargs)
    reference = bn.running_mean if bn.running_mean is not None else bn.weight
    if reference is not None:
        options.update(device=reference.device, dtype=reference.dtype)
    common = {"affine": bn.affine, "track_running_stats": bn.track_running_stats, **options}
    zca = ZCABatchNormAct(bn.num_features, after, **common) if after else ZCABatchNorm(bn.num_features, **common)

    if bn.affine:
        zca.weight = bn.weight
        zca.bias = bn.bias
    if bn.track_running_stats:
        with torch.no_grad():
            zca.running_mean.copy_(bn.running_mean)  # type: ignore[union-attr]
            zca.running_covariance.copy_(diagonal_covariance(bn.running_var, zca.group_size))  # type: ignore[arg-type,union-attr]
            # BatchNorm's own eval map, kept until the layer trains.
            whitening = diagonal_whitening(bn.running_var, bn.eps, zca.group_size)  # type: ignore[arg-type]
            zca.running_whitening.copy_(whitening)  # type: ignore[union-attr]
            zca.num_batches_tracked.copy_(bn.num_batches_tracked)  # type: ignore[union-attr,arg-type]
    zca.training = bn.training  # the layer's own mode; the carried modules keep theirs
    return zca


def _probe_input(bn: _BatchNorm, reference: Tensor, gen: torch.Generator) -> Tensor | None:
    """A small batch of the rank ``bn`` accepts (tried in order 4, 2, 3, 5), or ``None``."""
    for rank in (4, 2, 3, 5):
        shape = (3, bn.num_features) + (2,) * (rank - 2)
        try:
            bn._check_input_dim(torch.empty(shape, device="meta"))
        except ValueError:
            continue
        return torch.randn(shape, generator=gen).to(device=reference.device, dtype=reference.dtype)
    return None


def _is_norm_then(bn: _BatchNorm, after: dict[str, nn.Module]) -> bool:
    """Whether ``bn``'s forward computes batch norm followed by the modules ``after`` in order.

    Judged in eval mode (running statistics, no dropout) on a probe batch, with a copy of ``bn``
    given random statistics and affine parameters: a freshly initialised BatchNorm is the
    identity, which would hide where in the forward it is applied.
    """
    state = [t for t in (*bn.parameters(recurse=False), *bn.buffers(recurse=False)) if t.is_floating_point()]
    reference = state[0] if state else torch.empty(0)
    if reference.device.type == "meta":
        return not after  # nothing to compute with: only a plain layer is accepted
    gen = torch.Generator().manual_seed(0)
    x = _probe_input(bn, reference, gen)
    if x is None:
        return False
    try:
        copy = deepcopy(bn).eval()
        with torch.no_grad():
            for name, (low, high) in _PROBE_RANGES.items():
                tensor = getattr(copy, name)
                if tensor is not None:
                    tensor.copy_(torch.rand(tensor.shape, generator=gen) * (high - low) + low)
            expected = copy.forward(x.clone())
            composed = _BatchNorm.forward(copy, x.clone())
            for name in after:
                composed = copy.get_submodule(name)(composed)
    except Exception:  # any failure of the probe means the layout is not the one assumed
        return False
    return expected.shape == composed.shape and torch.allclose(expected, composed, rtol=1e-5, atol=1e-6)


def set_zca_sync(module: nn.Module, enabled: bool = True, process_group: ProcessGroup | None = None) -> nn.Module:
    """Turn the cross-rank moment synchronisation of every :class:`~sqrtlayers.ZCABatchNorm` in
    ``module`` on or off (e.g. in a LightningModule's ``setup`` under DDP); returns ``module``.

    Example:
        >>> from torch import nn
        >>> from sqrtlayers.layers import ZCABatchNorm, set_zca_sync
        >>> model = set_zca_sync(nn.Sequential(ZCABatchNorm(4), ZCABatchNorm(4)))
        >>> [m.sync_stats for m in model]
        [True, True]
    """
    for mod in module.modules():
        if isinstance(mod, ZCABatchNorm):
            mod.sync_stats = enabled
            mod.process_group = process_group
    return module
