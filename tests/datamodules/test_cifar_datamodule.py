"""CIFAR-10/100 read through torchvision's classes from a tiny CIFAR-layout folder."""

import pickle

import numpy as np
import pytest
import torch
import torchvision

from datamodules import CIFAR10DataModule, CIFAR100DataModule

CASES = [
    pytest.param(CIFAR10DataModule, "cifar10", 10, "cifar-10-batches-py", id="cifar10"),
    pytest.param(CIFAR100DataModule, "cifar100", 100, "cifar-100-python", id="cifar100"),
]


def _unnormalise(dm, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(dm.mean).view(-1, 1, 1)
    std = torch.tensor(dm.std).view(-1, 1, 1)
    return images * std + mean


@pytest.mark.parametrize("cls, name, num_classes, folder", CASES)
def test_loads_fake_folder(tmp_path, no_network, cifar_writers, cls, name, num_classes, folder):
    (train_data, train_labels), (test_data, test_labels) = cifar_writers[name](tmp_path)
    dm = cls(data_dir=str(tmp_path), val_fraction=0.2, batch_size=8, num_workers=0)
    assert (dm.num_classes, dm.num_channels, dm.image_size) == (num_classes, 3, 32)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == len(train_labels)
    assert len(dm.val_set) == round(0.2 * len(train_labels))
    assert dm.test_set is None  # test batch is only read for the test stage
    dm.setup("test")
    assert len(dm.test_set) == len(test_labels)
    assert len(dm.classes) == num_classes

    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64

    # Unaugmented test images round-trip exactly: channel-major layout, order, labels.
    images, labels = next(iter(dm.test_dataloader()))
    expected = torch.from_numpy(test_data[:8].reshape(-1, 3, 32, 32)).float() / 255
    torch.testing.assert_close(_unnormalise(dm, images), expected, atol=1e-5, rtol=0)
    assert labels.tolist() == test_labels[:8].tolist()


def test_cifar10_class_names_and_val_round_trip(tmp_path, cifar_writers):
    (train_data, train_labels), _ = cifar_writers["cifar10"](tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), val_fraction=0.2, num_workers=0)
    dm.setup("fit")
    assert dm.classes[:2] == ["airplane", "automobile"]
    # Each val sample is some training image with its own label.
    images = train_data.reshape(-1, 3, 32, 32)
    for i in range(len(dm.val_set)):
        image, label = dm.val_set[i]
        raw = torch.round(_unnormalise(dm, image) * 255).to(torch.uint8).numpy()
        hits = np.flatnonzero((images == raw).all(axis=(1, 2, 3)))
        assert len(hits) == 1 and train_labels[hits[0]] == int(label)


@pytest.mark.parametrize("cls, name, num_classes, folder", CASES)
def test_split_is_seeded(tmp_path, cifar_writers, cls, name, num_classes, folder):
    cifar_writers[name](tmp_path)

    def val_indices(seed):
        dm = cls(data_dir=str(tmp_path), val_fraction=0.2, seed=seed)
        dm.setup("fit")
        return dm.val_set.indices

    assert val_indices(0) == val_indices(0)
    assert val_indices(0) != val_indices(1)


def test_augment_flag(tmp_path, cifar_writers):
    cifar_writers["cifar10"](tmp_path)
    plain = CIFAR10DataModule(data_dir=str(tmp_path), augment=False)
    plain.setup("fit")
    assert torch.equal(plain.train_set[0][0], plain.train_set[0][0])
    augmented = CIFAR10DataModule(data_dir=str(tmp_path), augment=True)
    augmented.setup("fit")
    torch.manual_seed(0)
    draws = [augmented.train_set[0][0] for _ in range(10)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    assert torch.equal(augmented.val_set[0][0], augmented.val_set[0][0])


@pytest.mark.parametrize("cls, name, num_classes, folder", CASES)
def test_missing_data_error(tmp_path, no_network, cls, name, num_classes, folder):
    dm = cls(data_dir=str(tmp_path))
    for step in (dm.prepare_data, lambda: dm.setup("fit")):
        with pytest.raises(FileNotFoundError) as info:
            step()
        message = str(info.value)
        assert str(tmp_path / folder) in message
        assert "download=True" in message and "--data.download true" in message


def test_missing_single_file_is_named(tmp_path, cifar_writers):
    cifar_writers["cifar10"](tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing: data_batch_3\\)"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("fit")


def test_reads_through_torchvision(tmp_path, cifar_writers, monkeypatch):
    cifar_writers["cifar100"](tmp_path)
    built = []
    original = torchvision.datasets.CIFAR100

    class RecordingCIFAR100(original):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(CIFAR100DataModule, "dataset_class", RecordingCIFAR100)
    dm = CIFAR100DataModule(data_dir=str(tmp_path))
    dm.setup()
    assert built == [{"train": True, "download": False}, {"train": False, "download": False}]
    assert dm.classes[:2] == ["class_0", "class_1"]


def test_altered_file_fails_the_integrity_check(tmp_path, cifar_writers):
    cifar_writers["cifar10"](tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    with open(batch, "wb") as f:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [3, 5]}, f)
    with pytest.raises(RuntimeError, match="fail torchvision's integrity \\(md5\\) check"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("fit")


def _forbid_download(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("no download may be attempted")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", forbidden)


def test_download_false_never_downloads(tmp_path, no_network, monkeypatch):
    _forbid_download(monkeypatch)
    with pytest.raises(FileNotFoundError):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).prepare_data()


def test_download_true_keeps_intact_files(tmp_path, no_network, monkeypatch, cifar_writers):
    cifar_writers["cifar100"](tmp_path)
    _forbid_download(monkeypatch)
    dm = CIFAR100DataModule(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    dm.setup("test")
    assert len(dm.test_set) == 20


@pytest.mark.parametrize("cls, name, num_classes, folder", CASES)
def test_download_true_fetches_missing_data(
    tmp_path, no_network, monkeypatch, cifar_writers, cls, name, num_classes, folder
):
    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((download_root, filename))
        cifar_writers[name](tmp_path)

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fake_download)
    dm = cls(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    assert calls == [(str(tmp_path), cls.archive_name)]
    dm.setup("fit")
    assert len(dm.train_set) > 0


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_every_split_must_be_non_empty(fraction):
    with pytest.raises(ValueError, match=f"split fractions must lie in \\(0, 1\\).*got {fraction}"):
        CIFAR10DataModule(val_fraction=fraction)
