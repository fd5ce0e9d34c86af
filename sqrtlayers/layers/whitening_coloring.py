r"""The whitening and colouring transform (WCT) of universal style transfer, grouped as in GD-WCT."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backends import SqrtmBackend, resolve_backend
from ..dtypes import compute_dtype
from .channel_groups import group_count, resolve_group_size
from .input_checks import check_real_floating

__all__ = ["whitening_coloring", "WhiteningColoring", "DEFAULT_WCT_BACKEND"]

#: Default backend of the whitening and colouring transform: ``auto``, the fastest backend that
#: meets ``1e-3`` (``eigh`` on CPUs). The transform's output *is* the style's statistics, so an
#: approximate inverse root shows as wrong colours, where a classifier would train through it.
DEFAULT_WCT_BACKEND = "auto"


def _check_features(value: Tensor, name: str) -> None:
    """Raise unless ``value`` is real floating-point ``(N, C, *S)`` features, ``C`` and ``prod(S)`` > 0."""
    check_real_floating(value, name)
    if value.dim() < 3:
        raise ValueError(f"{name} must be (N, C, H, W) or (N, C, L) features, got shape {tuple(value.shape)}")
    if value.shape[1] == 0 or math.prod(value.shape[2:]) == 0:
        raise ValueError(f"{name} must have at least one channel and one position, got shape {tuple(value.shape)}")


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a float >= 0, got {eps!r}")
    return float(eps)


def _check_alpha(alpha: float | Tensor, shape: torch.Size | None = None) -> None:
    """Raise unless ``alpha`` is a float in ``[0, 1]`` or a real floating-point tensor that
    broadcasts to ``shape`` (the content's) without changing it; the error echoes the value."""
    if isinstance(alpha, Tensor):
        check_real_floating(alpha, "alpha")
        if shape is not None:
            try:
                fits = torch.broadcast_shapes(alpha.shape, shape) == shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"alpha must broadcast to the content's shape {tuple(shape)}, got shape {tuple(alpha.shape)}"
                )
        return
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a float in [0, 1] or a tensor, got {alpha!r}")


def _grouped(x: Tensor, groups: int, group_size: int) -> Tensor:
    """``(N, C, *S) -> (N, G, g, M)``: each sample's positions as columns, per channel group,
    zero channels appended up to ``G * g``."""
    n, c = x.shape[:2]
    x = x.reshape(n, c, -1)
    if groups * group_size > c:
        x = F.pad(x, (0, 0, 0, groups * group_size - c))
    return x.view(n, groups, group_size, x.shape[-1])


def _normalised_moments(x: Tensor, channels: int, group_size: int, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Per sample and group of ``x`` ``(N, G, g, M)``: the mean ``(N, G, g, 1)``, the centred
    features, ``A = Σ / v + eps I`` ``(N, G, g, g)`` and the mean variance ``v`` ``(N, G, 1, 1)``.

    ``v`` is the mean variance of the group's real channels (floored at the dtype's ``tiny``, so
    that constant features give ``A = eps I``, not NaN): the backend sees a matrix of trace about
    ``g`` whatever the scale of the features, and ``Σ + eps v I = v A``. The channels appended to
    the last group get ``A``'s diagonal 1 + eps, decoupled from the real ones, so that they do
    not set the condition number an iterative backend sees.
    """
    groups = x.shape[1]
    mean = x.mean(-1, keepdim=True)
    centred = x - mean
    cov = centred @ centred.mT / x.shape[-1]
    real = torch.full((groups, group_size), True, device=x.device)
    real.view(-1)[channels:] = False
    counts = real.sum(-1).to(x.dtype)[:, None, None]
    variance = (cov.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] / counts).clamp_min(torch.finfo(x.dtype).tiny)
    diagonal = (~real).to(x.dtype) + eps
    return mean, centred, cov / variance + torch.diag_embed(diagonal), variance


def whitening_coloring(
    content: Tensor,
    style: Tensor | None,
    alpha: float | Tensor = 1.0,
    group_size: int | None = None,
    eps: float = 1e-5,
    backend: str | SqrtmBackend = DEFAULT_WCT_BACKEND,
) -> Tensor:
    r"""Whitening and colouring transform: give the content features the style's mean and
    covariance, per sample and per group of channels.

    Within a group of ``g`` channels, every position of a sample is a vector
    :math:`x \in \mathbb{R}^g`. With :math:`\mu_c, \Sigma_c` the content's mean and covariance
    over its positions and :math:`\mu_s, \Sigma_s` the style's,

    .. math::
        \hat x = \Sigma_s'^{1/2}\, \Sigma_c'^{-1/2} (x - \mu_c) + \mu_s,\qquad
        y = \alpha \hat x + (1 - \alpha) x,\qquad
        \Sigma' = \Sigma + \epsilon\, \tfrac{\operatorname{tr}\Sigma}{g} I,

    so that with ``alpha=1`` the output has the style's mean and (up to the ridge)
    covariance: :math:`\Sigma_s'^{1/2} \Sigma_c'^{-1/2} \Sigma_c \Sigma_c'^{-1/2} \Sigma_s'^{1/2}
    \approx \Sigma_s'`. With ``style=None`` only the whitening is applied,
    :math:`\hat x = \Sigma_c'^{-1/2} (x - \mu_c)` (zero mean, identity covariance). The inverse
    roots of all samples and groups are one backend call, and so are the roots of the style.

    Args:
        content: ``(N, C, *S)`` features, e.g. ``(N, C, H, W)`` or ``(N, C, L)``; real
            floating point.
        style: ``(N, C, *S')`` or ``(1, C, *S')`` (one style for the whole batch), with any
            number of positions; or ``None`` for whitening alone.
        alpha: weight of the transformed features against the content: a float in ``[0, 1]``,
            or a tensor broadcasting to ``content`` (a learnable blend; its values are not
            checked). Default: ``1.0``.
        group_size: channels per group (GD-WCT), ``None`` for one group of all channels. When
            ``C`` is not a multiple, the last group holds the remaining ``C mod g``. Default:
            ``None``.
        eps: ridge relative to the group's mean variance, so that features with fewer positions
            than channels (a singular covariance) still have an inverse root, and the gradient of
            both roots stays finite; scale-free: the output for ``a * content`` is the output for
            ``content`` when ``alpha=1``. The condition number a backend sees is at most
            ``g / eps + 1``. Default: ``1e-5``.
        backend: square-root backend, a name or a configured backend. Default: ``"auto"``
            (:data:`DEFAULT_WCT_BACKEND`).

    Returns:
        A tensor of the shape and dtype of ``content``.

    Shape:
        - content: ``(N, C, *S)``, at least one spatial dim.
        - style: ``(N, C, *S')`` or ``(1, C, *S')``.
        - output: ``(N, C, *S)``.

    Raises:
        TypeError: a non-tensor, integer, bool or complex ``content``, ``style`` or ``alpha``
            tensor, or a bad ``group_size`` type.
        ValueError: fewer than 3 dims, no channel or no position, style channels or batch that
            do not fit the content, ``alpha`` outside ``[0, 1]`` or not broadcasting, a bad
            ``group_size``, or ``eps < 0``.

    Numerics: float16/bfloat16 inputs (and autocast regions) are computed in float32 and
    cast back. The output's covariance is as accurate as the backend's inverse root of
    :math:`\Sigma_c'` and root of :math:`\Sigma_s'` (see the declared bounds in
    ``docs/METHODS.md``); the paper's fixed-step methods (``ns``, ``mtp``, ``mpa``) leave the
    output visibly off the style's covariance beyond a condition number of about 10.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import whitening_coloring
        >>> content = torch.randn(2, 8, 16, 16)
        >>> style = torch.randn(1, 8, 64) * torch.linspace(1, 3, 8)[:, None] + 5
        >>> out = whitening_coloring(content, style, backend="eigh", eps=0.0)
        >>> x, s = out.flatten(2), style.flatten(2)
        >>> torch.allclose(x.mean(-1), s.mean(-1).expand(2, 8), atol=1e-4)
        True
        >>> cov = lambda f: (f - f.mean(-1, keepdim=True)) @ (f - f.mean(-1, keepdim=True)).mT / f.shape[-1]
        >>> torch.allclose(cov(x), cov(s).expand(2, 8, 8), atol=1e-3)
        True

    Reference: Li, Fang, Yang, Wang, Lu, Yang, "Universal Style Transfer via Feature
    Transforms", NeurIPS 2017; Cho, Choe, Kim, Bae, Kim, "Image-to-Image Translation via
    Group-wise Deep Whitening-and-Coloring Transformation" (GD-WCT), CVPR 2019.
    """
    _check_features(content, "content")
    n, channels = content.shape[:2]
    if style is not None:
        _check_features(style, "style")
        if style.shape[1] != channels:
            raise ValueError(
                f"style must have the content's {channels} channels, got shape {tuple(style.shape)}"
            )
        if style.shape[0] not in (1, n):
            raise ValueError(
                f"style must hold 1 or {n} samples (the content's batch), got shape {tuple(style.shape)}"
            )
    _check_alpha(alpha, content.shape)
    group_size = resolve_group_size(channels, group_size)
    return _whitening_coloring(content, style, alpha, group_size, _check_eps(eps), resolve_backend(backend))


def _whitening_coloring(
    content: Tensor, style: Tensor | None, alpha: float | Tensor, group_size: int, eps: float, backend: SqrtmBackend
) -> Tensor:
    """:func:`whitening_coloring` on arguments already checked (the module checks its own at
    construction)."""
    if content.shape[0] == 0:
        return content.clone()
    n, channels = content.shape[:2]
    groups = group_count(channels, group_size)
    dtypes = [content.dtype] + ([] if style is None else [style.dtype])
    work_dtype = compute_dtype(torch.promote_types(*dtypes) if len(dtypes) == 2 else dtypes[0])
    with torch.autocast(device_type=content.device.type, enabled=False):
        x = _grouped(content.to(work_dtype), groups, group_size)
        _, centred, content_cov, content_var = _normalised_moments(x, channels, group_size, eps)
        transform = backend.inv_sqrtm(content_cov) * content_var.rsqrt()
        shift: Tensor | float = 0.0
        if style is not None:
            s = _grouped(style.to(work_dtype), groups, group_size)
            shift, _, style_cov, style_var = _normalised_moments(s, channels, group_size, eps)
            transform = (backend.sqrtm(style_cov) * style_var.sqrt()) @ transform
        out = (transform @ centred + shift).view(n, groups * group_size, -1)[:, :channels].reshape(content.shape)
        if isinstance(alpha, Tensor):
            out = torch.lerp(content.to(work_dtype), out, alpha.to(work_dtype))
        elif alpha != 1:
            out = torch.lerp(content.to(work_dtype), out, float(alpha))
    return out.to(content.dtype)


class WhiteningColoring(nn.Module):
    r"""The whitening and colouring transform as a layer; see :func:`whitening_coloring`.

    Args:
        group_size: channels per group, ``None`` for one group of all channels. Default: ``None``.
        eps: ridge relative to the group's mean variance. Default: ``1e-5``.
        alpha: initial (or fixed) blend of the transformed features with the content, in
            ``[0, 1]``. Default: ``1.0``.
        learnable_alpha: make ``alpha`` a scalar :class:`~torch.nn.Parameter` trained with the
            network (GD-WCT's learnable blend; not clamped, so it may leave ``[0, 1]``);
            otherwise it is a plain float. Default: ``False``.
        backend: square-root backend, a name or a configured backend. Default: ``"auto"``.

    Shape:
        - content: ``(N, C, *S)``, at least one spatial dim.
        - style: ``(N, C, *S')``, ``(1, C, *S')`` or ``None`` (whitening alone).
        - Output: ``(N, C, *S)``, the dtype of ``content``.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import WhiteningColoring
        >>> wct = WhiteningColoring(group_size=4, alpha=0.6, learnable_alpha=True, backend="eigh")
        >>> out = wct(torch.randn(2, 8, 5, 5), torch.randn(1, 8, 7, 7))
        >>> out.shape
        torch.Size([2, 8, 5, 5])
        >>> out.sum().backward()
        >>> wct.alpha.grad is not None
        True

    Reference: Li et al., NeurIPS 2017 (WCT); Cho et al., CVPR 2019 (GD-WCT).
    """

    alpha: float | Tensor

    def __init__(
        self,
        *,
        group_size: int | None = None,
        eps: float = 1e-5,
        alpha: float = 1.0,
        learnable_alpha: bool = False,
        backend: str | SqrtmBackend = DEFAULT_WCT_BACKEND,
    ) -> None:
        super().__init__()
        if group_size is not None:
            resolve_group_size(group_size, group_size)  # the type and >= 1; C is checked per call
        _check_alpha(alpha)
        self.group_size = group_size
        self.eps = _check_eps(eps)
        self.backend = resolve_backend(backend)
        self.learnable_alpha = learnable_alpha
        if learnable_alpha:
            self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        else:
            self.alpha = float(alpha)

    def forward(self, content: Tensor, style: Tensor | None) -> Tensor:
        return whitening_coloring(
            content, style, alpha=self.alpha, group_size=self.group_size, eps=self.eps, backend=self.backend
        )

    def extra_repr(self) -> str:
        alpha = "learnable" if self.learnable_alpha else f"{self.alpha:g}"
        return f"group_size={self.group_size}, eps={self.eps}, alpha={alpha}, backend={self.backend!r}"
