"""CIFAR-10 and CIFAR-100, read by torchvision's dataset classes from a local folder."""

import os
from typing import ClassVar

import torch
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.transforms import v2

from .base import ImageDataModule
from .splits import TransformedSubset, split_dataset, split_sizes


class CIFARDataModuleBase(ImageDataModule):
    """Shared logic of :class:`CIFAR10DataModule` and :class:`CIFAR100DataModule`.

    The files are read and checked (md5) by torchvision's ``CIFAR10`` / ``CIFAR100``
    classes, set by the subclass as ``dataset_class``. Nothing is downloaded unless
    ``download=True``, and then only in ``prepare_data``; missing files are named in
    a :class:`FileNotFoundError`. The train split is the official training set
    less a seeded ``val_fraction`` held out for validation; the test split is the
    official test set.

    Args:
        data_dir (str): folder holding the extracted archive. Default: ``"data"``.
        download (bool): download the archive in ``prepare_data`` when it is
            missing. Default: ``False``.
        val_fraction (float): fraction of the training images held out for
            validation, in ``(0, 1)``. Default: ``0.1``.
        augment (bool): random crop (padding 4) and horizontal flip on the train
            split. Default: ``True``.
        batch_size (int): samples per optimizer step over all processes (each of
            ``k`` DDP processes loads ``batch_size // k``). Default: ``128``.
        num_workers (int): dataloader worker processes. Default: ``2``.
        seed (int): seed of the train/val split. Default: ``42``.
    """

    dataset_class: ClassVar[type[datasets.CIFAR10]]
    archive_name: ClassVar[str]
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
        self.data_dir = data_dir
        self.download = download
        self.classes: list[str] | None = None

    @property
    def display_name(self) -> str:
        """``"CIFAR-10"`` or ``"CIFAR-100"``."""
        return self.dataset_class.__name__.replace("CIFAR", "CIFAR-")

    @property
    def folder(self) -> str:
        """Folder that holds the batch files, ``<data_dir>/<torchvision base_folder>``."""
        return os.path.join(self.data_dir, self.dataset_class.base_folder)

    def missing_files(self) -> list[str]:
        """Names of the files torchvision reads that are absent from :attr:`folder`."""
        cls = self.dataset_class
        expected = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return [name for name in expected if not os.path.isfile(os.path.join(self.folder, name))]

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
        if self.download:
            # torchvision downloads only when its md5 check of the files fails; one
            # archive holds both sets.
            self.dataset_class(self.data_dir, train=True, download=True)
        self._check_files()

    def _read(self, train: bool) -> datasets.CIFAR10:
        self._check_files()
        try:
            dataset = self.dataset_class(self.data_dir, train=train, download=False)
        except RuntimeError as error:
            raise RuntimeError(
                f"the {self.display_name} files in '{self.folder}' fail torchvision's "
                f"integrity (md5) check: replace them with those of {self.archive_name} "
                f"(or pass download=True to fetch them again)"
            ) from error
        self.classes = list(dataset.classes)
        return dataset

    def setup(self, stage: str | None = None) -> None:
        eval_transform = self._eval_transform()
        if stage in ("fit", "validate", None) and self.train_set is None:
            train_transform = self._train_transform() if self.hparams.augment else eval_transform
            self.train_set, self.val_set = split_dataset(
                self._read(train=True), (self.hparams.val_fraction,), self.seed,
                transforms=[train_transform, eval_transform],
            )
        if stage in ("test", "predict", None) and self.test_set is None:
            test = self._read(train=False)
            self.test_set = TransformedSubset(test, range(len(test)), eval_transform)

    def _eval_transform(self) -> v2.Transform:
        return v2.Compose(
            [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        )

    def _train_transform(self) -> v2.Transform:
        # Crop and flip the uint8 image before normalising, so padding is black.
        return v2.Compose(
            [
                v2.ToImage(),
                v2.RandomCrop(32, padding=4),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )


class CIFAR10DataModule(CIFARDataModuleBase):
    """CIFAR-10 (50,000 train + 10,000 test 32x32 RGB images, 10 classes).

    Reads ``<data_dir>/cifar-10-batches-py/`` with :class:`torchvision.datasets.CIFAR10`.
    Its arguments are those of :class:`CIFARDataModuleBase`: ``data_dir``,
    ``download``, ``val_fraction``, ``augment``, ``batch_size``, ``num_workers``, ``seed``.

    Example:
        >>> dm = CIFAR10DataModule(data_dir="data", download=True)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
        >>> len(dm.train_set), len(dm.val_set), dm.num_classes  # doctest: +SKIP
        (45000, 5000, 10)
    """

    num_classes = 10
    dataset_class = datasets.CIFAR10
    archive_name = "cifar-10-python.tar.gz"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)


class CIFAR100DataModule(CIFARDataModuleBase):
    """CIFAR-100 (50,000 train + 10,000 test 32x32 RGB images, 100 fine classes).

    Reads ``<data_dir>/cifar-100-python/`` with :class:`torchvision.datasets.CIFAR100`.
    Its arguments are those of :class:`CIFARDataModuleBase`.

    Example:
        >>> dm = CIFAR100DataModule(data_dir="data", download=True)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("test")  # doctest: +SKIP
        >>> len(dm.test_set), dm.num_classes  # doctest: +SKIP
        (10000, 100)
    """

    num_classes = 100
    dataset_class = datasets.CIFAR100
    archive_name = "cifar-100-python.tar.gz"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
