"""The unpooled features of a backbone, read through the interface its library offers.

Two interfaces are understood, neither by listing model names:

- **timm**: any model with ``forward_features``, ``forward_head``, ``reset_classifier`` and
  ``num_features`` (every timm classification model). ``reset_classifier(0, global_pool="")``
  removes the pooling and the classifier, and ``forward_head(forward_features(x),
  pre_logits=True)`` then returns the unpooled pre-logit features: whatever timm applies
  between the trunk and the classifier (ConvNeXt's head norm, MobileNetV3's 1x1 head
  convolution, a ViT's ``fc_norm``) is kept, so every parameter still receives a gradient and
  pretrained weights see the features they were trained to produce. Their width is
  ``head_hidden_size`` (or ``num_features`` where a model does not set it); their layout is
  ``(N, C, H, W)`` for CNNs (``(N, H, W, C)`` where the model says ``output_fmt == "NHWC"``,
  e.g. Swin) and ``(N, T, D)`` tokens for vision transformers, the first
  ``num_prefix_tokens`` of them being the class (and register or distillation) tokens.
- **torchvision**: ``ResNet`` (the head goes in its ``avgpool`` slot) and
  ``VisionTransformer`` (the encoder output), handled by the attach helpers themselves.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["is_timm_model", "timm_feature_width", "strip_timm_classifier", "timm_unpooled_features"]

_TIMM_METHODS = ("forward_features", "forward_head", "reset_classifier")


def is_timm_model(model: nn.Module) -> bool:
    """Whether ``model`` offers timm's classification-model interface (see the module docstring)."""
    return all(callable(getattr(model, name, None)) for name in _TIMM_METHODS) and hasattr(model, "num_features")


def timm_feature_width(model: nn.Module) -> int:
    """Width of the unpooled features :func:`timm_unpooled_features` returns: channels or token
    dim. ``head_hidden_size`` differs from ``num_features`` where the head has layers of its own
    before the classifier (MobileNetV3's 1x1 convolution to 1024 or 1280 channels).

    Example:
        >>> import timm
        >>> from sqrtlayers.layers.backbones import timm_feature_width
        >>> timm_feature_width(timm.create_model("resnet18", pretrained=False))
        512
    """
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


def strip_timm_classifier(model: nn.Module) -> None:
    """Remove a timm model's global pooling and classifier, in place, so that
    :func:`timm_unpooled_features` returns unpooled features."""
    model.reset_classifier(0, global_pool="")


def timm_unpooled_features(model: nn.Module, images: Tensor) -> Tensor:
    """Unpooled pre-logit features of a timm model stripped by :func:`strip_timm_classifier`:
    ``(N, C, H, W)`` feature maps (channels first, whatever the model's ``output_fmt``) or
    ``(N, T, D)`` tokens."""
    features = model.forward_head(model.forward_features(images), pre_logits=True)
    if features.dim() == 4 and getattr(model, "output_fmt", "NCHW") == "NHWC":
        features = features.permute(0, 3, 1, 2)
    return features
