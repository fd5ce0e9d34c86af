"""Methods by name: registered backends, configured ones, baselines, and rows that cannot be built."""

from __future__ import annotations

import pytest
import torch

from benchmarks.methods import method_by_name, parse_spec, select_methods


def test_spec_options_are_literals_or_strings() -> None:
    assert parse_spec("mpa-lya[solver=newton;degree=(5, 5)]") == ("mpa-lya", {"solver": "newton", "degree": (5, 5)})
    assert parse_spec(" eigh ") == ("eigh", {})
    with pytest.raises(ValueError, match=r"expected key=value in 'ns\[5\]', got '5'"):
        parse_spec("ns[5]")


def test_configured_backend_is_built_with_its_options() -> None:
    method = method_by_name("ns[iters=7]")
    assert method.backend.options() == {"iters": 7} and method.iterative and method.unavailable is None
    assert not method_by_name("eigh").iterative and not method_by_name("auto").iterative


def test_option_a_backend_lacks_is_an_unavailable_row_not_an_error() -> None:
    method = method_by_name("accurate[no_such_option=1]")
    assert method.backend is None
    assert method.unavailable.startswith("unavailable: TypeError"), method.unavailable
    with pytest.raises(RuntimeError, match="unavailable: TypeError"):
        method.root("sqrt")


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'nope'; choose one of \[.*'eigh'"):
        method_by_name("nope")


def test_reference_is_added_first_and_cupy_needs_cuda() -> None:
    methods = select_methods(["ns", "cupy.eigh"], torch.device("cpu"))
    assert [m.name for m in methods] == ["eigh", "ns", "cupy.eigh"]
    cupy = methods[-1]
    assert cupy.needs_cuda and not cupy.differentiable
