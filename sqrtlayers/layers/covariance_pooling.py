r"""Matrix-power-normalised covariance pooling (iSQRT-COV): the square root of a feature covariance."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..backends import DEFAULT_POOLING_BACKEND, SqrtmBackend, resolve_backend
from ..backends.normalisation import trace_normalise
from ..dtypes import compute_dtype
from .gram import scaled_gram
from .input_checks import check_real_floating
from .ridge import POOLING_MAX_CONDITION, check_max_condition, covariance_shift, magnitude

__all__ = ["covariance_pool", "triu_dim", "CovariancePooling"]


def triu_dim(channels: int) -> int:
    """Length ``C (C + 1) / 2`` of the upper triangle of a ``C x C`` matrix, diagonal included."""
    return channels * (channels + 1) // 2


def _feature_columns(input: Tensor) -> Tensor:
    """``(N, C, M)``: the ``M`` feature vectors of each sample as columns, from either layout."""
    check_real_floating(input, "input")
    if input.dim() == 4:
        X = input.flatten(2)
    elif input.dim() == 3:
        X = input.mT
    else:
        raise ValueError(
            "input must be (N, C, H, W) feature maps or (N, L, C) tokens, "
            f"got shape {tuple(input.shape)}"
        )
    if X.shape[-2] == 0 or X.shape[-1] == 0:
        raise ValueError(
            f"input must have at least one channel and one position, got shape {tuple(input.shape)}"
        )
    return X


def _upper_triangle(Y: Tensor) -> Tensor:
    """Row-major upper triangle of ``(..., C, C)``: ``Y[0, 0], Y[0, 1], ..., Y[0, C-1], Y[1, 1], ...``."""
    c = Y.shape[-1]
    rows, cols = torch.triu_indices(c, c, device=Y.device)
    return Y.flatten(-2).index_select(-1, rows * c + cols)


def covariance_pool(
    input: Tensor,
    *,
    backend: str | SqrtmBackend = DEFAULT_POOLING_BACKEND,
    vectorize: bool = True,
    eps: float = 1e-5,
    max_condition: float | None = POOLING_MAX_CONDITION,
) -> Tensor:
    r"""Square root of the centred covariance of a set of features, per sample (iSQRT-COV).

    With :math:`X \in \mathbb{R}^{C \times M}` the :math:`M` feature vectors of one sample,

    .. math::
        \Sigma = \frac{1}{M} (X - \mu 1^T)(X - \mu 1^T)^T,\qquad
        A = \frac{\Sigma}{\operatorname{tr}\Sigma} + \delta I,\qquad
        Y = \sqrt{\operatorname{tr}\Sigma}\; A^{1/2},

    i.e. trace pre-normalisation, the square root by ``backend``, and :math:`\sqrt{\operatorname{tr}\Sigma}`
    post-compensation. The ridge :math:`\delta` is ``eps`` relative to the mean variance
    (:math:`\epsilon / C` on the trace-normalised matrix), raised where needed so that :math:`A`
    has condition number at most ``max_condition``
    (:func:`~sqrtlayers.layers.ridge.covariance_shift`, the ZCA layer's rule): with fewer positions
    than channels :math:`\Sigma` is singular, and the backend then still sees a matrix inside its
    declared accuracy bands. The centring
    subtracts the mean (no ``M x M`` centring matrix) and the covariance is one batched matmul.

    Args:
        input: ``(N, C, H, W)`` feature maps or ``(N, L, C)`` tokens; the layout is chosen by
            the number of dims (4: channels first, 3: channels last).
        backend: square-root backend, a name or a configured backend. Default:
            :data:`~sqrtlayers.DEFAULT_POOLING_BACKEND` (iSQRT-COV's coupled Newton-Schulz).
        vectorize: return the row-major upper triangle, length ``C (C + 1) / 2`` (see
            :func:`triu_dim`), instead of the ``C x C`` matrix. Default: ``True``.
        eps: ridge relative to the mean variance, so that the square root (and its gradient)
            never meets a singular matrix, e.g. with fewer positions than channels. Scale-free:
            the output of ``a * input`` is ``a`` times the output. Default: ``1e-5``.
        max_condition: cap on the condition number of :math:`A`, or ``None`` for none. Default:
            :data:`~sqrtlayers.layers.ridge.POOLING_MAX_CONDITION` (``1e6``).

    Returns:
        ``(N, C (C + 1) / 2)`` or ``(N, C, C)``, in the dtype of ``input``; an empty batch
        (``N = 0``) gives an empty output.

    Raises:
        TypeError: ``input`` is not a real floating-point tensor (integer, bool, complex).
        ValueError: ``input`` has neither 3 nor 4 dims, no channel or no position, ``eps < 0`` or
            a bad ``max_condition``.

    Numerics: float16/bfloat16 (and autocast) are computed in float32. Accuracy is the
    backend's on :math:`A`: ``"eigh"`` exact; ``"ns"`` with 5 iterations is an approximation
    (relative error about ``1e-1`` for ``C = 64``), which iSQRT-COV trains through.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import covariance_pool
        >>> x = torch.randn(2, 8, 7, 7)
        >>> covariance_pool(x).shape
        torch.Size([2, 36])
        >>> Y = covariance_pool(x, backend="eigh", vectorize=False, eps=0.0, max_condition=None)
        >>> xc = x.flatten(2) - x.flatten(2).mean(-1, keepdim=True)
        >>> torch.allclose(Y @ Y, xc @ xc.mT / 49, atol=1e-4)
        True

    Reference: Li, Xie, Wang, Gao, "Towards Faster Training of Global Covariance Pooling
    Networks by Iterative Matrix Square Root Normalization", CVPR 2018.
    """
    X = _feature_columns(input)
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    check_max_condition(max_condition)
    channels, positions = X.shape[-2:]
    work_dtype = compute_dtype(input.dtype)
    with torch.autocast(device_type=input.device.type, enabled=False):
        X = X.to(work_dtype)
        Xc = X - X.mean(-1, keepdim=True)
        # Per sample over its largest |x - mu| (detached): the scatter of features near 1e20
        # overflows float32 and of ones near 1e-20 underflows it. The result is homogeneous of
        # degree 1 in the features, so it is that scale times the result of the scaled ones, with
        # the same gradient.
        scale = magnitude(Xc, (-2, -1))[:, None, None]
        # The scatter matrix, not the covariance: the 1/M cancels in the trace normalisation and
        # comes back in the post-compensation.
        normalised, trace = trace_normalise(scaled_gram(Xc.div_(scale)))
        eye = torch.eye(channels, dtype=work_dtype, device=input.device)
        shifted = normalised + covariance_shift(normalised, eps, max_condition) * eye
        Y = resolve_backend(backend).sqrtm(shifted) * ((trace / positions).sqrt() * scale)
        out = _upper_triangle(Y) if vectorize else Y
    return out.to(input.dtype)


class CovariancePooling(nn.Module):
    r"""Covariance pooling with matrix square-root normalisation; see :func:`covariance_pool`.

    Args:
        backend: square-root backend, a name or a configured backend. Default:
            :data:`~sqrtlayers.DEFAULT_POOLING_BACKEND`.
        vectorize: output the row-major upper triangle instead of the matrix. Default: ``True``.
        eps: ridge relative to the mean variance. Default: ``1e-5``.
        max_condition: cap on the condition number the backend sees. Default: ``1e6``.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(N, L, C)``.
        - Output: ``(N, C (C + 1) / 2)`` with ``vectorize=True`` (:meth:`output_dim`), else
          ``(N, C, C)``.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import CovariancePooling
        >>> pool = CovariancePooling(backend="ns")
        >>> head = torch.nn.Linear(pool.output_dim(16), 10)
        >>> head(pool(torch.randn(4, 16, 7, 7))).shape
        torch.Size([4, 10])

    Reference: Li et al., CVPR 2018 (iSQRT-COV).
    """

    def __init__(
        self,
        *,
        backend: str | SqrtmBackend = DEFAULT_POOLING_BACKEND,
        vectorize: bool = True,
        eps: float = 1e-5,
        max_condition: float | None = POOLING_MAX_CONDITION,
    ) -> None:
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        check_max_condition(max_condition)
        self.max_condition = max_condition
        self.backend = resolve_backend(backend)
        self.vectorize = vectorize
        self.eps = eps

    def output_dim(self, channels: int) -> int:
        """Features per sample for ``channels`` input channels: ``C (C + 1) / 2``, or ``C * C``
        for the (flattened) matrix when ``vectorize=False``."""
        return triu_dim(channels) if self.vectorize else channels * channels

    def forward(self, input: Tensor) -> Tensor:
        return covariance_pool(
            input, backend=self.backend, vectorize=self.vectorize, eps=self.eps, max_condition=self.max_condition
        )

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, vectorize={self.vectorize}, eps={self.eps}, max_condition={self.max_condition}"
