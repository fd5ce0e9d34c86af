"""WhiteningColoring and whitening_coloring: the float64 reference, layouts, style broadcasting,
the blend, the module, and the errors at the door (exact type and message)."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.layers import WhiteningColoring, whitening_coloring

from .gaussians import covariance, features, reference_whitening_coloring


@pytest.mark.parametrize("group_size", [None, 3, 4, 7])
@pytest.mark.parametrize("style_batch", [1, 2])
def test_matches_the_float64_reference(group_size: int | None, style_batch: int) -> None:
    content = features(2, 7, 20, 1.0, 0).view(2, 7, 4, 5)
    style = features(style_batch, 7, 30, 1.5, 1, scale=4.0)
    out = whitening_coloring(content, style, group_size=group_size, eps=1e-3, backend="eigh")
    expected = reference_whitening_coloring(content, style, group_size, 1e-3)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_one_style_serves_the_whole_batch() -> None:
    content = features(3, 6, 25, 1.0, 2)
    style = features(1, 6, 9, 1.0, 3)
    out = whitening_coloring(content, style, backend="eigh")
    each = whitening_coloring(content, style.expand(3, -1, -1), backend="eigh")
    torch.testing.assert_close(out, each, rtol=0, atol=1e-12)


def test_image_and_sequence_layouts_agree() -> None:
    content = torch.randn(2, 8, 6, 5, dtype=torch.float64)
    style = torch.randn(2, 8, 4, 9, dtype=torch.float64)
    image = whitening_coloring(content, style, group_size=4, backend="eigh")
    sequence = whitening_coloring(content.flatten(2), style.flatten(2), group_size=4, backend="eigh")
    torch.testing.assert_close(image.flatten(2), sequence, rtol=0, atol=0)


def test_alpha_blends_linearly_and_a_tensor_alpha_learns() -> None:
    content = features(2, 5, 20, 1.0, 4)
    style = features(1, 5, 20, 1.0, 5)
    full = whitening_coloring(content, style, backend="eigh")
    half = whitening_coloring(content, style, alpha=0.25, backend="eigh")
    torch.testing.assert_close(half, 0.25 * full + 0.75 * content)
    per_sample = torch.tensor([[[0.0]], [[1.0]]], dtype=torch.float64, requires_grad=True)
    out = whitening_coloring(content, style, alpha=per_sample, backend="eigh")
    torch.testing.assert_close(out[0], content[0])
    torch.testing.assert_close(out[1], full[1])
    (out * full).sum().backward()
    # d/d alpha_n of sum(out * full) = sum((full - content) * full) for sample n.
    expected = ((full - content) * full).sum((1, 2))
    torch.testing.assert_close(per_sample.grad.flatten(), expected)


def test_scale_of_the_content_does_not_matter() -> None:
    content = features(2, 6, 15, 1.0, 6)
    style = features(1, 6, 15, 1.0, 7)
    out = whitening_coloring(content, style, eps=1e-4, backend="eigh")
    scaled = whitening_coloring(1e6 * content, style, eps=1e-4, backend="eigh")
    torch.testing.assert_close(out, scaled)


def test_constant_content_gives_the_style_mean() -> None:
    content = torch.full((2, 4, 3, 3), 7.0)
    style = features(1, 4, 20, 1.0, 8).float()
    out = whitening_coloring(content, style, backend="eigh")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.flatten(2), style.mean(-1, keepdim=True).expand(2, 4, 9), rtol=1e-5, atol=1e-5)


def test_empty_batch_gives_an_empty_output() -> None:
    out = whitening_coloring(torch.randn(0, 4, 3, 3), torch.randn(1, 4, 5), backend="eigh")
    assert out.shape == (0, 4, 3, 3)


def test_one_backend_call_per_root(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = sl.get_backend("eigh")
    calls: list[tuple[str, tuple[int, ...]]] = []
    for name in ("sqrtm", "inv_sqrtm"):
        original = getattr(backend, name)

        def wrapped(A, original=original, name=name):
            calls.append((name, tuple(A.shape)))
            return original(A)

        monkeypatch.setattr(backend, name, wrapped)
    whitening_coloring(torch.randn(3, 10, 4, 4), torch.randn(3, 10, 5, 5), group_size=4, backend=backend)
    assert calls == [("inv_sqrtm", (3, 3, 4, 4)), ("sqrtm", (3, 3, 4, 4))]


def test_module_matches_the_function_and_learns_alpha() -> None:
    content, style = torch.randn(2, 6, 5, 5), torch.randn(1, 6, 7, 7)
    layer = WhiteningColoring(group_size=3, eps=1e-3, alpha=0.5, learnable_alpha=True, backend="eigh")
    assert isinstance(layer.alpha, torch.nn.Parameter) and [p for p in layer.parameters()] == [layer.alpha]
    out = layer(content, style)
    torch.testing.assert_close(out, whitening_coloring(content, style, 0.5, 3, 1e-3, "eigh"))
    out.square().sum().backward()
    assert layer.alpha.grad is not None and torch.isfinite(layer.alpha.grad)
    fixed = WhiteningColoring(alpha=0.5, backend="eigh")
    assert list(fixed.parameters()) == [] and fixed.alpha == 0.5
    assert repr(layer) == "WhiteningColoring(group_size=3, eps=0.001, alpha=learnable, backend=EighBackend(name='eigh'))"
    assert "alpha=0.5," in repr(fixed)
    # The module's state travels: a saved learnable alpha loads into a fresh layer.
    again = WhiteningColoring(group_size=3, learnable_alpha=True, backend="eigh")
    again.load_state_dict(layer.state_dict())
    assert float(again.alpha.detach()) == 0.5


def test_covariance_of_the_output_is_the_style_in_float32() -> None:
    content = features(2, 16, 60, 2.0, 9).float()
    style = features(1, 16, 80, 2.0, 10, scale=9.0).float()
    out = whitening_coloring(content, style, eps=0.0, backend="accurate")
    error = (covariance(out) - covariance(style)).norm(dim=(-2, -1)) / covariance(style).norm(dim=(-2, -1))
    assert float(error.max()) < 1e-4


BAD_CALLS = [
    (dict(content=torch.randn(2, 3)), ValueError, r"content must be \(N, C, H, W\) or \(N, C, L\) features, got shape \(2, 3\)"),
    (dict(content=torch.randn(2, 0, 3)), ValueError, r"content must have at least one channel and one position, got shape \(2, 0, 3\)"),
    (dict(content=torch.randn(2, 3, 0)), ValueError, r"content must have at least one channel and one position, got shape \(2, 3, 0\)"),
    (dict(content=torch.ones(2, 3, 4, dtype=torch.int64)), TypeError, "content must be a real floating-point tensor"),
    (dict(content=[1.0]), TypeError, "content must be a torch.Tensor, got list"),
    (dict(style=torch.randn(2, 4, 5)), ValueError, r"style must have the content's 3 channels, got shape \(2, 4, 5\)"),
    (dict(style=torch.randn(3, 3, 5)), ValueError, r"style must hold 1 or 2 samples \(the content's batch\), got shape \(3, 3, 5\)"),
    (dict(style=torch.randn(2, 3, 5, dtype=torch.complex64)), TypeError, "style must be a real floating-point tensor"),
    (dict(alpha=1.5), ValueError, r"alpha must be a float in \[0, 1\] or a tensor, got 1.5"),
    (dict(alpha=True), ValueError, r"alpha must be a float in \[0, 1\] or a tensor, got True"),
    (dict(alpha=torch.ones(3, 1, 1)), ValueError, r"alpha must broadcast to the content's shape \(2, 3, 4\), got shape \(3, 1, 1\)"),
    (dict(alpha=torch.ones(1, dtype=torch.int32)), TypeError, "alpha must be a real floating-point tensor"),
    (dict(group_size=0), ValueError, "group_size must be >= 1, got 0"),
    (dict(group_size=2.0), TypeError, "group_size must be an int or None, got 2.0"),
    (dict(eps=-1e-3), ValueError, "eps must be a float >= 0, got -0.001"),
    (dict(eps=float("nan")), ValueError, "eps must be a float >= 0, got nan"),
    (dict(backend="nope"), ValueError, "unknown backend 'nope'"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_CALLS)
def test_bad_arguments_are_refused_with_the_value(change: dict, error: type, message: str) -> None:
    arguments = dict(content=torch.randn(2, 3, 4), style=torch.randn(1, 3, 5), alpha=1.0, group_size=None, eps=1e-5,
                     backend="eigh") | change  # fmt: skip
    with pytest.raises(error, match=message):
        whitening_coloring(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(alpha=-0.1), ValueError, r"alpha must be a float in \[0, 1\] or a tensor, got -0.1"),
        (dict(eps=-1.0), ValueError, "eps must be a float >= 0, got -1.0"),
        (dict(group_size=0), ValueError, "group_size must be >= 1, got 0"),
        (dict(backend="nope"), ValueError, "unknown backend 'nope'"),
    ],
)
def test_module_refuses_bad_arguments_at_construction(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        WhiteningColoring(**kwargs)
