"""Checkpoints: resuming continues the run; they load with weights_only=True and by path alone."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from datamodules import SyntheticDataModule
from lit_models import ImageClassifier, SmallResNet

MAX_EPOCHS = 2


class OrderedSyntheticDataModule(SyntheticDataModule):
    """Unshuffled training batches: an interrupted and an uninterrupted run then see
    the same batches (the sampler's RNG state is not part of a checkpoint)."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False)


class StopAfterFirstEpoch(pl.Callback):
    """Interrupt the fit after epoch 0, as a killed job would be (its checkpoint saved)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.should_stop = True


class RecordRestoredState(pl.Callback):
    """Copy the module's state as it is when training (re)starts."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restored = {k: v.clone() for k, v in pl_module.state_dict().items()}


def make_module(seed: int) -> ImageClassifier:
    pl.seed_everything(seed)
    network = SmallResNet(4, 3, widths=(8, 16), blocks=(1, 1), reduced_dim=8)
    # Cosine over the whole run: a resumed run must rebuild the same schedule.
    return ImageClassifier(network, num_classes=4, lr=0.05, schedule="cosine", warmup_epochs=0.5)


def fit(module: ImageClassifier, folder: Path, callbacks=(), ckpt_path: str | None = None):
    datamodule = OrderedSyntheticDataModule(
        num_samples=96, num_classes=4, image_size=12, batch_size=16
    )
    checkpoint = ModelCheckpoint(dirpath=folder)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=MAX_EPOCHS,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint, *callbacks],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer, checkpoint


def test_resumed_fit_matches_uninterrupted_fit(tmp_path):
    uninterrupted = make_module(seed=0)
    fit(uninterrupted, tmp_path / "full")

    first_half = make_module(seed=0)
    _, checkpoint = fit(first_half, tmp_path / "half", callbacks=[StopAfterFirstEpoch()])
    saved = torch.load(checkpoint.best_model_path, weights_only=True)
    assert saved["epoch"] == 0

    # A different initialisation: everything that matters must come from the checkpoint.
    resumed = make_module(seed=1)
    recorder = RecordRestoredState()
    trainer, _ = fit(resumed, tmp_path / "resumed", callbacks=[recorder],
                     ckpt_path=checkpoint.best_model_path)

    assert trainer.current_epoch == MAX_EPOCHS
    for name, value in saved["state_dict"].items():
        torch.testing.assert_close(recorder.restored[name], value, rtol=0, atol=0, msg=name)
    final, expected = resumed.state_dict(), uninterrupted.state_dict()
    for name in ("model.stem.1.running_mean", "model.stem.1.running_whitening"):
        assert not torch.equal(final[name], saved["state_dict"][name])
    for name, value in expected.items():
        torch.testing.assert_close(final[name], value, msg=name)


def test_checkpoint_loads_with_weights_only_and_by_path_alone(tmp_path):
    module = make_module(seed=0)
    _, checkpoint = fit(module, tmp_path)

    saved = torch.load(checkpoint.best_model_path, weights_only=True)
    assert saved["hyper_parameters"]["num_classes"] == 4
    assert saved["hyper_parameters"]["model"] == {
        "class_path": "lit_models.models.small_resnet.SmallResNet",
        "init_args": {
            "num_classes": 4, "in_channels": 3, "widths": [8, 16], "blocks": [1, 1],
            "zca_layers": "first", "head": "covariance", "reduced_dim": 8, "group_size": None,
            "backend": "mpa-lya",
        },
    }
    assert "model.stem.1.running_whitening" in saved["state_dict"]

    loaded = ImageClassifier.load_from_checkpoint(checkpoint.best_model_path)
    assert type(loaded.model) is SmallResNet and loaded.hparams.schedule == "cosine"
    assert loaded.state_dict().keys() == module.state_dict().keys()
    for name, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


class Flatten4(nn.Module):
    """A network of no recorded config: its checkpoint needs the network passed in."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 12 * 12, 4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(images.flatten(1))


def test_checkpoint_without_network_config_says_what_to_pass(tmp_path):
    module = ImageClassifier(Flatten4(), num_classes=4, lr=0.05)
    _, checkpoint = fit(module, tmp_path)
    saved = torch.load(checkpoint.best_model_path, weights_only=True)
    assert "model" not in saved["hyper_parameters"]

    expected = "pass it, ImageClassifier.load_from_checkpoint\\(path, model=network\\)"
    with pytest.raises(ValueError, match=expected):
        ImageClassifier.load_from_checkpoint(checkpoint.best_model_path)
    loaded = ImageClassifier.load_from_checkpoint(checkpoint.best_model_path, model=Flatten4())
    assert torch.equal(loaded.model.fc.weight, module.model.fc.weight)
