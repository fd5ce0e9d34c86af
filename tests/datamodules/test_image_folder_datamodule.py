from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import ImageFolderDataModule

CLASSES = ["cat", "dog", "fish"]


def _write_images(folder: Path, classes: list[str], per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            height, width = rng.integers(24, 48, 2)
            if i % 3 == 0:  # grayscale files must still load as RGB
                pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
            else:
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            suffix = "jpg" if i % 2 else "png"
            Image.fromarray(pixels).save(folder / c / f"{i}.{suffix}")


@pytest.fixture
def image_root(tmp_path):
    _write_images(tmp_path / "train", CLASSES, per_class=6, seed=0)
    _write_images(tmp_path / "val", CLASSES, per_class=4, seed=1)
    return tmp_path


def test_loads_train_and_val_folders(image_root, no_network):
    dm = ImageFolderDataModule(str(image_root), image_size=32, batch_size=5, num_workers=0)
    # Known before setup, so models can be built first.
    assert dm.num_classes == 3 and dm.classes == CLASSES
    assert (dm.num_channels, dm.image_size) == (3, 32)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (18, 6, 6)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        images, labels = next(iter(loader))
        assert images.shape == (5, 3, 32, 32) and images.dtype == torch.float32
        assert labels.dtype == torch.int64 and set(labels.tolist()) <= {0, 1, 2}
    # Val and test are disjoint halves of val/.
    val_files = {dm.val_set.dataset.samples[i][0] for i in dm.val_set.indices}
    test_files = {dm.test_set.dataset.samples[i][0] for i in dm.test_set.indices}
    assert not val_files & test_files
    assert all("/val/" in f for f in val_files | test_files)


def test_without_val_folder_holds_out_part_of_train(tmp_path):
    _write_images(tmp_path / "train", CLASSES, per_class=10, seed=0)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, holdout_fraction=0.2)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (24, 3, 3)
    parts = [set(s.indices) for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert set().union(*parts) == set(range(30)) and sum(map(len, parts)) == 30


def test_val_folder_missing_a_class_keeps_train_indices(tmp_path):
    _write_images(tmp_path / "train", CLASSES, per_class=2, seed=0)
    _write_images(tmp_path / "val", ["dog"], per_class=4, seed=1)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16)
    dm.setup()
    held_labels = [label for s in (dm.val_set, dm.test_set) for _, label in s]
    assert held_labels == [CLASSES.index("dog")] * 4


def test_val_folder_with_unknown_class_rejected(tmp_path):
    _write_images(tmp_path / "train", ["cat"], per_class=2, seed=0)
    _write_images(tmp_path / "val", ["cat", "zebra"], per_class=2, seed=1)
    with pytest.raises(ValueError, match="zebra"):
        ImageFolderDataModule(str(tmp_path)).setup()


def test_split_is_seeded(image_root):
    def test_indices(seed):
        dm = ImageFolderDataModule(str(image_root), image_size=16, seed=seed)
        dm.setup()
        return dm.test_set.indices

    assert test_indices(0) == test_indices(0)
    assert test_indices(0) != test_indices(1)


def test_eval_transform_is_deterministic_and_train_is_augmented(image_root):
    dm = ImageFolderDataModule(str(image_root), image_size=16)
    dm.setup()
    assert torch.equal(dm.val_set[0][0], dm.val_set[0][0])
    torch.manual_seed(0)
    draws = [dm.train_set[1][0] for _ in range(5)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    plain = ImageFolderDataModule(str(image_root), image_size=16, augment=False)
    plain.setup()
    assert torch.equal(plain.train_set[1][0], plain.train_set[1][0])


def test_missing_folder_error_names_path(tmp_path):
    root = tmp_path / "nowhere"
    dm = ImageFolderDataModule(str(root))
    with pytest.raises(FileNotFoundError, match="nowhere/train"):
        dm.num_classes
    with pytest.raises(FileNotFoundError, match="nowhere/train"):
        dm.setup("fit")


def test_a_dozen_images_without_val_folder_give_every_split_an_image(tmp_path):
    # The default holdout_fraction (0.1) of 12 images would round to an empty test split.
    _write_images(tmp_path / "train", CLASSES, per_class=4, seed=0)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=4, num_workers=0)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (10, 1, 1)
    images, labels = next(iter(dm.test_dataloader()))
    assert images.shape == (1, 3, 16, 16)


def test_folder_too_small_for_three_splits_is_an_error(tmp_path):
    _write_images(tmp_path / "train", ["cat"], per_class=2, seed=0)
    with pytest.raises(ValueError, match="train': cannot split 2 samples into 3 non-empty parts"):
        ImageFolderDataModule(str(tmp_path)).setup()


def test_val_folder_of_one_image_is_an_error(tmp_path):
    _write_images(tmp_path / "train", CLASSES, per_class=2, seed=0)
    _write_images(tmp_path / "val", ["dog"], per_class=1, seed=1)
    with pytest.raises(ValueError, match="val': cannot split 1 samples into 2 non-empty parts"):
        ImageFolderDataModule(str(tmp_path)).setup()
