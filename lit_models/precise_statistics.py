"""A callback that recomputes the running statistics of a model's normalisation layers before
each validation."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from sqrtlayers.layers import recompute_running_stats

__all__ = ["RecomputeRunningStats"]


class RecomputeRunningStats(pl.Callback):
    """Before each validation of a fit, recompute the running statistics of every BatchNorm and
    ZCA layer over ``num_batches`` training batches with the current weights
    (:func:`sqrtlayers.recompute_running_stats`), so that validation, checkpoints and early
    stopping see statistics of the model being validated rather than an average over the
    epoch's moving weights.

    The ZCA layers' own running covariance already keeps eval close to training (see
    ``docs/METHODS.md``); this is the exact version of it, at the cost of ``num_batches``
    forward passes per validation. The sanity check before training is left alone. Under DDP each
    rank uses its own shard (and the ZCA layers' ``sync_stats`` if set).

    Args:
        num_batches: training batches to average over; ``None`` for the whole training loader.
            Default: ``20``.

    Example:
        >>> import pytorch_lightning as pl
        >>> from lit_models import RecomputeRunningStats
        >>> trainer = pl.Trainer(callbacks=[RecomputeRunningStats(num_batches=10)], logger=False,
        ...                      enable_checkpointing=False, enable_progress_bar=False)
    """

    def __init__(self, num_batches: int | None = 20) -> None:
        if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1):
            raise ValueError(f"num_batches must be an int >= 1 or None, got {num_batches!r}")
        self.num_batches = num_batches

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        loader: Any = trainer.train_dataloader
        if loader is None:
            return
        recompute_running_stats(pl_module, loader, self.num_batches, device=pl_module.device)
