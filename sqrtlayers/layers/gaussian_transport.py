r"""Optimal transport between Gaussians: the Monge map and the squared 2-Wasserstein (Fréchet)
distance, through the matrix root :math:`(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2})^{1/2}`."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..backends import SqrtmBackend, resolve_backend
from ..backends.base import validate_square_input
from ..dtypes import compute_dtype
from .input_checks import check_real_floating
from .whitening_coloring import DEFAULT_WCT_BACKEND

__all__ = ["GaussianTransportMap", "gaussian_transport_map", "frechet_distance"]


class GaussianTransportMap(NamedTuple):
    r"""The affine map :math:`x \mapsto T x + b` returned by :func:`gaussian_transport_map`;
    it unpacks as ``T, b = gaussian_transport_map(...)``."""

    #: :math:`T`, ``(..., n, n)``, symmetric positive definite.
    matrix: Tensor
    #: :math:`b = \mu_b - T \mu_a`, ``(..., n)``.
    offset: Tensor

    def apply(self, points: Tensor) -> Tensor:
        """The map applied to ``points`` ``(..., m, n)``, one point per row (batch dims
        broadcast against the map's)."""
        return points @ self.matrix.mT + self.offset.unsqueeze(-2)


def _check_gaussians(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> torch.dtype:
    """Check the four arguments; return the dtype the result is given in."""
    for name, cov in (("cov_a", cov_a), ("cov_b", cov_b)):
        validate_square_input(cov, name)
    n = cov_a.shape[-1]
    if cov_b.shape[-1] != n:
        raise ValueError(f"cov_b must be (..., {n}, {n}) like cov_a, got shape {tuple(cov_b.shape)}")
    for name, mean in (("mean_a", mean_a), ("mean_b", mean_b)):
        check_real_floating(mean, name)
        if mean.dim() < 1 or mean.shape[-1] != n:
            raise ValueError(f"{name} must be (..., {n}) for {n} x {n} covariances, got shape {tuple(mean.shape)}")
    try:
        torch.broadcast_shapes(mean_a.shape[:-1], cov_a.shape[:-2], mean_b.shape[:-1], cov_b.shape[:-2])
    except RuntimeError:
        shapes = [tuple(t.shape) for t in (mean_a, cov_a, mean_b, cov_b)]
        raise ValueError(
            f"the batch dims of mean_a, cov_a, mean_b, cov_b do not broadcast, got shapes {shapes}"
        ) from None
    dtype = mean_a.dtype
    for other in (cov_a, mean_b, cov_b):
        dtype = torch.promote_types(dtype, other.dtype)
    return dtype


def _symmetric(A: Tensor) -> Tensor:
    return (A + A.mT) / 2


def _cross_root(cov_a: Tensor, cov_b: Tensor, backend: SqrtmBackend) -> tuple[Tensor, Tensor]:
    r""":math:`(\Sigma_a^{1/2}, (\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2})^{1/2})`."""
    root_a = backend.sqrtm(cov_a)
    return root_a, backend.sqrtm(_symmetric(root_a @ cov_b @ root_a))


def gaussian_transport_map(
    mean_a: Tensor,
    cov_a: Tensor,
    mean_b: Tensor,
    cov_b: Tensor,
    *,
    backend: str | SqrtmBackend = DEFAULT_WCT_BACKEND,
) -> GaussianTransportMap:
    r"""The optimal transport (Monge) map from :math:`N(\mu_a, \Sigma_a)` to
    :math:`N(\mu_b, \Sigma_b)`, batched and differentiable.

    .. math::
        x \mapsto T (x - \mu_a) + \mu_b,\qquad
        T = \Sigma_a^{-1/2} \big(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}\big)^{1/2} \Sigma_a^{-1/2},

    the unique symmetric positive definite :math:`T` with :math:`T \Sigma_a T = \Sigma_b`: it
    pushes the first Gaussian onto the second at the least mean squared displacement (the
    squared displacement is :func:`frechet_distance`). Unlike the whitening and colouring
    transform (:func:`whitening_coloring`, :math:`\Sigma_b^{1/2}\Sigma_a^{-1/2}`, which also
    maps one onto the other), it does not rotate: in colour transfer the hues stay put.

    Args:
        mean_a: ``(..., n)`` mean of the source.
        cov_a: ``(..., n, n)`` covariance of the source, symmetric positive definite.
        mean_b: ``(..., n)`` mean of the target.
        cov_b: ``(..., n, n)`` covariance of the target, symmetric positive semi-definite.
        backend: square-root backend (three roots: :math:`\Sigma_a^{\pm 1/2}` and the middle
            one), a name or a configured backend. Default: ``"auto"``.

    Returns:
        :class:`GaussianTransportMap` ``(matrix, offset)``: ``matrix`` :math:`T` ``(..., n, n)``
        (symmetrised) and ``offset`` :math:`\mu_b - T \mu_a` ``(..., n)``, batch dims broadcast,
        in the inputs' promoted dtype. ``.apply(points)`` maps ``(..., m, n)`` points.

    Raises:
        TypeError: a non-tensor, integer, bool or complex argument.
        ValueError: covariances that are not square, of different ``n``, or means that do not
            fit them, or batch dims that do not broadcast.

    Numerics: float16/bfloat16 (and autocast) are computed in float32 and cast back. The error
    of :math:`T` is about the backend's inverse-root error at the condition number of
    :math:`\Sigma_a`, plus its root error at that of the middle matrix.

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import gaussian_transport_map
        >>> cov_a, cov_b = torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([9.0, 1.0]))
        >>> T, b = gaussian_transport_map(torch.zeros(2), cov_a, torch.ones(2), cov_b, backend="eigh")
        >>> T.diagonal(), b
        (tensor([3.0000, 0.5000]), tensor([1., 1.]))
        >>> torch.allclose(T @ cov_a @ T, cov_b)
        True

    Reference: Olkin, Pukelsheim, "The distance between two random vectors with given
    dispersion matrices", Linear Algebra Appl. 1982; Knott, Smith, "On the optimal mapping of
    distributions", J. Optim. Theory Appl. 1984.
    """
    dtype = _check_gaussians(mean_a, cov_a, mean_b, cov_b)
    backend = resolve_backend(backend)
    work_dtype = compute_dtype(dtype)
    with torch.autocast(device_type=cov_a.device.type, enabled=False):
        A, B = cov_a.to(work_dtype), cov_b.to(work_dtype)
        _, middle = _cross_root(A, B, backend)
        inv_root_a = backend.inv_sqrtm(A)
        T = _symmetric(inv_root_a @ middle @ inv_root_a)
        offset = mean_b.to(work_dtype) - (T @ mean_a.to(work_dtype).unsqueeze(-1)).squeeze(-1)
    return GaussianTransportMap(T.to(dtype), offset.to(dtype))


def frechet_distance(
    mean_a: Tensor,
    cov_a: Tensor,
    mean_b: Tensor,
    cov_b: Tensor,
    *,
    backend: str | SqrtmBackend = DEFAULT_WCT_BACKEND,
) -> Tensor:
    r"""The squared 2-Wasserstein (Fréchet) distance between two Gaussians, batched and
    differentiable: what FID computes on Inception features.

    .. math::
        d^2 = \|\mu_a - \mu_b\|^2 + \operatorname{tr}\big(\Sigma_a + \Sigma_b
              - 2 (\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2})^{1/2}\big).

    The middle root is the symmetric one, two backend calls in all: no non-symmetric
    ``eigvals`` of :math:`\Sigma_a \Sigma_b` and no complex intermediate, so it runs on any
    backend, batched, under autograd and on the GPU.

    Args:
        mean_a: ``(..., n)`` mean of the first Gaussian.
        cov_a: ``(..., n, n)`` its covariance, symmetric positive semi-definite.
        mean_b: ``(..., n)`` mean of the second Gaussian.
        cov_b: ``(..., n, n)`` its covariance, symmetric positive semi-definite.
        backend: square-root backend, a name or a configured backend. Default: ``"auto"``.

    Returns:
        ``(...)``, the broadcast batch dims, in the inputs' promoted dtype. It is not clamped:
        rounding leaves equal Gaussians about ``u * tr(Σ)`` from 0, of either sign.

    Raises:
        TypeError: a non-tensor, integer, bool or complex argument.
        ValueError: as for :func:`gaussian_transport_map`.

    Numerics: float16/bfloat16 (and autocast) are computed in float32 and cast back (a trace
    beyond float16's range overflows there: pass float32 statistics). The error is the
    backend's root error at the condition number of the middle matrix, relative to
    :math:`\operatorname{tr}\Sigma`; symmetric in the two Gaussians up to that error. The
    gradient of the middle root grows without bound at a singular middle matrix (two
    rank-deficient covariances, e.g. fewer samples than features).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers import frechet_distance
        >>> cov_a, cov_b = torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([9.0, 1.0]))
        >>> frechet_distance(torch.zeros(2), cov_a, torch.ones(2), cov_b, backend="eigh")
        tensor(7.)

    Reference: Dowson, Landau, "The Fréchet distance between multivariate normal
    distributions", J. Multivariate Anal. 1982; Heusel et al., "GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium" (FID), NeurIPS 2017.
    """
    dtype = _check_gaussians(mean_a, cov_a, mean_b, cov_b)
    backend = resolve_backend(backend)
    work_dtype = compute_dtype(dtype)
    with torch.autocast(device_type=cov_a.device.type, enabled=False):
        A, B = cov_a.to(work_dtype), cov_b.to(work_dtype)
        _, middle = _cross_root(A, B, backend)
        trace = lambda M: M.diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
        difference = mean_a.to(work_dtype) - mean_b.to(work_dtype)
        distance = difference.square().sum(-1) + trace(A) + trace(B) - 2 * trace(middle)
    return distance.to(dtype)
