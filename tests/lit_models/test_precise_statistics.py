"""RecomputeRunningStats: before each validation of a fit, the ZCA and BatchNorm statistics are
those of the current weights over the requested number of training batches."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from datamodules import SyntheticDataModule
from lit_models import ImageClassifier, RecomputeRunningStats
from sqrtlayers.layers import ZCABatchNorm


class _Recorder(pl.Callback):
    """What the layers hold when validation starts (after the callbacks before it ran)."""

    def __init__(self) -> None:
        self.counts: list[tuple[int, int]] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        zca = next(m for m in pl_module.modules() if isinstance(m, ZCABatchNorm))
        bn = next(m for m in pl_module.modules() if isinstance(m, nn.BatchNorm2d))
        self.counts.append((int(zca.num_batches_tracked), int(bn.num_batches_tracked)))


def _network() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 8, 3), ZCABatchNorm(8, backend="eigh"), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip


def test_statistics_are_recomputed_before_each_validation_of_a_fit(tmp_path) -> None:
    recorder = _Recorder()
    trainer = pl.Trainer(
        max_epochs=2, callbacks=[RecomputeRunningStats(num_batches=3), recorder], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path, num_sanity_val_steps=1,
    )  # fmt: skip
    model = ImageClassifier(_network(), num_classes=4)
    data = SyntheticDataModule(num_samples=40, num_classes=4, image_size=8, num_channels=2, batch_size=4)
    trainer.fit(model, datamodule=data)
    # Sanity check: untouched (nothing trained yet); each epoch's validation: reset, then 3 batches.
    assert recorder.counts == [(0, 0), (3, 3), (3, 3)]
    zca = next(m for m in model.modules() if isinstance(m, ZCABatchNorm))
    assert zca.momentum == 0.1  # the option is restored after each recomputation
    assert torch.isfinite(zca.running_whitening).all()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_batches_is_checked(bad) -> None:
    with pytest.raises(ValueError, match=f"num_batches must be an int >= 1 or None, got {bad!r}"):
        RecomputeRunningStats(num_batches=bad)
