"""Shared pytest configuration: deterministic seeds, hypothesis profiles, CUDA skip marker.

Hypothesis profiles (select with ``HYPOTHESIS_PROFILE=thorough``):

- ``ci`` (default): few examples per property, no deadline, derandomised so CI is repeatable.
- ``thorough``: many more examples, randomised; run on demand before a release.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Whether property tests may draw large sizes (n up to 160 and beyond) in this profile.
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "thorough"


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
