import pytest
import torch

from datamodules import SyntheticDataModule

from tests.datamodules.conftest import split_tensors


def test_shapes_sizes_and_properties():
    dm = SyntheticDataModule(
        num_samples=200, num_classes=5, image_size=12, num_channels=1, batch_size=10
    )
    assert (dm.num_classes, dm.num_channels, dm.image_size) == (5, 1, 12)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (160, 20, 20)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (10, 1, 12, 12) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.max() < 5


def test_seeded_data_and_split():
    def make(seed):
        dm = SyntheticDataModule(num_samples=100, seed=seed)
        dm.setup()
        return dm

    a, b, c = make(0), make(0), make(1)
    assert torch.equal(split_tensors(a.train_set)[0], split_tensors(b.train_set)[0])
    assert torch.equal(split_tensors(a.test_set)[1], split_tensors(b.test_set)[1])
    assert not torch.equal(split_tensors(a.train_set)[0], split_tensors(c.train_set)[0])


def test_labels_are_learnable():
    dm = SyntheticDataModule(num_samples=600, num_classes=6, noise=1.0, seed=3)
    dm.setup()
    x_train, y_train = split_tensors(dm.train_set)[0].flatten(1), split_tensors(dm.train_set)[1]
    centroids = torch.stack([x_train[y_train == k].mean(0) for k in range(6)])
    x_test, y_test = split_tensors(dm.test_set)[0].flatten(1), split_tensors(dm.test_set)[1]
    predicted = torch.cdist(x_test, centroids).argmin(1)
    assert (predicted == y_test).float().mean() > 0.9


def test_bad_arguments_rejected():
    with pytest.raises(ValueError):
        SyntheticDataModule(num_classes=0)
    with pytest.raises(ValueError):
        SyntheticDataModule(val_fraction=0.7, test_fraction=0.3)
