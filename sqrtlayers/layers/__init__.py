"""Layers built on the matrix square root: decorrelated batch norm, covariance-pooling heads,
whitening and colouring.

================================  ==========================================================
:class:`ZCABatchNorm`             ZCA-whitening batch norm (DBN), drop-in for BatchNorm1d/2d/3d
:class:`ZCABatchNormAct`          it, then dropout/activation modules (timm's norm-act layers)
:func:`zca_batch_norm`            its functional form
:func:`convert_zca_batchnorm`     swap a model's BatchNorm layers for it
:func:`set_zca_sync`              all-reduce its moments across DDP ranks (or stop)
:func:`recompute_running_stats`   recompute BatchNorm/ZCA running statistics over a loader
:class:`CovariancePooling`        square-root normalised covariance pooling (iSQRT-COV)
:class:`ISqrtCovHead`             reduction + covariance pooling + classifier (iSQRT-COV)
:func:`attach_isqrt_cov_head`     put it on a timm CNN or a torchvision ResNet
:class:`SecondOrderViTHead`       class-token + covariance-pooled-token classifier (So-ViT)
:func:`attach_so_vit_head`        wrap a timm or torchvision vision transformer with it
:class:`WhiteningColoring`        whitening and colouring transform (WCT, grouped as GD-WCT)
:func:`whitening_coloring`        its functional form
:func:`gaussian_transport_map`    the optimal transport (Monge) map between two Gaussians
:func:`frechet_distance`          the squared 2-Wasserstein distance between them (FID)
:class:`StyleTransfer`            universal style transfer: encoder, WCT per level, decoders
:func:`vgg19_encoder`             its default encoder, VGG-19 cut at relu1_1 ... relu5_1
:func:`mirror_decoder`            a decoder mirroring an encoder's stages
================================  ==========================================================
"""

from .covariance_pooling import CovariancePooling, covariance_pool, triu_dim
from .gaussian_transport import GaussianTransportMap, frechet_distance, gaussian_transport_map
from .isqrt_cov_head import ISqrtCovHead, ISqrtCovNet, attach_isqrt_cov_head
from .so_vit_head import SecondOrderViT, SecondOrderViTHead, attach_so_vit_head
from .style_transfer import StyleTransfer
from .vgg_encoder import mirror_decoder, vgg19_encoder
from .whitening_coloring import WhiteningColoring, whitening_coloring
from .running_stats import recompute_running_stats
from .zca_batchnorm import ZCABatchNorm, ZCABatchNormAct
from .zca_conversion import convert_zca_batchnorm, set_zca_sync
from .zca_functional import zca_batch_norm

__all__ = [
    "zca_batch_norm",
    "ZCABatchNorm",
    "ZCABatchNormAct",
    "convert_zca_batchnorm",
    "set_zca_sync",
    "recompute_running_stats",
    "covariance_pool",
    "triu_dim",
    "CovariancePooling",
    "ISqrtCovHead",
    "ISqrtCovNet",
    "attach_isqrt_cov_head",
    "SecondOrderViTHead",
    "SecondOrderViT",
    "attach_so_vit_head",
    "whitening_coloring",
    "WhiteningColoring",
    "gaussian_transport_map",
    "GaussianTransportMap",
    "frechet_distance",
    "StyleTransfer",
    "vgg19_encoder",
    "mirror_decoder",
]
