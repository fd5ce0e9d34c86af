"""ResNet with the iSQRT-COV global covariance pooling head."""

from torchvision.models.resnet import ResNet

from sqrtlayers import DEFAULT_POOLING_BACKEND, SqrtmBackend
from sqrtlayers.layers import attach_isqrt_cov_head
from sqrtlayers.layers.isqrt_cov_head import ISQRT_COV_REDUCED_DIM

from ..network_config import records_config
from .resnet_stem import ResNetArch, replace_resnet_stem, resnet_spec


@records_config
class ISqrtCovResNet(ResNet):
    """A torchvision ResNet whose average pooling and classifier are the iSQRT-COV head.

    The network is :class:`torchvision.models.ResNet` of the given depth, with
    :func:`~sqrtlayers.layers.attach_isqrt_cov_head`: a 1x1 convolution reduces the
    last feature map to ``reduced_dim`` channels (+ BatchNorm + ReLU), their
    covariance is square-root normalised by ``backend``, and a linear layer classifies
    its upper triangle. The last stage keeps stride ``last_stride`` (1 in iSQRT-COV,
    so more positions enter the covariance). No weights are downloaded.

    Args:
        num_classes (int): number of logits.
        in_channels (int): channels of the input images. Default: ``3``.
        arch (str): ``"resnet18"`` ... ``"resnet152"``. Default: ``"resnet50"``.
        small_input (bool): CIFAR stem (3x3 stride-1 convolution, no max-pool) for
            small images instead of the ImageNet one. Default: ``False``.
        reduced_dim (int, optional): channels after the reduction, ``None`` for none.
            Default: the head's, :data:`~sqrtlayers.layers.isqrt_cov_head.ISQRT_COV_REDUCED_DIM`.
        last_stride (int): stride of the last stage, 1 or 2. Default: ``1``.
        backend (str or SqrtmBackend): square-root backend of the pooling.
            Default: :data:`~sqrtlayers.DEFAULT_POOLING_BACKEND`.
        dropout (float): dropout before the classifier. Default: ``0.0``.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> net = ISqrtCovResNet(num_classes=10, arch="resnet18", small_input=True,
        ...                      reduced_dim=32, backend="mpa-lya")
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])

    Reference: Li, Xie, Wang, Gao, "Towards Faster Training of Global Covariance
    Pooling Networks by Iterative Matrix Square Root Normalization", CVPR 2018.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        arch: ResNetArch = "resnet50",
        small_input: bool = False,
        reduced_dim: int | None = ISQRT_COV_REDUCED_DIM,
        last_stride: int = 1,
        backend: str | SqrtmBackend = DEFAULT_POOLING_BACKEND,
        dropout: float = 0.0,
    ) -> None:
        block, layers = resnet_spec(arch)
        super().__init__(block, layers, num_classes=num_classes)
        replace_resnet_stem(self, in_channels, small_input)
        attach_isqrt_cov_head(
            self,
            num_classes,
            reduced_dim=reduced_dim,
            last_stride=last_stride,
            backend=backend,
            dropout=dropout,
        )
