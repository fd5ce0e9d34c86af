import pytest
import torch

from datamodules.splits import random_split_indices, split_sizes


def test_split_sizes_sum_and_order():
    assert split_sizes(1797, 0.1, 0.2) == [1258, 180, 359]
    assert split_sizes(10, 0.0) == [10, 0]


@pytest.mark.parametrize("fractions", [(1.0,), (-0.1,), (0.6, 0.4), (0.5, 0.5)])
def test_split_sizes_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError):
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
