"""Fixtures for the datamodule tests: fake on-disk datasets and a network guard."""

import hashlib
import pickle
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.cifar

# Let `pytest tests/datamodules` import the package from a plain checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


#: md5 of every fake CIFAR file written by this session, by path: the files torchvision's
#: integrity check is told to accept (see ``accept_fake_cifar``).
FAKE_CIFAR_MD5: dict[str, str] = {}


def _md5(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def _dump(path: Path, obj: dict) -> None:
    # str keys, as the official (Python 2) pickles decode under latin1.
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    FAKE_CIFAR_MD5[str(path)] = _md5(path)


@pytest.fixture(autouse=True)
def accept_fake_cifar(monkeypatch):
    """Let torchvision's CIFAR md5 check pass for the fake files, unchanged since written.

    Test-only: the library never bypasses the check. Any other file (or a fake one
    altered after writing) goes through torchvision's own check.
    """
    original = torchvision.datasets.cifar.check_integrity

    def check_integrity(fpath: str, md5: str | None = None) -> bool:
        recorded = FAKE_CIFAR_MD5.get(str(fpath))
        if recorded is not None and Path(fpath).is_file():
            return _md5(fpath) == recorded
        return original(fpath, md5)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", check_integrity)


def write_fake_cifar10(root: Path, per_batch: int = 10, num_test: int = 12, seed: int = 0):
    """Write a tiny CIFAR-10 in torchvision's layout; return its (train, test) arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_data, train_labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        _dump(folder / f"data_batch_{i}", {"batch_label": "x", "data": data, "labels": labels})
        train_data.append(data)
        train_labels += labels
    test_data = rng.integers(0, 256, (num_test, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, 10, num_test).tolist()
    _dump(folder / "test_batch", {"data": test_data, "labels": test_labels})
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"label_names": names, "num_vis": 3072})
    return (np.concatenate(train_data), np.array(train_labels)), (test_data, np.array(test_labels))


def write_fake_cifar100(root: Path, num_train: int = 60, num_test: int = 20, seed: int = 0):
    """Write a tiny CIFAR-100 in torchvision's layout; return its (train, test) arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    arrays = []
    for name, n in (("train", num_train), ("test", num_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        coarse = [label // 5 for label in fine]
        _dump(folder / name, {"data": data, "fine_labels": fine, "coarse_labels": coarse})
        arrays.append((data, np.array(fine)))
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"class_{i}" for i in range(100)],
            "coarse_label_names": [f"super_{i}" for i in range(20)],
        },
    )
    return tuple(arrays)


@pytest.fixture
def no_network(monkeypatch):
    """Make any attempt to open a network connection fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def cifar_writers():
    """The fake-CIFAR writers, by dataset name, for tests that write on demand."""
    return {"cifar10": write_fake_cifar10, "cifar100": write_fake_cifar100}


def split_tensors(split) -> tuple:
    """``(images, labels)`` of an in-memory split (a subset of a ``TensorDataset``), untransformed."""
    images, labels = split.dataset.tensors
    return images[split.indices], labels[split.indices]
