"""Fixtures for the datamodule tests: fake on-disk datasets and a network guard."""

import pickle
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

# Let `pytest tests/datamodules` import the package from a plain checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_fake_cifar10(root: Path, per_batch: int = 10, num_test: int = 12, seed: int = 0):
    """Write a tiny CIFAR-10 in torchvision's layout; return its (train, test) arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_data, train_labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"x", b"data": data, b"labels": labels})
        train_data.append(data)
        train_labels += labels
    test_data = rng.integers(0, 256, (num_test, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, 10, num_test).tolist()
    _dump(folder / "test_batch", {b"data": test_data, b"labels": test_labels})
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
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
        _dump(folder / name, {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse})
        arrays.append((data, np.array(fine)))
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [f"class_{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"super_{i}".encode() for i in range(20)],
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
