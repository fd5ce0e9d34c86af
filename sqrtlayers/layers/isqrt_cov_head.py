"""The iSQRT-COV classification head, and a helper that puts it on a torchvision or timm CNN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ..backends import DEFAULT_POOLING_BACKEND, SqrtmBackend
from .backbones import is_timm_model, strip_timm_classifier, timm_feature_width, timm_unpooled_features
from .covariance_pooling import CovariancePooling
from .input_checks import check_images, check_positive_int, check_real_floating

__all__ = ["ISQRT_COV_REDUCED_DIM", "ISqrtCovHead", "ISqrtCovNet", "attach_isqrt_cov_head"]

#: Channels after the head's reduction, iSQRT-COV's 256 (32,896 pooled features).
ISQRT_COV_REDUCED_DIM = 256


class ISqrtCovHead(nn.Module):
    r"""Global covariance pooling head of iSQRT-COV: channel reduction, matrix square-root
    normalised covariance pooling, and a linear classifier.

    .. math::
        z = \operatorname{ReLU}(\operatorname{BN}(\operatorname{conv}_{1\times1}(x))),\qquad
        \text{logits} = W \operatorname{triu}\big(\Sigma(z)^{1/2}\big) + b

    Args:
        in_channels: channels of the input feature map.
        num_classes: number of logits.
        reduced_dim: channels after the 1x1 convolution (no bias) + norm + ReLU reduction, or
            ``None`` to pool the input channels directly. Default: :data:`ISQRT_COV_REDUCED_DIM`.
        backend: square-root backend, a name or a configured backend. Default:
            :data:`~sqrtlayers.DEFAULT_POOLING_BACKEND` (iSQRT-COV's coupled Newton-Schulz).
        dropout: dropout probability before the classifier. Default: ``0.0``.
        eps: covariance ridge relative to the mean variance (see :func:`covariance_pool`).
            Default: ``1e-5``.
        norm_layer: normalisation after the reduction convolution. Default:
            :class:`~torch.nn.BatchNorm2d`.

    Shape:
        - Input: ``(N, in_channels, H, W)``, any memory format.
        - Output: ``(N, num_classes)``.

    Raises:
        TypeError: in ``forward``, an input that is not a real floating-point tensor.
        ValueError: in ``forward``, an input that is not ``(N, in_channels, H, W)``.

    Numerics: see :func:`covariance_pool`.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import ISqrtCovHead
        >>> head = ISqrtCovHead(512, 10, reduced_dim=32)
        >>> head(torch.randn(2, 512, 7, 7)).shape
        torch.Size([2, 10])
        >>> head.fc.in_features
        528

    Reference: Li, Xie, Wang, Gao, "Towards Faster Training of Global Covariance Pooling
    Networks by Iterative Matrix Square Root Normalization", CVPR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        reduced_dim: int | None = ISQRT_COV_REDUCED_DIM,
        backend: str | SqrtmBackend = DEFAULT_POOLING_BACKEND,
        dropout: float = 0.0,
        eps: float = 1e-5,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        check_positive_int(num_classes, "num_classes")
        if reduced_dim is not None:
            check_positive_int(reduced_dim, "reduced_dim")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if reduced_dim is None:
            self.reduce: nn.Module = nn.Identity()
            pooled_channels = in_channels
        else:
            self.reduce = nn.Sequential(
                nn.Conv2d(in_channels, reduced_dim, kernel_size=1, bias=False),
                norm_layer(reduced_dim),
                nn.ReLU(inplace=True),
            )
            nn.init.kaiming_normal_(self.reduce[0].weight, mode="fan_out", nonlinearity="relu")
            pooled_channels = reduced_dim
        self.pool = CovariancePooling(backend=backend, vectorize=True, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.pool.output_dim(pooled_channels), num_classes)

    def forward(self, input: Tensor) -> Tensor:
        check_real_floating(input, "input")
        if input.dim() != 4 or input.shape[1] != self.in_channels:
            raise ValueError(
                f"input must be (N, in_channels, H, W) with in_channels={self.in_channels}, "
                f"got shape {tuple(input.shape)}"
            )
        return self.fc(self.dropout(self.pool(self.reduce(input))))


class ISqrtCovNet(nn.Module):
    """A timm CNN whose unpooled features go to an :class:`ISqrtCovHead`.

    Built by :func:`attach_isqrt_cov_head` from any timm classification model that gives feature
    maps (ResNet, ConvNeXt, EfficientNet, RegNet, ...): its pooling and classifier are removed
    and ``forward_head(forward_features(x), pre_logits=True)`` feeds the head (see
    :mod:`sqrtlayers.layers.backbones`), so every backbone parameter stays in use.

    Args:
        backbone: a timm model, already stripped by
            :func:`~sqrtlayers.layers.backbones.strip_timm_classifier`.
        head: the head, with ``in_channels`` the backbone's feature width.

    Shape:
        - Input: ``(N, C_in, H, W)`` images.
        - Output: ``(N, num_classes)``.
    """

    def __init__(self, backbone: nn.Module, head: ISqrtCovHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        check_images(images)
        return self.head(timm_unpooled_features(self.backbone, images))


def _attach_to_torchvision_resnet(resnet: nn.Module, num_classes: int, last_stride: int, head_options: Any) -> nn.Module:
    missing = [name for name in ("layer4", "avgpool", "fc") if not hasattr(resnet, name)]
    if missing:
        raise TypeError(
            f"model must be a timm model (with forward_features, forward_head, reset_classifier and "
            f"num_features) or a torchvision ResNet, got {type(resnet).__name__} without {missing}"
        )
    if not isinstance(resnet.fc, nn.Linear):
        raise TypeError(
            f"expected resnet.fc to be nn.Linear (its in_features size the head), got {type(resnet.fc).__name__}"
        )
    head = ISqrtCovHead(resnet.fc.in_features, num_classes, **head_options)
    if last_stride == 1:
        # torchvision puts the stage's stride in the first block: conv1 (BasicBlock) or conv2
        # (Bottleneck), and the 1x1 downsample convolution.
        for mod in resnet.layer4[0].modules():
            if isinstance(mod, nn.Conv2d) and mod.stride == (2, 2):
                mod.stride = (1, 1)
    resnet.avgpool = head
    resnet.fc = nn.Identity()
    return resnet


def attach_isqrt_cov_head(
    model: nn.Module, num_classes: int, *, last_stride: int | None = None, **head_options: Any
) -> nn.Module:
    """Put an :class:`ISqrtCovHead` on a CNN in place of its global pooling and classifier.

    - A **timm** model (anything with timm's ``forward_features``, ``forward_head``,
      ``reset_classifier`` and ``num_features``: ResNet, ConvNeXt, EfficientNet, RegNet, ...)
      loses its pooling and classifier through ``reset_classifier(0, global_pool="")`` and is
      wrapped in an :class:`ISqrtCovNet`, which is returned. The head's ``in_channels`` is the
      model's ``head_hidden_size`` (or ``num_features``). For a denser last feature map, build
      the model with timm's ``output_stride=16`` (dilation) instead of ``last_stride``.
    - A **torchvision** ``ResNet`` (or any module with ``layer4``, ``avgpool`` and an
      ``nn.Linear`` ``fc`` used the same way) is changed in place and returned:
      ``ResNet.forward`` flattens between ``avgpool`` and ``fc``, so the head goes in the
      ``avgpool`` slot (it returns ``(N, num_classes)``, which the flatten leaves alone) and ``fc``
      becomes :class:`~torch.nn.Identity` (no unused parameters under DDP).

    Args:
        model: a timm model or a torchvision ``ResNet`` (any depth, BasicBlock or Bottleneck).
        num_classes: number of logits.
        last_stride: torchvision ResNets only: stride of the last stage; ``1`` (iSQRT-COV)
            doubles the resolution of the pooled feature map (e.g. 14x14 instead of 7x7 at 224
            pixels), ``2`` keeps torchvision's. Default: ``None``, meaning ``1``.
        **head_options: keyword arguments of :class:`ISqrtCovHead` (``reduced_dim``,
            ``backend``, ``dropout``, ``eps``, ``norm_layer``).

    Example:
        >>> import timm, torch
        >>> from torchvision.models import resnet18
        >>> from sqrtlayers.layers import attach_isqrt_cov_head
        >>> model = attach_isqrt_cov_head(resnet18(), 10, reduced_dim=32)
        >>> model(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 10])
        >>> model = attach_isqrt_cov_head(timm.create_model("convnext_atto"), 10, reduced_dim=32)
        >>> model(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 10])
    """
    if last_stride not in (None, 1, 2):
        raise ValueError(f"last_stride must be 1, 2 or None, got {last_stride!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (a timm model or a torchvision ResNet), got {type(model).__name__}")
    if not is_timm_model(model):
        return _attach_to_torchvision_resnet(model, num_classes, 1 if last_stride is None else last_stride, head_options)
    if last_stride is not None:
        raise ValueError(
            f"last_stride applies to torchvision ResNets, got last_stride={last_stride} for the timm model "
            f"{type(model).__name__}: build it with timm.create_model(..., output_stride=16) instead"
        )
    # Built before the model is changed, so that a bad head option leaves the model as it was.
    head = ISqrtCovHead(timm_feature_width(model), num_classes, **head_options)
    strip_timm_classifier(model)
    return ISqrtCovNet(model, head)


