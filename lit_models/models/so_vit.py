"""Vision transformer with the So-ViT second-order head."""

import math
from typing import Literal

from torch import nn
from torchvision.models import VisionTransformer

from sqrtlayers import DEFAULT_BACKEND, SqrtmBackend
from sqrtlayers.layers import SecondOrderViT, SecondOrderViTHead
from sqrtlayers.layers.so_vit_head import SO_VIT_REDUCED_DIM

from ..network_config import records_config


@records_config
class SoViT(SecondOrderViT):
    """A torchvision VisionTransformer whose tokens feed the So-ViT second-order head.

    The transformer is :class:`torchvision.models.VisionTransformer` (patch embedding
    by a strided convolution, class token, learned position embeddings); all output
    tokens go to :class:`~sqrtlayers.layers.SecondOrderViTHead`, which sums the
    class-token logits and the logits of the covariance-pooled visual tokens. The
    defaults are the So-ViT-7 sizes (7 layers, width 256, 4 heads, MLP 512, tokens
    reduced to 48 channels); So-ViT itself embeds with a tokens-to-token module
    instead of patches. No weights are downloaded.

    Args:
        num_classes (int): number of logits.
        image_size (int): input height and width, a multiple of ``patch_size``.
            Default: ``224``.
        in_channels (int): channels of the input images. Default: ``3``.
        patch_size (int): side of the square patches. Default: ``16``.
        num_layers (int): transformer blocks. Default: ``7``.
        num_heads (int): attention heads. Default: ``4``.
        hidden_dim (int): token width. Default: ``256``.
        mlp_dim (int): hidden width of the MLPs. Default: ``512``.
        reduced_dim (int): channels of the tokens entering the covariance. Default: the
            head's, :data:`~sqrtlayers.layers.so_vit_head.SO_VIT_REDUCED_DIM`.
        backend (str or SqrtmBackend): square-root backend of the pooling.
            Default: :data:`~sqrtlayers.DEFAULT_BACKEND`.
        fusion (str): ``"sum"``, ``"mean"`` or ``"concat"`` of the two classifiers.
            Default: ``"sum"``.
        dropout (float): dropout in the transformer. Default: ``0.0``.
        attention_dropout (float): dropout of the attention weights. Default: ``0.0``.

    Shape:
        - Input: ``(N, in_channels, image_size, image_size)``.
        - Output: ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> net = SoViT(num_classes=10, image_size=32, patch_size=8, num_layers=2,
        ...             num_heads=2, hidden_dim=32, mlp_dim=64, reduced_dim=8)
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])

    Reference: Xie et al., "So-ViT: Mind Visual Tokens for Vision Transformer",
    arXiv 2104.10935; Song, Sebe, Wang, ICLR 2022 (Sec. 5.2).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 224,
        in_channels: int = 3,
        patch_size: int = 16,
        num_layers: int = 7,
        num_heads: int = 4,
        hidden_dim: int = 256,
        mlp_dim: int = 512,
        reduced_dim: int = SO_VIT_REDUCED_DIM,
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
        fusion: Literal["sum", "mean", "concat"] = "sum",
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        if image_size % patch_size:
            raise ValueError(
                f"image_size must be a multiple of patch_size ({patch_size}), got {image_size}"
            )
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        vit = VisionTransformer(
            image_size=image_size,
            patch_size=patch_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            mlp_dim=mlp_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            num_classes=num_classes,
        )
        if in_channels != vit.conv_proj.in_channels:
            vit.conv_proj = nn.Conv2d(in_channels, hidden_dim, patch_size, stride=patch_size)
            # torchvision's initialisation of the patch embedding (LeCun normal).
            fan_in = in_channels * patch_size**2
            nn.init.trunc_normal_(vit.conv_proj.weight, std=math.sqrt(1 / fan_in))
            nn.init.zeros_(vit.conv_proj.bias)
        head = SecondOrderViTHead(
            hidden_dim, num_classes, reduced_dim=reduced_dim, backend=backend, fusion=fusion
        )
        super().__init__(vit, head)
