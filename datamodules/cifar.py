"""CIFAR-10 and CIFAR-100 read from torchvision's on-disk layout."""

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets
from torchvision.transforms import v2

from .base import ImageDataModule, TensorImageDataset
from .splits import random_split_indices, split_sizes


def load_cifar_pickle(path: str | Path) -> dict[str, Any]:
    """Load one pickled CIFAR file (a data batch or the meta file) with str keys.

    The official files were pickled by Python 2 and decode to str keys under
    ``latin1``; files pickled by Python 3 keep bytes keys, so both are mapped to str.
    Only load files you trust: this is :func:`pickle.load`.

    Args:
        path (str or Path): file to read.

    Returns:
        dict[str, Any]: the unpickled dictionary.

    Example:
        >>> batch = load_cifar_pickle("data/cifar-10-batches-py/test_batch")  # doctest: +SKIP
        >>> batch["data"].shape  # doctest: +SKIP
        (10000, 3072)
    """
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def read_cifar_batches(paths: Sequence[str | Path], label_key: str) -> tuple[Tensor, Tensor]:
    """Concatenate pickled CIFAR batches into image and label tensors.

    Args:
        paths (Sequence[str or Path]): batch files, read in order.
        label_key (str): ``"labels"`` for CIFAR-10, ``"fine_labels"`` for CIFAR-100.

    Returns:
        tuple[Tensor, Tensor]: ``(N, 3, 32, 32)`` uint8 images and ``(N,)`` int64 labels.

    Example:
        >>> images, labels = read_cifar_batches(  # doctest: +SKIP
        ...     ["data/cifar-10-batches-py/test_batch"], "labels")
    """
    images, labels = [], []
    for path in paths:
        entry = load_cifar_pickle(path)
        # Rows are channel-major (1024 red, 1024 green, 1024 blue), i.e. already CHW.
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def read_cifar_label_names(path: str | Path, key: str) -> list[str]:
    """Class names from a CIFAR meta file, indexed by label.

    Args:
        path (str or Path): ``batches.meta`` (CIFAR-10) or ``meta`` (CIFAR-100).
        key (str): ``"label_names"`` or ``"fine_label_names"``.

    Returns:
        list[str]: class names.

    Example:
        >>> read_cifar_label_names(  # doctest: +SKIP
        ...     "data/cifar-10-batches-py/batches.meta", "label_names")[:2]
        ['airplane', 'automobile']
    """
    names = load_cifar_pickle(path)[key]
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


class CIFARDataModuleBase(ImageDataModule):
    """Shared logic of :class:`CIFAR10DataModule` and :class:`CIFAR100DataModule`.

    Subclasses only set the class attributes describing their files. The data is
    read with a small reader of the pickled batch format rather than through
    torchvision's dataset classes, whose md5 checks reject any other copy of the
    files; torchvision is used only to download.

    Args:
        data_dir (str): folder holding the extracted archive. Default: ``"data"``.
        download (bool): download the archive in ``prepare_data`` when it is
            missing. Default: ``False``.
        val_fraction (float): fraction of the training images held out for
            validation; the test split is the official test set. Default: ``0.1``.
        augment (bool): random crop (padding 4) and horizontal flip on the train
            split. Default: ``True``.
        batch_size (int): samples per batch. Default: ``128``.
        num_workers (int): dataloader worker processes. Default: ``2``.
        seed (int): seed of the train/val split. Default: ``42``.
    """

    display_name: ClassVar[str]
    folder_name: ClassVar[str]
    archive_name: ClassVar[str]
    train_files: ClassVar[tuple[str, ...]]
    test_files: ClassVar[tuple[str, ...]]
    meta_file: ClassVar[str]
    label_key: ClassVar[str]
    label_names_key: ClassVar[str]
    torchvision_name: ClassVar[str]
    mean: ClassVar[tuple[float, float, float]]
    std: ClassVar[tuple[float, float, float]]

    num_channels = 3
    image_size = 32

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        val_fraction: float = 0.1,
        augment: bool = True,
        batch_size: int = 128,
        num_workers: int = 2,
        seed: int = 42,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        # Reject bad fractions now rather than at the first setup().
        split_sizes(50_000, val_fraction)
        self.data_dir = Path(data_dir)
        self.download = download
        self.classes: list[str] | None = None

    @property
    def folder(self) -> Path:
        """Folder that holds the batch files, ``<data_dir>/<folder_name>``."""
        return self.data_dir / self.folder_name

    def missing_files(self) -> list[str]:
        """Names of the expected files that are absent from :attr:`folder`."""
        expected = (*self.train_files, *self.test_files, self.meta_file)
        return [name for name in expected if not (self.folder / name).is_file()]

    def _check_files(self) -> None:
        missing = self.missing_files()
        if missing:
            raise FileNotFoundError(
                f"{self.display_name} data not found in '{self.folder}' "
                f"(missing: {', '.join(missing)}). Pass download=True "
                f"(command line: --data.download true) to download it with torchvision, "
                f"or extract {self.archive_name} from https://www.cs.toronto.edu/~kriz/cifar.html "
                f"into '{self.data_dir}' so that '{self.folder}' contains those files."
            )

    def prepare_data(self) -> None:
        # Existing files are trusted as is: torchvision would md5-check them and
        # download again over any copy that differs from the official archive.
        if self.download and self.missing_files():
            # One call fetches and extracts the whole archive, test batch included.
            dataset_cls = getattr(datasets, self.torchvision_name)
            dataset_cls(str(self.data_dir), train=True, download=True)
        self._check_files()

    def setup(self, stage: str | None = None) -> None:
        self._check_files()
        if self.classes is None:
            meta_path = self.folder / self.meta_file
            self.classes = read_cifar_label_names(meta_path, self.label_names_key)
        if stage in ("fit", "validate", None) and self.train_set is None:
            images, labels = self._read(self.train_files)
            sizes = split_sizes(len(labels), self.hparams.val_fraction)
            train_idx, val_idx = random_split_indices(sizes, self.seed)
            eval_transform = self._eval_transform()
            train_transform = self._train_transform() if self.hparams.augment else eval_transform
            self.train_set = TensorImageDataset(
                images[train_idx], labels[train_idx], train_transform
            )
            self.val_set = TensorImageDataset(images[val_idx], labels[val_idx], eval_transform)
        if stage in ("test", "predict", None) and self.test_set is None:
            images, labels = self._read(self.test_files)
            self.test_set = TensorImageDataset(images, labels, self._eval_transform())

    def _read(self, names: Sequence[str]) -> tuple[Tensor, Tensor]:
        images, labels = read_cifar_batches([self.folder / n for n in names], self.label_key)
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
            raise ValueError(
                f"labels in '{self.folder}' fall outside [0, {self.num_classes}): "
                f"is this really {self.display_name}?"
            )
        return images, labels

    def _eval_transform(self) -> v2.Transform:
        return v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        )

    def _train_transform(self) -> v2.Transform:
        # Crop and flip the uint8 image before normalising, so padding is black.
        return v2.Compose(
            [
                v2.RandomCrop(32, padding=4),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )


class CIFAR10DataModule(CIFARDataModuleBase):
    """CIFAR-10 (50,000 train + 10,000 test 32x32 RGB images, 10 classes).

    Reads ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.
    Without ``download=True``, a missing folder raises :class:`FileNotFoundError`.

    Args:
        data_dir (str): folder holding the extracted archive. Default: ``"data"``.
        download (bool): download the archive in ``prepare_data`` when it is
            missing. Default: ``False``.
        val_fraction (float): fraction of the training images held out for
            validation; the test split is the official test set. Default: ``0.1``.
        augment (bool): random crop (padding 4) and horizontal flip on the train
            split. Default: ``True``.
        batch_size (int): samples per batch. Default: ``128``.
        num_workers (int): dataloader worker processes. Default: ``2``.
        seed (int): seed of the train/val split. Default: ``42``.

    Example:
        >>> dm = CIFAR10DataModule(data_dir="data", download=True)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
        >>> len(dm.train_set), len(dm.val_set), dm.num_classes  # doctest: +SKIP
        (45000, 5000, 10)
    """

    num_classes = 10
    display_name = "CIFAR-10"
    folder_name = "cifar-10-batches-py"
    archive_name = "cifar-10-python.tar.gz"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    meta_file = "batches.meta"
    label_key = "labels"
    label_names_key = "label_names"
    torchvision_name = "CIFAR10"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)


class CIFAR100DataModule(CIFARDataModuleBase):
    """CIFAR-100 (50,000 train + 10,000 test 32x32 RGB images, 100 fine classes).

    Reads ``<data_dir>/cifar-100-python/{train, test, meta}``.
    Without ``download=True``, a missing folder raises :class:`FileNotFoundError`.

    Args:
        data_dir (str): folder holding the extracted archive. Default: ``"data"``.
        download (bool): download the archive in ``prepare_data`` when it is
            missing. Default: ``False``.
        val_fraction (float): fraction of the training images held out for
            validation; the test split is the official test set. Default: ``0.1``.
        augment (bool): random crop (padding 4) and horizontal flip on the train
            split. Default: ``True``.
        batch_size (int): samples per batch. Default: ``128``.
        num_workers (int): dataloader worker processes. Default: ``2``.
        seed (int): seed of the train/val split. Default: ``42``.

    Example:
        >>> dm = CIFAR100DataModule(data_dir="data", download=True)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("test")  # doctest: +SKIP
        >>> len(dm.test_set), dm.num_classes  # doctest: +SKIP
        (10000, 100)
    """

    num_classes = 100
    display_name = "CIFAR-100"
    folder_name = "cifar-100-python"
    archive_name = "cifar-100-python.tar.gz"
    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"
    label_key = "fine_labels"
    label_names_key = "fine_label_names"
    torchvision_name = "CIFAR100"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
