"""The So-ViT second-order head: class-token and covariance-pooled visual-token classifiers, fused."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..backends import SqrtmBackend
from .covariance_pooling import CovariancePooling

__all__ = ["SecondOrderViTHead", "SecondOrderViT", "attach_so_vit_head"]

_FUSIONS = ("sum", "mean", "concat")


class SecondOrderViTHead(nn.Module):
    r"""Second-order vision-transformer head (So-ViT): classifies the class token and the
    covariance-pooled visual tokens, and fuses the two.

    With tokens :math:`(t_0, t_1, \dots, t_L)`, :math:`t_0` the class token,

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
            branch then sees ``r (r + 1) / 2`` features). Default: ``48``.
        backend: square-root backend, a name or a configured backend. Default: ``"mpa-lya"``
            (the So-ViT experiment of Song et al.).
        fusion: ``"sum"`` of the two logits (So-ViT), their ``"mean"``, or ``"concat"`` of the
            class token and the pooled features into one Linear. Default: ``"sum"``.
        dropout: dropout probability on the pooled features. Default: ``0.0``.
        eps: covariance ridge relative to the mean variance (see :func:`covariance_pool`).
            Default: ``1e-5``.
        norm_layer: normalisation over the last dim of the reduced tokens. Default:
            :class:`~torch.nn.LayerNorm`.
        activation: activation after the normalisation. Default: :class:`~torch.nn.GELU`.

    Shape:
        - Input: ``(N, 1 + L, D)``, the class token first, ``L >= 1`` visual tokens.
        - Output: ``(N, num_classes)``.

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
        reduced_dim: int = 48,
        backend: str | SqrtmBackend = "mpa-lya",
        fusion: str = "sum",
        dropout: float = 0.0,
        eps: float = 1e-5,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        activation: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_classes", num_classes), ("reduced_dim", reduced_dim)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if fusion not in _FUSIONS:
            raise ValueError(f"fusion must be one of {list(_FUSIONS)}, got {fusion!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
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
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dim or tokens.shape[1] < 2:
            raise ValueError(
                f"expected tokens of shape (N, 1 + L, {self.embed_dim}) with L >= 1, got {tuple(tokens.shape)}"
            )
        class_token = tokens[:, 0]
        pooled = self.dropout(self.pool(self.reduce(tokens[:, 1:])))
        if self.fusion == "concat":
            return self.classifier(torch.cat([class_token, pooled], dim=-1))
        logits = self.token_classifier(class_token) + self.covariance_classifier(pooled)
        return logits / 2 if self.fusion == "mean" else logits

    def extra_repr(self) -> str:
        return f"fusion={self.fusion!r}"


def _check_vision_transformer(vit: nn.Module) -> None:
    missing = [name for name in ("_process_input", "class_token", "encoder", "hidden_dim") if not hasattr(vit, name)]
    if missing:
        raise TypeError(f"expected a torchvision VisionTransformer, got {type(vit).__name__} without {missing}")


class SecondOrderViT(nn.Module):
    """A torchvision ``VisionTransformer`` whose encoder output, all tokens, goes to a
    :class:`SecondOrderViTHead` (``VisionTransformer.forward`` would keep the class token only).

    Built by :func:`attach_so_vit_head`. The transformer's own ``heads`` is replaced by
    :class:`~torch.nn.Identity` so that no parameter is left unused under DDP.

    Args:
        vit: a torchvision ``VisionTransformer`` (any image size, patch size and depth).
        head: the second-order head, with ``embed_dim == vit.hidden_dim``.

    Shape:
        - Input: ``(N, 3, image_size, image_size)``.
        - Output: ``(N, num_classes)``.
    """

    def __init__(self, vit: nn.Module, head: SecondOrderViTHead) -> None:
        super().__init__()
        _check_vision_transformer(vit)
        if head.embed_dim != vit.hidden_dim:
            raise ValueError(f"head.embed_dim must equal vit.hidden_dim ({vit.hidden_dim}), got {head.embed_dim}")
        vit.heads = nn.Identity()
        self.vit = vit
        self.head = head

    def forward_tokens(self, images: Tensor) -> Tensor:
        """The encoder output ``(N, 1 + L, D)``, the class token first (as torchvision computes it)."""
        x = self.vit._process_input(images)
        class_token = self.vit.class_token.expand(x.shape[0], -1, -1)
        return self.vit.encoder(torch.cat([class_token, x], dim=1))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.forward_tokens(images))


def attach_so_vit_head(
    vit: nn.Module,
    num_classes: int,
    *,
    reduced_dim: int = 48,
    backend: str | SqrtmBackend = "mpa-lya",
    fusion: str = "sum",
    dropout: float = 0.0,
    eps: float = 1e-5,
) -> SecondOrderViT:
    """Wrap a torchvision ``VisionTransformer`` so that all its tokens go to a new
    :class:`SecondOrderViTHead`; ``vit`` is reused (its ``heads`` becomes Identity).

    Args:
        vit: a torchvision ``VisionTransformer``.
        num_classes: number of logits.
        reduced_dim, backend, fusion, dropout, eps: see :class:`SecondOrderViTHead`.

    Example:
        >>> import torch
        >>> from torchvision.models import VisionTransformer
        >>> from sqrtlayers.layers import attach_so_vit_head
        >>> vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
        >>> model = attach_so_vit_head(vit, 10, reduced_dim=8)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    _check_vision_transformer(vit)
    head = SecondOrderViTHead(
        vit.hidden_dim, num_classes, reduced_dim=reduced_dim, backend=backend, fusion=fusion, dropout=dropout, eps=eps
    )
    return SecondOrderViT(vit, head)
