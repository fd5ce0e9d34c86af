r"""The encoder of universal style transfer, VGG-19's convolutional features cut at ``relu1_1`` ...
``relu5_1``, and the mirrored decoders that invert its stages.

The layers are built here, laid out and indexed as torchvision's ``vgg19().features``, so that
torchvision's weights file loads into them as it is (and torchvision is not needed to build
them). Nothing is downloaded: the weights are the file the user has, or random.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .input_checks import check_positive_int

__all__ = ["VGG19_LEVELS", "vgg19_encoder", "mirror_decoder"]

#: The level names of :func:`vgg19_encoder`'s stages: stage ``k`` ends at ``VGG19_LEVELS[k - 1]``.
VGG19_LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# torchvision's VGG-19 ("E") up to relu5_1: channels of each 3x3 convolution, "M" a 2x2 max-pool.
_VGG19_LAYERS: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512
)  # fmt: skip
# Index in torchvision's ``features`` one past each level's ReLU.
_STAGE_ENDS = (2, 7, 12, 21, 30)


def _vgg19_features() -> nn.Sequential:
    """``features[:30]`` of torchvision's VGG-19, with torchvision's indices."""
    layers: list[nn.Module] = []
    channels = 3
    for width in _VGG19_LAYERS:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(width)
    return nn.Sequential(*layers)


def _feature_weights(weights: str | os.PathLike | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The ``features`` entries of a VGG-19 state dict (a whole model's, keys ``features.N.*``,
    or the features module's, keys ``N.*``), keyed ``N.*``."""
    state = weights if isinstance(weights, Mapping) else torch.load(weights, map_location="cpu", weights_only=True)
    prefixed = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    return prefixed or {k: v for k, v in state.items() if k.split(".")[0].isdigit()}


def vgg19_encoder(
    weights: str | os.PathLike | Mapping[str, Tensor] | None = None, levels: int = 5
) -> nn.Sequential:
    r"""VGG-19's features as a sequence of stages, stage ``k`` mapping the output of stage
    ``k - 1`` (the image for ``k = 1``) to the ``k``-th level of :data:`VGG19_LEVELS`
    (``relu{k}_1``: 64, 128, 256, 512, 512 channels at strides 1, 2, 4, 8, 16).

    Args:
        weights: torchvision's VGG-19 weights as a file path or a state dict (of the whole
            model, e.g. ``vgg19-dcbb9e9d.pth`` from ``torchvision.models.VGG19_Weights``, or of
            its ``features``); ``None`` leaves the layers at random initialisation. Never
            downloaded. Default: ``None``.
        levels: how many stages to build, 1 to 5. Default: ``5``.

    Returns:
        ``nn.Sequential`` of ``levels`` stages (each an ``nn.Sequential`` of torchvision's
        layers), in train mode with gradients on, as torch builds modules: freeze it with
        ``.eval().requires_grad_(False)`` to use it as a fixed encoder.

    Inputs are images normalised as torchvision's weights expect (ImageNet mean and standard
    deviation).

    Raises:
        ValueError: ``levels`` outside 1..5, or weights that lack a layer the stages need
            (the message names the missing keys).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import vgg19_encoder
        >>> encoder = vgg19_encoder(levels=3)
        >>> encoder(torch.randn(1, 3, 32, 32)).shape               # relu3_1
        torch.Size([1, 256, 8, 8])
        >>> encoder[0](torch.randn(1, 3, 32, 32)).shape            # relu1_1
        torch.Size([1, 64, 32, 32])
    """
    check_positive_int(levels, "levels")
    if levels > len(VGG19_LEVELS):
        raise ValueError(f"levels must be in 1..{len(VGG19_LEVELS)}, got {levels}")
    features = _vgg19_features()[: _STAGE_ENDS[levels - 1]]
    if weights is not None:
        state = _feature_weights(weights)
        needed = set(features.state_dict())
        missing = sorted(needed - set(state), key=lambda k: (int(k.split(".")[0]), k))
        if missing:
            raise ValueError(f"the VGG-19 weights lack {missing} (keys 'features.N.weight' or 'N.weight' expected)")
        features.load_state_dict({k: v for k, v in state.items() if k in needed})
    starts = (0,) + _STAGE_ENDS[: levels - 1]
    return nn.Sequential(*(features[start:end] for start, end in zip(starts, _STAGE_ENDS[:levels])))


def mirror_decoder(stages: Sequence[nn.Module]) -> nn.Sequential:
    r"""A decoder that mirrors encoder ``stages`` made of ``Conv2d``, ``ReLU`` and
    ``MaxPool2d`` layers: from the last stage's output back to the first stage's input.

    Each convolution ``c_in -> c_out`` becomes a reflection-padded one ``c_out -> c_in`` of the
    same kernel followed by a ReLU (none after the last, which gives the image), and each
    max-pool a nearest-neighbour upsampling by its stride: the decoders of universal style
    transfer. Its weights are random: they are trained to invert the encoder (see
    ``lit_models.StyleDecoderTraining``).

    Args:
        stages: encoder stages (e.g. ``vgg19_encoder()[:k]``) or layers.

    Returns:
        ``nn.Sequential``.

    Raises:
        TypeError: a layer other than ``Conv2d`` (with odd square kernel, stride 1), ``ReLU``
            or ``MaxPool2d``, named; give such an encoder's decoder yourself.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import mirror_decoder, vgg19_encoder
        >>> encoder = vgg19_encoder(levels=2)
        >>> decoder = mirror_decoder(encoder)
        >>> decoder(encoder(torch.randn(1, 3, 16, 16))).shape
        torch.Size([1, 3, 16, 16])
    """
    layers = [layer for stage in stages for layer in (stage if isinstance(stage, nn.Sequential) else [stage])]
    decoder: list[nn.Module] = []
    convolutions = sum(isinstance(layer, nn.Conv2d) for layer in layers)
    for layer in reversed(layers):
        if isinstance(layer, nn.Conv2d):
            size = layer.kernel_size[0]
            if layer.kernel_size != (size, size) or size % 2 == 0 or layer.stride != (1, 1):
                raise TypeError(f"mirror_decoder needs stride-1 convolutions with odd square kernels, got {layer}")
            decoder += [nn.ReflectionPad2d(size // 2), nn.Conv2d(layer.out_channels, layer.in_channels, size)]
            convolutions -= 1
            if convolutions:
                decoder.append(nn.ReLU(inplace=True))
        elif isinstance(layer, nn.MaxPool2d):
            decoder.append(nn.Upsample(scale_factor=layer.stride, mode="nearest"))
        elif not isinstance(layer, nn.ReLU):
            raise TypeError(
                f"mirror_decoder mirrors Conv2d, ReLU and MaxPool2d layers, got {type(layer).__name__}: pass a decoder"
            )
    return nn.Sequential(*decoder)
