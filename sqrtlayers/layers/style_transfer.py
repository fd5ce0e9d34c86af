r"""Universal style transfer: encoder, whitening and colouring at one or more levels, decoder."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..backends import SqrtmBackend
from .input_checks import check_images
from .vgg_encoder import mirror_decoder, vgg19_encoder
from .whitening_coloring import DEFAULT_WCT_BACKEND, WhiteningColoring

__all__ = ["StyleTransfer"]


class StyleTransfer(nn.Module):
    r"""Universal style transfer (Li et al., 2017): at each level, coarse to fine, encode the
    current image and the style, give the image's features the style's statistics by
    :class:`WhiteningColoring`, and decode them back into the image.

    .. math::
        x_{k} = D_{l_k}\big(\mathrm{WCT}(E_{l_k}(x_{k-1}), E_{l_k}(s))\big),\qquad x_0 = \text{content},

    for the levels :math:`l_1, l_2, \ldots` of ``levels``, where :math:`E_l` runs the encoder's
    first ``l`` stages and :math:`D_l` is level ``l``'s decoder.

    Args:
        encoder: a sequence of stages (an ``nn.Sequential`` or ``nn.ModuleList``), stage ``l``
            mapping stage ``l - 1``'s output (the image for ``l = 1``) to level ``l``'s features
            ``(N, C_l, H_l, W_l)``: any feature extractor cut into stages. Default: ``None``,
            :func:`vgg19_encoder` with random weights; pass ``vgg19_encoder(weights=PATH)`` for
            torchvision's (nothing is downloaded). The encoder is frozen here
            (``requires_grad_(False)``, kept in eval mode).
        decoders: one decoder per stage, ``decoders[l - 1]`` mapping level ``l``'s features to
            an image, or ``None`` in a slot (or for all) for :func:`mirror_decoder` of the first
            ``l`` stages (random until trained). Default: ``None``.
        levels: the levels to stylise at, in order (1-based). Default: every stage, deepest
            first (``(5, 4, 3, 2, 1)`` for VGG-19).
        alpha: blend of the stylised features with the content's, in ``[0, 1]``.
            Default: ``1.0``.
        learnable_alpha: make ``alpha`` a trained scalar. Default: ``False``.
        group_size: channels per whitening group (GD-WCT), ``None`` for all. Default: ``None``.
        eps: ridge relative to the mean variance (see :func:`whitening_coloring`); deep levels of
            small images have fewer positions than channels. Default: ``1e-5``.
        backend: square-root backend. Default: ``"auto"``.

    Shape:
        - content: ``(N, 3, H, W)``, normalised as the encoder expects (ImageNet statistics for
          VGG-19); ``H`` and ``W`` multiples of the deepest level's stride (16 for relu5_1).
        - style: ``(N, 3, H', W')`` or ``(1, 3, H', W')``, any size the encoder takes.
        - Output: ``(N, 3, H, W)``.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import StyleTransfer, vgg19_encoder
        >>> net = StyleTransfer(vgg19_encoder(levels=2), backend="eigh")   # trained decoders: decoders=[...]
        >>> net(torch.randn(2, 3, 16, 16), torch.randn(1, 3, 24, 24)).shape
        torch.Size([2, 3, 16, 16])
        >>> net.encode(torch.randn(1, 3, 16, 16), level=2).shape           # relu2_1
        torch.Size([1, 128, 8, 8])

    Reference: Li, Fang, Yang, Wang, Lu, Yang, "Universal Style Transfer via Feature
    Transforms", NeurIPS 2017; Cho et al., CVPR 2019 (GD-WCT).
    """

    def __init__(
        self,
        encoder: Sequence[nn.Module] | None = None,
        decoders: Sequence[nn.Module | None] | None = None,
        *,
        levels: Sequence[int] | None = None,
        alpha: float = 1.0,
        learnable_alpha: bool = False,
        group_size: int | None = None,
        eps: float = 1e-5,
        backend: str | SqrtmBackend = DEFAULT_WCT_BACKEND,
    ) -> None:
        super().__init__()
        stages = list(vgg19_encoder() if encoder is None else encoder)
        if not stages:
            raise ValueError("encoder must have at least one stage")
        self.encoder = nn.ModuleList(stages).requires_grad_(False).eval()
        slots = [None] * len(stages) if decoders is None else list(decoders)
        if len(slots) != len(stages):
            raise ValueError(
                f"decoders must hold one decoder (or None) per encoder stage ({len(stages)}), got {len(slots)}"
            )
        self.decoders = nn.ModuleList(
            mirror_decoder(stages[: level + 1]) if decoder is None else decoder for level, decoder in enumerate(slots)
        )
        self.levels = tuple(range(len(stages), 0, -1) if levels is None else levels)
        for level in self.levels:
            if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= len(stages):
                raise ValueError(
                    f"levels must be ints in 1..{len(stages)} (the encoder's stages), got {list(self.levels)}"
                )
        self.transform = WhiteningColoring(
            group_size=group_size, eps=eps, alpha=alpha, learnable_alpha=learnable_alpha, backend=backend
        )

    def train(self, mode: bool = True) -> StyleTransfer:
        super().train(mode)
        self.encoder.eval()  # a fixed feature extractor: its BatchNorm layers, if any, stay in eval mode
        return self

    def encode(self, image: Tensor, level: int) -> Tensor:
        """Level ``level``'s features of ``image``: the encoder's first ``level`` stages."""
        for stage in self.encoder[:level]:
            image = stage(image)
        return image

    def decode(self, features: Tensor, level: int) -> Tensor:
        """An image from level ``level``'s features, by that level's decoder."""
        return self.decoders[level - 1](features)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        check_images(content)
        image = content
        for level in self.levels:
            image = self.decode(self.transform(self.encode(image, level), self.encode(style, level)), level)
        return image

    def extra_repr(self) -> str:
        return f"levels={self.levels}"
