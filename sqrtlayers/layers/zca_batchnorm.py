r"""Decorrelated batch normalisation: ZCA whitening of groups of channels over a mini-batch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import init
from torch.nn.modules.batchnorm import _BatchNorm

from ..backends import SqrtmBackend, resolve_backend
from ..backends.base import compute_dtype
from .gram import scaled_gram

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["zca_batch_norm", "ZCABatchNorm", "convert_zca_batchnorm", "set_zca_sync"]

# Whitening needs float32 at least: a covariance rounded to 8 (bf16) or 11 (fp16) mantissa bits
# is not positive definite in general, and its inverse square root amplifies the rounding.


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks of a process group. Every rank's loss depends on the summed value, so
    the gradient of each rank's contribution is the sum of the upstream gradients over ranks."""

    @staticmethod
    def forward(tensor: Tensor, group: ProcessGroup) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ProcessGroup], output: Tensor) -> None:
        ctx.group = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return _AllReduceSum.apply(grad_output, ctx.group), None


def _verify_batch_size(size: torch.Size) -> None:
    values = size[0] * math.prod(size[2:])
    if values == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")


def _resolve_group_size(num_features: int, group_size: int | None) -> int:
    if group_size is None:
        return num_features
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"group_size must be an int or None, got {group_size!r}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if group_size > num_features:
        raise ValueError(f"group_size must be <= num_features ({num_features}), got {group_size}")
    return group_size


def _to_groups(x: Tensor, num_groups: int, group_size: int) -> Tensor:
    """``(N, C, *S) -> (G, g, N * prod(S))`` in one copy, zero channels appended up to ``G * g``."""
    n, c = x.shape[:2]
    xg = x.new_empty(num_groups * group_size, n, x[:1, :1].numel())
    xg[:c] = x.reshape(n, c, -1).transpose(0, 1)
    if c < num_groups * group_size:
        xg[c:] = 0
    return xg.view(num_groups, group_size, -1)


def _from_groups(y: Tensor, shape: torch.Size) -> Tensor:
    """Inverse of :func:`_to_groups`: ``(G, g, N * prod(S)) -> shape``, padding dropped."""
    n, c = shape[:2]
    y = y.reshape(-1, n, y.shape[-1] // n)
    if y.shape[0] > c:  # slicing only when needed: its backward writes a zero-filled copy
        y = y[:c]
    return y.transpose(0, 1).reshape(shape)


def _to_group_vector(v: Tensor, num_groups: int, group_size: int, fill: float) -> Tensor:
    missing = num_groups * group_size - v.shape[0]
    return F.pad(v, (0, missing), value=fill).view(num_groups, group_size)


class _GroupCentring(torch.autograd.Function):
    """``x - mean`` in the group layout of :func:`_to_groups`, the mean taken over the batch and
    spatial positions (and over the ranks of a process group).

    Returns ``(centred (G, g, M), mean (G, g), count)``; the mean and the count (a 0-dim tensor,
    summed over ranks) are not differentiable. Written by hand because autograd through
    ``xg - xg.mean(-1)`` spends three extra full-size passes (a negation, a sum and an add) on
    what is ``grad - mean(grad)``, and the layout copy can be centred in place.
    """

    @staticmethod
    def forward(
        x: Tensor, num_groups: int, group_size: int, process_group: ProcessGroup | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        xg = _to_groups(x, num_groups, group_size)
        total = xg.sum(-1)
        count = xg.new_full((1,), float(xg.shape[-1]))
        if process_group is not None:
            packed = torch.cat([total.flatten(), count])
            dist.all_reduce(packed, group=process_group)
            total, count = packed[:-1].view_as(total), packed[-1:]
        mean = total / count
        return xg.sub_(mean.unsqueeze(-1)), mean, count.squeeze(0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple[Tensor, Tensor, Tensor]) -> None:
        x, _, _, ctx.process_group = inputs
        ctx.shape = x.shape
        ctx.mark_non_differentiable(output[1], output[2])
        ctx.save_for_backward(output[2])

    @staticmethod
    def backward(ctx: Any, grad_centred: Tensor, _mean: None, _count: None) -> tuple[Tensor, None, None, None]:
        (count,) = ctx.saved_tensors
        total = grad_centred.sum(-1, keepdim=True)
        if ctx.process_group is not None:
            total = _AllReduceSum.apply(total, ctx.process_group)
        # Plain differentiable operations, so double backward works through them.
        return _from_groups(grad_centred - total / count, ctx.shape), None, None, None


def _batch_moments(
    x: Tensor, num_groups: int, group_size: int, eps: float, process_group: ProcessGroup | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-group mean ``(G, g)``, centred input ``(G, g, M)`` and ``Σ + eps I`` ``(G, g, g)`` of
    ``x`` ``(N, C, *S)``, over the ranks of ``process_group`` when one is given."""
    xc, mean, count = _GroupCentring.apply(x, num_groups, group_size, process_group)
    if process_group is None:
        cov = scaled_gram(xc, 1.0 / xc.shape[-1])
    else:
        # Centred on the global mean before the second moment: no E[x x^T] - mu mu^T cancellation.
        cov = _AllReduceSum.apply(scaled_gram(xc), process_group) / count
    cov = cov + eps * torch.eye(group_size, dtype=cov.dtype, device=cov.device)
    real = x.shape[1] - (num_groups - 1) * group_size
    if real < group_size:
        # The appended channels are zero, so their block is eps I: lift it to the mean variance
        # of the real channels so that it does not set the condition number the iterative
        # backends see. The block is decoupled from the real channels (exactly so for eigh; an
        # iterative backend only sees its normalisation scale change a little).
        lift = torch.zeros_like(cov)
        lift[-1].diagonal()[real:] = cov[-1].diagonal()[:real].mean().detach()
        cov = cov + lift
    return mean, xc, cov


def _whiten(xc: Tensor, whitening: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``weight * (W @ xc) + bias`` per group, the affine map folded into one ``baddbmm``."""
    if weight is not None:
        whitening = whitening * weight.unsqueeze(-1)
    if bias is None:
        return whitening @ xc
    return torch.baddbmm(bias.unsqueeze(-1), whitening, xc)


def zca_batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_whitening: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    group_size: int | None = None,
    backend: str | SqrtmBackend = "mpa-lya",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Decorrelated (ZCA-whitening) batch normalisation, the functional form of
    :class:`ZCABatchNorm`.

    The channels are split into groups of ``group_size``; within a group, every position of
    every sample is a vector :math:`x \in \mathbb{R}^g` and

    .. math::
        y = \gamma \odot \Sigma^{-1/2} (x - \mu) + \beta,\qquad
        \mu = \frac{1}{m} \sum_i x_i,\quad
        \Sigma = \frac{1}{m} \sum_i (x_i - \mu)(x_i - \mu)^T + \epsilon I,

    the sums running over the :math:`m = N \prod S` batch and spatial positions. With
    ``training=True`` the batch statistics are used, and the running buffers (when given) are
    updated in place: ``running = (1 - momentum) * running + momentum * batch`` for the mean and
    for the whitening matrix :math:`\Sigma^{-1/2}`. With ``training=False`` the buffers are used.

    Args:
        input: ``(N, C)`` or ``(N, C, *)``.
        running_mean: ``(C,)`` or ``None``.
        running_whitening: ``(G, g, g)`` or ``None``, with ``G = ceil(C / g)``.
        weight: ``(C,)`` scale :math:`\gamma`, or ``None``. Default: ``None``.
        bias: ``(C,)`` shift :math:`\beta`, or ``None``. Default: ``None``.
        training: use (and track) batch statistics. Default: ``False``.
        momentum: weight of the batch statistics in the running update. Default: ``0.1``.
        eps: added to the diagonal of each group covariance. Default: ``1e-5``.
        group_size: channels per group, ``None`` for one group of all channels. When ``C`` is
            not a multiple, the last group holds the remaining ``C mod g`` channels. Default:
            ``None``.
        backend: square-root backend for :math:`\Sigma^{-1/2}`, a name or a configured
            backend. Default: ``"mpa-lya"``.
        process_group: with ``training=True``, sum the moments over the ranks of this group
            (differentiably), so that every rank whitens with the global batch statistics.
            Default: ``None`` (this process only).

    Returns:
        A tensor of the shape and dtype of ``input``.

    Raises:
        ValueError: for fewer than 2 dims, a bad ``group_size``, missing or mis-shaped running
            buffers in eval, or a single value per channel in training (BatchNorm's message).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import zca_batch_norm
        >>> x = torch.randn(256, 3) @ torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 1.0]])
        >>> y = zca_batch_norm(x, None, None, training=True, backend="eigh")
        >>> torch.allclose(y.T @ y / 256, torch.eye(3), atol=1e-3)
        True
    """
    if input.dim() < 2:
        raise ValueError(f"expected input of shape (N, C) or (N, C, *), got shape {tuple(input.shape)}")
    num_features = input.shape[1]
    group_size = _resolve_group_size(num_features, group_size)
    num_groups = -(-num_features // group_size)
    if not training and (running_mean is None or running_whitening is None):
        raise ValueError("running_mean and running_whitening are required when training=False")
    if running_whitening is not None and running_whitening.shape != (num_groups, group_size, group_size):
        raise ValueError(
            f"running_whitening must have shape {(num_groups, group_size, group_size)} for "
            f"{num_features} channels in groups of {group_size}, got {tuple(running_whitening.shape)}"
        )
    if input.numel() == 0 and process_group is None:
        # Nothing to normalise; like BatchNorm, an empty batch leaves the running statistics alone.
        return input.clone()
    if training and process_group is None:
        _verify_batch_size(input.size())

    work_dtype = compute_dtype(input.dtype)
    with torch.autocast(device_type=input.device.type, enabled=False):
        x = input.to(work_dtype)
        if training:
            mean, xc, cov = _batch_moments(x, num_groups, group_size, eps, process_group)
            whitening = resolve_backend(backend).inv_sqrtm(cov)
            if running_mean is not None and running_whitening is not None:
                with torch.no_grad():
                    running_mean.mul_(1 - momentum).add_(mean.flatten()[:num_features], alpha=momentum)
                    running_whitening.mul_(1 - momentum).add_(whitening, alpha=momentum)
        else:
            mean = _to_group_vector(running_mean.to(work_dtype), num_groups, group_size, 0.0)
            xc = _to_groups(x, num_groups, group_size) - mean.unsqueeze(-1)
            whitening = running_whitening.to(work_dtype)
        scale = None if weight is None else _to_group_vector(weight.to(work_dtype), num_groups, group_size, 1.0)
        shift = None if bias is None else _to_group_vector(bias.to(work_dtype), num_groups, group_size, 0.0)
        out = _from_groups(_whiten(xc, whitening, scale, shift), input.shape)
    return out.to(input.dtype)


def _diagonal_whitening(running_var: Tensor, eps: float, group_size: int) -> Tensor:
    """Block-diagonal whitening ``(G, g, g)`` equal to BatchNorm's ``1 / sqrt(var + eps)``: the
    running whitening matrix of a :class:`ZCABatchNorm` that acts like a given BatchNorm."""
    num_groups = -(-running_var.shape[0] // group_size)
    inv_std = _to_group_vector((running_var + eps).rsqrt(), num_groups, group_size, 1.0)
    return torch.diag_embed(inv_std)


class ZCABatchNorm(nn.Module):
    r"""Decorrelated batch normalisation (DBN): ZCA whitening of groups of channels, a drop-in
    for :class:`~torch.nn.BatchNorm1d`, :class:`~torch.nn.BatchNorm2d` and
    :class:`~torch.nn.BatchNorm3d`.

    Per group of ``group_size`` channels,

    .. math::
        y = \gamma \odot \Sigma^{-1/2} (x - \mu) + \beta,

    with :math:`\mu` and :math:`\Sigma` (plus :math:`\epsilon I`) the group mean and covariance
    over the batch and spatial positions, and :math:`\Sigma^{-1/2}` from the chosen square-root
    backend; see :func:`zca_batch_norm`. In training the output of each group has zero mean and
    identity covariance (exactly with ``backend="eigh"``, up to :math:`\epsilon`), and the
    gradient flows through :math:`\Sigma^{-1/2}`, not only through the centring.

    Running statistics (as in DBN): the running mean and a running average of the whitening
    matrix :math:`\Sigma^{-1/2}` itself (not of the covariance), so evaluation is one matrix
    product and needs no square root; with ``momentum=1.0`` evaluation on a batch reproduces the
    training output on it. Unlike BatchNorm's running variance there is no unbiased (``m/(m-1)``)
    correction, which would break that reproduction; and the average of whitening matrices is
    not the whitening matrix of the average covariance: the running matrix is an estimate, as
    in DBN and IterNorm.

    Cost: per group, the covariance and the whitening are ``(g x g) x (g x N prod S)`` matrix
    products (about ``g`` multiply-adds per input element each, where BatchNorm needs ``O(1)``),
    plus one batched square root of ``(G, g, g)``; ``benchmarks/zca_vs_batchnorm.py`` compares
    it with ``nn.BatchNorm2d``.

    Args:
        num_features: number of channels ``C``.
        group_size: channels per whitening group; ``None`` whitens all channels together. When
            ``C`` is not a multiple of it, the last group holds the remaining ``C mod g``
            channels (computed as a full group padded with a decoupled block, so all groups are
            one batched square-root call). Default: ``None``.
        eps: added to the diagonal of each group covariance; it keeps :math:`\Sigma` invertible
            for batches smaller than the group. Default: ``1e-5``.
        momentum: weight of the batch statistics in the running averages, or ``None`` for a
            cumulative average. Default: ``0.1``.
        affine: learnable per-channel :math:`\gamma`, :math:`\beta`. Default: ``True``.
        track_running_stats: keep running statistics for evaluation; without them, evaluation
            uses batch statistics. Default: ``True``.
        backend: square-root backend name or configured backend. Default: ``"mpa-lya"``.
        sync_stats: in training, when ``torch.distributed`` is initialised with more than one
            rank in ``process_group``, sum the moments over the ranks (differentiably) so every
            rank whitens with the global batch statistics, as :class:`~torch.nn.SyncBatchNorm`
            does. Without an initialised process group it has no effect. Default: ``False``.
        process_group: the ranks to synchronise over, ``None`` for all. Default: ``None``.

    Attributes:
        running_mean: ``(C,)`` buffer, or ``None`` when not tracked.
        running_whitening: ``(G, g, g)`` buffer, ``G = ceil(C / g)``, or ``None``. The padded
            rows and columns of a short last group are ignored.
        num_batches_tracked: training steps seen, or ``None``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, *)``, e.g. ``(N, C, L)``, ``(N, C, H, W)``,
          ``(N, C, D, H, W)``.
        - Output: same shape and dtype as the input.

    Numerics: float16/bfloat16 inputs (and autocast regions) are computed in float32, the result
    cast back. The whitening is as accurate as the backend's inverse square root on the group
    covariance, whose condition number grows with the group size and with :math:`1/\epsilon` for
    small batches: ``"eigh"`` is exact; the paper's iterative backends (``"mpa-lya"``,
    ``"ns"``, ...) leave relative errors of about ``1e-2`` at condition number 10 and ``1e-1``
    and more beyond 100 (see the backends' notes). Small groups (DBN: 16) keep them accurate.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import ZCABatchNorm
        >>> bn = ZCABatchNorm(8, group_size=4, backend="eigh")
        >>> x = torch.randn(64, 8, 5, 5) * torch.arange(1.0, 9.0).view(1, 8, 1, 1)
        >>> y = bn(x)
        >>> g = y[:, :4].transpose(0, 1).flatten(1)
        >>> torch.allclose(g @ g.T / g.shape[1], torch.eye(4), atol=1e-3)
        True
        >>> bn.running_whitening.shape
        torch.Size([2, 4, 4])

    Reference: Huang, Yang, Lang, Deng, "Decorrelated Batch Normalization", CVPR 2018; Song,
    Sebe, Wang, "Fast Differentiable Matrix Square Root", ICLR 2022 (Sec. 5.1).
    """

    # Version 1: running_mean (C,), running_whitening (G, g, g), num_batches_tracked.
    _version = 1
    num_features: int
    group_size: int
    num_groups: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool
    running_mean: Tensor | None
    running_whitening: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(
        self,
        num_features: int,
        *,
        group_size: int | None = None,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        backend: str | SqrtmBackend = "mpa-lya",
        sync_stats: bool = False,
        process_group: ProcessGroup | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        factory_kwargs = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.group_size = _resolve_group_size(num_features, group_size)
        self.num_groups = -(-num_features // self.group_size)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.backend = resolve_backend(backend)
        self.sync_stats = sync_stats
        self.process_group = process_group
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory_kwargs))
            self.bias = nn.Parameter(torch.empty(num_features, **factory_kwargs))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            g = self.group_size
            self.register_buffer("running_mean", torch.zeros(num_features, **factory_kwargs))
            self.register_buffer("running_whitening", torch.empty(self.num_groups, g, g, **factory_kwargs))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_whitening", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to 0, running whitening matrices to the identity, step count to 0."""
        if self.track_running_stats:
            self.running_mean.zero_()  # type: ignore[union-attr]
            eye = torch.eye(self.group_size)
            self.running_whitening.copy_(eye.expand_as(self.running_whitening))  # type: ignore[union-attr]
            self.num_batches_tracked.zero_()  # type: ignore[union-attr]

    def reset_parameters(self) -> None:
        """Reset the running statistics, and :math:`\\gamma = 1`, :math:`\\beta = 0`."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected input of shape (N, C) or (N, C, *), got shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"expected {self.num_features} channels in dim 1, got input of shape {tuple(input.shape)}"
            )

    def _sync_group(self) -> ProcessGroup | None:
        if not (self.sync_stats and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group if self.process_group is not None else dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        # Buffers are passed only where they are updated (training and tracked) or read (eval).
        track = not self.training or self.track_running_stats
        return zca_batch_norm(
            input,
            self.running_mean if track else None,
            self.running_whitening if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
            self.group_size,
            self.backend,
            self._sync_group() if self.training else None,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, group_size={self.group_size}, eps={self.eps}, "
            f"momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, backend={self.backend!r}, "
            f"sync_stats={self.sync_stats}"
        )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        if self.track_running_stats:
            var_key, whitening_key = prefix + "running_var", prefix + "running_whitening"
            # A BatchNorm checkpoint: its running variance becomes the equivalent diagonal
            # whitening, so the converted model evaluates exactly as the BatchNorm did.
            if var_key in state_dict and whitening_key not in state_dict:
                running_var = state_dict.pop(var_key)
                state_dict[whitening_key] = _diagonal_whitening(running_var, self.eps, self.group_size)
            count_key = prefix + "num_batches_tracked"
            if count_key not in state_dict:
                state_dict[count_key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


_CONVERT_OPTIONS = ("group_size", "eps", "momentum", "backend", "sync_stats", "process_group")


def convert_zca_batchnorm(
    module: nn.Module,
    *,
    predicate: Callable[[str, nn.Module], bool] | None = None,
    first_only: bool = False,
    **zca_kwargs: Any,
) -> nn.Module:
    r"""Replace BatchNorm layers (``nn.BatchNorm1d/2d/3d``, ``nn.SyncBatchNorm``) of ``module``
    by :class:`ZCABatchNorm`, recursively, like :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`.

    Each new layer takes the BatchNorm's ``eps``, ``momentum``, ``affine`` and
    ``track_running_stats`` (``zca_kwargs`` may override ``eps`` and ``momentum``), its affine
    parameters (the same :class:`~torch.nn.Parameter` objects, so an optimiser built before still
    updates them), its running mean and step count, and its training mode. The running variance
    becomes the diagonal whitening ``1 / sqrt(var + eps)``: until it trains, a converted layer
    in eval mode computes exactly what the BatchNorm did.

    Args:
        module: the model (changed in place), or a single BatchNorm.
        predicate: ``predicate(qualified_name, batchnorm) -> bool`` chooses the layers to
            convert; ``None`` converts all. Default: ``None``.
        first_only: convert only the first chosen BatchNorm in ``named_modules()`` order (the
            DBN setting: only the first BatchNorm of the network is whitened). Default: ``False``.
        **zca_kwargs: ``group_size``, ``eps``, ``momentum``, ``backend``, ``sync_stats``,
            ``process_group`` for :class:`ZCABatchNorm`.

    Returns:
        ``module``, or the new layer when ``module`` itself is a converted BatchNorm.

    Raises:
        TypeError: for a keyword that is not one of ``zca_kwargs``.

    Example:
        >>> import torch
        >>> from torchvision.models import resnet18
        >>> from sqrtlayers.layers import ZCABatchNorm, convert_zca_batchnorm
        >>> model = convert_zca_batchnorm(resnet18(num_classes=10), first_only=True, group_size=16)
        >>> model.bn1
        ZCABatchNorm(64, group_size=16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
                     backend=PadeBackend(name='mpa-lya', degree=(5, 5), lya_iters=8), sync_stats=False)
        >>> sum(isinstance(m, ZCABatchNorm) for m in model.modules())
        1
    """
    unknown = sorted(set(zca_kwargs) - set(_CONVERT_OPTIONS))
    if unknown:
        raise TypeError(
            f"convert_zca_batchnorm got unexpected keyword(s) {unknown}; accepted: {list(_CONVERT_OPTIONS)}"
        )
    budget = [1 if first_only else -1]

    def convert(mod: nn.Module, name: str) -> nn.Module:
        if isinstance(mod, _BatchNorm) and budget[0] != 0 and (predicate is None or predicate(name, mod)):
            budget[0] -= 1
            return _zca_from_batchnorm(mod, zca_kwargs)
        for child_name, child in mod.named_children():
            new = convert(child, f"{name}.{child_name}" if name else child_name)
            if new is not child:
                mod.add_module(child_name, new)
        return mod

    return convert(module, "")


def _zca_from_batchnorm(bn: _BatchNorm, zca_kwargs: dict[str, Any]) -> ZCABatchNorm:
    reference = bn.running_mean if bn.running_mean is not None else bn.weight
    factory_kwargs = {} if reference is None else {"device": reference.device, "dtype": reference.dtype}
    options = {"eps": bn.eps, "momentum": bn.momentum, **zca_kwargs}
    zca = ZCABatchNorm(
        bn.num_features, affine=bn.affine, track_running_stats=bn.track_running_stats, **options, **factory_kwargs
    )
    if bn.affine:
        zca.weight = bn.weight
        zca.bias = bn.bias
    if bn.track_running_stats:
        with torch.no_grad():
            zca.running_mean.copy_(bn.running_mean)  # type: ignore[union-attr]
            whitening = _diagonal_whitening(bn.running_var, bn.eps, zca.group_size)  # type: ignore[arg-type]
            zca.running_whitening.copy_(whitening)  # type: ignore[union-attr]
            zca.num_batches_tracked.copy_(bn.num_batches_tracked)  # type: ignore[union-attr,arg-type]
    zca.train(bn.training)
    return zca


def set_zca_sync(module: nn.Module, enabled: bool = True, process_group: ProcessGroup | None = None) -> nn.Module:
    """Turn the cross-rank moment synchronisation of every :class:`ZCABatchNorm` in ``module``
    on or off (e.g. in a LightningModule's ``setup`` under DDP); returns ``module``.

    Example:
        >>> from torch import nn
        >>> from sqrtlayers.layers import ZCABatchNorm, set_zca_sync
        >>> model = set_zca_sync(nn.Sequential(ZCABatchNorm(4), ZCABatchNorm(4)))
        >>> [m.sync_stats for m in model]
        [True, True]
    """
    for mod in module.modules():
        if isinstance(mod, ZCABatchNorm):
            mod.sync_stats = enabled
            mod.process_group = process_group
    return module
