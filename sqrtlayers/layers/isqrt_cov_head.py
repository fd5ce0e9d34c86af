"""The iSQRT-COV classification head, and a helper that puts it on a torchvision ResNet."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from ..backends import SqrtmBackend
from .covariance_pooling import CovariancePooling

__all__ = ["ISqrtCovHead", "attach_isqrt_cov_head"]


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
            ``None`` to pool the input channels directly. Default: ``256`` (iSQRT-COV; the
            classifier then has ``256 * 257 / 2 = 32896`` inputs).
        backend: square-root backend, a name or a configured backend. Default: ``"ns"``
            (5 coupled Newton-Schulz iterations, iSQRT-COV).
        dropout: dropout probability before the classifier. Default: ``0.0``.
        eps: covariance ridge relative to the mean variance (see :func:`covariance_pool`).
            Default: ``1e-5``.
        norm_layer: normalisation after the reduction convolution. Default:
            :class:`~torch.nn.BatchNorm2d`.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, num_classes)``.

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
        reduced_dim: int | None = 256,
        backend: str | SqrtmBackend = "ns",
        dropout: float = 0.0,
        eps: float = 1e-5,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("reduced_dim", reduced_dim)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
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
        return self.fc(self.dropout(self.pool(self.reduce(input))))


def attach_isqrt_cov_head(
    resnet: nn.Module,
    num_classes: int,
    *,
    reduced_dim: int | None = 256,
    last_stride: int = 1,
    backend: str | SqrtmBackend = "ns",
    dropout: float = 0.0,
    eps: float = 1e-5,
) -> nn.Module:
    """Put an :class:`ISqrtCovHead` on a torchvision ResNet in place of ``avgpool`` + ``fc``;
    the model is changed in place and returned.

    ``ResNet.forward`` flattens between ``avgpool`` and ``fc``, so the head goes in the
    ``avgpool`` slot (it returns ``(N, num_classes)``, which the flatten leaves alone) and
    ``fc`` becomes :class:`~torch.nn.Identity` (no unused parameters under DDP).

    Args:
        resnet: a torchvision ``ResNet`` (any depth, BasicBlock or Bottleneck) or any module with
            ``layer4``, ``avgpool`` and ``fc`` used the same way.
        num_classes: number of logits.
        reduced_dim: see :class:`ISqrtCovHead`. Default: ``256``.
        last_stride: stride of the last stage; ``1`` (iSQRT-COV) doubles the resolution of the
            pooled feature map (e.g. 14x14 instead of 7x7 at 224 pixels), ``2`` keeps
            torchvision's. Default: ``1``.
        backend: square-root backend. Default: ``"ns"``.
        dropout: see :class:`ISqrtCovHead`. Default: ``0.0``.
        eps: see :class:`ISqrtCovHead`. Default: ``1e-5``.

    Example:
        >>> import torch
        >>> from torchvision.models import resnet18
        >>> from sqrtlayers.layers import attach_isqrt_cov_head
        >>> model = attach_isqrt_cov_head(resnet18(), 10, reduced_dim=32)
        >>> model(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 10])
    """
    missing = [name for name in ("layer4", "avgpool", "fc") if not hasattr(resnet, name)]
    if missing:
        raise TypeError(f"expected a torchvision ResNet, got {type(resnet).__name__} without {missing}")
    if not isinstance(resnet.fc, nn.Linear):
        raise TypeError(
            f"expected resnet.fc to be nn.Linear (its in_features size the head), got {type(resnet.fc).__name__}"
        )
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if last_stride == 1:
        # torchvision puts the stage's stride in the first block: conv1 (BasicBlock) or conv2
        # (Bottleneck), and the 1x1 downsample convolution.
        for mod in resnet.layer4[0].modules():
            if isinstance(mod, nn.Conv2d) and mod.stride == (2, 2):
                mod.stride = (1, 1)
    head = ISqrtCovHead(
        resnet.fc.in_features, num_classes, reduced_dim=reduced_dim, backend=backend, dropout=dropout, eps=eps
    )
    resnet.avgpool = head
    resnet.fc = nn.Identity()
    return resnet
