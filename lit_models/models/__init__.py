"""Ready networks for the paper's applications, built on torchvision or timm definitions.

=============================  ==================================================
:class:`SmallResNet`           narrow ResNet, ZCA stem + covariance head (default)
:class:`ZCAResNet`             ResNet with ZCABatchNorm (decorrelated BN)
:class:`ISqrtCovResNet`        ResNet with the iSQRT-COV head
:class:`SoViT`                 ViT with the So-ViT second-order head
:class:`TimmISqrtCov`          any timm CNN with the iSQRT-COV head
:class:`TimmSoViT`             any timm ViT/DeiT with the So-ViT head
=============================  ==================================================

Each takes ``num_classes`` and ``in_channels`` (which the CLI fills in from the
datamodule) and a ``backend`` passed down to the square-root layers. None
downloads weights, except the timm ones with ``pretrained=True`` (passed to
``timm.create_model``; timm is the optional ``sqrtlayers[timm]`` extra).
"""

from .isqrt_cov_resnet import ISqrtCovResNet
from .small_resnet import SmallResNet
from .so_vit import SoViT
from .timm_models import TimmISqrtCov, TimmSoViT
from .zca_resnet import ZCAResNet

__all__ = ["ISqrtCovResNet", "SmallResNet", "SoViT", "TimmISqrtCov", "TimmSoViT", "ZCAResNet"]
