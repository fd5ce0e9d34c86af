"""The ``accurate`` backend meets eigh-class targets with matrix products only."""

from __future__ import annotations

import math

import pytest
import torch

import sqrtlayers as sl
from hypothesis import given
from hypothesis import strategies as st

from sqrtlayers.backends import accurate
from sqrtlayers.backends.auto import AutoBackend
from sqrtlayers.backends.bounds import declared_bound
from sqrtlayers.backends.accurate import AccurateBackend, choose_impl, coupled_minimax_sqrtm
from sqrtlayers.backends.minimax import NEWTON_SCHULZ_QUINTIC, minimax_odd_quintic, minimax_schedule
from sqrtlayers.reference import exact_sqrtm, exact_sqrtm_grad, make_covariance, make_spd, measure_errors, relative_error


class MatrixSqrthBackend(sl.SqrtmBackend):
    """``torch.linalg.matrix_sqrth`` with its own autograd, as an outside baseline."""

    name = "matrix_sqrth"

    def _compute(self, A: torch.Tensor, inverse: bool) -> torch.Tensor:
        root = torch.linalg.matrix_sqrth(A)
        return torch.linalg.inv(root) if inverse else root


def _median_errors(backend, kappa: float, inverse: bool) -> tuple[float, float]:
    fwd, grad = measure_errors(backend, make_spd(64, kappa, batch=(8,), seed=0), inverse=inverse)
    return float(fwd.median()), float(grad.median())


@pytest.mark.parametrize("kappa", [1e1, 1e2, 1e3, 1e4])
def test_sqrt_meets_absolute_targets(kappa: float) -> None:
    fwd, grad = _median_errors("accurate", kappa, inverse=False)
    assert fwd <= 1e-5 and grad <= 1e-4, (fwd, grad)


@pytest.mark.parametrize("kappa", [1e1, 1e2, 1e3, 1e4])
def test_inverse_within_target_or_twice_eigh(kappa: float) -> None:
    """The inverse root is ~kappa/2-conditioned: at 1e4 float32 eigh is above 1e-5 / 1e-4
    itself, so the bar there is 2x eigh measured on the same matrices."""
    fwd, grad = _median_errors("accurate", kappa, inverse=True)
    eigh_fwd, eigh_grad = _median_errors("eigh", kappa, inverse=True)
    assert fwd <= max(1e-5, 2 * eigh_fwd), (fwd, eigh_fwd)
    assert grad <= max(1e-4, 2 * eigh_grad), (grad, eigh_grad)


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
def test_kappa_1e6_no_worse_than_matrix_sqrth(inverse: bool) -> None:
    fwd, grad = _median_errors("accurate", 1e6, inverse)
    ref_fwd, ref_grad = _median_errors(MatrixSqrthBackend(), 1e6, inverse)
    assert fwd <= ref_fwd and grad <= ref_grad, ((fwd, grad), (ref_fwd, ref_grad))


def test_covariance_plus_eps_is_finite_and_as_accurate_as_eigh() -> None:
    A = make_covariance(64, 16, 1e-5, batch=(4,), seed=1)  # rank 15 + eps: kappa ~ 1e5
    fwd, grad = measure_errors("accurate", A)
    eigh_fwd, eigh_grad = measure_errors("eigh", A)
    assert torch.isfinite(fwd).all() and torch.isfinite(grad).all()
    assert fwd.median() <= 2 * eigh_fwd.median()
    assert grad.median() <= 2 * eigh_grad.median()


def test_smaller_kappa_promise_means_fewer_steps() -> None:
    default = sl.get_backend("accurate")
    relaxed = sl.get_backend("accurate", kappa=1e2)
    assert len(relaxed.steps_for(64, torch.float32)) < len(default.steps_for(64, torch.float32))
    assert len(default.steps_for(64, torch.float64)) >= len(default.steps_for(64, torch.float32))
    assert default.schedule_for(64, torch.float64).deviations[-1] <= torch.finfo(torch.float64).eps / 2
    assert default.schedule_for(64, torch.float32).deviations[-1] <= torch.finfo(torch.float32).eps / 2


def test_minimax_quintic_equioscillates() -> None:
    (a, b, c), q_min, q_max = minimax_odd_quintic(0.05, 1.0)
    grid = torch.linspace(0.05, 1.0, 20001, dtype=torch.float64)
    err = 1 - (a * grid + b * grid**3 + c * grid**5)
    E = float(err.abs().max())
    assert float(err[0]) == pytest.approx(E, rel=1e-6)  # the error peaks at the left end ...
    assert float(err[-1]) == pytest.approx(-E, rel=1e-6)  # ... and alternates to the right end
    assert q_min == pytest.approx(1 - E, rel=1e-9) and q_max == pytest.approx(1 + E, rel=1e-9)
    assert E < 0.9  # versus 1 - 0.05 * 15 / 8 = 0.906 for Newton-Schulz's fixed quintic


def test_schedule_converges_every_sigma_in_range() -> None:
    steps = minimax_schedule(1e-3, 1e-12).steps
    sigma = torch.logspace(-3, 0, 1000, dtype=torch.float64)
    for a, b, c in steps:
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    assert float((sigma - 1).abs().max()) < 1e-12
    assert len(steps) <= 8


@given(
    log_sigma=st.floats(min_value=-9.0, max_value=-0.31),
    log_tol=st.floats(min_value=-17.0, max_value=-2.0),
)
def test_schedule_is_robust_for_any_interval_and_tolerance(log_sigma: float, log_tol: float) -> None:
    """The float64 crash (a singular Remez system once the interval is ~eps wide) cannot recur:
    every (sigma_min, tol) gets a schedule whose recorded deviations are what the scalar map
    does (checked on the interval's ends and a log grid in float64) and end within tol."""
    sigma_min, tol = 10.0**log_sigma, 10.0**log_tol
    schedule = minimax_schedule(sigma_min, tol)
    assert schedule.deviations[-1] <= tol
    assert all(later <= earlier for earlier, later in zip(schedule.deviations, schedule.deviations[1:]))
    sigma = torch.logspace(log_sigma, 0.0, 257, dtype=torch.float64)
    for (a, b, c), deviation in zip(schedule.steps, schedule.deviations):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
        # Evaluating q in float64 rounds by a few ulps of 1; the recorded bound holds above that.
        assert float((sigma - 1).abs().max()) <= deviation * (1 + 1e-6) + 1e-15


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12, 16, 17, 31, 100, 128, 257, 5000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kappa", [1.0, 10.0, 1e4, 1e6, 1e12])
def test_every_size_dtype_and_kappa_has_a_schedule(n: int, dtype: torch.dtype, kappa: float) -> None:
    """Regression: float64 schedules at n = 3, 12, 16, 31, 100, 128 raised ZeroDivisionError."""
    backend = sl.get_backend("accurate", kappa=kappa)
    schedule = backend.schedule_for(n, dtype)
    assert schedule.deviations[-1] <= torch.finfo(dtype).eps / 2
    assert 1 <= backend.backward_steps_for(n, dtype) <= len(schedule.steps)


@pytest.mark.parametrize("n", [3, 12, 100])
def test_float64_root_at_sizes_that_used_to_crash(n: int) -> None:
    A = make_spd(n, 1e3, batch=(2,), dtype=torch.float64)
    fwd, grad = measure_errors("accurate", A, dtype=torch.float64)
    assert fwd.max() < 1e-12 and grad.max() < 1e-10, (fwd, grad)
    fwd, grad = measure_errors("accurate", A, inverse=True, dtype=torch.float64)
    assert fwd.max() < 1e-12 and grad.max() < 1e-10, (fwd, grad)


def test_narrow_interval_gives_newton_schulz_quintic() -> None:
    coeffs, q_min, q_max = minimax_odd_quintic(1 - 1e-12, 1 + 1e-12)
    assert coeffs == pytest.approx(NEWTON_SCHULZ_QUINTIC, rel=1e-6)
    assert q_min <= 1.0 <= q_max


def test_gradient_uses_the_symmetric_part_of_the_upstream_gradient() -> None:
    """Documented convention: only sym(G) reaches the input; for a symmetric parametrisation
    of A the gradient matches eigh's exactly, whatever the skew part of G."""
    X = torch.randn(2, 10, 12, dtype=torch.float64, requires_grad=True)
    G = torch.randn(2, 10, 10, dtype=torch.float64)  # not symmetric
    grads = []
    for name in ("accurate", "eigh"):
        (grad,) = torch.autograd.grad((sl.sqrtm(X @ X.mT / 12, backend=name) * G).sum(), X)
        grads.append(grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-8, atol=1e-10)
    A = make_spd(6, 10.0, dtype=torch.float64).requires_grad_()
    (grad,) = torch.autograd.grad((sl.sqrtm(A, backend="accurate") * G[0, :6, :6]).sum(), A)
    torch.testing.assert_close(grad, grad.mT)


def test_impl_auto_picks_the_fused_kernel_only_where_it_applies() -> None:
    assert choose_impl("auto", "cuda", 64, torch.float32, triton_ok=True) == "triton"
    assert choose_impl("auto", "cuda", 1, torch.float32, triton_ok=True) == "triton"
    assert choose_impl("auto", "cuda", 65, torch.float32, triton_ok=True) == "torch"
    assert choose_impl("auto", "cuda", 64, torch.float64, triton_ok=True) == "torch"
    assert choose_impl("auto", "cuda", 64, torch.float32, triton_ok=False) == "torch"
    assert choose_impl("auto", "cpu", 64, torch.float32, triton_ok=True) == "torch"
    assert choose_impl("torch", "cuda", 64, torch.float32, triton_ok=True) == "torch"
    assert choose_impl("triton", "cpu", 200, torch.float64, triton_ok=False) == "triton"
    assert sl.get_backend("accurate").resolved_impl(torch.eye(4)) == "torch"  # a CPU tensor


def test_impl_auto_runs_batched_products_under_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``torch.compile`` traces the batched products; the fused kernel would be opaque to it."""
    monkeypatch.setattr(accurate, "choose_impl", lambda *args, **kwargs: "triton")
    backend = sl.get_backend("accurate")
    assert backend.resolved_impl(torch.eye(4)) == "triton"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert backend.resolved_impl(torch.eye(4)) == "torch"
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # so that impl="triton" may be built without CUDA
    assert sl.get_backend("accurate", impl="triton").resolved_impl(torch.eye(4)) == "triton"  # asked for


def test_small_dominated_matrices_have_accurate_gradients() -> None:
    """n = 2..5 at kappa = 1e4: one eigenvalue dominates, (tr A^4)^{1/4} is a tight bound and
    the computed root can end just above 1, where the backward's quintics diverge unless it
    runs on a shrunk root. Measured worst over these 80 batches: 1.9e-4 with the shrink,
    2.6e5 without it (n = 3, seed 11)."""
    backend = AccurateBackend(impl="torch")
    worst = 0.0
    for n in (2, 3, 4, 5):
        for seed in range(20):
            A64 = make_spd(n, 1e4, batch=(4,), seed=seed)
            G = torch.randn(4, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
            A = A64.float().requires_grad_()
            backend.sqrtm(A).backward((G + G.mT).float())
            error = relative_error(A.grad.double(), exact_sqrtm_grad(A64, G + G.mT, inverse=False))
            worst = max(worst, float(error.max()))
    assert worst <= 1e-3, worst


def _bfloat16_covariance(n: int = 7, samples: int = 4) -> torch.Tensor:
    """Covariances of fewer samples than dimensions, rounded to bfloat16: singular PSD matrices
    with eigenvalues down to about -4e-4 of the largest."""
    X = torch.randn(3, n, samples, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return (X @ X.mT / samples).bfloat16()


@pytest.mark.parametrize(
    ("dtype", "inverse", "expected"),
    [
        (torch.float16, False, 2.0**-11),
        (torch.bfloat16, False, 2.0**-8),
        (torch.float16, True, 0.0),
        (torch.float32, False, 0.0),
        (torch.float64, False, 0.0),
    ],
)
def test_ridge_only_for_roots_of_coarsely_rounded_inputs(dtype: torch.dtype, inverse: bool, expected: float) -> None:
    assert AccurateBackend.ridge_for(dtype, inverse) == expected


def test_half_precision_singular_input_converges_with_the_ridge(monkeypatch: pytest.MonkeyPatch) -> None:
    A = _bfloat16_covariance()
    smallest = torch.linalg.eigvalsh(A.double())[..., 0] / torch.linalg.eigvalsh(A.double())[..., -1]
    assert (smallest < -1e-4).all(), smallest  # what the plain iteration cannot take:
    steps = AccurateBackend().steps_for(A.shape[-1], torch.float32)
    Y, _, _ = coupled_minimax_sqrtm(A.float(), steps)
    assert not torch.isfinite(Y).all()
    # auto reaches the ridge too when it picks accurate (on CUDA; made to pick it here).
    monkeypatch.setattr(AutoBackend, "choose_name", lambda self, device_type, n, **kwargs: "accurate")
    bound = declared_bound("accurate", inverse=False, dtype=torch.bfloat16, kappa=math.inf).forward
    for backend in (sl.get_backend("accurate"), AutoBackend()):
        root = backend.sqrtm(A)
        assert root.dtype == torch.bfloat16 and torch.isfinite(root).all()
        error = relative_error(root.double(), exact_sqrtm(A.double(), inverse=False))
        assert float(error.max()) <= bound, error


def test_ridge_keeps_a_zero_eigenvalue_zero() -> None:
    """The exact diagonal case: eigenvalue 0 gives root 0 (the Taylor series alone would give
    0.375 sqrt(rho))."""
    A = torch.diag(torch.tensor([1.0, 0.25, 0.0, 0.0]))
    ridge = AccurateBackend.ridge_for(torch.bfloat16, inverse=False)
    Y, _, u = coupled_minimax_sqrtm(A, AccurateBackend().steps_for(4, torch.float32), ridge=ridge)
    root = Y * u.sqrt()
    torch.testing.assert_close(root, torch.diag(torch.tensor([1.0, 0.5, 0.0, 0.0])), atol=1e-3 * ridge**0.5, rtol=1e-4)


@pytest.mark.parametrize(("dtype", "kappa"), [(torch.float16, 1e2), (torch.bfloat16, 10.0)])
def test_ridge_leaves_well_conditioned_roots_accurate(dtype: torch.dtype, kappa: float) -> None:
    """Where rounding to ``dtype`` keeps a matrix positive definite, the root with the ridge
    taken out is within float32 accuracy of the plain one (measured: 4e-6 and 5e-6; the shift
    alone is off by 3e-3 to 8e-3)."""
    A = make_spd(16, kappa, batch=(4,), seed=1).float()
    steps = AccurateBackend().steps_for(16, torch.float32)
    Y, _, u = coupled_minimax_sqrtm(A, steps)
    Y_r, _, u_r = coupled_minimax_sqrtm(A, steps, ridge=AccurateBackend.ridge_for(dtype, inverse=False))
    error = relative_error((Y_r * u_r.sqrt()).double(), (Y * u.sqrt()).double())
    assert float(error.max()) <= 2e-5, error


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="kappa must be a finite number >= 1, got 0.5"):
        sl.get_backend("accurate", kappa=0.5)
    with pytest.raises(ValueError, match="kappa must be a finite number >= 1, got inf"):
        sl.get_backend("accurate", kappa=float("inf"))
    with pytest.raises(ValueError, match=r"impl must be one of \['auto', 'torch', 'triton'\], got 'cuda'"):
        sl.get_backend("accurate", impl="cuda")
    with pytest.raises(ValueError, match=r"precision must be one of \['ieee', 'tf32x3'\], got 'tf32'"):
        sl.get_backend("accurate", precision="tf32")
    with pytest.raises(ValueError, match=r"tol must be a float in \(0, 1\) or None, got 2"):
        sl.get_backend("accurate", tol=2)
