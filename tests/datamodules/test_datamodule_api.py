"""Contract shared by all datamodules: CLI-readable signatures and Trainer use."""

import inspect

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import datamodules
from datamodules import DigitsDataModule, ImageDataModule, SyntheticDataModule

PUBLIC = [getattr(datamodules, name) for name in datamodules.__all__]


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_init_arguments_annotated_and_documented(cls):
    assert issubclass(cls, pl.LightningDataModule)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    for p in params:
        # LightningCLI builds its parser from these annotations.
        assert p.annotation is not inspect.Parameter.empty, f"{cls.__name__}.{p.name}"
    assert {"batch_size", "num_workers", "seed"} <= {p.name for p in params}
    # Documented by the class or, where it only narrows a base (CIFAR-10/100), by that base.
    docs = [c.__doc__ or "" for c in cls.__mro__ if issubclass(c, datamodules.ImageDataModule)]
    assert "Args:" in docs[0] or "arguments are those of" in docs[0]
    assert "Example:" in docs[0]
    for p in params:
        assert any(f"    {p.name} (" in doc for doc in docs), f"{cls.__name__} does not document {p.name}"


def test_hyperparameters_saved():
    dm = SyntheticDataModule(num_samples=64, batch_size=7)
    assert dm.hparams.batch_size == 7 and dm.hparams.num_samples == 64
    assert isinstance(dm, ImageDataModule)


class _TinyClassifier(pl.LightningModule):
    def __init__(self, num_channels: int, image_size: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(num_channels * image_size**2, num_classes)
        )

    def _loss(self, batch):
        images, labels = batch
        return nn.functional.cross_entropy(self.net(images), labels)

    def training_step(self, batch, batch_idx):
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(
    "dm",
    [
        lambda: DigitsDataModule(image_size=16, batch_size=32),
        lambda: SyntheticDataModule(num_samples=128, image_size=8, batch_size=32),
    ],
    ids=["digits", "synthetic"],
)
def test_trainer_fit_and_test(dm, tmp_path, no_network):
    dm = dm()
    model = _TinyClassifier(dm.num_channels, dm.image_size, dm.num_classes)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3
    results = trainer.test(model, datamodule=dm, verbose=False)
    assert torch.isfinite(torch.tensor(results[0]["test_loss"]))


class _FakeTrainer:
    def __init__(self, world_size: int) -> None:
        self.world_size = world_size


@pytest.mark.parametrize(("world_size", "per_process"), [(1, 24), (2, 12), (4, 6)])
def test_batch_size_is_global_and_split_across_processes(world_size, per_process):
    dm = SyntheticDataModule(num_samples=96, batch_size=24)
    dm.trainer = _FakeTrainer(world_size)
    dm.setup()
    assert dm.per_process_batch_size == per_process
    images, _ = next(iter(dm.train_dataloader()))
    assert len(images) == per_process


def test_batch_size_not_divisible_by_processes_is_an_error():
    dm = SyntheticDataModule(num_samples=96, batch_size=10)
    dm.trainer = _FakeTrainer(3)
    dm.setup()
    with pytest.raises(ValueError, match="batch_size 10 is the global batch.*3 processes"):
        dm.train_dataloader()
