"""``auto`` picks the fastest backend meeting its tolerance, from static information."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends.auto import MEASURED_ERRORS
from sqrtlayers.reference import make_spd, measure_errors


def test_default_on_cpu_is_eigh_and_says_so() -> None:
    auto = sl.get_backend("auto")
    A = torch.eye(64)
    assert auto.choose(A).name == "eigh"
    assert auto.explain(A).startswith("auto picks eigh for cpu torch.float32 64x64: fastest on cpu of ['accurate', 'eigh']")


def test_loose_tolerance_admits_the_paper_methods() -> None:
    auto = sl.get_backend("auto", tol=0.1, kappa=10.0)
    assert "mpa-lya" in auto.qualifying()
    assert "mpa-lya" not in sl.get_backend("auto").qualifying()


def test_unreachable_tolerance_falls_back_to_most_accurate() -> None:
    auto = sl.get_backend("auto", tol=1e-9, kappa=1e6)
    assert auto.qualifying() == []
    assert auto.choose(torch.eye(8)).name == "accurate"
    assert "most accurate; none qualifies" in auto.explain(torch.eye(8))


def test_cuda_prefers_matrix_products_and_large_matrices_prefer_eigh() -> None:
    auto = sl.get_backend("auto")
    assert auto.choose_name("cuda", 64) == "accurate"
    assert auto.choose_name("cuda", 4096) == "eigh"


def test_accurate_is_configured_with_the_promised_kappa() -> None:
    auto = sl.get_backend("auto", tol=1e-3, kappa=1e2)
    # A device type with no measurements of its own gets the GPU ordering.
    chosen = auto.choose(torch.empty(64, 64, device="meta"))
    assert chosen.name == "accurate" and chosen.kappa == 1e2


def test_measured_table_matches_the_code_for_the_chosen_default() -> None:
    """The table auto relies on is what measure_errors gives (worst of sqrt/inverse, fwd/grad)."""
    A = make_spd(64, 1e2, batch=(8,), seed=0)
    worst = max(float(e.median()) for inv in (False, True) for e in measure_errors("eigh", A, inverse=inv))
    assert worst == pytest.approx(MEASURED_ERRORS["eigh"][1], rel=0.5)


def test_result_matches_the_chosen_backend() -> None:
    auto = sl.get_backend("auto")
    A = make_spd(16, 1e2, batch=(2,), dtype=torch.float32)
    torch.testing.assert_close(auto.sqrtm(A), auto.choose(A).sqrtm(A))
