"""Fixtures for the lit_models tests: tiny on-disk datasets, datamodules and networks."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch import nn

from datamodules import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DigitsDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    SyntheticDataModule,
)
from lit_models.models import ISqrtCovResNet, SmallResNet, SoViT, TimmISqrtCov, TimmSoViT, ZCAResNet

# The datamodule tests' fake-CIFAR writers and fixtures, reused rather than copied;
# importing the fixtures here makes them available to these tests (accept_fake_cifar
# stays autouse: torchvision's md5 check accepts the fake files).
from tests.datamodules.conftest import (  # noqa: F401
    accept_fake_cifar,
    no_network,
    write_fake_cifar10,
    write_fake_cifar100,
)

IMAGE_FOLDER_CLASSES = ("circle", "square", "stripe")


def write_image_folder(root: Path, per_class: int = 6, size: int = 20, seed: int = 0) -> Path:
    """Write ``root/train/<class>/<i>.png`` random RGB images; return ``root``."""
    rng = np.random.default_rng(seed)
    for name in IMAGE_FOLDER_CLASSES:
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding a tiny CIFAR-10, CIFAR-100 and ImageNet-style folder."""
    root = tmp_path_factory.mktemp("data")
    write_fake_cifar10(root)
    write_fake_cifar100(root)
    write_image_folder(root / "imagefolder")
    return root


#: Datamodule factories at test sizes: (data_root) -> datamodule.
DATAMODULES: dict[str, Callable[[Path], ImageDataModule]] = {
    "digits": lambda root: DigitsDataModule(image_size=16, num_channels=1, batch_size=4),
    "synthetic": lambda root: SyntheticDataModule(
        num_samples=40, num_classes=4, image_size=16, num_channels=2, batch_size=4
    ),
    "cifar10": lambda root: CIFAR10DataModule(data_dir=str(root), batch_size=4, num_workers=0),
    "cifar100": lambda root: CIFAR100DataModule(data_dir=str(root), batch_size=4, num_workers=0),
    "image_folder": lambda root: ImageFolderDataModule(
        data_dir=str(root / "imagefolder"), image_size=32, batch_size=4, num_workers=0
    ),
}


# timm is in the test extra; without it the networks below skip the test that builds them.
def timm_so_vit(classes: int, channels: int, size: int) -> nn.Module:
    """A one-block timm ViT of width 16 with the So-ViT head."""
    pytest.importorskip("timm")
    return TimmSoViT(
        classes, "vit_tiny_patch16_224", image_size=size, in_channels=channels,
        patch_size=size // 4, reduced_dim=8,
        timm_kwargs={"depth": 1, "embed_dim": 16, "num_heads": 2},
    )


def timm_isqrt_cov(classes: int, channels: int, size: int) -> nn.Module:
    """A timm ConvNeXt of one block per stage, widths 8 to 64, dilated to stride 8 (a 2x2
    map at 16 pixels), with the iSQRT-COV head."""
    pytest.importorskip("timm")
    return TimmISqrtCov(
        classes, "convnext_atto", in_channels=channels, output_stride=8, reduced_dim=8,
        backend="mpa-lya", timm_kwargs={"dims": (8, 16, 32, 64), "depths": (1, 1, 1, 1)},
    )


#: Network factories at test sizes: (num_classes, in_channels, image_size) -> network.
NETWORKS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "small_resnet": lambda classes, channels, size: SmallResNet(
        classes, channels, widths=(8, 16), blocks=(1, 1), reduced_dim=8
    ),
    "zca_resnet": lambda classes, channels, size: ZCAResNet(classes, channels, group_size=16),
    "isqrt_cov_resnet": lambda classes, channels, size: ISqrtCovResNet(
        classes, channels, arch="resnet18", small_input=True, reduced_dim=16, backend="mpa-lya"
    ),
    "so_vit": lambda classes, channels, size: SoViT(
        classes, size, channels, patch_size=size // 4, num_layers=1, num_heads=2,
        hidden_dim=16, mlp_dim=32, reduced_dim=8,
    ),
    "timm_so_vit": timm_so_vit,
    "timm_isqrt_cov": timm_isqrt_cov,
}
