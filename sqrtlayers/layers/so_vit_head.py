"""The So-ViT second-order head: class-token and covariance-pooled visual-token classifiers, fused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..backends import DEFAULT_BACKEND, SqrtmBackend
from .backbones import is_timm_model, strip_timm_classifier, timm_feature_width, timm_unpooled_features
from .covariance_pooling import CovariancePooling
from .input_checks import check_images, check_positive_int, check_real_floating

__all__ = ["SO_VIT_REDUCED_DIM", "SecondOrderViTHead", "SecondOrderViT", "attach_so_vit_head"]

#: Channels of the reduced visual tokens, the low end of So-ViT's 48 to 96.
SO_VIT_REDUCED_DIM = 48

_FUSIONS = ("sum", "mean", "concat")


class SecondOrderViTHead(nn.Module):
    r"""Second-order vision-transformer head (So-ViT): classifies the class token and the
    covariance-pooled visual tokens, and fuses the two.

    With tokens :math:`(t_0, \dots, t_{P-1}, t_P, \dots, t_{P+L-1})`, :math:`t_0` the class
    token, the first :math:`P` the prefix tokens (class, and register or distillation tokens in
    some timm models) and the :math:`L` others the visual tokens :math:`t_i`,

    .. math::
        z = \operatorname{triu}\Big(\big(\operatorname{cov}_i\, \phi(t_i)\big)^{1/2}\Big),\qquad
        \text{logits} = \begin{cases}
            W_c t_0 + b_c + W_z z + b_z & \text{sum}\\
            \tfrac12 (W_c t_0 + b_c + W_z z + b_z) & \text{mean}\\
            W [t_0; z] + b & \text{concat}
        \end{cases}

    where :math:`\phi` reduces each visual token to ``reduced_dim`` channels (Linear without
    bias, ``norm_layer``, ``activation``) and the covariance pooling is :func:`covariance_pool`.

    Args:
        embed_dim: token width ``D``.
        num_classes: number of logits.
        reduced_dim: channels of the reduced visual tokens (So-ViT: 48 to 96; the covariance
            branch then sees ``r (r + 1) / 2`` features). Default: :data:`SO_VIT_REDUCED_DIM`.
        backend: square-root backend, a name or a configured backend. Default:
            :data:`~sqrtlayers.DEFAULT_BACKEND` (the So-ViT experiment of Song et al. used the paper's method)
        fusion: ``"sum"`` of the two logits (So-ViT), their ``"mean"``, or ``"concat"`` of the
            class token and the pooled features into one Linear. Default: ``"sum"``.
        dropout: dropout probability on the pooled features. Default: ``0.0``.
        eps: covariance ridge relative to the mean variance (see :func:`covariance_pool`).
            Default: ``1e-5``.
        norm_layer: normalisation over the last dim of the reduced tokens. Default:
            :class:`~torch.nn.LayerNorm`.
        activation: activation after the normalisation. Default: :class:`~torch.nn.GELU`.
        num_prefix_tokens: tokens before the visual tokens, the class token first (timm's
            ``num_prefix_tokens``). Default: ``1``.

    Shape:
        - Input: ``(N, P + L, D)``, ``P = num_prefix_tokens``, the class token first, ``L >= 1``
          visual tokens.
        - Output: ``(N, num_classes)``.

    Raises:
        TypeError: in ``forward``, tokens that are not a real floating-point tensor.
        ValueError: in ``forward``, tokens that are not ``(N, P + L, embed_dim)`` with ``L >= 1``.

    Numerics: see :func:`covariance_pool`; the covariance of ``L`` tokens has rank at most
    ``L - 1``, which the ridge ``eps`` keeps invertible when ``L <= reduced_dim``.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import SecondOrderViTHead
        >>> head = SecondOrderViTHead(192, 100, reduced_dim=48)
        >>> head(torch.randn(2, 1 + 196, 192)).shape
        torch.Size([2, 100])
        >>> head.covariance_classifier.in_features
        1176

    Reference: Xie, Zeng, Wang, Li, Zuo, "So-ViT: Mind Visual Tokens for Vision Transformer",
    arXiv 2104.10935; Song, Sebe, Wang, ICLR 2022 (Sec. 5.2).
    """

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        *,
        reduced_dim: int = SO_VIT_REDUCED_DIM,
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
        fusion: str = "sum",
        dropout: float = 0.0,
        eps: float = 1e-5,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        activation: Callable[[], nn.Module] = nn.GELU,
        num_prefix_tokens: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_classes", num_classes), ("reduced_dim", reduced_dim)):
            check_positive_int(value, name)
        check_positive_int(num_prefix_tokens, "num_prefix_tokens")
        if fusion not in _FUSIONS:
            raise ValueError(f"fusion must be one of {list(_FUSIONS)}, got {fusion!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.num_prefix_tokens = num_prefix_tokens
        self.fusion = fusion
        self.reduce = nn.Sequential(
            nn.Linear(embed_dim, reduced_dim, bias=False), norm_layer(reduced_dim), activation()
        )
        self.pool = CovariancePooling(backend=backend, vectorize=True, eps=eps)
        self.dropout = nn.Dropout(dropout)
        pooled_dim = self.pool.output_dim(reduced_dim)
        if fusion == "concat":
            self.classifier = nn.Linear(embed_dim + pooled_dim, num_classes)
        else:
            self.token_classifier = nn.Linear(embed_dim, num_classes)
            self.covariance_classifier = nn.Linear(pooled_dim, num_classes)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                # Small random weights, not torchvision's zero head: a zero classifier would
                # stop all gradient into the reduction at the first step.
                nn.init.trunc_normal_(mod.weight, std=0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)

    def forward(self, tokens: Tensor) -> Tensor:
        check_real_floating(tokens, "tokens")
        prefix = self.num_prefix_tokens
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dim or tokens.shape[1] <= prefix:
            raise ValueError(
                f"tokens must be (N, {prefix} + L, embed_dim) with embed_dim={self.embed_dim} and L >= 1, "
                f"got shape {tuple(tokens.shape)}"
            )
        class_token = tokens[:, 0]
        pooled = self.dropout(self.pool(self.reduce(tokens[:, prefix:])))
        if self.fusion == "concat":
            return self.classifier(torch.cat([class_token, pooled], dim=-1))
        logits = self.token_classifier(class_token) + self.covariance_classifier(pooled)
        return logits / 2 if self.fusion == "mean" else logits

    def extra_repr(self) -> str:
        return f"fusion={self.fusion!r}, num_prefix_tokens={self.num_prefix_tokens}"


def _vision_transformer_tokens(vit: nn.Module) -> tuple[int, int]:
    """``(embed_dim, num_prefix_tokens)`` of a timm or torchvision vision transformer whose first
    token is a class token; a TypeError or ValueError that says why for any other module."""
    name = type(vit).__name__
    if is_timm_model(vit):
        prefix = getattr(vit, "num_prefix_tokens", None)
        if prefix is None:
            raise TypeError(
                f"vit must be a vision transformer (a timm model with num_prefix_tokens), got the timm model "
                f"{name}: for a CNN use attach_isqrt_cov_head"
            )
        # timm puts the class token first, then register or distillation tokens.
        if not getattr(vit, "has_class_token", prefix >= 1):
            raise ValueError(
                f"vit must have a class token for the So-ViT head's token classifier, got {name} built "
                "without one (class_token=False)"
            )
        return timm_feature_width(vit), prefix
    missing = [attr for attr in ("_process_input", "class_token", "encoder", "hidden_dim") if not hasattr(vit, attr)]
    if missing:
        raise TypeError(
            f"vit must be a timm vision transformer (with forward_features, forward_head, reset_classifier, "
            f"num_features and num_prefix_tokens) or a torchvision VisionTransformer, got {name} without {missing}"
        )
    return vit.hidden_dim, 1


class SecondOrderViT(nn.Module):
    """A vision transformer whose output tokens, all of them, go to a :class:`SecondOrderViTHead`
    (the transformer's own head would keep the class token only).

    Built by :func:`attach_so_vit_head`. The tokens come through each library's interface:

    - **timm** (ViT, DeiT, their register-token and distilled forms, ...): the pooling and
      classifier are removed with ``reset_classifier(0, global_pool="")``, and
      ``forward_head(forward_features(x), pre_logits=True)`` gives the normalised tokens, class
      token first, ``num_prefix_tokens`` of them before the visual tokens;
    - **torchvision** ``VisionTransformer``: its ``heads`` becomes :class:`~torch.nn.Identity`
      and the encoder output is used, the class token first.

    No parameter is left unused (DDP needs no ``find_unused_parameters``).

    Args:
        vit: a timm vision transformer or a torchvision ``VisionTransformer`` (any image size,
            patch size and depth).
        head: the second-order head, with ``embed_dim`` the transformer's token width and
            ``num_prefix_tokens`` its number of class, register and distillation tokens.

    Shape:
        - Input: ``(N, C_in, H, W)`` images.
        - Output: ``(N, num_classes)``.
    """

    def __init__(self, vit: nn.Module, head: SecondOrderViTHead) -> None:
        super().__init__()
        embed_dim, prefix = _vision_transformer_tokens(vit)
        if head.embed_dim != embed_dim:
            raise ValueError(f"head.embed_dim must equal the token width of vit ({embed_dim}), got {head.embed_dim}")
        if head.num_prefix_tokens != prefix:
            raise ValueError(f"head.num_prefix_tokens must equal that of vit ({prefix}), got {head.num_prefix_tokens}")
        self.from_timm = is_timm_model(vit)
        if self.from_timm:
            strip_timm_classifier(vit)
        else:
            vit.heads = nn.Identity()
        self.vit = vit
        self.head = head

    def forward_tokens(self, images: Tensor) -> Tensor:
        """The transformer's output tokens ``(N, P + L, D)``, the class token first."""
        if self.from_timm:
            if images.shape[0] == 0:
                raise ValueError(
                    f"images must hold at least one sample ({type(self.vit).__name__} of timm reshapes by the "
                    f"batch size), got shape {tuple(images.shape)}"
                )
            tokens = timm_unpooled_features(self.vit, images)
            if tokens.dim() != 3:
                # e.g. timm's distilled DeiT, whose forward_head always picks its two prefix tokens.
                raise ValueError(
                    f"forward_head of {type(self.vit).__name__} without pooling returned shape "
                    f"{tuple(tokens.shape)}, not a token sequence (N, T, D)"
                )
            return tokens
        x = self.vit._process_input(images)
        class_token = self.vit.class_token.expand(x.shape[0], -1, -1)
        return self.vit.encoder(torch.cat([class_token, x], dim=1))

    def forward(self, images: Tensor) -> Tensor:
        check_images(images)
        return self.head(self.forward_tokens(images))


def attach_so_vit_head(vit: nn.Module, num_classes: int, **head_options: Any) -> SecondOrderViT:
    """Wrap a timm or torchvision vision transformer so that all its tokens go to a new
    :class:`SecondOrderViTHead`; ``vit`` is reused, its pooling and classifier removed (see
    :class:`SecondOrderViT`).

    Args:
        vit: a timm vision transformer with a class token (``timm.create_model("vit_...")``,
            ``"deit_..."``) or a torchvision ``VisionTransformer``.
        num_classes: number of logits.
        **head_options: keyword arguments of :class:`SecondOrderViTHead` (``reduced_dim``,
            ``backend``, ``fusion``, ``dropout``, ``eps``, ``norm_layer``, ``activation``);
            ``embed_dim`` and ``num_prefix_tokens`` are read from ``vit``.

    Example:
        >>> import timm, torch
        >>> from torchvision.models import VisionTransformer
        >>> from sqrtlayers.layers import attach_so_vit_head
        >>> vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
        >>> model = attach_so_vit_head(vit, 10, reduced_dim=8)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2)
        >>> model = attach_so_vit_head(vit, 10, reduced_dim=8)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    if not isinstance(vit, nn.Module):
        raise TypeError(f"vit must be an nn.Module (a timm or torchvision vision transformer), got {type(vit).__name__}")
    embed_dim, prefix = _vision_transformer_tokens(vit)
    head = SecondOrderViTHead(embed_dim, num_classes, num_prefix_tokens=prefix, **head_options)
    return SecondOrderViT(vit, head)


