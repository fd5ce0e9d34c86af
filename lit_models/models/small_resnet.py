"""A narrow CIFAR-style ResNet with a ZCA-whitened stem and a covariance-pooling head."""

from typing import Literal

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, conv1x1, conv3x3

from sqrtlayers import DEFAULT_BACKEND, SqrtmBackend
from sqrtlayers.layers import ISqrtCovHead, convert_zca_batchnorm

from ..network_config import records_config


def _stage(in_width: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` torchvision BasicBlocks, the first changing width and resolution."""
    downsample = None
    if stride != 1 or in_width != width:
        downsample = nn.Sequential(conv1x1(in_width, width, stride), nn.BatchNorm2d(width))
    layers = [BasicBlock(in_width, width, stride, downsample)]
    layers += [BasicBlock(width, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


@records_config
class SmallResNet(nn.Module):
    """A narrow ResNet for small images: the fast default model of this package.

    A 3x3 stem convolution + norm + ReLU, then per width a stage of torchvision
    :class:`~torchvision.models.resnet.BasicBlock` layers (the first stage at stride
    1, the others at stride 2), then the head. By default the stem norm is a
    :class:`~sqrtlayers.layers.ZCABatchNorm` and the head is the iSQRT-COV
    covariance-pooling head (:class:`~sqrtlayers.layers.ISqrtCovHead`), both with
    ``backend``: the package's two layers in one network that trains on the
    embedded digits in minutes on a CPU. ``zca_layers="none"`` and
    ``head="average"`` give the first-order baseline (BatchNorm, average pooling).

    Args:
        num_classes (int): number of logits.
        in_channels (int): channels of the input images. Default: ``3``.
        widths (tuple[int, ...]): channels of each stage. Default: ``(16, 32, 64)``.
        blocks (tuple[int, ...]): BasicBlocks per stage, one per width.
            Default: ``(1, 1, 1)``.
        zca_layers (str): BatchNorms to replace by ZCABatchNorm: the ``"first"`` (stem)
            one, ``"all"``, or ``"none"``. Default: ``"first"``.
        head (str): ``"covariance"`` (iSQRT-COV head) or ``"average"`` (global average
            pooling + linear). Default: ``"covariance"``.
        reduced_dim (int): channels entering the covariance of the covariance head.
            Default: ``32`` (528 pooled features).
        group_size (int, optional): channels whitened together by the ZCA layers,
            ``None`` for all the channels of a layer. Default: ``None``.
        backend (str or SqrtmBackend): square-root backend of the ZCA layers and the
            covariance head. Default: :data:`~sqrtlayers.DEFAULT_BACKEND`.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> net = SmallResNet(num_classes=10, in_channels=1)
        >>> net(torch.randn(4, 1, 32, 32)).shape
        torch.Size([4, 10])
        >>> type(net.stem[1]).__name__, type(net.head).__name__
        ('ZCABatchNorm', 'ISqrtCovHead')
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64),
        blocks: tuple[int, ...] = (1, 1, 1),
        zca_layers: Literal["first", "all", "none"] = "first",
        head: Literal["covariance", "average"] = "covariance",
        reduced_dim: int = 32,
        group_size: int | None = None,
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
    ) -> None:
        super().__init__()
        if len(widths) == 0 or len(widths) != len(blocks):
            raise ValueError(f"widths and blocks must be non-empty and of one length, got {widths} and {blocks}")
        if min(*widths, *blocks, in_channels, num_classes) < 1:
            raise ValueError(
                f"widths, blocks, in_channels and num_classes must be >= 1, got {widths}, "
                f"{blocks}, {in_channels} and {num_classes}"
            )
        if zca_layers not in ("first", "all", "none"):
            raise ValueError(f"zca_layers must be 'first', 'all' or 'none', got {zca_layers!r}")
        self.stem = nn.Sequential(
            conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        in_widths = (widths[0], *widths[:-1])
        self.stages = nn.Sequential(
            *(
                _stage(in_width, width, depth, stride=1 if i == 0 else 2)
                for i, (in_width, width, depth) in enumerate(zip(in_widths, widths, blocks))
            )
        )
        if head == "covariance":
            self.head: nn.Module = ISqrtCovHead(
                widths[-1], num_classes, reduced_dim=reduced_dim, backend=backend
            )
        elif head == "average":
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)
            )
        else:
            raise ValueError(f"head must be 'covariance' or 'average', got {head!r}")
        for module in self.modules():
            # torchvision ResNet's initialisation of its convolutions.
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zca_layers != "none":
            convert_zca_batchnorm(
                self, first_only=zca_layers == "first", group_size=group_size, backend=backend
            )

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(images)))
