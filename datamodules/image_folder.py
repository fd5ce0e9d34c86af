"""ImageNet-style class folders read with torchvision's ImageFolder."""

from pathlib import Path
from typing import Any

import torch
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes
from torchvision.transforms import v2

from .base import ImageDataModule
from .splits import TransformedSubset, split_dataset, split_sizes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Ratio of crop to resize in the standard ImageNet evaluation (224 / 256).
CENTER_CROP_RATIO = 0.875


class _FixedClassImageFolder(ImageFolder):
    """ImageFolder whose class indices come from a given mapping, not its own folders.

    A val folder that lacks a class would otherwise number its classes
    differently from the train folder.
    """

    def __init__(self, root: str | Path, class_to_idx: dict[str, int], **kwargs: Any) -> None:
        self._fixed_class_to_idx = dict(class_to_idx)
        super().__init__(root, **kwargs)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        return list(self._fixed_class_to_idx), dict(self._fixed_class_to_idx)


def imagenet_train_transform(image_size: int) -> v2.Transform:
    """Random-resized crop and horizontal flip, then ImageNet normalisation.

    Args:
        image_size (int): output height and width.

    Returns:
        v2.Transform: PIL image to normalised float tensor.

    Example:
        >>> imagenet_train_transform(224)  # doctest: +ELLIPSIS
        Compose(...)
    """
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def imagenet_eval_transform(image_size: int) -> v2.Transform:
    """Resize to ``image_size / 0.875``, center crop, then ImageNet normalisation.

    Args:
        image_size (int): output height and width.

    Returns:
        v2.Transform: PIL image to normalised float tensor.

    Example:
        >>> imagenet_eval_transform(224)  # doctest: +ELLIPSIS
        Compose(...)
    """
    return v2.Compose(
        [
            v2.Resize(int(image_size / CENTER_CROP_RATIO), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class ImageFolderDataModule(ImageDataModule):
    """Images in ImageNet-style class folders, ``<data_dir>/{train,val}/<class>/<image>``.

    Classes are the subfolders of ``<data_dir>/train`` (sorted, as in
    :class:`~torchvision.datasets.ImageFolder`). With a ``val/`` folder, the train
    split is all of ``train/`` and ``val/`` is split, seeded, into val and test by
    ``test_fraction``; without one, a seeded ``holdout_fraction`` of ``train/`` is
    held out and split the same way. Every split holds at least one image (a
    fraction that rounds to none gets one), and a folder too small for that is a
    :class:`ValueError` at ``setup``. Images are loaded as RGB.

    Args:
        data_dir (str): root folder containing ``train/`` and optionally ``val/``.
        image_size (int): output height and width. Default: ``224``.
        holdout_fraction (float): fraction of ``train/`` held out for val and test
            when there is no ``val/`` folder. Default: ``0.1``.
        test_fraction (float): fraction of the held-out images used for test, the
            rest being val. Default: ``0.5``.
        augment (bool): random-resized crop and horizontal flip on the train split;
            otherwise it gets the evaluation transform. Default: ``True``.
        batch_size (int): samples per optimizer step over all processes (each of
            ``k`` DDP processes loads ``batch_size // k``). Default: ``64``.
        num_workers (int): dataloader worker processes; image decoding is the
            bottleneck, so use several. Default: ``4``.
        seed (int): seed of the splits. Default: ``42``.

    Example:
        >>> dm = ImageFolderDataModule("data/imagenette", image_size=160)  # doctest: +SKIP
        >>> dm.num_classes  # doctest: +SKIP
        10
    """

    num_channels = 3

    def __init__(
        self,
        data_dir: str,
        image_size: int = 224,
        holdout_fraction: float = 0.1,
        test_fraction: float = 0.5,
        augment: bool = True,
        batch_size: int = 64,
        num_workers: int = 4,
        seed: int = 42,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        # Reject bad fractions now rather than at the first setup().
        split_sizes(1000, holdout_fraction)
        split_sizes(1000, test_fraction)
        self.data_dir = Path(data_dir)
        self.image_size = image_size
        self._classes: tuple[list[str], dict[str, int]] | None = None

    @property
    def train_dir(self) -> Path:
        """``<data_dir>/train``."""
        return self.data_dir / "train"

    @property
    def val_dir(self) -> Path:
        """``<data_dir>/val``; optional."""
        return self.data_dir / "val"

    def _find_classes(self) -> tuple[list[str], dict[str, int]]:
        if self._classes is None:
            if not self.train_dir.is_dir():
                raise FileNotFoundError(
                    f"image folder '{self.train_dir}' not found: expected "
                    f"'{self.data_dir}/train/<class>/<image>' (and optionally "
                    f"'{self.data_dir}/val/<class>/<image>')"
                )
            self._classes = find_classes(self.train_dir)
        return self._classes

    @property
    def classes(self) -> list[str]:
        """Class names, indexed by label; read from ``train/`` without loading images."""
        return self._find_classes()[0]

    @property
    def num_classes(self) -> int:
        """Number of class folders in ``train/``."""
        return len(self.classes)

    def setup(self, stage: str | None = None) -> None:
        # Val and test come from one permutation, so build all splits together once.
        if self.train_set is not None:
            return
        hp = self.hparams
        class_to_idx = self._find_classes()[1]
        train_folder = _FixedClassImageFolder(self.train_dir, class_to_idx)
        train_transform = imagenet_train_transform(self.image_size)
        eval_transform = imagenet_eval_transform(self.image_size)
        if not hp.augment:
            train_transform = eval_transform

        if self.val_dir.is_dir():
            unknown = set(find_classes(self.val_dir)[0]) - set(class_to_idx)
            if unknown:
                raise ValueError(
                    f"classes {sorted(unknown)} in '{self.val_dir}' have no folder in "
                    f"'{self.train_dir}'"
                )
            # allow_empty: a small val folder may lack some classes.
            held_out = _FixedClassImageFolder(self.val_dir, class_to_idx, allow_empty=True)
            self.train_set = TransformedSubset(
                train_folder, range(len(train_folder)), train_transform
            )
            self.val_set, self.test_set = split_dataset(
                held_out, (hp.test_fraction,), self.seed, [eval_transform, eval_transform]
            )
        else:
            fractions = (
                hp.holdout_fraction * (1 - hp.test_fraction),
                hp.holdout_fraction * hp.test_fraction,
            )
            self.train_set, self.val_set, self.test_set = split_dataset(
                train_folder, fractions, self.seed,
                [train_transform, eval_transform, eval_transform],
            )
