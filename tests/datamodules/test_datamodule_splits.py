"""Seeded splitting: sizes, non-empty parts, seeds, and the per-part transforms."""

import pytest
import torch
from torch.utils.data import TensorDataset

from datamodules.splits import random_split_indices, split_dataset, split_sizes


def test_split_sizes_sum_and_order():
    assert split_sizes(1797, 0.1, 0.2) == [1258, 180, 359]
    assert split_sizes(30, 0.1, 0.1) == [24, 3, 3]


@pytest.mark.parametrize(("total", "fractions", "sizes"), [(12, (0.05, 0.05), [10, 1, 1]),
                                                          (3, (0.01, 0.01), [1, 1, 1]),
                                                          (2, (0.4,), [1, 1])])
def test_split_sizes_give_every_part_one_item(total, fractions, sizes):
    assert split_sizes(total, *fractions) == sizes


@pytest.mark.parametrize(("total", "fractions"), [(2, (0.1, 0.1)), (1, (0.5,)), (0, (0.1,))])
def test_split_sizes_too_few_items_is_an_error(total, fractions):
    expected = f"cannot split {total} samples into {len(fractions) + 1} non-empty parts"
    with pytest.raises(ValueError, match=expected):
        split_sizes(total, *fractions)


@pytest.mark.parametrize("fractions", [(1.0,), (-0.1,), (0.0,), (0.6, 0.4), (0.5, 0.5)])
def test_split_sizes_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="split fractions"):
        split_sizes(100, *fractions)


def test_random_split_indices_partition_and_seed():
    parts = random_split_indices([7, 2, 3], seed=0)
    assert [len(p) for p in parts] == [7, 2, 3]
    assert sorted(torch.cat(parts).tolist()) == list(range(12))
    again = random_split_indices([7, 2, 3], seed=0)
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    other = random_split_indices([7, 2, 3], seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(parts, other))


def test_random_split_indices_ignores_global_rng():
    torch.manual_seed(0)
    first = random_split_indices([5, 5], seed=3)
    torch.manual_seed(123)
    second = random_split_indices([5, 5], seed=3)
    assert torch.equal(first[1], second[1])


def test_split_dataset_applies_each_parts_transform():
    source = TensorDataset(torch.arange(10.0), torch.arange(10))
    train, val = split_dataset(source, [0.3], seed=0, transforms=[lambda x: x + 100, None])
    assert (len(train), len(val)) == (7, 3)
    for index in range(len(train)):
        image, label = train[index]
        assert float(image) == float(label) + 100
    assert all(float(image) == float(label) for image, label in val)


def test_split_dataset_needs_one_transform_per_part():
    with pytest.raises(ValueError, match="need one transform per part \\(3\\), got 2"):
        split_dataset(TensorDataset(torch.zeros(9)), [0.1, 0.1], seed=0, transforms=[None, None])
