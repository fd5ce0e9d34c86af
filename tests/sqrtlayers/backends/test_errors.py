"""Bad input gets a clear error that names the problem and the value."""

from __future__ import annotations

import re

import pytest
import torch

import sqrtlayers as sl


@pytest.mark.parametrize("fn", [sl.sqrtm, sl.inv_sqrtm])
@pytest.mark.parametrize(
    ("A", "error", "message"),
    [
        (torch.ones(3), ValueError, "at least 2 dims (..., n, n), got shape (3,)"),
        (torch.ones(2, 3, 4), ValueError, "must be square in its last two dims (..., n, n), got shape (2, 3, 4)"),
        (torch.ones(2, 0, 0), ValueError, "n >= 1, got shape (2, 0, 0)"),
        (torch.ones(3, 3, dtype=torch.int64), TypeError, "got dtype torch.int64"),
        (torch.ones(3, 3, dtype=torch.bool), TypeError, "got dtype torch.bool"),
        (torch.ones(3, 3, dtype=torch.complex64), TypeError, "got dtype torch.complex64"),
        ([[1.0, 0.0], [0.0, 1.0]], TypeError, "must be a torch.Tensor, got list"),
    ],
)
def test_bad_input(fn, A, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        fn(A, backend="mpa-lya")


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'mpa_lya'; choose one of \[.*'mpa-lya'.*\]"):
        sl.sqrtm(torch.eye(2), backend="mpa_lya")


def test_backend_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="backend must be a registered name or a SqrtmBackend, got int: 3"):
        sl.sqrtm(torch.eye(2), backend=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        ("mtp", {"degree": 0}, ValueError, "degree must be an int >= 1, got 0"),
        ("ns", {"iters": -1}, ValueError, "iters must be an int >= 1, got -1"),
        ("ns", {"iters": 2.5}, TypeError, "iters must be an int >= 1, got 2.5"),
        ("mpa-lya", {"lya_iters": 0}, ValueError, "lya_iters must be an int >= 1, got 0"),
        ("mpa", {"degree": (5, 0)}, ValueError, "degree must be an int >= 1, got 0"),
        ("mpa", {"degree": 5}, ValueError, "degree must be a pair (m, n), got 5"),
        ("mpa", {"solver": "qr"}, ValueError, "solver must be one of ['lu', 'newton'], got 'qr'"),
        ("eigh", {"iters": 3}, TypeError, "iters"),
    ],
)
def test_bad_options(name: str, options: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        sl.get_backend(name, **options)


def test_non_psd_input_is_nan_not_an_error() -> None:
    """No backend raises on values (that would need a host sync): an indefinite matrix gives a
    NaN root (test_input_rules.py); ``check_spd`` is the opt-in guard that raises."""
    A = torch.diag(torch.tensor([-1.0, 4.0]))
    assert sl.sqrtm(A, backend="mpa-lya").isnan().all()
    with pytest.raises(sl.NotSPDError, match="most negative eigenvalue -1"):
        sl.check_spd(A)
