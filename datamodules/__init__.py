"""LightningDataModules for image classification.

:class:`DigitsDataModule` needs no download and is the default; the others read
CIFAR-10/100, ImageNet-style folders, or make synthetic data. All expose
``num_classes``, ``num_channels`` and ``image_size``.
"""

from .base import ImageDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .digits import DigitsDataModule
from .image_folder import ImageFolderDataModule
from .synthetic import SyntheticDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "SyntheticDataModule",
]
