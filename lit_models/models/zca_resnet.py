"""ResNet whose first (or every) BatchNorm is a ZCA-whitening ZCABatchNorm (DBN)."""

from typing import Literal

from torchvision.models.resnet import ResNet

from sqrtlayers import DEFAULT_BACKEND, SqrtmBackend
from sqrtlayers.layers import convert_zca_batchnorm

from ..network_config import records_config
from .resnet_stem import ResNetArch, replace_resnet_stem, resnet_spec


@records_config
class ZCAResNet(ResNet):
    """A torchvision ResNet with decorrelated batch normalisation (the DBN experiment).

    The network is :class:`torchvision.models.ResNet` of the given depth; with
    ``small_input`` (default) its stem is the CIFAR one (3x3 stride-1 convolution,
    no max-pool), so 32x32 images work well, and any input size works. Then
    :func:`~sqrtlayers.layers.convert_zca_batchnorm` replaces the first BatchNorm
    (``bn1`` after the stem convolution; the paper's setting) or all of them by
    :class:`~sqrtlayers.layers.ZCABatchNorm`. No weights are downloaded.

    Args:
        num_classes (int): number of logits.
        in_channels (int): channels of the input images. Default: ``3``.
        arch (str): ``"resnet18"`` ... ``"resnet152"``. Default: ``"resnet18"``.
        small_input (bool): CIFAR stem instead of the ImageNet one. Default: ``True``.
        zca_layers (str): ``"first"`` BatchNorm only or ``"all"``. Default: ``"first"``.
        group_size (int, optional): channels whitened together, ``None`` for all the
            channels of a layer (the first layer has 64: one 64x64 matrix, as in the
            paper). With ``zca_layers="all"`` use a small group, e.g. 16: a later layer
            has up to 2048 channels. Default: ``None``.
        backend (str or SqrtmBackend): square-root backend of the whitening.
            Default: :data:`~sqrtlayers.DEFAULT_BACKEND`.
        eps (float): covariance ridge of the whitening, relative to each group's mean
            variance. Default: ``1e-5``.
        momentum (float): running-statistics momentum. Default: ``0.1``.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import ZCABatchNorm
        >>> net = ZCAResNet(num_classes=10, backend="eigh")
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> isinstance(net.bn1, ZCABatchNorm), net.bn1.group_size
        (True, 64)

    Reference: Huang et al., "Decorrelated Batch Normalization", CVPR 2018; Song,
    Sebe, Wang, "Fast Differentiable Matrix Square Root", ICLR 2022 (Sec. 5.1).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        arch: ResNetArch = "resnet18",
        small_input: bool = True,
        zca_layers: Literal["first", "all"] = "first",
        group_size: int | None = None,
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        if zca_layers not in ("first", "all"):
            raise ValueError(f"zca_layers must be 'first' or 'all', got {zca_layers!r}")
        block, layers = resnet_spec(arch)
        super().__init__(block, layers, num_classes=num_classes)
        replace_resnet_stem(self, in_channels, small_input)
        convert_zca_batchnorm(
            self,
            first_only=zca_layers == "first",
            group_size=group_size,
            backend=backend,
            eps=eps,
            momentum=momentum,
        )
