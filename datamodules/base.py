"""The base class of the image datamodules: dataloaders and the batch-size convention."""

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset


class ImageDataModule(pl.LightningDataModule):
    """Base class of the image classification datamodules.

    Subclasses fill ``train_set``, ``val_set`` and ``test_set`` in ``setup`` and
    expose ``num_classes``, ``num_channels`` and ``image_size`` so model builders
    can size themselves. Use it as the ``datamodule_class`` of a ``LightningCLI``
    with ``subclass_mode_data=True`` to accept any of them. These are
    ``pytorch_lightning`` datamodules: train them with ``pytorch_lightning.Trainer``
    (the unified ``lightning`` package's ``Trainer`` rejects them).

    ``batch_size`` is the *global* batch: under a multi-process strategy (DDP with
    ``k`` processes) each process loads ``batch_size // k`` samples, so an epoch has
    the same number of optimizer steps, each on a batch of the same total size, as
    on one process, and the same learning rate trains the same model. It must be
    divisible by the number of processes.

    Args:
        batch_size (int): samples per optimizer step, over all processes.
            Default: ``64``.
        num_workers (int): dataloader worker processes. Default: ``0``.
        seed (int): seed of the train/val/test split. Default: ``42``.

    Example:
        >>> from pytorch_lightning.cli import LightningCLI  # doctest: +SKIP
        >>> cli = LightningCLI(  # doctest: +SKIP
        ...     datamodule_class=ImageDataModule, subclass_mode_data=True)
    """

    num_classes: int
    num_channels: int
    image_size: int

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 42) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def per_process_batch_size(self) -> int:
        """Samples each process loads per step: ``batch_size`` over the trainer's processes."""
        world_size = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size {self.batch_size} is the global batch, split across the "
                f"{world_size} processes: it must be divisible by {world_size}"
            )
        return self.batch_size // world_size

    def _loader(self, dataset: Dataset | None, name: str, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__} has no {name} split yet: call setup() first"
            )
        return DataLoader(
            dataset,
            batch_size=self.per_process_batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            # Respawning workers every epoch costs more than a small epoch itself.
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, "train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, "val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, "test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, "test", shuffle=False)
