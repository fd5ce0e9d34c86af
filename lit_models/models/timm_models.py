"""Networks on timm backbones with the second-order heads: So-ViT on a timm vision
transformer, iSQRT-COV on a timm CNN.

timm is an optional extra (``pip install 'sqrtlayers[timm]'``), imported when one of these
networks is built. ``pretrained=True`` is passed to ``timm.create_model``, which loads timm's
weights for ``model_name`` (a download on first use, into timm's cache); the heads are always
new. ``pretrained=False`` (the default) downloads nothing.

A checkpoint of one of these networks records ``pretrained=False`` (see
:func:`~lit_models.network_config.records_config`): the checkpoint holds the fine-tuned
weights, so rebuilding the network to load it downloads nothing.

Example:
    >>> import torch
    >>> from lit_models.network_config import network_config
    >>> net = TimmISqrtCov(num_classes=10, model_name="resnet18", reduced_dim=16,
    ...                    timm_kwargs={"layers": [1, 1, 1, 1]})
    >>> net(torch.randn(2, 3, 64, 64)).shape
    torch.Size([2, 10])
    >>> type(net.backbone).__module__, net.head.in_channels
    ('timm.models.resnet', 512)
    >>> network_config(net)["init_args"]["pretrained"]
    False
"""

from typing import Any, Literal

from torch import nn

from sqrtlayers import DEFAULT_BACKEND, DEFAULT_POOLING_BACKEND, SqrtmBackend
from sqrtlayers.layers import ISqrtCovHead, ISqrtCovNet, SecondOrderViT, SecondOrderViTHead
from sqrtlayers.layers.backbones import strip_timm_classifier, timm_feature_width
from sqrtlayers.layers.isqrt_cov_head import ISQRT_COV_REDUCED_DIM
from sqrtlayers.layers.so_vit_head import SO_VIT_REDUCED_DIM

from ..network_config import records_config

__all__ = ["TimmISqrtCov", "TimmSoViT", "create_timm_backbone"]


def create_timm_backbone(
    model_name: str,
    pretrained: bool = False,
    in_channels: int = 3,
    timm_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """``timm.create_model(model_name, pretrained=pretrained, num_classes=0,
    in_chans=in_channels, **kwargs, **timm_kwargs)``.

    ``num_classes=0``: the classifier is never built (the heads replace it), nor loaded from
    pretrained weights. ``kwargs`` are the builder's own options; ``timm_kwargs``, the user's,
    may not repeat them.

    Args:
        model_name (str): a timm model name (``timm.list_models()``).
        pretrained (bool): load timm's weights (downloaded on first use). Default: ``False``.
        in_channels (int): channels of the input images. Default: ``3``.
        timm_kwargs (dict, optional): further ``timm.create_model`` arguments.
            Default: ``None``.
        **kwargs: the calling builder's ``timm.create_model`` arguments.

    Returns:
        nn.Module: the timm model, its classifier absent (global pooling still in place).

    Raises:
        ImportError: timm is not installed (with how to install it).
        ValueError: ``timm_kwargs`` names an argument that is set here.

    Example:
        >>> model = create_timm_backbone("resnet18", in_channels=1,
        ...                              timm_kwargs={"layers": [1, 1, 1, 1]})
        >>> model.conv1.in_channels, model.num_classes
        (1, 0)
        >>> create_timm_backbone("resnet18", timm_kwargs={"in_chans": 1})
        Traceback (most recent call last):
        ...
        ValueError: timm_kwargs may not set ['in_chans'], which the builder sets itself
    """
    try:
        import timm
    except ImportError as error:
        raise ImportError(
            f"{model_name!r} is a timm model: install timm (pip install 'sqrtlayers[timm]')"
        ) from error
    options = {"pretrained": pretrained, "num_classes": 0, "in_chans": in_channels, **kwargs}
    clashes = sorted(set(options) & set(timm_kwargs or {}))
    if clashes:
        raise ValueError(f"timm_kwargs may not set {clashes}, which the builder sets itself")
    return timm.create_model(model_name, **options, **(timm_kwargs or {}))


def _drop_path_option(drop_path_rate: float) -> dict[str, Any]:
    """``drop_path_rate`` as a timm argument, only when non-zero: not every timm model takes it."""
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    return {"drop_path_rate": drop_path_rate} if drop_path_rate > 0 else {}


@records_config(rebuild_with={"pretrained": False})
class TimmSoViT(SecondOrderViT):
    """A timm vision transformer whose tokens feed the So-ViT second-order head.

    The transformer is ``timm.create_model(model_name)`` (ViT, DeiT, their register-token
    forms, any size), its pooling and classifier removed; every output token goes to
    :class:`~sqrtlayers.layers.SecondOrderViTHead`, which sums the class-token logits and the
    logits of the covariance-pooled visual tokens (as
    :func:`~sqrtlayers.layers.attach_so_vit_head` does). Every parameter is used (DDP needs
    no ``find_unused_parameters``).

    Args:
        num_classes (int): number of logits.
        model_name (str): a timm vision transformer with a class token.
            Default: ``"deit_tiny_patch16_224"``.
        pretrained (bool): passed to ``timm.create_model``: start from timm's weights for
            ``model_name`` (downloaded on first use; timm resamples the patch and position
            embeddings for another ``image_size``, ``patch_size`` or ``in_channels``).
            Default: ``False``.
        image_size (int): input height and width (timm's ``img_size``). Default: ``224``.
        in_channels (int): channels of the input images. Default: ``3``.
        patch_size (int, optional): side of the patches, ``None`` for the model's own.
            Default: ``None``.
        reduced_dim (int): channels of the tokens entering the covariance. Default: the
            head's, :data:`~sqrtlayers.layers.so_vit_head.SO_VIT_REDUCED_DIM`.
        backend (str or SqrtmBackend): square-root backend of the pooling.
            Default: :data:`~sqrtlayers.DEFAULT_BACKEND`.
        fusion (str): ``"sum"``, ``"mean"`` or ``"concat"`` of the two classifiers.
            Default: ``"sum"``.
        drop_path_rate (float): stochastic depth of the transformer blocks. Default: ``0.0``.
        timm_kwargs (dict, optional): further ``timm.create_model`` arguments (``depth``,
            ``embed_dim``, ``num_heads``, ``reg_tokens``, ...), not those set above.
            Default: ``None``.

    Shape:
        - Input: ``(N, in_channels, image_size, image_size)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> net = TimmSoViT(num_classes=10, image_size=32, patch_size=8, reduced_dim=8,
        ...                 timm_kwargs={"depth": 2})
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> type(net.vit).__name__, net.vit.embed_dim, len(net.vit.blocks)
        ('VisionTransformer', 192, 2)
        >>> net.head.covariance_classifier.in_features  # 8 * 9 / 2
        36

    Reference: Xie et al., "So-ViT: Mind Visual Tokens for Vision Transformer",
    arXiv 2104.10935; Touvron et al., "Training data-efficient image transformers &
    distillation through attention" (DeiT), ICML 2021.
    """

    def __init__(
        self,
        num_classes: int,
        model_name: str = "deit_tiny_patch16_224",
        pretrained: bool = False,
        image_size: int = 224,
        in_channels: int = 3,
        patch_size: int | None = None,
        reduced_dim: int = SO_VIT_REDUCED_DIM,
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
        fusion: Literal["sum", "mean", "concat"] = "sum",
        drop_path_rate: float = 0.0,
        timm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        size_options: dict[str, Any] = {"img_size": image_size}
        if patch_size is not None:
            size_options["patch_size"] = patch_size
        size_options.update(_drop_path_option(drop_path_rate))
        vit = create_timm_backbone(model_name, pretrained, in_channels, timm_kwargs, **size_options)
        head = SecondOrderViTHead(
            timm_feature_width(vit),
            num_classes,
            reduced_dim=reduced_dim,
            backend=backend,
            fusion=fusion,
            num_prefix_tokens=getattr(vit, "num_prefix_tokens", 1),
        )
        super().__init__(vit, head)


@records_config(rebuild_with={"pretrained": False})
class TimmISqrtCov(ISqrtCovNet):
    """A timm CNN whose global pooling and classifier are the iSQRT-COV head.

    The backbone is ``timm.create_model(model_name)`` (ResNet, ConvNeXt, EfficientNet, RegNet,
    ...), its pooling and classifier removed; a 1x1 convolution reduces the unpooled features
    to ``reduced_dim`` channels (+ BatchNorm + ReLU), their covariance is square-root
    normalised by ``backend``, and a linear layer classifies its upper triangle (as
    :func:`~sqrtlayers.layers.attach_isqrt_cov_head` does). Every parameter is used.

    Args:
        num_classes (int): number of logits.
        model_name (str): a timm CNN. Default: ``"resnet50"``.
        pretrained (bool): passed to ``timm.create_model``: start from timm's weights for
            ``model_name`` (downloaded on first use). Default: ``False``.
        in_channels (int): channels of the input images. Default: ``3``.
        output_stride (int, optional): timm's ``output_stride`` (16: the last stage dilated
            instead of strided, the pooled map twice as fine, as iSQRT-COV's last stride 1),
            ``None`` for the model's own (32). Default: ``None``.
        reduced_dim (int, optional): channels after the reduction, ``None`` for none.
            Default: the head's, :data:`~sqrtlayers.layers.isqrt_cov_head.ISQRT_COV_REDUCED_DIM`.
        backend (str or SqrtmBackend): square-root backend of the pooling.
            Default: :data:`~sqrtlayers.DEFAULT_POOLING_BACKEND`.
        dropout (float): dropout before the classifier. Default: ``0.0``.
        drop_path_rate (float): stochastic depth of the residual blocks (only passed to timm
            when non-zero: not every timm CNN has it). Default: ``0.0``.
        timm_kwargs (dict, optional): further ``timm.create_model`` arguments, not those set
            above. Default: ``None``.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> net = TimmISqrtCov(num_classes=10, model_name="resnet18", reduced_dim=32)
        >>> net(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 10])
        >>> net.head.fc.in_features  # 32 * 33 / 2
        528

    Reference: Li, Xie, Wang, Gao, "Towards Faster Training of Global Covariance
    Pooling Networks by Iterative Matrix Square Root Normalization", CVPR 2018.
    """

    def __init__(
        self,
        num_classes: int,
        model_name: str = "resnet50",
        pretrained: bool = False,
        in_channels: int = 3,
        output_stride: int | None = None,
        reduced_dim: int | None = ISQRT_COV_REDUCED_DIM,
        backend: str | SqrtmBackend = DEFAULT_POOLING_BACKEND,
        dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        timm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        options = _drop_path_option(drop_path_rate)
        if output_stride is not None:
            options["output_stride"] = output_stride
        backbone = create_timm_backbone(model_name, pretrained, in_channels, timm_kwargs, **options)
        head = ISqrtCovHead(
            timm_feature_width(backbone), num_classes,
            reduced_dim=reduced_dim, backend=backend, dropout=dropout,
        )
        strip_timm_classifier(backbone)
        super().__init__(backbone, head)
