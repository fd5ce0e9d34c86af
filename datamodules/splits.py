"""Seeded train/val/test splitting shared by the datamodules."""

from collections.abc import Sequence

import torch
from torch import Tensor


def split_sizes(total: int, *fractions: float) -> list[int]:
    """Sizes of a split of ``total`` items: the remainder first, then one per fraction.

    Args:
        total (int): number of items to split.
        *fractions (float): fraction of ``total`` for each held-out part, each in
            ``[0, 1)``; together they must leave at least one item for the remainder.

    Returns:
        list[int]: ``[remainder, *held_out]``, summing to ``total``.

    Example:
        >>> split_sizes(1797, 0.1, 0.2)
        [1258, 180, 359]
    """
    for fraction in fractions:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"split fractions must lie in [0, 1), got {fraction}")
    if sum(fractions) >= 1.0:
        raise ValueError(f"split fractions {list(fractions)} must sum to less than 1")
    held_out = [round(total * fraction) for fraction in fractions]
    remainder = total - sum(held_out)
    if remainder < 1:
        raise ValueError(
            f"fractions {list(fractions)} leave no items of {total} for the first split"
        )
    return [remainder, *held_out]


def random_split_indices(sizes: Sequence[int], seed: int) -> list[Tensor]:
    """Disjoint random index sets of the given sizes over ``range(sum(sizes))``.

    A private generator is used so the split depends on ``seed`` alone, not on
    the global RNG state that training code reseeds and consumes.

    Args:
        sizes (Sequence[int]): size of each part.
        seed (int): seed of the permutation.

    Returns:
        list[Tensor]: one int64 index tensor per part.

    Example:
        >>> train_idx, val_idx = random_split_indices([8, 2], seed=0)
        >>> len(train_idx), len(val_idx)
        (8, 2)
    """
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(sum(sizes), generator=generator)
    return list(permutation.split(list(sizes)))
