"""Shared fixtures of the benchmark tests. Benchmarks are not tests: nothing here asserts a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_cpu_thread() -> Iterator[None]:
    # Nothing here is timed against a bound, and on a busy 2-core machine two torch threads
    # oversubscribe the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
