"""Seeded random images with learnable labels, for smoke tests."""

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset

from .base import ImageDataModule
from .splits import split_dataset, split_sizes

#: Side of the random class patterns before upsampling; coarse patterns survive
#: pooling and small receptive fields, so any image model can learn them.
PATTERN_SIZE = 4


def make_synthetic_images(
    num_samples: int,
    num_classes: int,
    image_size: int,
    num_channels: int,
    noise: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Balanced random images: a per-class smooth pattern plus Gaussian noise.

    Args:
        num_samples (int): number of images.
        num_classes (int): number of classes; labels cycle through them.
        image_size (int): height and width.
        num_channels (int): channels.
        noise (float): std of the per-pixel noise; the patterns have unit std.
        generator (torch.Generator): source of all randomness.

    Returns:
        tuple[Tensor, Tensor]: ``(num_samples, num_channels, image_size, image_size)``
        float32 images and ``(num_samples,)`` int64 labels.

    Example:
        >>> images, labels = make_synthetic_images(8, 2, 16, 3, 1.0, torch.Generator())
        >>> images.shape, labels.tolist()
        (torch.Size([8, 3, 16, 16]), [0, 1, 0, 1, 0, 1, 0, 1])
    """
    patterns = torch.randn(
        num_classes, num_channels, PATTERN_SIZE, PATTERN_SIZE, generator=generator
    )
    patterns = F.interpolate(patterns, size=image_size, mode="bilinear", align_corners=False)
    patterns = (patterns - patterns.mean()) / patterns.std()
    labels = torch.arange(num_samples) % num_classes
    noise_images = torch.randn(
        num_samples, num_channels, image_size, image_size, generator=generator
    )
    return patterns[labels] + noise * noise_images, labels


class SyntheticDataModule(ImageDataModule):
    """Seeded random images whose labels can be learned, for smoke tests.

    Each class has a smooth random pattern; an image is its class pattern plus
    Gaussian noise. The same ``seed`` gives the same images and the same split.

    Args:
        num_samples (int): images across all splits. Default: ``512``.
        num_classes (int): number of classes. Default: ``10``.
        image_size (int): height and width. Default: ``32``.
        num_channels (int): channels. Default: ``3``.
        noise (float): std of the per-pixel noise (patterns have unit std).
            Default: ``1.0``.
        val_fraction (float): fraction of images used for validation, in ``(0, 1)``;
            every split holds at least one image. Default: ``0.1``.
        test_fraction (float): fraction of images used for testing, in ``(0, 1)``.
            Default: ``0.1``.
        batch_size (int): samples per optimizer step over all processes (each of
            ``k`` DDP processes loads ``batch_size // k``). Default: ``64``.
        num_workers (int): dataloader worker processes. Default: ``0``.
        seed (int): seed of the images and of the split. Default: ``42``.

    Example:
        >>> dm = SyntheticDataModule(num_samples=100, num_classes=4, image_size=16)
        >>> dm.setup()
        >>> len(dm.train_set), len(dm.val_set), len(dm.test_set)
        (80, 10, 10)
    """

    def __init__(
        self,
        num_samples: int = 512,
        num_classes: int = 10,
        image_size: int = 32,
        num_channels: int = 3,
        noise: float = 1.0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        if min(num_samples, num_classes, image_size, num_channels) < 1:
            raise ValueError("num_samples, num_classes, image_size, num_channels must be >= 1")
        split_sizes(num_samples, val_fraction, test_fraction)
        self.num_classes = num_classes
        self.image_size = image_size
        self.num_channels = num_channels

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        generator = torch.Generator().manual_seed(self.seed)
        images, labels = make_synthetic_images(
            hp.num_samples, self.num_classes, self.image_size, self.num_channels, hp.noise,
            generator,
        )
        self.train_set, self.val_set, self.test_set = split_dataset(
            TensorDataset(images, labels), (hp.val_fraction, hp.test_fraction), self.seed,
            transforms=[None, None, None],
        )
