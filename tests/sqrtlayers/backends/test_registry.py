"""The registry: names, configured objects, user extension."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends.polynomial import binomial_series, pade_coefficients

REQUIRED = {"eigh", "svd", "ns", "ns-lya", "mtp", "mtp-lya", "mpa", "mpa-lya"}


def test_required_names_are_registered_and_sorted() -> None:
    names = sl.list_backends()
    assert REQUIRED <= set(names)
    assert names == sorted(names)


def test_paper_defaults() -> None:
    assert sl.get_backend("ns").options() == {"iters": 5}
    assert sl.get_backend("ns-lya").options() == {"iters": 5, "lya_iters": 8}
    assert sl.get_backend("mtp").options() == {"degree": 10}
    assert sl.get_backend("mtp-lya").options() == {"degree": 10, "lya_iters": 8}
    assert sl.get_backend("mpa").options() == {"degree": (5, 5)}
    assert sl.get_backend("mpa-lya").options() == {"degree": (5, 5), "lya_iters": 8}


def test_configured_backend_repr_and_equality() -> None:
    b = sl.get_backend("mpa-lya", degree=(3, 3), lya_iters=12)
    assert repr(b) == "PadeBackend(name='mpa-lya', degree=(3, 3), lya_iters=12)"
    assert b == sl.get_backend("mpa-lya", degree=(3, 3), lya_iters=12)
    assert b != sl.get_backend("mpa-lya")


def test_register_use_and_duplicate() -> None:
    sl.register_backend("test-ns-30", lambda: sl.get_backend("ns", iters=30))
    try:
        assert "test-ns-30" in sl.list_backends()
        A = torch.diag(torch.tensor([1.0, 4.0, 9.0]))
        torch.testing.assert_close(sl.sqrtm(A, backend="test-ns-30"), torch.diag(torch.tensor([1.0, 2.0, 3.0])), rtol=1e-4, atol=1e-4)
        with pytest.raises(ValueError, match="a backend named 'test-ns-30' is already registered"):
            sl.register_backend("test-ns-30", lambda: sl.get_backend("ns"))
    finally:
        sl.unregister_backend("test-ns-30")
    assert "test-ns-30" not in sl.list_backends()


def test_register_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        sl.register_backend("", lambda: sl.get_backend("eigh"))
    with pytest.raises(TypeError, match="factory must be callable, got int"):
        sl.register_backend("x", 3)  # type: ignore[arg-type]


def test_pade_coefficients_match_the_paper() -> None:
    p, q = pade_coefficients(Fraction(1, 2), 5, 5)
    assert p == (1, Fraction(-11, 4), Fraction(11, 4), Fraction(-77, 64), Fraction(55, 256), Fraction(-11, 1024))
    assert q == (1, Fraction(-9, 4), Fraction(7, 4), Fraction(-35, 64), Fraction(15, 256), Fraction(-1, 1024))


def test_taylor_coefficients() -> None:
    assert binomial_series(Fraction(1, 2), 3) == (1, Fraction(-1, 2), Fraction(-1, 8), Fraction(-1, 16))
    assert binomial_series(Fraction(-1, 2), 3) == (1, Fraction(1, 2), Fraction(3, 8), Fraction(5, 16))


def test_pade_newton_solver_matches_lu() -> None:
    A = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))[0]
    A = (A * torch.logspace(0, -2, 16, dtype=torch.float64)) @ A.mT
    for fn in (sl.sqrtm, sl.inv_sqrtm):
        lu = fn(A, backend="mpa")
        newton = fn(A, backend=sl.get_backend("mpa", solver="newton"))
        torch.testing.assert_close(newton, lu, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sl.list_backends())
def test_unknown_option_is_named_with_the_accepted_ones(name: str) -> None:
    """Every registered backend: the bad option and the accepted ones (from the signature)."""
    with pytest.raises(TypeError, match=rf"backend '{name}' got unexpected option\(s\) bogus=1; it (accepts \[.*\]|takes no options)"):
        sl.get_backend(name, bogus=1)


def test_unknown_option_message_lists_the_signature() -> None:
    with pytest.raises(TypeError) as info:
        sl.get_backend("mpa-lya", bogus=1)
    assert str(info.value) == "backend 'mpa-lya' got unexpected option(s) bogus=1; it accepts ['degree', 'lya_iters', 'solver']"


def test_factory_taking_any_options_is_not_second_guessed() -> None:
    sl.register_backend("test-kwargs", lambda **kw: sl.get_backend("ns", **kw))
    try:
        assert sl.get_backend("test-kwargs", iters=7).options() == {"iters": 7}
        with pytest.raises(TypeError, match="backend 'ns' got unexpected option"):
            sl.get_backend("test-kwargs", bogus=1)
    finally:
        sl.unregister_backend("test-kwargs")
