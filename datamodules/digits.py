"""scikit-learn's handwritten digits as an offline, in-memory datamodule."""

from functools import partial

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import TensorDataset

from .base import ImageDataModule
from .splits import split_dataset, split_sizes

#: Largest pixel value in ``load_digits`` (4x4 blocks counted on a 32x32 bitmap).
DIGITS_MAX_VALUE = 16.0
#: Number of images in ``load_digits``.
DIGITS_NUM_SAMPLES = 1797


def load_digit_images(image_size: int = 32, num_channels: int = 3) -> tuple[Tensor, Tensor]:
    """All 1,797 digits as float images in ``[0, 1]`` with their labels.

    Args:
        image_size (int): output height and width; the 8x8 originals are resized
            bilinearly. Default: ``32``.
        num_channels (int): the grayscale channel is repeated this many times.
            Default: ``3``.

    Returns:
        tuple[Tensor, Tensor]: ``(1797, num_channels, image_size, image_size)``
        float32 images and ``(1797,)`` int64 labels.

    Example:
        >>> images, labels = load_digit_images(16, 1)
        >>> images.shape, labels.shape
        (torch.Size([1797, 1, 16, 16]), torch.Size([1797]))
    """
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / DIGITS_MAX_VALUE
    if image_size != images.shape[-1]:
        # Bilinear weights are convex, so the result stays in [0, 1].
        images = F.interpolate(images, size=image_size, mode="bilinear", align_corners=False)
    # expand() would share storage across channels; contiguous copies keep later
    # per-sample ops and pinning simple, and the whole set is only ~22 MB at 32x32x3.
    images = images.repeat(1, num_channels, 1, 1)
    return images, torch.as_tensor(digits.target, dtype=torch.long)


def random_shift(image: Tensor, max_shift: int, fill: float = 0.0) -> Tensor:
    """Translate an image by up to ``max_shift`` pixels in each direction.

    Uncovered pixels are set to ``fill``. The offset comes from the global torch
    RNG so that Lightning's per-worker seeding applies.

    Args:
        image (Tensor): ``(C, H, W)`` image.
        max_shift (int): largest shift in pixels, per axis.
        fill (float): value of the uncovered border. Default: ``0.0``.

    Returns:
        Tensor: shifted image of the same shape.

    Example:
        >>> import torch
        >>> random_shift(torch.ones(1, 4, 4), max_shift=1).shape
        torch.Size([1, 4, 4])
    """
    if max_shift == 0:
        return image
    height, width = image.shape[-2:]
    padded = F.pad(image, (max_shift,) * 4, value=fill)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,)).tolist()
    return padded[..., dy : dy + height, dx : dx + width]


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download.

    The data ships with scikit-learn, so this is the default datamodule for
    offline runs. Images are upscaled to ``image_size``, repeated to
    ``num_channels`` and normalised with the mean and std of the train split.
    Everything is kept in memory, so ``num_workers=0`` is usually fastest.

    Args:
        image_size (int): output height and width. Default: ``32``.
        num_channels (int): channels of the output; ``3`` repeats the grayscale
            channel so RGB models accept it. Default: ``3``.
        val_fraction (float): fraction of all images used for validation, in
            ``(0, 1)``; every split holds at least one image. Default: ``0.1``.
        test_fraction (float): fraction of all images used for testing, in
            ``(0, 1)``. Default: ``0.2``.
        augment (bool): randomly shift training images. Default: ``True``.
        max_shift (int): largest shift in output pixels when augmenting.
            Default: ``2``.
        batch_size (int): samples per optimizer step over all processes (each of
            ``k`` DDP processes loads ``batch_size // k``). Default: ``64``.
        num_workers (int): dataloader worker processes. Default: ``0``.
        seed (int): seed of the train/val/test split. Default: ``42``.

    Example:
        >>> dm = DigitsDataModule(image_size=32, batch_size=16)
        >>> dm.setup("fit")
        >>> images, labels = next(iter(dm.train_dataloader()))
        >>> images.shape, dm.num_classes
        (torch.Size([16, 3, 32, 32]), 10)
    """

    num_classes = 10

    def __init__(
        self,
        image_size: int = 32,
        num_channels: int = 3,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        augment: bool = True,
        max_shift: int = 2,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        if image_size < 1 or num_channels < 1 or max_shift < 0:
            raise ValueError("image_size and num_channels must be positive, max_shift >= 0")
        # Fail on bad fractions at construction rather than at the first setup().
        split_sizes(DIGITS_NUM_SAMPLES, val_fraction, test_fraction)
        self.image_size = image_size
        self.num_channels = num_channels
        self.mean: float | None = None
        self.std: float | None = None

    def setup(self, stage: str | None = None) -> None:
        # All splits come from one permutation and cost milliseconds, so build
        # them together once, whatever the stage.
        if self.train_set is not None:
            return
        hp = self.hparams
        images, labels = load_digit_images(self.image_size, self.num_channels)
        self.train_set, self.val_set, self.test_set = split_dataset(
            TensorDataset(images, labels), (hp.val_fraction, hp.test_fraction), self.seed,
            transforms=[None, None, None],
        )
        train_images = images[self.train_set.indices]
        self.mean = train_images.mean().item()
        self.std = train_images.std().item()
        # In place: the three splits share this storage.
        images.sub_(self.mean).div_(self.std)
        if hp.augment and hp.max_shift > 0:
            # Shifted-in pixels must look like the (normalised) black background.
            self.train_set.transform = partial(
                random_shift, max_shift=hp.max_shift, fill=-self.mean / self.std
            )
