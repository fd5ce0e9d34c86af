"""Properties of the whitening and colouring transform under every registered backend, drawn by
hypothesis: with ``alpha=1`` the output of each group has the style's mean and covariance, with
``alpha=0`` it is the content, whitening alone gives identity covariance, gradients are finite
for rank-deficient content and style and match a float64 reference, and half-precision inputs
and autocast regions follow the library's dtype rule.

Accuracy is held to the bounds each backend declares (:mod:`sqrtlayers.backends.bounds`) at
the condition number of the content's and the style's covariances, float32 and float64:

- ``alpha=1``: the output covariance's relative Frobenius error to the style's, at most the sum
  of the inverse-root and root forward bounds (measured, ``thorough`` profile: at most 0.25 of
  that sum for every backend; eigh 0.05, accurate 0.12);
- whitening alone: ``||cov - I||_F / sqrt(g)`` at most the inverse-root bound (measured: 0.31);
- rank-deficient inputs, ridged to a condition number ``g / eps + 1``: output and gradients
  against the float64 reference at most the sums of the forward and of the gradient bounds
  (measured: 0.10 and 0.48 of them; eigh 6e-4 and 8e-4, accurate 7e-3 and 4e-2).

A backend that declares no bound (a user's own) is still held to everything but accuracy.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sqrtlayers as sl
from sqrtlayers.backends.bounds import declared_bound

from ...conftest import THOROUGH
from .gaussians import covariance, features, reference_whitening_coloring
from .single_thread import one_thread  # noqa: F401 (the fixture, by name)

MAX_CHANNELS = 48 if THOROUGH else 24
EXAMPLES = max(2, settings().max_examples // 4)
pytestmark = pytest.mark.usefixtures("one_thread")  # small matrices: many tiny kernels

# The ridge of the rank-deficient cases: a condition number of at most g / eps + 1 <= 1e4 after it.
RANK_DEFICIENT_EPS = 1e-2


@st.composite
def layouts(draw: st.DrawFn, max_channels: int = MAX_CHANNELS) -> tuple[int, int | None, float, int, torch.dtype]:
    """(channels, group_size or None, log10 of the covariances' condition number, seed, dtype)."""
    c = draw(st.integers(1, max_channels))
    group_size = draw(st.one_of(st.none(), st.integers(1, c)))
    log_kappa = draw(st.sampled_from([0.0, 1.0, 2.0]))
    return c, group_size, log_kappa, draw(st.integers(0, 2**16)), draw(st.sampled_from([torch.float32, torch.float64]))


def bounds(backend: str, dtype: torch.dtype, kappa: float):
    """(inverse root, root) declared bounds, or ``None`` for a backend that declares none."""
    inverse = declared_bound(backend, inverse=True, dtype=dtype, kappa=kappa)
    root = declared_bound(backend, inverse=False, dtype=dtype, kappa=kappa)
    return None if inverse is None or root is None else (inverse, root)


def group_slices(c: int, group_size: int | None) -> list[slice]:
    g = group_size or c
    return [slice(start, min(start + g, c)) for start in range(0, c, g)]


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(layout=layouts())
def test_alpha_one_gives_the_style_mean_and_covariance(backend: str, layout) -> None:
    c, group_size, log_kappa, seed, dtype = layout
    content = features(3, c, 2 * c + 3, log_kappa, seed)
    style = features(1, c, 3 * c + 2, log_kappa, seed + 1, scale=25.0)
    out = sl.whitening_coloring(content.to(dtype), style.to(dtype), group_size=group_size, eps=0.0, backend=backend)
    assert out.dtype == dtype and out.shape == content.shape
    assert torch.isfinite(out).all()
    declared = bounds(backend, dtype, 10.0**log_kappa)
    if declared is None:
        return
    inverse, root = declared
    for group in group_slices(c, group_size):
        target = covariance(style[:, group])
        got = covariance(out[:, group])
        error = float(((got - target).norm(dim=(-2, -1)) / target.norm(dim=(-2, -1))).max())
        assert error <= inverse.forward + root.forward, f"{backend} {dtype} C={c} g={group_size}: {error:.2e}"
        # The mean is the style's whatever the roots: the centred features have mean zero.
        mean_error = float((out[:, group].double().mean(-1) - style[:, group].mean(-1)).abs().max())
        assert mean_error <= 1e3 * torch.finfo(dtype).eps * float(style.abs().max()), mean_error


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(layout=layouts(), half=st.sampled_from([None, torch.float16, torch.bfloat16]))
def test_alpha_zero_gives_the_content(backend: str, layout, half: torch.dtype | None) -> None:
    c, group_size, log_kappa, seed, dtype = layout
    content = features(2, c, c + 2, log_kappa, seed).to(half or dtype)
    style = features(2, c, c + 4, log_kappa, seed + 1).to(half or dtype)
    out = sl.whitening_coloring(content, style, alpha=0.0, group_size=group_size, backend=backend)
    torch.testing.assert_close(out, content, rtol=0, atol=0)
    blend = torch.zeros(2, 1, 1, dtype=dtype, requires_grad=True)
    out = sl.whitening_coloring(content, style, alpha=blend, group_size=group_size, backend=backend)
    torch.testing.assert_close(out, content, rtol=0, atol=0)
    out.float().sum().backward()
    assert torch.isfinite(blend.grad).all()


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(layout=layouts())
def test_whitening_alone_gives_identity_covariance(backend: str, layout) -> None:
    c, group_size, log_kappa, seed, dtype = layout
    content = features(2, c, 2 * c + 1, log_kappa, seed, scale=1e3)
    out = sl.whitening_coloring(content.to(dtype), None, group_size=group_size, eps=0.0, backend=backend)
    assert torch.isfinite(out).all()
    declared = bounds(backend, dtype, 10.0**log_kappa)
    if declared is None:
        return
    inverse, _ = declared
    for group in group_slices(c, group_size):
        got = covariance(out[:, group])
        eye = torch.eye(got.shape[-1], dtype=torch.float64)
        error = float(((got - eye).norm(dim=(-2, -1)) / math.sqrt(got.shape[-1])).max())  # relative to ||I||_F
        assert error <= inverse.forward, f"{backend} {dtype} C={c} g={group_size}: {error:.2e}"
        assert float(out[:, group].double().mean(-1).abs().max()) <= 1e-3


@pytest.mark.parametrize("backend", sl.list_backends())
@settings(max_examples=EXAMPLES)
@given(layout=layouts(max_channels=16), style_batch=st.sampled_from([1, 2]))
def test_rank_deficient_gradients_are_finite_and_match_float64(backend: str, layout, style_batch: int) -> None:
    """Fewer positions than channels in content and style: the covariances are singular, and
    the ridge makes their condition number at most g / eps + 1."""
    c, group_size, _, seed, dtype = layout
    c = max(c, 4)
    group_size = None if group_size is None else min(max(group_size, 4), c)
    gen = torch.Generator().manual_seed(seed)
    content = (3 * torch.randn(2, c, max(2, c // 2), generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()
    style = torch.randn(style_batch, c, max(2, c // 3), generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
    upstream = torch.randn(content.shape, generator=gen, dtype=torch.float64)
    out = sl.whitening_coloring(content, style, group_size=group_size, eps=RANK_DEFICIENT_EPS, backend=backend)
    (out * upstream.to(dtype)).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(content.grad).all() and torch.isfinite(style.grad).all()

    c64, s64 = content.detach().double().requires_grad_(), style.detach().double().requires_grad_()
    expected = reference_whitening_coloring(c64, s64, group_size, RANK_DEFICIENT_EPS)
    (expected * upstream).sum().backward()
    kappa = (group_size or c) / RANK_DEFICIENT_EPS + 1
    declared = bounds(backend, dtype, kappa)
    if declared is None:
        return
    inverse, root = declared
    relative = lambda a, b: float((a.double() - b).norm() / b.norm())  # noqa: E731
    forward_error = relative(out.detach(), expected.detach())
    assert forward_error <= inverse.forward + root.forward, f"{backend} {dtype} C={c} g={group_size}: {forward_error:.2e}"
    tolerance = inverse.gradient + root.gradient
    for name, got, want in (("content", content.grad, c64.grad), ("style", style.grad, s64.grad)):
        error = relative(got, want)
        assert error <= tolerance, f"{backend} {dtype} C={c} g={group_size}: {name} gradient {error:.2e}"


@pytest.mark.parametrize("backend", sl.list_backends())
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_follows_the_dtype_rule(backend: str, half: torch.dtype) -> None:
    """Computed in float32 (``sl.compute_dtype``) and cast back: bitwise what float32 gives on
    the rounded inputs; and inside an autocast region, what it gives outside."""
    content = features(2, 12, 30, 1.0, 7).to(half)
    style = features(1, 12, 40, 1.0, 8).to(half)
    out = sl.whitening_coloring(content, style, group_size=5, backend=backend)
    assert out.dtype == half
    expected = sl.whitening_coloring(content.float(), style.float(), group_size=5, backend=backend).to(half)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=half):
        inside = sl.whitening_coloring(content.float(), style.float(), group_size=5, backend=backend)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside.to(half), expected, rtol=0, atol=0)
