"""The docstring examples of every layer module run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["zca_batchnorm", "zca_functional", "zca_conversion", "covariance_pooling", "gram", "isqrt_cov_head", "so_vit_head"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"sqrtlayers.layers.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
