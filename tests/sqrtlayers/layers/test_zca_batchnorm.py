"""ZCABatchNorm: whitening, running statistics, gradients, state_dict, autocast.

Reference: a plain float64 implementation with ``torch.linalg.eigh`` autograd (no sqrtlayers),
on data whose group covariances are well conditioned (singular values of the mixing 1..3,
condition number about 9, well-separated eigenvalues). Whiteness is checked with the condition
cap off (``max_condition=None``): with it, the ridge is up to ``||Σ²||^(1/2) / 1e4`` and the
output covariance is ``Σ (Σ + δ I)^-1``, off the identity by about ``1e-3`` on these data by
design; the reference comparisons include the cap.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sqrtlayers as sl
from sqrtlayers.layers import ZCABatchNorm, zca_batch_norm
from sqrtlayers.layers.zca_functional import MAX_CONDITION

from .whitening import channel_matrix, whitening_errors

# Per backend, float32, on the data below: (max |cov(y) - I| within a group, relative error of
# the output, relative error of the input gradient), both errors against the float64 reference.
# Measured (affine off): eigh 6e-6 / 5e-7 / 5e-7; mpa(-lya) 1.2e-3 / 3e-4 / 5e-4..1e-3; ns(-lya)
# 7e-2 / 1.6e-2 / 2.5e-2..3.4e-2; mtp(-lya) 1.5e-1 / 4e-2 / 6e-2..8e-2. Bounds: 2x-10x headroom.
TOLERANCES: dict[str, tuple[float, float, float]] = {
    "eigh": (1e-4, 1e-5, 1e-5),
    "svd": (1e-4, 1e-5, 1e-5),
    "mpa": (1e-2, 2e-3, 5e-3),
    "mpa-lya": (1e-2, 2e-3, 5e-3),
    "ns": (0.15, 5e-2, 1e-1),
    "ns-lya": (0.15, 5e-2, 1e-1),
    "mtp": (0.3, 0.1, 0.2),
    "mtp-lya": (0.3, 0.1, 0.2),
}
# A backend registered later is held to the loosest paper backend's bounds until it gets a row.
DEFAULT_TOLERANCE = (0.3, 0.1, 0.3)
BACKENDS = sl.list_backends()


def tolerance(backend: str) -> tuple[float, float, float]:
    return TOLERANCES.get(backend, DEFAULT_TOLERANCE)


def correlated(n: int, c: int, spatial: tuple[int, ...] = (), seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """``(n, c, *spatial)`` with channel covariance ``Q diag(1..9) Q^T`` and per-channel means."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(c, c, generator=gen, dtype=torch.float64))
    mixing = Q * torch.linspace(1.0, 3.0, c, dtype=torch.float64)
    z = torch.randn(n, *spatial, c, generator=gen, dtype=torch.float64)
    return (z @ mixing.T + torch.linspace(-2.0, 2.0, c, dtype=torch.float64)).movedim(-1, 1).to(dtype)


def reference_shift(cov, eps, max_condition=MAX_CONDITION):
    """The layer's ridge, written out from its definition: ``eps`` times the mean variance, at
    least the largest eigenvalue over ``max_condition - 1`` (bounded here by ``||cov^2||^(1/2)``),
    plus ``eps^2`` times the largest variance (the layer works in units of it)."""
    shift = eps * torch.diagonal(cov).mean()
    if max_condition is not None:
        shift = torch.maximum(shift, torch.linalg.matrix_norm(cov @ cov).sqrt() / (max_condition - 1))
    return shift + eps * eps * torch.diagonal(cov).max()


def reference_zca(x, group_size, eps, weight=None, bias=None, detach_whitening=False, max_condition=MAX_CONDITION):
    """Float64 ZCA batch norm by ``torch.linalg.eigh`` autograd, one group at a time. A short
    last group is padded as the layer pads it: its appended channels get the group's mean
    variance (they change its ridge only through their count)."""
    X = x.transpose(0, 1).reshape(x.shape[1], -1)
    blocks = []
    for start in range(0, X.shape[0], group_size):
        B = X[start : start + group_size]
        B = B - B.mean(1, keepdim=True)
        cov = B @ B.T / B.shape[1]
        real = cov.shape[0]
        if real < group_size:
            cov = torch.block_diag(cov, torch.diagonal(cov).mean() * torch.eye(group_size - real, dtype=x.dtype))
        cov = cov + reference_shift(cov, eps, max_condition) * torch.eye(group_size, dtype=x.dtype)
        cov = cov[:real, :real]
        evals, V = torch.linalg.eigh(cov)
        W = V @ torch.diag(evals.rsqrt()) @ V.T
        blocks.append((W.detach() if detach_whitening else W) @ B)
    Y = torch.cat(blocks)
    if weight is not None:
        Y = Y * weight[:, None] + bias[:, None]
    return Y.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


# -- training: whitening -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_output_is_white_per_group(backend: str) -> None:
    x = correlated(32, 16, (4, 4))
    y = ZCABatchNorm(16, group_size=8, backend=backend, max_condition=None)(x)
    mean_err, cov_err = whitening_errors(y, 8)
    assert mean_err <= 1e-5
    assert cov_err <= tolerance(backend)[0], f"{backend}: max |cov - I| = {cov_err:.2e}"


@pytest.mark.parametrize(
    ("shape", "group_size"),
    [((256, 6), None), ((64, 6, 5), 3), ((16, 10, 4, 4), 4), ((8, 6, 3, 4, 4), None)],
    ids=["N,C", "N,C,L", "N,C,H,W-uneven", "N,C,D,H,W"],
)
def test_every_batchnorm_input_layout_is_whitened(shape: tuple[int, ...], group_size: int | None) -> None:
    x = correlated(shape[0], shape[1], shape[2:])
    bn = ZCABatchNorm(shape[1], group_size=group_size, eps=1e-8, backend="eigh", max_condition=None)
    y = bn(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    g = group_size or shape[1]
    mean_err, cov_err = whitening_errors(y, g)
    assert mean_err <= 1e-5 and cov_err <= 1e-3, (mean_err, cov_err)
    assert bn.running_whitening.shape == (-(-shape[1] // g), g, g)


def test_short_last_group_is_whitened_on_its_own() -> None:
    """C = 10 in groups of 4: the last group holds channels 8, 9 and is whitened exactly as a
    separate 2-channel layer would whiten them (with the relative ridge alone, which does not
    depend on the padding)."""
    x = correlated(64, 10, (3,), dtype=torch.float64)
    y = ZCABatchNorm(10, group_size=4, backend="eigh", max_condition=None).double()(x)
    alone = ZCABatchNorm(2, backend="eigh", max_condition=None).double()(x[:, 8:])
    torch.testing.assert_close(y[:, 8:], alone, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(y, reference_zca(x, 4, 1e-5, max_condition=None), rtol=1e-10, atol=1e-10)
    y = ZCABatchNorm(10, group_size=4, backend="eigh").double()(x)
    torch.testing.assert_close(y, reference_zca(x, 4, 1e-5), rtol=1e-10, atol=1e-10)


def test_channels_in_different_groups_are_not_decorrelated() -> None:
    x = correlated(64, 8, (3,))
    Y = channel_matrix(ZCABatchNorm(8, group_size=4, backend="eigh")(x))
    cross = torch.corrcoef(Y)[:4, 4:].abs().max()
    assert cross > 0.1  # the data's correlation across the two groups survives


# -- running statistics and eval -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_with_momentum_one_reproduces_training(backend: str) -> None:
    x = correlated(16, 6, (3, 3))
    bn = ZCABatchNorm(6, group_size=4, momentum=1.0, backend=backend)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    train_out = bn(x)
    eval_out = bn.eval()(x)
    torch.testing.assert_close(eval_out, train_out, rtol=1e-5, atol=1e-5)


def test_running_statistics_are_exponential_averages_of_mean_and_covariance() -> None:
    x = correlated(32, 4, (5,), dtype=torch.float64)
    bn = ZCABatchNorm(4, backend="eigh").double()
    bn(x)
    X = channel_matrix(x)
    mean = X.mean(1)
    cov = torch.cov(X, correction=0)
    eye = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_covariance[0], 0.9 * eye + 0.1 * cov)
    assert int(bn.num_batches_tracked) == 1
    # The whitening evaluated with is that of the running covariance, computed once on the turn
    # to eval mode, not per eval batch.
    running = 0.9 * eye + 0.1 * cov
    running = running + reference_shift(running, 1e-5) * eye
    evals, V = torch.linalg.eigh(running)
    bn.eval()
    torch.testing.assert_close(bn.running_whitening[0], V @ torch.diag(evals.rsqrt()) @ V.T)


def test_momentum_none_is_a_cumulative_average() -> None:
    a, b = correlated(32, 4, (5,), seed=1, dtype=torch.float64), correlated(32, 4, (5,), seed=2, dtype=torch.float64)
    bn = ZCABatchNorm(4, momentum=None, backend="eigh").double()
    bn(a)
    stats_a = (bn.running_mean.clone(), bn.running_covariance.clone())
    bn.reset_running_stats()
    bn(b)
    stats_b = (bn.running_mean.clone(), bn.running_covariance.clone())
    bn.reset_running_stats()
    bn(a)
    bn(b)
    torch.testing.assert_close(bn.running_mean, (stats_a[0] + stats_b[0]) / 2)
    torch.testing.assert_close(bn.running_covariance, (stats_a[1] + stats_b[1]) / 2)
    assert int(bn.num_batches_tracked) == 2


def test_eval_uses_the_buffers_not_the_batch() -> None:
    bn = ZCABatchNorm(6, group_size=3, backend="eigh")
    for seed in range(3):
        bn(correlated(32, 6, (2,), seed=seed))
    x = correlated(8, 6, (2,), seed=10)
    bn.eval()
    expected = torch.einsum(
        "gij,ngjl->ngil", bn.running_whitening, (x - bn.running_mean[:, None]).view(8, 2, 3, 2)
    ).reshape_as(x)
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)
    _, cov_err = whitening_errors(bn(x), 3)
    assert cov_err > 1e-2  # running statistics, so not white on this batch


def test_without_running_stats_eval_uses_the_batch() -> None:
    bn = ZCABatchNorm(4, track_running_stats=False, backend="eigh")
    assert bn.running_mean is None and bn.running_whitening is None and bn.num_batches_tracked is None
    y = bn.eval()(correlated(64, 4, (3,)))
    assert max(whitening_errors(y, 4)) <= 1e-3


# -- small batches -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(3, 8), (1, 8, 2, 1)], ids=["N<g", "one-sample-two-positions"])
def test_batch_smaller_than_group_is_finite(backend: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, requires_grad=True)
    y = ZCABatchNorm(8, backend=backend)(x)
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(1, 8), (1, 8, 1, 1)])
def test_single_value_per_channel_raises_like_batchnorm(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    with pytest.raises(ValueError) as bn_error:
        nn.BatchNorm1d(8)(x) if len(shape) == 2 else nn.BatchNorm2d(8)(x)
    with pytest.raises(ValueError) as zca_error:
        ZCABatchNorm(8)(x)
    assert str(zca_error.value) == str(bn_error.value)
    assert "Expected more than 1 value per channel when training, got input size" in str(zca_error.value)
    assert ZCABatchNorm(8).eval()(x).shape == x.shape


# -- gradients -----------------------------------------------------------------------------------


@pytest.mark.parametrize("group_size", [2, None], ids=["groups-2-2-1", "one-group"])
def test_gradcheck_float64_eigh(group_size: int | None) -> None:
    x = correlated(4, 5, (3,), dtype=torch.float64).requires_grad_()
    weight = torch.linspace(0.5, 1.5, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64, requires_grad=True)

    def fn(x, weight, bias):
        return zca_batch_norm(
            x, None, None, weight, bias, training=True, eps=1e-3, group_size=group_size, backend="eigh"
        )

    assert torch.autograd.gradcheck(fn, (x, weight, bias))


@pytest.mark.parametrize("backend", BACKENDS)
def test_output_and_gradient_match_float64_eigh_reference(backend: str) -> None:
    x64 = correlated(32, 16, (3,), dtype=torch.float64)
    upstream = torch.randn(x64.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weight = torch.linspace(0.5, 1.5, 16, dtype=torch.float64)
    bias = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64)
    x_ref = x64.clone().requires_grad_()
    ref = reference_zca(x_ref, 8, 1e-5, weight, bias)
    (ref * upstream).sum().backward()

    x = x64.float().requires_grad_()
    bn = ZCABatchNorm(16, group_size=8, backend=backend)
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
    y = bn(x)
    (y * upstream.float()).sum().backward()
    _, fwd_tol, grad_tol = tolerance(backend)
    assert rel(y, ref) <= fwd_tol, f"{backend}: output error {rel(y, ref):.2e}"
    assert rel(x.grad, x_ref.grad) <= grad_tol, f"{backend}: gradient error {rel(x.grad, x_ref.grad):.2e}"


def test_gradient_through_the_whitening_matrix_is_what_the_reference_checks() -> None:
    """A gradient through the centring only (whitening matrix detached) is far from the full one,
    so the reference comparison above tells them apart."""
    x = correlated(32, 16, (3,), dtype=torch.float64)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for detach in (False, True):
        leaf = x.clone().requires_grad_()
        (reference_zca(leaf, 8, 1e-5, detach_whitening=detach) * upstream).sum().backward()
        grads.append(leaf.grad)
    assert rel(grads[1], grads[0]) > 0.1
    leaf = x.clone().requires_grad_()
    (ZCABatchNorm(16, group_size=8, affine=False, backend="eigh").double()(leaf) * upstream).sum().backward()
    assert rel(leaf.grad, grads[0]) <= 1e-10


# -- module structure ----------------------------------------------------------------------------


def test_state_dict_round_trips_and_is_versioned() -> None:
    bn = ZCABatchNorm(6, group_size=4, backend="eigh")
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
    for seed in range(2):
        bn(correlated(16, 6, (3,), seed=seed))
    state = bn.state_dict()
    assert set(state) == {
        "weight", "bias", "running_mean", "running_covariance", "running_whitening", "num_batches_tracked"
    }  # fmt: skip
    assert state._metadata[""]["version"] == ZCABatchNorm._version == 2
    fresh = ZCABatchNorm(6, group_size=4, backend="eigh")
    fresh.load_state_dict(state)
    x = correlated(8, 6, (3,), seed=5)
    torch.testing.assert_close(fresh.eval()(x), bn.eval()(x), rtol=0, atol=0)
    # The version is read back: a versioned checkpoint must hold the counter (as BatchNorm's
    # version 2 does); a state dict without metadata (built by hand) starts the counter at zero.
    del state["num_batches_tracked"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "num_batches_tracked"'):
        fresh.load_state_dict(state)
    fresh.load_state_dict(dict(state))
    assert int(fresh.num_batches_tracked) == 0


def test_batchnorm_checkpoint_loads_and_evaluates_identically() -> None:
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    for seed in range(3):
        bn(correlated(16, 6, (3, 3), seed=seed))
    zca = ZCABatchNorm(6, group_size=4)
    zca.load_state_dict(bn.state_dict())
    x = correlated(8, 6, (3, 3), seed=9)
    torch.testing.assert_close(zca.eval()(x), bn.eval()(x), rtol=1e-5, atol=1e-5)
    assert int(zca.num_batches_tracked) == 3
    # A BatchNorm checkpoint from before its version 2 has no step counter: it loads, at zero.
    old = bn.state_dict()
    del old["num_batches_tracked"]
    old._metadata[""]["version"] = 1
    zca.load_state_dict(old)
    assert int(zca.num_batches_tracked) == 0
    torch.testing.assert_close(zca.eval()(x), bn.eval()(x), rtol=1e-5, atol=1e-5)


def test_reset_and_repr() -> None:
    bn = ZCABatchNorm(6, group_size=4, momentum=None, backend="eigh")
    bn(correlated(16, 6, (3,)))
    with torch.no_grad():
        bn.weight.fill_(3.0)
    bn.reset_running_stats()
    assert bn.running_mean.eq(0).all() and int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_covariance, torch.eye(4).expand(2, 4, 4))
    torch.testing.assert_close(bn.running_whitening, torch.eye(4).expand(2, 4, 4), rtol=0, atol=1e-4)
    assert bn.weight.eq(3.0).all()
    bn.reset_parameters()
    assert bn.weight.eq(1.0).all() and bn.bias.eq(0.0).all()
    assert repr(bn) == (
        "ZCABatchNorm(6, group_size=4, eps=1e-05, momentum=None, affine=True, track_running_stats=True, "
        "backend=EighBackend(name='eigh'), max_condition=10000.0, sync_stats=False)"
    )
    no_affine = ZCABatchNorm(3, affine=False)
    assert no_affine.weight is None and no_affine.bias is None and list(no_affine.parameters()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_features": 0}, ValueError, "num_features must be an int >= 1, got 0"),
        ({"num_features": 2.0}, TypeError, "num_features must be an int >= 1, got 2.0"),
        ({"num_features": 8, "group_size": 0}, ValueError, "group_size must be >= 1, got 0"),
        ({"num_features": 8, "max_condition": 1.0}, ValueError, "max_condition must be a number > 1 or None, got 1.0"),
        ({"num_features": 8, "group_size": 2.0}, TypeError, "group_size must be an int or None, got 2.0"),
        ({"num_features": 8, "eps": -1.0}, ValueError, "eps must be >= 0, got -1.0"),
        ({"num_features": 8, "momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\] or None, got 1.5"),
        ({"num_features": 8, "backend": "nope"}, ValueError, "unknown backend 'nope'"),
    ],
)
def test_constructor_errors_echo_the_value(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ZCABatchNorm(**kwargs)


BAD_INPUTS = [
    (torch.ones(4, 3, dtype=torch.int64), TypeError, r"input must be a real floating-point tensor .*torch.int64"),
    (torch.ones(4, 3, dtype=torch.bool), TypeError, r"real floating-point tensor .*got dtype torch.bool"),
    (torch.ones(4, 3, dtype=torch.complex64), TypeError, r"real floating-point tensor .*got dtype torch.complex64"),
    ([[1.0, 2.0, 3.0]] * 4, TypeError, r"input must be a torch.Tensor, got list"),
    (torch.randn(3), ValueError, r"expected input of shape \(N, C\) or \(N, C, \*\), got shape \(3,\)"),
    (torch.randn(()), ValueError, r"expected input of shape \(N, C\) or \(N, C, \*\), got shape \(\)"),
]
BAD_INPUT_IDS = ["int64", "bool", "complex", "list", "1-D", "0-D"]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("value", "error", "message"), BAD_INPUTS, ids=BAD_INPUT_IDS)
def test_bad_input_is_refused_at_the_door(value, error: type, message: str, training: bool) -> None:
    """In both modes and in both forms, before any computation: integer input used to come back
    truncated in eval mode, and failed deep inside torch in training."""
    layer = ZCABatchNorm(3, backend="eigh").train(training)
    with pytest.raises(error, match=message):
        layer(value)
    with pytest.raises(error, match=message):
        zca_batch_norm(value, layer.running_mean, layer.running_covariance, training=training)
    assert int(layer.num_batches_tracked) == 0  # refused before the step counter moved


def test_wrong_channel_count_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"expected 4 channels in dim 1, got input of shape \(2, 3, 5\)"):
        ZCABatchNorm(4)(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"expected 4 channels in dim 1, got input of shape \(2, 5\)"):
        ZCABatchNorm(4).eval()(torch.randn(2, 5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"running_mean": torch.zeros(3)}, r"running_mean must have shape \(4,\) for input with 4 channels, got .*3"),
        ({"weight": torch.ones(4, 1)}, r"weight must have shape \(4,\) for input with 4 channels, got shape \(4, 1\)"),
        ({"bias": torch.zeros(5)}, r"bias must have shape \(4,\) for input with 4 channels, got shape \(5,\)"),
        (
            {"running_covariance": torch.eye(4)[None]},
            r"running_covariance must have shape \(2, 2, 2\) for 4 channels in groups of 2, got \(1, 4, 4\)",
        ),
        (
            {"running_whitening": torch.eye(4)[None]},
            r"running_whitening must have shape \(2, 2, 2\) for 4 channels in groups of 2, got \(1, 4, 4\)",
        ),
        ({"group_size": 0}, r"group_size must be >= 1, got 0"),
        ({"max_condition": 0.5}, r"max_condition must be a number > 1 or None, got 0.5"),
    ],
    ids=["running_mean", "weight", "bias", "running_covariance", "running_whitening", "group_size", "max_condition"],
)
def test_functional_form_checks_every_per_channel_argument(kwargs: dict, message: str) -> None:
    args = {"running_mean": torch.zeros(4), "running_covariance": torch.eye(2).expand(2, 2, 2).clone(), "group_size": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        zca_batch_norm(torch.randn(8, 4), training=True, backend="eigh", **args)


def test_functional_eval_without_buffers_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match=r"running_mean and running_covariance \(or running_whitening\) are required"):
        zca_batch_norm(torch.randn(8, 4), None, None, training=False)


def test_batch_of_one_fails_in_the_functional_form_too() -> None:
    message = r"Expected more than 1 value per channel when training, got input size torch.Size\(\[1, 4\]\)"
    with pytest.raises(ValueError, match=message):
        zca_batch_norm(torch.randn(1, 4), None, None, training=True)


# -- mixed precision -----------------------------------------------------------------------------


def test_bfloat16_input_is_computed_in_float32() -> None:
    x = correlated(32, 8, (3, 3)).bfloat16()
    y = ZCABatchNorm(8, group_size=4, backend="mpa-lya")(x)
    expected = ZCABatchNorm(8, group_size=4, backend="mpa-lya")(x.float()).bfloat16()
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_autocast_region_gives_finite_output_and_gradients() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    bn = ZCABatchNorm(8, group_size=4)
    x = torch.randn(8, 3, 6, 6, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = conv(x)
        y = bn(features)
    assert features.dtype == torch.bfloat16 and y.dtype == torch.bfloat16
    # Inside autocast the covariance and the root run in float32: same as outside on the same input.
    expected = ZCABatchNorm(8, group_size=4)(features.detach().float()).bfloat16()
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=0)
    y.float().square().mean().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all() and torch.isfinite(bn.weight.grad).all()


def test_sync_stats_without_a_process_group_is_local() -> None:
    x = correlated(16, 6, (3,))
    synced = ZCABatchNorm(6, sync_stats=True, backend="eigh")(x)
    torch.testing.assert_close(synced, ZCABatchNorm(6, backend="eigh")(x), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["mpa-lya", "eigh"])
def test_float16_autocast_on_cuda(backend: str) -> None:
    conv = nn.Conv2d(3, 16, 3, padding=1).cuda()
    bn = ZCABatchNorm(16, group_size=8, backend=backend).cuda()
    x = torch.randn(8, 3, 8, 8, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.float16):
        features = conv(x)
        y = bn(features)
    assert features.dtype == torch.float16 and y.dtype == torch.float16
    expected = ZCABatchNorm(16, group_size=8, backend=backend).cuda()(features.detach().float())
    torch.testing.assert_close(y.float(), expected, rtol=2e-3, atol=2e-3)
    y.float().square().mean().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


def test_double_backward_through_an_autograd_backend() -> None:
    """With a backend differentiated by autograd (ns), the layer's own backward (centring, Gram,
    all-reduce) is differentiable too: gradient penalties work."""
    x = correlated(6, 3, (2,), dtype=torch.float64).requires_grad_()
    weight = torch.linspace(0.5, 1.5, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.linspace(-1.0, 1.0, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, weight, bias):
        return zca_batch_norm(x, None, None, weight, bias, training=True, eps=1e-2, group_size=2, backend="ns")

    assert torch.autograd.gradgradcheck(fn, (x, weight, bias))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_empty_batch_passes_through_and_keeps_running_stats(training: bool) -> None:
    layer = ZCABatchNorm(4, backend="eigh").train(training)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(0, 4, 3, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 4, 3)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 4, 3)
    # As with nn.BatchNorm*, the step counter still counts the call; the statistics stay.
    for key in ("running_mean", "running_covariance", "running_whitening"):
        torch.testing.assert_close(layer.state_dict()[key], before[key])
