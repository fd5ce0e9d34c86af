"""Seeded train/val/test splitting shared by the datamodules.

Every split holds at least one sample: a held-out fraction that rounds to zero
items still gets one, and a dataset too small to give every part one sample is an
error that says so (rather than an empty split that Lightning skips with a warning).
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


def split_sizes(total: int, *fractions: float) -> list[int]:
    """Sizes of a split of ``total`` items: the remainder first, then one per fraction.

    Each held-out part gets ``round(total * fraction)`` items, but at least one, and
    the remainder must keep at least one too.

    Args:
        total (int): number of items to split.
        *fractions (float): fraction of ``total`` for each held-out part, each in
            ``(0, 1)``; together they must sum to less than one.

    Returns:
        list[int]: ``[remainder, *held_out]``, summing to ``total``, each >= 1.

    Raises:
        ValueError: a fraction outside ``(0, 1)``, fractions summing to one or more,
            or ``total`` too small for one item per part.

    Example:
        >>> split_sizes(1797, 0.1, 0.2)
        [1258, 180, 359]
        >>> split_sizes(12, 0.05, 0.05)  # 0.6 items each, rounded up to one
        [10, 1, 1]
    """
    for fraction in fractions:
        if not 0.0 < fraction < 1.0:
            raise ValueError(
                f"split fractions must lie in (0, 1) so that every split has samples, "
                f"got {fraction}"
            )
    if sum(fractions) >= 1.0:
        raise ValueError(f"split fractions {list(fractions)} must sum to less than 1")
    held_out = [max(1, round(total * fraction)) for fraction in fractions]
    remainder = total - sum(held_out)
    if remainder < 1:
        raise ValueError(
            f"cannot split {total} samples into {len(fractions) + 1} non-empty parts "
            f"(fractions {list(fractions)}): every split needs at least one sample"
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


class TransformedSubset(Dataset):
    """A subset of a dataset of ``(image, label)`` pairs with its own image transform.

    Lets the splits cut from one dataset use different transforms (an augmented
    train split, plain val and test splits) while sharing its storage.

    Args:
        dataset (Dataset): source dataset, returning untransformed images.
        indices (Sequence[int]): indices into ``dataset``.
        transform (Callable, optional): applied to each image. Default: ``None``.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> source = TensorDataset(torch.arange(5.0), torch.arange(5))
        >>> subset = TransformedSubset(source, [4, 1], transform=lambda x: -x)
        >>> len(subset), subset[0]
        (2, (tensor(-4.), tensor(4)))
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: Sequence[int],
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, label = self.dataset[self.indices[index]]
        if self.transform is not None:
            image = self.transform(image)
        return image, label


def split_dataset(
    dataset: Dataset,
    fractions: Sequence[float],
    seed: int,
    transforms: Sequence[Callable[[Any], Any] | None],
) -> list[TransformedSubset]:
    """Split a dataset at random into non-empty parts, each with its own transform.

    The first part is what the fractions leave (see :func:`split_sizes`); the split
    depends on ``seed`` alone.

    Args:
        dataset (Dataset): source of untransformed ``(image, label)`` pairs.
        fractions (Sequence[float]): fraction of the dataset for each held-out part.
        seed (int): seed of the split.
        transforms (Sequence[Callable or None]): one image transform per part,
            ``len(fractions) + 1`` in all.

    Returns:
        list[TransformedSubset]: ``[remainder, *held_out]``.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> source = TensorDataset(torch.zeros(10, 1), torch.arange(10))
        >>> train, val = split_dataset(source, [0.2], seed=0, transforms=[None, None])
        >>> len(train), len(val), sorted(train.indices + val.indices) == list(range(10))
        (8, 2, True)
    """
    if len(transforms) != len(fractions) + 1:
        raise ValueError(
            f"need one transform per part ({len(fractions) + 1}), got {len(transforms)}"
        )
    try:
        sizes = split_sizes(len(dataset), *fractions)
    except ValueError as error:
        # Name the folder of an on-disk dataset (torchvision datasets keep it as root).
        root = getattr(dataset, "root", None)
        if root is None:
            raise
        raise ValueError(f"'{root}': {error}") from None
    parts = random_split_indices(sizes, seed)
    return [TransformedSubset(dataset, part, t) for part, t in zip(parts, transforms)]
