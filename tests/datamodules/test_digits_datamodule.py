import pytest
import torch

from datamodules import DigitsDataModule
from datamodules.digits import random_shift

from tests.datamodules.conftest import split_tensors


def _setup(**kwargs) -> DigitsDataModule:
    dm = DigitsDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_all_1797_digits_split_by_fraction(no_network):
    dm = _setup(val_fraction=0.1, test_fraction=0.2)
    sizes = len(dm.train_set), len(dm.val_set), len(dm.test_set)
    assert sizes == (1258, 180, 359)
    assert sum(sizes) == 1797
    all_labels = torch.cat([split_tensors(s)[1] for s in (dm.train_set, dm.val_set, dm.test_set)])
    counts = torch.bincount(all_labels, minlength=10)
    assert counts.numel() == 10 and counts.min() >= 170  # the real digits are ~180 per class


def test_batch_shapes_and_properties():
    dm = _setup(batch_size=16)
    assert (dm.num_classes, dm.num_channels, dm.image_size) == (10, 3, 32)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (16,) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() < 10
    images, _ = next(iter(dm.test_dataloader()))
    assert images.shape[1:] == (3, 32, 32)
    # Grayscale repeated, not three different channels.
    assert torch.equal(images[:, 0], images[:, 2])


def test_one_channel_and_other_size():
    dm = _setup(num_channels=1, image_size=16, batch_size=8)
    images, _ = next(iter(dm.val_dataloader()))
    assert images.shape == (8, 1, 16, 16)
    assert dm.num_channels == 1 and dm.image_size == 16


def test_normalised_with_train_statistics():
    dm = _setup(augment=False)
    train = split_tensors(dm.train_set)[0]
    assert abs(train.mean().item()) < 1e-4
    assert abs(train.std().item() - 1.0) < 1e-4
    # Statistics of the raw [0, 1] pixels, exposed for de-normalising.
    assert isinstance(dm.mean, float) and 0.1 < dm.mean < 0.6 and 0.1 < dm.std < 0.6


def test_split_is_seeded():
    a, b, c = _setup(seed=0), _setup(seed=0), _setup(seed=1)
    assert torch.equal(split_tensors(a.val_set)[0], split_tensors(b.val_set)[0])
    assert torch.equal(split_tensors(a.test_set)[1], split_tensors(b.test_set)[1])
    assert not torch.equal(split_tensors(a.val_set)[0], split_tensors(c.val_set)[0])


def test_augment_flag():
    plain = _setup(augment=False)
    assert torch.equal(plain.train_set[0][0], plain.train_set[0][0])
    augmented = _setup(augment=True, max_shift=2)
    torch.manual_seed(0)
    draws = [augmented.train_set[0][0] for _ in range(10)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    # Val and test are never augmented.
    assert torch.equal(augmented.val_set[3][0], augmented.val_set[3][0])


def test_random_shift_is_a_translation_with_fill():
    image = torch.arange(1.0, 37.0).reshape(1, 6, 6)
    assert random_shift(image, 0) is image
    torch.manual_seed(0)
    for _ in range(20):
        shifted = random_shift(image, max_shift=2, fill=-1.0)
        assert shifted.shape == image.shape
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                expected = torch.full_like(image, -1.0)
                src = image[:, max(0, -dy) : 6 - max(0, dy), max(0, -dx) : 6 - max(0, dx)]
                expected[:, max(0, dy) : 6 - max(0, -dy), max(0, dx) : 6 - max(0, -dx)] = src
                matches.append(torch.equal(shifted, expected))
        assert sum(matches) == 1


def test_bad_arguments_rejected():
    with pytest.raises(ValueError):
        DigitsDataModule(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError):
        DigitsDataModule(num_channels=0)


def test_dataloader_before_setup_raises():
    with pytest.raises(RuntimeError, match="setup"):
        DigitsDataModule().train_dataloader()
