"""Dataloader plumbing and an in-memory dataset shared by the image datamodules."""

from collections.abc import Callable

import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


class TensorImageDataset(Dataset):
    """Images and labels held in memory, with an optional per-sample transform.

    Unlike :class:`~torch.utils.data.TensorDataset` it takes a transform, so the
    train split can be augmented while the val/test splits share the same storage
    layout without any.

    Args:
        images (Tensor): ``(N, C, H, W)`` images.
        labels (Tensor): ``(N,)`` int64 class indices.
        transform (Callable, optional): applied to each ``(C, H, W)`` image.
            Default: ``None``.

    Example:
        >>> import torch
        >>> ds = TensorImageDataset(torch.zeros(4, 3, 8, 8), torch.arange(4))
        >>> ds[1][0].shape, int(ds[1][1])
        (torch.Size([3, 8, 8]), 1)
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


class ImageDataModule(pl.LightningDataModule):
    """Base class of the image classification datamodules.

    Subclasses fill ``train_set``, ``val_set`` and ``test_set`` in ``setup`` and
    expose ``num_classes``, ``num_channels`` and ``image_size`` so model builders
    can size themselves. Use it as the ``datamodule_class`` of a ``LightningCLI``
    with ``subclass_mode_data=True`` to accept any of them.

    Args:
        batch_size (int): samples per batch. Default: ``64``.
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

    def _loader(self, dataset: Dataset | None, name: str, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__} has no {name} split yet: call setup() first"
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
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
