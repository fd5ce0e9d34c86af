"""A generic image-classification LightningModule around an injected network."""

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from sqrtlayers.layers import set_zca_sync

from .network_config import build_network, network_config
from .schedules import Schedule, lr_multiplier

Stage = Literal["train", "val", "test"]


class ImageClassifier(pl.LightningModule):
    """Train, validate and test any image classifier with cross-entropy.

    The network is injected, so the same module trains every model of
    :mod:`lit_models.models`; it holds no dataset code. The optimizer is SGD (with
    momentum) or AdamW on all parameters, stepped with a per-step schedule: linear
    warm-up, then cosine decay, step decay at given epochs, or a constant rate (see
    :func:`~lit_models.schedules.lr_multiplier`).

    Metrics are top-1 accuracy (``{stage}_acc``) and, with more than 5 classes,
    top-5 accuracy (``{stage}_acc_top5``), with the loss (``{stage}_loss``), for
    ``stage`` in ``train``, ``val`` and ``test``.

    Under DDP (``trainer.world_size > 1``) :meth:`setup` turns on the cross-rank
    moment synchronisation of every :class:`~sqrtlayers.layers.ZCABatchNorm` in the
    network, so that each rank whitens with the statistics of the global batch and
    all ranks keep identical running statistics (``sync_zca_stats=False`` keeps
    per-rank statistics). Plain BatchNorm layers are left per-rank, as in torch.

    Under DDP, see :class:`~datamodules.ImageDataModule` for the batch-size
    convention that makes ``k`` processes train the model one process trains.

    The hyperparameters (``self.hparams``, and in checkpoints) hold the network's
    config (``hparams.model``: class path and arguments) when the network recorded
    one, as every builder of :mod:`lit_models.models` does (see
    :mod:`lit_models.network_config`): ``ImageClassifier.load_from_checkpoint(path)``
    then rebuilds it, from Python or through the CLI's ``--ckpt_path``. For other
    networks pass one built as for training, ``load_from_checkpoint(path, model=net)``.

    Args:
        model (nn.Module): maps ``(N, C, H, W)`` images to ``(N, num_classes)`` logits.
        num_classes (int): number of classes, for the metrics.
        optimizer (str): ``"sgd"`` (momentum ``momentum``) or ``"adamw"``.
            Default: ``"sgd"``.
        lr (float): base learning rate. Default: ``0.1``.
        momentum (float): SGD momentum (ignored by AdamW). Default: ``0.9``.
        weight_decay (float): weight decay on all parameters (decoupled for AdamW).
            Default: ``5e-4``.
        schedule (str): ``"cosine"``, ``"step"`` or ``"constant"`` after the warm-up.
            Default: ``"cosine"``.
        warmup_epochs (float): length of the linear warm-up in epochs. Default: ``0.0``.
        milestones (tuple[int, ...]): epochs at which ``"step"`` multiplies the rate by
            ``gamma``. Default: ``()``.
        gamma (float): decay factor of ``"step"``. Default: ``0.1``.
        label_smoothing (float): label smoothing of the cross-entropy. Default: ``0.0``.
        sync_zca_stats (bool): synchronise ZCA whitening statistics across ranks when
            training on more than one. Default: ``True``.

    Example:
        >>> from lit_models.models import SmallResNet
        >>> module = ImageClassifier(SmallResNet(num_classes=10), num_classes=10, lr=0.05)
        >>> module(torch.randn(4, 3, 32, 32)).shape
        torch.Size([4, 10])
        >>> module.hparams.lr, module.hparams.model["class_path"]
        (0.05, 'lit_models.models.small_resnet.SmallResNet')
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        schedule: Schedule = "cosine",
        warmup_epochs: float = 0.0,
        milestones: tuple[int, ...] = (),
        gamma: float = 0.1,
        label_smoothing: float = 0.0,
        sync_zca_stats: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        if schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'constant', got {schedule!r}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        # The network is a module, not a hyperparameter: pickling it into the
        # checkpoint would break torch.load(weights_only=True). Its config (plain
        # data) is saved instead, when it has one.
        self.save_hyperparameters(ignore=["model"])
        config = network_config(model)
        if config is not None:
            self.save_hyperparameters({"model": config})
        self.model = model
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        accuracies = {"acc": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
        if num_classes > 5:
            accuracies["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
        metrics = MetricCollection(accuracies)
        # One collection per stage: their states must not mix (e.g. val inside a train epoch).
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> "ImageClassifier":
        """Load a checkpoint by its path alone, rebuilding the network from its config.

        As :meth:`pytorch_lightning.LightningModule.load_from_checkpoint`; without
        ``model=`` the network is built from the config the checkpoint saved.

        Example:
            >>> module = ImageClassifier.load_from_checkpoint("last.ckpt")  # doctest: +SKIP
        """
        if "model" not in kwargs:
            saved = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            config = saved.get(cls.CHECKPOINT_HYPER_PARAMS_KEY, {}).get("model")
            if config is None:
                raise ValueError(
                    f"checkpoint '{checkpoint_path}' does not say how to build its network "
                    f"(it was not built by a class under lit_models.network_config.records_config, "
                    f"or with arguments that are not plain data): build it as for training "
                    f"and pass it, ImageClassifier.load_from_checkpoint(path, model=network)"
                )
            kwargs["model"] = build_network(config)
        return super().load_from_checkpoint(
            checkpoint_path, map_location=map_location, hparams_file=hparams_file, strict=strict,
            **kwargs,
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def setup(self, stage: str) -> None:
        if self.trainer.world_size > 1:
            set_zca_sync(self.model, self.hparams.sync_zca_stats)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: Stage) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits, labels)
        training = stage == "train"
        # Under DDP the loss is averaged over ranks (one scalar, cheap next to the
        # gradient all-reduce); the metric objects synchronise themselves.
        self.log(
            f"{stage}_loss", loss, on_step=training, on_epoch=True, prog_bar=True,
            sync_dist=True, batch_size=len(labels),
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=not training)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def predict_step(self, batch: Tensor | Sequence[Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Logits, class probabilities and the predicted class of a batch of images.

        Args:
            batch: ``(N, C, H, W)`` images, or a sequence whose first element they are
                (``(images, labels)`` as the train, val and test loaders give; the rest is
                ignored).
            batch_idx (int): unused.

        Returns:
            dict[str, Tensor]: ``logits`` and ``probabilities`` (softmax), both
            ``(N, num_classes)``, and ``prediction``, the argmax class, ``(N,)`` int64.

        Example:
            >>> from lit_models.models import SmallResNet
            >>> module = ImageClassifier(SmallResNet(num_classes=10), num_classes=10).eval()
            >>> out = module.predict_step(torch.randn(4, 3, 32, 32), 0)
            >>> sorted(out), out["prediction"].shape
            (['logits', 'prediction', 'probabilities'], torch.Size([4]))
        """
        images = batch if isinstance(batch, Tensor) else batch[0]
        if not isinstance(images, Tensor) or images.dim() != 4:
            found = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"predict_step takes a batch of (N, C, H, W) images or (images, labels), got {found}"
            )
        logits = self(images)
        return {"logits": logits, "probabilities": logits.softmax(dim=-1), "prediction": logits.argmax(dim=-1)}

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
            )
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ValueError("set trainer max_epochs or max_steps: the schedule needs a length")
        # estimated_stepping_batches has loaded the train dataloader, so its length is
        # known; an iterable dataset has none, and the whole run counts as one epoch.
        batches = self.trainer.num_training_batches
        steps_per_epoch = (
            math.ceil(batches / self.trainer.accumulate_grad_batches)
            if math.isfinite(batches)
            else total_steps
        )
        multiplier = partial(
            lr_multiplier,
            schedule=hp.schedule,
            steps_per_epoch=max(int(steps_per_epoch), 1),
            total_steps=max(int(total_steps), 1),
            warmup_epochs=hp.warmup_epochs,
            milestones=tuple(hp.milestones),
            gamma=hp.gamma,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
