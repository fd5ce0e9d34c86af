"""The docstring examples of the core modules run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "sqrtlayers.functional",
    "sqrtlayers.dtypes",
    "sqrtlayers.reference",
    "sqrtlayers.backends.base",
    "sqrtlayers.backends.registry",
    "sqrtlayers.backends.eigh",
    "sqrtlayers.backends.newton_schulz",
    "sqrtlayers.backends.taylor",
    "sqrtlayers.backends.pade",
    "sqrtlayers.backends.accurate",
    "sqrtlayers.backends.auto",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
