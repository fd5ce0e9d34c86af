r"""Decorrelated batch normalisation modules: :class:`ZCABatchNorm` and its norm-act form.

Laid out like ``torch/nn/modules/batchnorm.py``: :class:`_ZCANormBase` owns the parameters, the
buffers, their reset and the state_dict versioning; :class:`ZCABatchNorm` owns ``forward``. The
math is in :mod:`~sqrtlayers.layers.zca_functional`, the cross-rank moments in
:mod:`~sqrtlayers.layers.zca_distributed`, the model-level swap in
:mod:`~sqrtlayers.layers.zca_conversion`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn import init

from ..backends import DEFAULT_BACKEND, SqrtmBackend, resolve_backend
from ..dtypes import compute_dtype
from .channel_groups import group_count, resolve_group_size, to_group_vector
from .input_checks import check_positive_int
from .zca_distributed import active_process_group
from .zca_functional import (
    MAX_CONDITION,
    _zca_batch_norm,
    check_max_condition,
    check_zca_input,
    lift_padding,
    whitening_from_covariance,
    zca_batch_norm,
)

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["ZCABatchNorm", "ZCABatchNormAct", "zca_batch_norm", "diagonal_whitening"]


def diagonal_whitening(running_var: Tensor, eps: float, group_size: int) -> Tensor:
    """Block-diagonal whitening ``(G, g, g)`` equal to BatchNorm's ``1 / sqrt(var + eps)``: the
    running whitening matrix of a :class:`ZCABatchNorm` that evaluates as a given BatchNorm."""
    groups = group_count(running_var.shape[0], group_size)
    return torch.diag_embed(to_group_vector((running_var + eps).rsqrt(), groups, group_size, 1.0))


def diagonal_covariance(running_var: Tensor, group_size: int) -> Tensor:
    """Block-diagonal running covariance ``(G, g, g)`` holding a BatchNorm's running variance, the
    appended channels of a short last group lifted as in training."""
    groups = group_count(running_var.shape[0], group_size)
    real = running_var.shape[0] - (groups - 1) * group_size
    return lift_padding(torch.diag_embed(to_group_vector(running_var, groups, group_size, 0.0)), real)


def _covariance_of_whitening(whitening: Tensor, eps: float) -> Tensor:
    """``W^{-2} - eps I`` (eigenvalues clamped at 0): the covariance behind a whitening matrix
    ``W = (Σ + eps I)^{-1/2}`` of a version-1 checkpoint, which kept no covariance."""
    evals, vecs = torch.linalg.eigh(whitening.double())
    variances = (evals.clamp_min(torch.finfo(torch.float64).tiny).pow(-2) - eps).clamp_min(0)
    return ((vecs * variances.unsqueeze(-2)) @ vecs.mT).to(whitening.dtype)


class _ZCANormBase(nn.Module):
    """Parameters, running statistics, their reset and the state_dict format of the ZCA layers."""

    # State-dict format, stored by nn.Module in each checkpoint's metadata and read back by
    # _load_from_state_dict. Version 1: running_mean (C,), running_whitening (G, g, g) (a running
    # average of whitening matrices), num_batches_tracked. Version 2 adds running_covariance
    # (G, g, g); running_whitening becomes its whitening, kept up to date.
    _version = 2
    num_features: int
    group_size: int
    num_groups: int
    eps: float
    max_condition: float | None
    momentum: float | None
    affine: bool
    track_running_stats: bool
    sync_stats: bool
    running_mean: Tensor | None
    running_covariance: Tensor | None
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
        backend: str | SqrtmBackend = DEFAULT_BACKEND,
        max_condition: float | None = MAX_CONDITION,
        sync_stats: bool = False,
        process_group: ProcessGroup | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(num_features, "num_features")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        check_max_condition(max_condition)
        factory_kwargs = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.group_size = resolve_group_size(num_features, group_size)
        self.num_groups = group_count(num_features, self.group_size)
        self.eps = eps
        self.max_condition = max_condition
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.backend = resolve_backend(backend)
        self.sync_stats = sync_stats
        self.process_group = process_group
        # Whether running_whitening lags running_covariance; a Python flag, so that reading it
        # costs no host sync (set in training, cleared by refresh_whitening).
        self._whitening_stale = False
        self._warned_skipped = 0
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory_kwargs))
            self.bias = nn.Parameter(torch.empty(num_features, **factory_kwargs))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            shape = (self.num_groups, self.group_size, self.group_size)
            self.register_buffer("running_mean", torch.zeros(num_features, **factory_kwargs))
            self.register_buffer("running_covariance", torch.empty(shape, **factory_kwargs))
            self.register_buffer("running_whitening", torch.empty(shape, **factory_kwargs))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
            # Group updates left out for non-finite statistics; counted on the device, reported
            # by refresh_whitening. Not part of the checkpoint.
            self.register_buffer("skipped_updates", torch.tensor(0, dtype=torch.long, device=device), persistent=False)
        else:
            for name in ("running_mean", "running_covariance", "running_whitening", "num_batches_tracked"):
                self.register_buffer(name, None)
            self.register_buffer("skipped_updates", None, persistent=False)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to 0, running covariance to the identity (and its whitening), step count
        to 0."""
        if self.track_running_stats:
            self.running_mean.zero_()  # type: ignore[union-attr]
            eye = torch.eye(self.group_size)
            self.running_covariance.copy_(eye.expand_as(self.running_covariance))  # type: ignore[union-attr]
            self.num_batches_tracked.zero_()  # type: ignore[union-attr]
            self.skipped_updates.zero_()  # type: ignore[union-attr]
            self._warned_skipped = 0
            self.refresh_whitening()

    def reset_parameters(self) -> None:
        """Reset the running statistics, and :math:`\\gamma = 1`, :math:`\\beta = 0`."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    @torch.no_grad()
    def refresh_whitening(self) -> None:
        """Recompute ``running_whitening`` from ``running_covariance`` (one batched inverse square
        root by the layer's backend). Called for you when the layer turns to eval mode, before
        an eval forward and before a ``state_dict`` when training has moved the statistics since;
        call it yourself after writing ``running_covariance`` by hand.

        Warns (once per new count) if training batches with non-finite statistics were left out
        of the running statistics since the last reset.
        """
        self._whitening_stale = False
        if not self.track_running_stats:
            return
        cov = self.running_covariance
        if cov.device.type == "meta":  # type: ignore[union-attr]
            return
        whitening = whitening_from_covariance(
            cov.to(compute_dtype(cov.dtype)), self.eps, self.max_condition, self.backend  # type: ignore[union-attr]
        )
        self.running_whitening.copy_(whitening)  # type: ignore[union-attr]
        skipped = int(self.skipped_updates)  # type: ignore[arg-type]
        if skipped > self._warned_skipped:
            warnings.warn(
                f"{type(self).__name__}({self.num_features}): {skipped} group update(s) with non-finite "
                "batch statistics (NaN or Inf in the input) were left out of the running statistics",
                RuntimeWarning,
                stacklevel=2,
            )
            self._warned_skipped = skipped

    def train(self, mode: bool = True) -> _ZCANormBase:
        super().train(mode)
        if not mode and self._whitening_stale:
            self.refresh_whitening()
        return self

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, group_size={self.group_size}, eps={self.eps}, "
            f"momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, backend={self.backend!r}, "
            f"max_condition={self.max_condition}, sync_stats={self.sync_stats}"
        )

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        if self._whitening_stale:
            self.refresh_whitening()  # the checkpoint's whitening is that of its covariance
        super()._save_to_state_dict(destination, prefix, keep_vars)

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
            version = local_metadata.get("version")
            var_key, cov_key, whitening_key = (prefix + k for k in ("running_var", "running_covariance", "running_whitening"))
            from_batchnorm = var_key in state_dict and whitening_key not in state_dict
            if from_batchnorm:
                # A BatchNorm's checkpoint: its running variance becomes a diagonal covariance and
                # the equivalent diagonal whitening, so the loaded layer evaluates exactly as the
                # BatchNorm did.
                running_var = state_dict.pop(var_key)
                state_dict[cov_key] = diagonal_covariance(running_var, self.group_size)
                state_dict[whitening_key] = diagonal_whitening(running_var, self.eps, self.group_size)
            elif whitening_key in state_dict and cov_key not in state_dict and (version is None or version < 2):
                # Version 1 kept only the whitening (with an absolute eps): its covariance is
                # recovered, and the whitening kept, so the layer evaluates as it did.
                state_dict[cov_key] = _covariance_of_whitening(state_dict[whitening_key], self.eps)
            elif cov_key in state_dict and whitening_key not in state_dict:
                cov = state_dict[cov_key]
                state_dict[whitening_key] = whitening_from_covariance(
                    cov.to(compute_dtype(cov.dtype)), self.eps, self.max_condition, self.backend
                ).to(cov.dtype)
            # The step counter is in every checkpoint of this layer's format (version 1 on), and
            # in BatchNorm's from its version 2; older or metadata-less ones start at zero.
            count_key = prefix + "num_batches_tracked"
            legacy = version is None or (from_batchnorm and version < 2)
            if legacy and count_key not in state_dict:
                state_dict[count_key] = torch.tensor(0, dtype=torch.long)
            self._whitening_stale = False
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class ZCABatchNorm(_ZCANormBase):
    r"""Decorrelated batch normalisation (DBN): ZCA whitening of groups of channels, a drop-in
    for :class:`~torch.nn.BatchNorm1d`, :class:`~torch.nn.BatchNorm2d` and
    :class:`~torch.nn.BatchNorm3d`.

    Per group of ``group_size`` channels,

    .. math::
        y = \gamma \odot (\Sigma + \delta I)^{-1/2} (x - \mu) + \beta,

    with :math:`\mu` and :math:`\Sigma` the group mean and covariance over the batch and spatial
    positions, :math:`\delta` a ridge relative to the group's scale (see ``eps`` and
    ``max_condition``) and the inverse square root from the chosen backend; see
    :func:`~sqrtlayers.zca_batch_norm`. In training the output of each group has zero mean and
    covariance :math:`\Sigma(\Sigma + \delta I)^{-1}` (the identity up to the ridge, exactly with
    ``backend="eigh"``), and the gradient flows through the inverse root, not only the centring.

    Running statistics: the running mean and a running covariance, and the whitening of the
    running covariance (``running_whitening``), recomputed by the backend once per change: when
    the layer turns to eval mode after training, before an eval forward or a ``state_dict`` if
    training happened since (:meth:`refresh_whitening`); never per eval batch and never in
    training, so evaluation is one matrix product per group. A running covariance, unlike the
    running average of whitening matrices of DBN and the paper's code, cannot amplify a direction
    the last batch had by more than ``1/sqrt(momentum)`` over that batch's whitening, however
    rank-deficient the batches are and however their null space moves (``docs/METHODS.md``,
    "ZCA whitening in training"). With ``momentum=1.0`` evaluation on a batch reproduces the
    training output on it (no unbiased ``m/(m-1)`` correction, which would break that). A running
    average still trails weights that move fast; :func:`~sqrtlayers.recompute_running_stats`
    recomputes the statistics with the current weights. A group whose batch statistics are not
    finite keeps its running statistics, and a warning says so when the whitening is next
    recomputed.

    Cost: per group, the covariance and the whitening are ``(g x g) x (g x N prod S)`` matrix
    products (about ``g`` multiply-adds per input element each, where BatchNorm needs ``O(1)``),
    plus one batched square root of ``(G, g, g)``; ``docs/BENCHMARKS.md`` compares it with
    ``nn.BatchNorm2d``.

    Args:
        num_features: number of channels ``C``.
        group_size: channels per whitening group; ``None`` whitens all channels together. When
            ``C`` is not a multiple of it, the last group holds the remaining ``C mod g``
            channels (computed as a full group padded with a decoupled block, so all groups are
            one batched square-root call). Default: ``None``.
        eps: ridge added to each group covariance, relative to its mean variance
            :math:`\operatorname{tr}\Sigma / g` (so the layer is invariant to the scale of its
            input; BatchNorm's is absolute). Default: ``1e-5``.
        momentum: weight of the batch statistics in the running averages, or ``None`` for a
            cumulative average. Default: ``0.1``.
        affine: learnable per-channel :math:`\gamma`, :math:`\beta`. Default: ``True``.
        track_running_stats: keep running statistics for evaluation; without them, evaluation
            uses batch statistics. Default: ``True``.
        backend: square-root backend name or configured backend. Default:
            :data:`sqrtlayers.DEFAULT_BACKEND`.
        max_condition: the ridge is at least large enough that :math:`\Sigma + \delta I` has
            condition number ``<= max_condition`` (bounding :math:`\lambda_{\max}` by
            :math:`\|\Sigma^2\|_F^{1/2}`), where the backends' accuracy is declared, however
            rank-deficient the batch; it whitens a well-conditioned group to within about
            ``kappa / max_condition``. ``None``: no cap. Default: ``1e4``.
        sync_stats: in training, when ``torch.distributed`` is initialised with more than one
            rank in ``process_group``, sum the moments over the ranks (differentiably) so every
            rank whitens with the global batch statistics, as :class:`~torch.nn.SyncBatchNorm`
            does; a rank may hold zero samples in a step. Without an initialised process group it
            has no effect. Default: ``False``.
        process_group: the ranks to synchronise over, ``None`` for all. Default: ``None``.

    Attributes:
        running_mean: ``(C,)`` buffer, or ``None`` when not tracked.
        running_covariance: ``(G, g, g)`` buffer, ``G = ceil(C / g)``, or ``None``. The padded
            rows and columns of a short last group hold the group's mean variance on the
            diagonal.
        running_whitening: ``(G, g, g)`` buffer: the whitening of ``running_covariance``, or
            ``None``.
        num_batches_tracked: training steps seen, or ``None``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, *)``, e.g. ``(N, C, L)``, ``(N, C, H, W)``,
          ``(N, C, D, H, W)``.
        - Output: same shape, dtype and memory format (channels-last stays so) as the input.

    Raises:
        TypeError: for non-floating (integer, bool) or complex input, naming its dtype.
        ValueError: for input with fewer than 2 dims or not ``num_features`` channels (naming
            its shape), or a single value per channel in training (BatchNorm's message).

    Numerics: float16/bfloat16 inputs (and autocast regions) are computed in float32 (see
    :func:`sqrtlayers.compute_dtype`), the result cast back. The whitening is as accurate as the
    backend's inverse square root on a matrix of condition number at most ``max_condition``:
    ``"eigh"`` and ``"accurate"`` to about ``1e-3``; the paper's iterative backends
    (``"mpa-lya"``, ``"ns"``, ...) leave relative errors of about ``1e-2`` at condition number 10
    and ``1e-1`` and more beyond 100 (see the backends' declared bounds). Small groups (DBN: 16)
    keep them accurate.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import ZCABatchNorm
        >>> bn = ZCABatchNorm(8, group_size=4, backend="eigh")
        >>> x = torch.randn(64, 8, 5, 5) * torch.arange(1.0, 9.0).view(1, 8, 1, 1)
        >>> y = bn(x)
        >>> g = y[:, :4].transpose(0, 1).flatten(1)
        >>> torch.allclose(g @ g.T / g.shape[1], torch.eye(4), atol=1e-2)  # off by the ridge
        True
        >>> bn.running_whitening.shape
        torch.Size([2, 4, 4])

    Reference: Huang, Yang, Lang, Deng, "Decorrelated Batch Normalization", CVPR 2018; Song,
    Sebe, Wang, "Fast Differentiable Matrix Square Root", ICLR 2022 (Sec. 5.1).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        check_zca_input(input, self.num_features)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        tracking = self.training and self.track_running_stats and self.num_batches_tracked is not None
        if tracking:
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)  # type: ignore[arg-type]
            self._whitening_stale = True
        elif not self.training and self._whitening_stale:
            self.refresh_whitening()
        use_batch_stats = self.training or self.running_mean is None
        # Buffers are passed only where they are updated (training and tracked) or read (eval).
        track = not self.training or self.track_running_stats
        return _zca_batch_norm(
            input,
            self.running_mean if track else None,
            self.running_covariance if track else None,
            self.running_whitening if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
            self.max_condition,
            self.group_size,
            self.num_groups,
            self.backend,
            active_process_group(self.sync_stats, self.process_group) if self.training else None,
            self.skipped_updates if track else None,
        )


class ZCABatchNormAct(ZCABatchNorm):
    r"""A :class:`ZCABatchNorm` followed by modules applied to its output in order, e.g. a
    dropout and an activation: the ZCA form of a norm-act layer such as timm's
    ``BatchNormAct2d``, and what :func:`~sqrtlayers.convert_zca_batchnorm` makes of one.

    The modules are children under their own names, so a checkpoint of the norm-act layer
    (``act.weight`` of a PReLU, say) loads into this one.

    Args:
        num_features: number of channels ``C``.
        after: ``{name: module}`` applied to the whitened output, in the mapping's order.
        **kwargs: the keyword arguments of :class:`ZCABatchNorm`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from sqrtlayers.layers import ZCABatchNormAct
        >>> layer = ZCABatchNormAct(4, {"drop": nn.Dropout(0.1), "act": nn.ReLU()}, backend="eigh")
        >>> y = layer(torch.randn(16, 4, 3, 3))
        >>> bool((y >= 0).all()), [name for name, _ in layer.named_children()]
        (True, ['drop', 'act'])
    """

    def __init__(self, num_features: int, after: Mapping[str, nn.Module], **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        for name, module in after.items():
            self.add_module(name, module)

    def forward(self, input: Tensor) -> Tensor:
        out = super().forward(input)
        for module in self.children():
            out = module(out)
        return out
