"""Depth table and input stem of the torchvision ResNets that the model classes extend."""

from typing import Literal

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

#: Depths accepted by the ResNet model classes.
ResNetArch = Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

# The block type and blocks per stage of torchvision's resnet18 ... resnet152 builders.
_RESNET_SPECS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


def resnet_spec(arch: str) -> tuple[type[BasicBlock | Bottleneck], list[int]]:
    """Block type and blocks per stage of a torchvision ResNet depth.

    Args:
        arch (str): ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``
            or ``"resnet152"``.

    Returns:
        tuple: the block class and the list of four stage depths, as
        :class:`torchvision.models.ResNet` takes them.

    Example:
        >>> block, layers = resnet_spec("resnet18")
        >>> block.__name__, layers
        ('BasicBlock', [2, 2, 2, 2])
    """
    try:
        block, layers = _RESNET_SPECS[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; choose one of {list(_RESNET_SPECS)}") from None
    return block, list(layers)


def replace_resnet_stem(resnet: ResNet, in_channels: int = 3, small_input: bool = False) -> None:
    """Adapt a torchvision ResNet's stem to the input, in place.

    With ``small_input`` the 7x7 stride-2 convolution becomes a 3x3 stride-1 one and
    the max-pool is removed (the CIFAR ResNet stem): 32x32 images then reach the last
    stage at 4x4 instead of 1x1. The first convolution also takes ``in_channels``.
    A replaced convolution is initialised as torchvision initialises it.

    Args:
        resnet (ResNet): the network to change.
        in_channels (int): channels of the input images. Default: ``3``.
        small_input (bool): use the CIFAR stem. Default: ``False``.

    Example:
        >>> from torchvision.models import resnet18
        >>> net = resnet18(num_classes=10)
        >>> replace_resnet_stem(net, in_channels=1, small_input=True)
        >>> net.conv1, net.maxpool
        (Conv2d(1, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False), Identity())
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if not small_input and in_channels == resnet.conv1.in_channels:
        return
    width = resnet.conv1.out_channels
    if small_input:
        resnet.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        resnet.maxpool = nn.Identity()
    else:
        resnet.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
