"""The ``accurate`` backend meets eigh-class targets with matrix products only."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends.accurate import minimax_odd_quintic, minimax_schedule
from sqrtlayers.reference import make_covariance, make_spd, measure_errors


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
    assert len(default.steps_for(64, torch.float64)) > len(default.steps_for(64, torch.float32))


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
    steps = minimax_schedule(1e-3, 1e-12)
    sigma = torch.logspace(-3, 0, 1000, dtype=torch.float64)
    for a, b, c in steps:
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    assert float((sigma - 1).abs().max()) < 1e-12
    assert len(steps) <= 8


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="kappa must be a number >= 1, got 0.5"):
        sl.get_backend("accurate", kappa=0.5)
    with pytest.raises(ValueError, match=r"tol must be a float in \(0, 1\) or None, got 2"):
        sl.get_backend("accurate", tol=2)
