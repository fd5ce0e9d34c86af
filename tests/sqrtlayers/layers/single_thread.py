"""A fixture for tests made of many tiny kernels (small layers, small matrices): on them a second
CPU thread only adds scheduling overhead, which on a busy 2-core CI machine grows to seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
