"""The opt-in validator reports asymmetry, non-finite entries and the most negative eigenvalue."""

from __future__ import annotations

import re

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.reference import make_spd


def test_accepts_spd_and_psd_and_returns_input() -> None:
    A = make_spd(5, 100.0, batch=(2,))
    assert sl.check_spd(A) is A
    psd = torch.diag(torch.tensor([0.0, 1.0]))
    assert sl.check_spd(psd) is psd


def test_rejects_semidefinite_when_asked() -> None:
    with pytest.raises(sl.NotSPDError, match="not positive definite: most negative eigenvalue 0"):
        sl.check_spd(torch.diag(torch.tensor([0.0, 1.0])), allow_semidefinite=False)


def test_reports_asymmetry_with_size_and_batch_index() -> None:
    A = torch.eye(3).repeat(2, 1, 1)
    A[1, 0, 2] = 0.5
    with pytest.raises(sl.NotSPDError, match=re.escape("not symmetric: max |A - A^T| = 0.5 (0.5 relative, rtol=1e-05) at batch index (1,)")):
        sl.check_spd(A)


def test_reports_non_finite_entries() -> None:
    A = torch.eye(3)
    A[1, 2] = float("inf")
    A[2, 1] = float("nan")
    with pytest.raises(sl.NotSPDError, match=re.escape("A has 2 non-finite entries (first at index (1, 2))")):
        sl.check_spd(A)


def test_reports_most_negative_eigenvalue_and_where() -> None:
    A = torch.stack([torch.eye(2), torch.diag(torch.tensor([-0.25, 2.0])), torch.diag(torch.tensor([-3.0, 4.0]))])
    with pytest.raises(sl.NotSPDError, match=re.escape("most negative eigenvalue -3 (matrix at batch index (2,), largest eigenvalue 4)")):
        sl.check_spd(A)


def test_is_a_value_error_and_checks_shape() -> None:
    assert issubclass(sl.NotSPDError, ValueError)
    with pytest.raises(ValueError, match="square"):
        sl.check_spd(torch.ones(2, 3))
