r"""Decorrelated batch normalisation, functional form: ZCA whitening of groups of channels."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..backends import DEFAULT_BACKEND, SqrtmBackend, resolve_backend
from ..dtypes import compute_dtype
from .channel_groups import (
    from_groups,
    group_count,
    output_memory_format,
    resolve_group_size,
    to_group_vector,
    to_groups,
)
from .gram import scaled_gram
from .input_checks import check_real_floating
from .ridge import MAX_CONDITION, check_max_condition, covariance_shift
from .zca_distributed import AllReduceSum, GroupCentring

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = [
    "zca_batch_norm",
    "check_zca_input",
    "check_max_condition",
    "covariance_shift",
    "whitening_from_covariance",
    "MAX_CONDITION",
]


def check_zca_input(input: Tensor, num_features: int | None = None) -> None:
    """Check that ``input`` is a real floating-point ``(N, C)`` or ``(N, C, *)`` tensor, with
    ``num_features`` channels when given; the error names the bad value and what is accepted."""
    check_real_floating(input, "input")
    if input.dim() < 2:
        raise ValueError(f"expected input of shape (N, C) or (N, C, *), got shape {tuple(input.shape)}")
    if num_features is not None and input.shape[1] != num_features:
        raise ValueError(
            f"expected {num_features} channels in dim 1, got input of shape {tuple(input.shape)}"
        )


def _check_per_channel(name: str, value: Tensor | None, num_features: int) -> None:
    if value is not None and tuple(value.shape) != (num_features,):
        raise ValueError(
            f"{name} must have shape ({num_features},) for input with {num_features} channels, "
            f"got shape {tuple(value.shape)}"
        )


def _verify_batch_size(size: torch.Size) -> None:
    # torch's BatchNorm message, word for word, so that callers handling one handle both.
    if size[0] * math.prod(size[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")


def whitening_from_covariance(
    cov: Tensor, eps: float, max_condition: float | None, backend: SqrtmBackend
) -> Tensor:
    """``(cov + delta I)^{-1/2}`` per group, ``delta`` from :func:`covariance_shift`, computed on
    ``cov`` over its largest variance ``t`` (then divided by ``sqrt(t)``) so that a covariance of
    any magnitude the dtype holds is whitened as one of unit scale. ``t`` is differentiated
    through (the ``eps^2`` of the ridge depends on it), which makes the result exactly independent
    of any scale the input was divided by, so that scale may be detached."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    variances = cov.diagonal(dim1=-2, dim2=-1).amax(-1)
    top = torch.where(variances > 0, variances, torch.ones_like(variances))[:, None, None]
    unit = cov / top
    return backend.inv_sqrtm(unit + covariance_shift(unit, eps, max_condition) * eye) / top.sqrt()


def lift_padding(cov: Tensor, real: int) -> Tensor:
    """Give the appended channels of a short last group (zero rows and columns of ``cov``) the mean
    variance of its ``real`` channels: a block decoupled from them (exactly so for ``eigh``) that
    leaves the group's mean variance, and so its shift, that of the real channels."""
    group_size = cov.shape[-1]
    if real == group_size:
        return cov
    lift = torch.zeros_like(cov)
    lift[-1].diagonal()[real:] = cov[-1].diagonal()[:real].mean()
    return cov + lift


def _batch_moments(
    x: Tensor, groups: int, group_size: int, process_group: ProcessGroup | None
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-group mean ``(G, g)``, centred input over its scale ``(G, g, M)``, that input's
    covariance ``(G, g, g)`` (padding lifted), the scale ``(G,)`` and the sample count (0-dim) of
    ``x`` ``(N, C, *S)``, over the ranks of ``process_group`` if given.

    The scale is each group's largest ``|x - mu|`` (over the ranks), a constant to autograd
    (:class:`~sqrtlayers.layers.zca_distributed.GroupCentring`): the second moment of activations
    near ``1e20`` overflows float32 and of ones near ``1e-20`` underflows it, while the whitened
    output does not depend on the scale (every term of the ridge is relative), so it is computed
    from the scaled input, and its gradient is that of the unscaled one.
    """
    xs, mean, count, scale = GroupCentring.apply(x, groups, group_size, process_group)
    if process_group is None:
        cov = scaled_gram(xs, 1.0 / xs.shape[-1])
    else:
        # Centred on the global mean before the second moment: no E[x x^T] - mu mu^T cancellation.
        cov = AllReduceSum.apply(scaled_gram(xs), process_group) / count.clamp_min(1)
    cov = lift_padding(cov, x.shape[1] - (groups - 1) * group_size)
    return mean, xs, cov, scale, count


@torch.no_grad()
def _update_running(running: Tensor, batch: Tensor, step: float | Tensor, keep: Tensor) -> None:
    """``running = (1 - step) * running + step * batch`` in place, in the buffer's dtype, except
    where ``keep`` (broadcast against ``running``) is true: there the buffer is left as it is."""
    step = step.to(running.dtype) if isinstance(step, Tensor) else step
    running.copy_(torch.where(keep, running, running.lerp(batch.to(running.dtype), step)))


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
    running_covariance: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    group_size: int | None = None,
    backend: str | SqrtmBackend = DEFAULT_BACKEND,
    process_group: ProcessGroup | None = None,
    *,
    max_condition: float | None = MAX_CONDITION,
    running_whitening: Tensor | None = None,
) -> Tensor:
    r"""Decorrelated (ZCA-whitening) batch normalisation, the functional form of
    :class:`~sqrtlayers.ZCABatchNorm`.

    The channels are split into groups of ``group_size``; within a group, every position of
    every sample is a vector :math:`x \in \mathbb{R}^g` and

    .. math::
        y = \gamma \odot (\Sigma + \delta I)^{-1/2} (x - \mu) + \beta,\qquad
        \mu = \frac{1}{m} \sum_i x_i,\quad
        \Sigma = \frac{1}{m} \sum_i (x_i - \mu)(x_i - \mu)^T,

    the sums running over the :math:`m = N \prod S` batch and spatial positions, and the ridge
    :math:`\delta` relative to the group's scale (:func:`covariance_shift`: ``eps`` times the
    mean variance, at least :math:`\|\Sigma^2\|_F^{1/2} / (\kappa_{\max} - 1)`).

    With ``training=True`` the batch statistics are used, and the running buffers (when given)
    are updated in place: ``running = (1 - momentum) * running + momentum * batch`` for the mean
    and the covariance :math:`\Sigma`; a group whose batch statistics are not finite leaves its
    running statistics unchanged. With ``training=False`` the running statistics are used: the
    whitening ``running_whitening`` when given (a cache of the whitening of
    ``running_covariance``, as :class:`~sqrtlayers.ZCABatchNorm` keeps it), else computed from
    ``running_covariance`` by the backend on this call.

    Args:
        input: ``(N, C)`` or ``(N, C, *)``, real floating point.
        running_mean: ``(C,)`` or ``None``.
        running_covariance: ``(G, g, g)`` or ``None``, with ``G = ceil(C / g)``.
        weight: ``(C,)`` scale :math:`\gamma`, or ``None``. Default: ``None``.
        bias: ``(C,)`` shift :math:`\beta`, or ``None``. Default: ``None``.
        training: use (and track) batch statistics. Default: ``False``.
        momentum: weight of the batch statistics in the running update. Default: ``0.1``.
        eps: ridge relative to each group's mean variance. Default: ``1e-5``.
        group_size: channels per group, ``None`` for one group of all channels; one larger than
            ``C`` is one group of all channels. When ``C`` is not a multiple, the last group
            holds the remaining ``C mod g`` channels. Default: ``None``.
        backend: square-root backend for the inverse square root, a name or a configured
            backend. Default: :data:`sqrtlayers.DEFAULT_BACKEND`.
        process_group: with ``training=True``, sum the moments over the ranks of this group
            (differentiably), so that every rank whitens with the global batch statistics; a rank
            may hold zero samples. Default: ``None`` (this process only).
        max_condition: cap on the condition number of :math:`\Sigma + \delta I`, or ``None`` for
            none. Default: :data:`MAX_CONDITION`.
        running_whitening: ``(G, g, g)`` whitening of ``running_covariance`` to evaluate with,
            or ``None``. Default: ``None``.

    Returns:
        A tensor of the shape and dtype of ``input`` (channels-last input gives channels-last
        output, as with BatchNorm).

    Raises:
        TypeError: for a non-tensor, integer, bool or complex ``input``, or a bad ``group_size``
            type.
        ValueError: for fewer than 2 dims, a bad ``group_size`` or ``max_condition``,
            mis-shaped ``weight``, ``bias`` or running buffers, missing buffers with
            ``training=False``, or a single value per channel with ``training=True``
            (BatchNorm's message).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import zca_batch_norm
        >>> x = torch.randn(256, 3) @ torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 1.0]])
        >>> y = zca_batch_norm(x, None, None, training=True, backend="eigh")
        >>> torch.allclose(y.T @ y / 256, torch.eye(3), atol=1e-3)
        True
    """
    check_zca_input(input)
    num_features = input.shape[1]
    group_size = resolve_group_size(num_features, group_size)
    groups = group_count(num_features, group_size)
    check_max_condition(max_condition)
    if not training and (running_mean is None or (running_covariance is None and running_whitening is None)):
        raise ValueError(
            "running_mean and running_covariance (or running_whitening) are required when training=False"
        )
    for name, value in (("running_mean", running_mean), ("weight", weight), ("bias", bias)):
        _check_per_channel(name, value, num_features)
    for name, value in (("running_covariance", running_covariance), ("running_whitening", running_whitening)):
        if value is not None and value.shape != (groups, group_size, group_size):
            raise ValueError(
                f"{name} must have shape {(groups, group_size, group_size)} for "
                f"{num_features} channels in groups of {group_size}, got {tuple(value.shape)}"
            )
    backend = resolve_backend(backend)
    if not training and running_whitening is None:
        work_dtype = compute_dtype(input.dtype)
        running_whitening = whitening_from_covariance(
            running_covariance.to(work_dtype), eps, max_condition, backend  # type: ignore[union-attr]
        )
    return _zca_batch_norm(
        input, running_mean, running_covariance, running_whitening, weight, bias, training, momentum,
        eps, max_condition, group_size, groups, backend, process_group,
    )  # fmt: skip


def _zca_batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_covariance: Tensor | None,
    running_whitening: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    max_condition: float | None,
    group_size: int,
    groups: int,
    backend: SqrtmBackend,
    process_group: ProcessGroup | None,
    skipped: Tensor | None = None,
) -> Tensor:
    """:func:`zca_batch_norm` on arguments already checked (the module checks them once, at
    construction and in ``_check_input_dim``). In training, ``skipped`` (a counter, if given)
    is increased by the number of groups whose non-finite statistics were left out."""
    if process_group is None:
        if input.numel() == 0:
            # Nothing to normalise; like BatchNorm, an empty batch leaves the running statistics alone.
            return input.clone()
        if training:
            _verify_batch_size(input.size())

    work_dtype = compute_dtype(input.dtype)
    with torch.autocast(device_type=input.device.type, enabled=False):
        x = input.to(work_dtype)
        if training:
            mean, xc, cov, scale, count = _batch_moments(x, groups, group_size, process_group)
            whitening = whitening_from_covariance(cov, eps, max_condition, backend)
            if running_mean is not None and running_covariance is not None:
                with torch.no_grad():
                    # In the input's units; beyond the dtype's range it is not finite, and skipped.
                    cov = cov * scale[:, None, None].square()
                    # Decided on the device (no host sync): a group with a non-finite statistic
                    # keeps its running statistics, and so does every group in a step in which
                    # no rank of the process group had a sample.
                    bad = ~(torch.isfinite(cov).flatten(1).all(1) & torch.isfinite(mean).all(1))
                    if process_group is not None:
                        bad = bad | (count == 0)
                    _update_running(running_covariance, cov, momentum, bad[:, None, None])
                    keep_channel = bad[:, None].expand(groups, group_size).flatten()[: input.shape[1]]
                    _update_running(running_mean, mean.flatten()[: input.shape[1]], momentum, keep_channel)
                    if skipped is not None:
                        skipped.add_(bad.sum())
        else:
            mean = to_group_vector(running_mean.to(work_dtype), groups, group_size, 0.0)  # type: ignore[union-attr]
            xc = to_groups(x, groups, group_size).sub_(mean.unsqueeze(-1))
            whitening = running_whitening.to(work_dtype)  # type: ignore[union-attr]
        gamma = None if weight is None else to_group_vector(weight.to(work_dtype), groups, group_size, 1.0)
        beta = None if bias is None else to_group_vector(bias.to(work_dtype), groups, group_size, 0.0)
        out = from_groups(_whiten(xc, whitening, gamma, beta), input.shape, output_memory_format(input))
    return out.to(input.dtype)
