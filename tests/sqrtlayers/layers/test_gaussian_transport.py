"""gaussian_transport_map and frechet_distance under every registered backend, drawn by
hypothesis: the map pushes N(mu_a, S_a) onto N(mu_b, S_b) and is symmetric positive definite; the
distance is zero for equal Gaussians, symmetric, matches a float64 SciPy ``sqrtm`` reference,
and its gradients match the float64 closed form; half precision follows the dtype rule.

Accuracy is held to the declared bounds (:mod:`sqrtlayers.backends.bounds`) of the roots
involved, at condition numbers ``kappa_a, kappa_b <= 10`` (so the middle matrix's is at most
``kappa_a * kappa_b = 1e2``): the relative error of ``T S_a T`` to ``S_b`` at most twice the
inverse-root bound plus the root bound; the distance's error relative to ``tr S_a + tr S_b`` at
most the root bound (plus that bound of ``|mu_a - mu_b|^2``, for rounding); the gradients'
error relative to ``||I||_F`` at most four times the root's forward plus gradient bound. Measured
worst, as a fraction of those tolerances (``thorough`` profile): the map 0.18 (eigh 0.04,
accurate 0.08), the distance against SciPy 0.48 (eigh 0.06, accurate 0.04), its symmetry 0.09,
the gradients 0.50 (``ns-lya``; eigh 0.03, accurate 0.35).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sqrtlayers as sl
from sqrtlayers.backends.bounds import declared_bound

from ...conftest import THOROUGH
from .gaussians import reference_frechet_distance, reference_frechet_gradients
from .single_thread import one_thread  # noqa: F401 (the fixture, by name)

MAX_N = 64 if THOROUGH else 16
EXAMPLES = max(2, settings().max_examples // 4)
LOG_KAPPA = 1.0
pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian(n: int, seed: int, batch: tuple[int, ...] = (), log_kappa: float = LOG_KAPPA, scale: float = 1.0):
    """A float64 mean ``(*batch, n)`` and covariance with a log-spaced spectrum ``scale * [10**-log_kappa, 1]``."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=gen, dtype=torch.float64))
    cov = (Q * torch.logspace(0.0, -log_kappa, n, dtype=torch.float64) * scale) @ Q.mT
    return torch.randn(*batch, n, generator=gen, dtype=torch.float64), (cov + cov.mT) / 2


@st.composite
def pairs(draw: st.DrawFn):
    n = draw(st.integers(1, MAX_N))
    batch = draw(st.sampled_from([(), (2,), (1, 2)]))
    seed = draw(st.integers(0, 2**16))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    scale = 10.0 ** draw(st.integers(-3, 3))
    return gaussian(n, seed, batch, scale=scale), gaussian(n, seed + 1, batch, scale=scale * 4), dtype


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b).norm(dim=(-2, -1)) / b.norm(dim=(-2, -1))).max())


def trace(A: torch.Tensor) -> torch.Tensor:
    return A.diagonal(dim1=-2, dim2=-1).sum(-1)


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(case=pairs())
def test_transport_map_pushes_a_onto_b_and_is_spd(backend: str, case) -> None:
    (mean_a, cov_a), (mean_b, cov_b), dtype = case
    T, offset = sl.gaussian_transport_map(mean_a.to(dtype), cov_a.to(dtype), mean_b.to(dtype), cov_b.to(dtype),
                                          backend=backend)  # fmt: skip
    assert T.dtype == offset.dtype == dtype and T.shape == cov_a.shape and offset.shape == mean_a.shape
    assert torch.isfinite(T).all() and torch.isfinite(offset).all()
    torch.testing.assert_close(T, T.mT, rtol=0, atol=0)
    # The mean goes where it should whatever the roots: offset = mu_b - T mu_a.
    pushed_mean = (T.double() @ mean_a.unsqueeze(-1)).squeeze(-1) + offset.double()
    assert float((pushed_mean - mean_b).abs().max()) <= 1e3 * torch.finfo(dtype).eps * (1 + float(mean_b.abs().max()))
    inverse = declared_bound(backend, inverse=True, dtype=dtype, kappa=10.0**LOG_KAPPA)
    root = declared_bound(backend, inverse=False, dtype=dtype, kappa=10.0 ** (2 * LOG_KAPPA))
    if inverse is None or root is None:
        return
    error = relative(T.double() @ cov_a @ T.double(), cov_b)
    assert error <= 2 * inverse.forward + root.forward, f"{backend} {dtype} n={cov_a.shape[-1]}: {error:.2e}"
    if 2 * inverse.forward + root.forward < 0.1:  # an accurate map is positive definite
        assert float(torch.linalg.eigvalsh(T.double()).min()) > 0


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(case=pairs())
def test_frechet_distance_is_zero_for_equal_symmetric_and_matches_scipy(backend: str, case) -> None:
    (mean_a, cov_a), (mean_b, cov_b), dtype = case
    a = (mean_a.to(dtype), cov_a.to(dtype))
    b = (mean_b.to(dtype), cov_b.to(dtype))
    d_ab = sl.frechet_distance(*a, *b, backend=backend)
    d_ba = sl.frechet_distance(*b, *a, backend=backend)
    d_aa = sl.frechet_distance(*a, *a, backend=backend)
    assert d_ab.shape == cov_a.shape[:-2] and d_ab.dtype == dtype
    assert torch.isfinite(d_ab).all() and torch.isfinite(d_ba).all() and torch.isfinite(d_aa).all()
    root = declared_bound(backend, inverse=False, dtype=dtype, kappa=10.0 ** (2 * LOG_KAPPA))
    if root is None:
        return
    # Relative to tr S_a + tr S_b, and to |mu_a - mu_b|^2 for the rounding of the means.
    scale = (trace(cov_a) + trace(cov_b) + (mean_a - mean_b).square().sum(-1)).flatten()
    tolerance = root.forward * scale
    assert ((d_aa.double().flatten()).abs() <= root.forward * 2 * trace(cov_a).flatten()).all(), d_aa
    assert ((d_ab - d_ba).double().flatten().abs() <= tolerance).all(), (d_ab, d_ba)
    n = cov_a.shape[-1]
    expected = torch.tensor([reference_frechet_distance(*four) for four in zip(
        mean_a.reshape(-1, n), cov_a.reshape(-1, n, n), mean_b.reshape(-1, n), cov_b.reshape(-1, n, n))],
        dtype=torch.float64)  # fmt: skip
    assert ((d_ab.double().flatten() - expected).abs() <= tolerance).all(), (d_ab, expected)


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(case=pairs())
def test_frechet_gradients_match_the_float64_closed_form(backend: str, case) -> None:
    (mean_a, cov_a), (mean_b, cov_b), dtype = case
    leaves = [t.to(dtype).requires_grad_() for t in (mean_a, cov_a, mean_b, cov_b)]
    sl.frechet_distance(*leaves, backend=backend).sum().backward()
    expected = reference_frechet_gradients(mean_a, cov_a, mean_b, cov_b)
    for leaf in leaves:
        assert torch.isfinite(leaf.grad).all()
    rounding = 1e3 * torch.finfo(dtype).eps
    torch.testing.assert_close(leaves[0].grad.double(), expected[0], rtol=rounding,
                               atol=rounding * float(expected[0].abs().max()))  # fmt: skip
    root = declared_bound(backend, inverse=False, dtype=dtype, kappa=10.0 ** (2 * LOG_KAPPA))
    if root is None:
        return
    for name, leaf, want in (("cov_a", leaves[1], expected[1]), ("cov_b", leaves[3], expected[3])):
        # The gradient is I - (a product of roots), its error relative to ||I||_F = sqrt(n); it
        # flows back through two roots (the middle one, then the root of S_a inside it), each
        # root's error reaching the other through the product.
        error = float(((leaf.grad.detach().double() - want).norm(dim=(-2, -1)) / cov_a.shape[-1] ** 0.5).max())
        assert error <= 4 * (root.gradient + root.forward), f"{backend} {dtype} {name}: {error:.2e}"


@pytest.mark.parametrize("backend", ["eigh", "accurate"])
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_follows_the_dtype_rule(backend: str, half: torch.dtype) -> None:
    (mean_a, cov_a), (mean_b, cov_b) = gaussian(6, 0), gaussian(6, 1)
    args = [t.to(half) for t in (mean_a, cov_a, mean_b, cov_b)]
    d = sl.frechet_distance(*args, backend=backend)
    T, offset = sl.gaussian_transport_map(*args, backend=backend)
    assert d.dtype == T.dtype == offset.dtype == half
    torch.testing.assert_close(d, sl.frechet_distance(*[t.float() for t in args], backend=backend).to(half),
                               rtol=0, atol=0)  # fmt: skip
    torch.testing.assert_close(T, sl.gaussian_transport_map(*[t.float() for t in args], backend=backend).matrix.to(half),
                               rtol=0, atol=0)  # fmt: skip
    with torch.autocast("cpu", dtype=half):
        inside = sl.frechet_distance(*[t.float() for t in args], backend=backend)
    assert inside.dtype == torch.float32


def test_batch_dims_broadcast_and_the_map_applies_to_points() -> None:
    (mean_a, cov_a) = gaussian(3, 0, (4,))
    (mean_b, cov_b) = gaussian(3, 1)
    transport = sl.gaussian_transport_map(mean_a, cov_a, mean_b, cov_b, backend="eigh")
    assert transport.matrix.shape == (4, 3, 3) and transport.offset.shape == (4, 3)
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(4, 20000, 3, generator=gen, dtype=torch.float64)
    samples = points @ torch.linalg.cholesky(cov_a).mT + mean_a.unsqueeze(-2)
    moved = transport.apply(samples)
    assert moved.shape == (4, 20000, 3)
    centred = moved - moved.mean(-2, keepdim=True)
    # Sampling error of 20000 draws: about 1e-2.
    assert relative(centred.mT @ centred / 20000, cov_b.expand(4, 3, 3)) < 0.05
    assert sl.frechet_distance(mean_a, cov_a, mean_b, cov_b, backend="eigh").shape == (4,)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(cov_a=torch.eye(3)[:2]), ValueError, r"cov_a must be square in its last two dims \(\.\.\., n, n\), got shape \(2, 3\)"),
        (dict(cov_b=torch.eye(2)), ValueError, r"cov_b must be \(\.\.\., 3, 3\) like cov_a, got shape \(2, 2\)"),
        (dict(mean_a=torch.zeros(2)), ValueError, r"mean_a must be \(\.\.\., 3\) for 3 x 3 covariances, got shape \(2,\)"),
        (dict(mean_b=torch.tensor(1.0)), ValueError, r"mean_b must be \(\.\.\., 3\) for 3 x 3 covariances, got shape \(\)"),
        (dict(mean_b=torch.zeros(3, dtype=torch.int64)), TypeError, "mean_b must be a real floating-point tensor"),
        (dict(cov_b=torch.eye(3, dtype=torch.complex64)), TypeError, "cov_b must be a real floating-point tensor"),
        (dict(mean_a=torch.zeros(4, 3), cov_b=torch.eye(3).expand(5, 3, 3)), ValueError,
         r"the batch dims of mean_a, cov_a, mean_b, cov_b do not broadcast, got shapes \[\(4, 3\), \(3, 3\), \(3,\), \(5, 3, 3\)\]"),
        (dict(backend="nope"), ValueError, "unknown backend 'nope'"),
    ],
)
@pytest.mark.parametrize("function", [sl.gaussian_transport_map, sl.frechet_distance])
def test_bad_arguments_are_refused_with_the_value(function, change: dict, error: type, message: str) -> None:
    arguments = dict(mean_a=torch.zeros(3), cov_a=torch.eye(3), mean_b=torch.ones(3), cov_b=2 * torch.eye(3),
                     backend="eigh") | change  # fmt: skip
    with pytest.raises(error, match=message):
        function(**arguments)
