"""ImageClassifier: hyperparameters, metrics, optimizer and schedule wiring."""

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules import SyntheticDataModule
from lit_models import ImageClassifier, SmallResNet, lr_multiplier
from sqrtlayers.layers import ZCABatchNorm


def tiny_network(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, num_classes))


def quiet_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, **kwargs,
    )


def test_hyperparameters_are_saved_without_the_network():
    module = ImageClassifier(tiny_network(10), 10, optimizer="adamw", lr=1e-3, milestones=(5,))
    assert dict(module.hparams) == {
        "num_classes": 10, "optimizer": "adamw", "lr": 1e-3, "momentum": 0.9,
        "weight_decay": 5e-4, "schedule": "cosine", "warmup_epochs": 0.0, "milestones": (5,),
        "gamma": 0.1, "label_smoothing": 0.0, "sync_zca_stats": True,
    }


@pytest.mark.parametrize(("num_classes", "top5"), [(2, False), (5, False), (6, True), (100, True)])
def test_top5_accuracy_only_with_more_than_five_classes(num_classes, top5):
    module = ImageClassifier(tiny_network(num_classes), num_classes)
    for stage in ("train", "val", "test"):
        expected = {f"{stage}_acc", f"{stage}_acc_top5"} if top5 else {f"{stage}_acc"}
        assert set(getattr(module, f"{stage}_metrics").keys(keep_base=False)) == expected


class EchoNetwork(nn.Module):
    """Logits peaked at the class stored in pixel (0, 0, 0), decreasing with distance."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, images: Tensor) -> Tensor:
        predicted = images[:, 0, 0, 0].round().unsqueeze(1)
        return -(torch.arange(self.num_classes) - predicted).abs() + self.unused


def test_metrics_are_top1_and_top5_accuracy_over_the_epoch():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (50,), generator=generator)
    # Predictions at distance 0 to 4 from the label, kept where the top-5 set is
    # {p - 2, ..., p + 2} (no clipping at the ends of the class range).
    predicted = torch.randint(2, 8, (50,), generator=generator)
    images = torch.zeros(50, 3, 4, 4)
    images[:, 0, 0, 0] = predicted.float()
    loader = DataLoader(TensorDataset(images, labels), batch_size=8)
    module = ImageClassifier(EchoNetwork(10), 10)

    (result,) = quiet_trainer().validate(module, dataloaders=loader, verbose=False)

    distance = (predicted - labels).abs()
    assert result["val_acc"] == pytest.approx((distance == 0).float().mean().item())
    assert result["val_acc_top5"] == pytest.approx((distance <= 2).float().mean().item())
    logits = module(images)
    assert result["val_loss"] == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


class RecordLearningRate(pl.Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("optimizer", "optimizer_class", "schedule"),
    [("sgd", torch.optim.SGD, "cosine"), ("adamw", torch.optim.AdamW, "step")],
)
def test_optimizer_and_per_step_schedule(optimizer, optimizer_class, schedule):
    network = SmallResNet(4, 3, widths=(4,), blocks=(1,), reduced_dim=4)
    module = ImageClassifier(
        network, 4, optimizer=optimizer, lr=0.1, weight_decay=0.01, schedule=schedule,
        warmup_epochs=0.5, milestones=(1,), gamma=0.5,
    )
    datamodule = SyntheticDataModule(num_samples=40, num_classes=4, image_size=4, batch_size=8)
    recorder = RecordLearningRate()
    trainer = quiet_trainer(max_epochs=2, limit_train_batches=4, limit_val_batches=0, callbacks=[recorder])
    trainer.fit(module, datamodule=datamodule)

    (opt,) = trainer.optimizers
    assert type(opt) is optimizer_class
    assert opt.param_groups[0]["weight_decay"] == 0.01
    expected = [
        0.1 * lr_multiplier(step, schedule=schedule, steps_per_epoch=4, total_steps=8,
                            warmup_epochs=0.5, milestones=(1,), gamma=0.5)
        for step in range(8)
    ]
    assert recorder.rates == pytest.approx(expected)
    # One process: the ZCA layers keep local statistics.
    assert not any(m.sync_stats for m in network.modules() if isinstance(m, ZCABatchNorm))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2, got 1"),
        ({"optimizer": "adam"}, "optimizer must be 'sgd' or 'adamw', got 'adam'"),
        ({"schedule": "poly"}, "schedule must be 'cosine', 'step' or 'constant', got 'poly'"),
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"warmup_epochs": -1.0}, "warmup_epochs must be >= 0, got -1.0"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in \\[0, 1\\), got 1.0"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        ImageClassifier(tiny_network(10), **kwargs)


def test_label_smoothing_reaches_the_loss():
    labels = torch.arange(10)
    confident = 100.0 * torch.nn.functional.one_hot(labels, 10).float()
    smoothed = ImageClassifier(tiny_network(10), 10, label_smoothing=0.1)
    plain = ImageClassifier(tiny_network(10), 10)
    # Smoothing penalises certainty: 0.1 of the target mass sits on the wrong classes.
    assert plain.criterion(confident, labels) < 1e-6
    assert smoothed.criterion(confident, labels) > 1.0
