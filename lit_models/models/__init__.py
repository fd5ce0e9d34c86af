"""Ready networks for the paper's applications, built on torchvision definitions.

=============================  ==================================================
:class:`SmallResNet`           narrow ResNet, ZCA stem + covariance head (default)
:class:`ZCAResNet`             ResNet with ZCABatchNorm (decorrelated BN)
:class:`ISqrtCovResNet`        ResNet with the iSQRT-COV head
:class:`SoViT`                 ViT with the So-ViT second-order head
=============================  ==================================================

Each takes ``num_classes`` and ``in_channels`` (which the CLI fills in from the
datamodule) and a ``backend`` passed down to the square-root layers. None
downloads weights.
"""

from .isqrt_cov_resnet import ISqrtCovResNet
from .small_resnet import SmallResNet
from .so_vit import SoViT
from .zca_resnet import ZCAResNet

__all__ = ["ISqrtCovResNet", "SmallResNet", "SoViT", "ZCAResNet"]
