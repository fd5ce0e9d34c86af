r"""The ridge the layers add to a covariance before its square root: relative to the
covariance's scale, and large enough to cap the condition number the backend sees (see
``docs/METHODS.md``, "ZCA whitening in training")."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["MAX_CONDITION", "POOLING_MAX_CONDITION", "check_max_condition", "covariance_shift", "magnitude"]

#: Default cap on the condition number of the shifted covariance a layer hands its backend:
#: within the band where every backend declares its accuracy best (see ``docs/METHODS.md``,
#: "ZCA whitening in training").
MAX_CONDITION = 1e4
#: The covariance-pooling heads' cap: the top of the declared accuracy bands. Their square root is
#: what the network reads, so a ridge there changes the output; at ``1e6`` it stays within about
#: ``1e-5`` of the unridged root on well-conditioned covariances, while a rank-deficient one (fewer
#: positions than channels) still reaches the backend inside a declared band.
POOLING_MAX_CONDITION = 1e6


def covariance_shift(cov: Tensor, eps: float, max_condition: float | None) -> Tensor:
    r"""The ridge :math:`\delta` added to each group covariance before its inverse square root,
    shape ``(G, 1, 1)`` for ``cov`` ``(G, g, g)``:

    .. math::
        \delta = \max\Big(\epsilon\,\frac{\operatorname{tr}\Sigma}{g},\;
        \frac{\|\Sigma^2\|_F^{1/2}}{\kappa_{\max} - 1}\Big) + \epsilon^2.

    The first term is ``eps`` relative to the group's mean variance, so the layer is invariant to
    the scale of its input. The second caps the condition number of :math:`\Sigma + \delta I` at
    ``max_condition`` however rank-deficient :math:`\Sigma` is, since
    :math:`\lambda_{\max} \le \|\Sigma^2\|_F^{1/2} \le r^{1/4} \lambda_{\max}` for rank
    :math:`r` (one extra ``g x g`` product). :math:`\epsilon^2` keeps an all-zero group finite; the
    layers call this on a covariance in units of its largest variance, so even that term is
    relative.
    Differentiable, so the gradient is that of the function computed.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers.ridge import covariance_shift
        >>> cov = torch.diag(torch.tensor([1e4, 1.0, 0.0])).unsqueeze(0)
        >>> shifted = cov + covariance_shift(cov, 1e-5, 1e4) * torch.eye(3)
        >>> float(torch.linalg.cond(shifted[0])) <= 1e4
        True
    """
    g = cov.shape[-1]
    scale = cov.diagonal(dim1=-2, dim2=-1).sum(-1) / g
    relative = torch.full_like(scale, eps)
    if max_condition is not None:
        # On the covariance over its mean variance (entries <= g), so that nothing overflows at
        # large activations; a square-sum rather than matrix_norm, whose backward is 0/0 at zero.
        unit = cov / scale.clamp_min(torch.finfo(cov.dtype).tiny)[:, None, None]
        top = (unit @ unit).square().sum((-2, -1)).clamp_min(torch.finfo(cov.dtype).tiny).pow(0.25)
        relative = torch.maximum(relative, top / (max_condition - 1))
    shift = scale * relative
    return (shift + eps * eps)[:, None, None]


def check_max_condition(max_condition: float | None) -> None:
    """Refuse a ``max_condition`` that is not ``None`` or a number ``> 1``, echoing it."""
    if max_condition is not None and not (
        isinstance(max_condition, (int, float)) and not isinstance(max_condition, bool) and max_condition > 1
    ):
        raise ValueError(f"max_condition must be a number > 1 or None, got {max_condition!r}")


def magnitude(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The largest ``|x|`` over ``dims`` (one pass, no temporary), detached, with 1 where it is
    not positive (an all-zero or NaN slice keeps its units): the scale the layers divide their
    centred features by before a second moment, which would overflow float32 near ``1e20`` and
    underflow it near ``1e-20``."""
    top = torch.linalg.vector_norm(x.detach(), ord=float("inf"), dim=dims)
    return torch.where(top > 0, top, torch.ones_like(top))
