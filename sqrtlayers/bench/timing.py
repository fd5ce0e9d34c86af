"""Wall time of a step: warm-up, then the median of timed repeats.

On CUDA each repeat is bracketed by CUDA events after a device synchronisation, so queued work
from before cannot leak into it and the host-side sync latency does not count; on CPU, where
calls are synchronous, by ``time.perf_counter``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .environment import synchronize

__all__ = ["Timing", "time_step"]


@dataclass(frozen=True)
class Timing:
    """Summary of the timed repeats, in milliseconds."""

    median_ms: float
    min_ms: float
    repeats: int


def _time_once(step: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    begin = time.perf_counter()
    step()
    return (time.perf_counter() - begin) * 1e3


def time_step(
    step: Callable[[], object],
    device: torch.device,
    *,
    warmup: int,
    repeats: int,
    max_seconds: float = math.inf,
) -> Timing:
    """Run ``step`` ``warmup`` times untimed, then time up to ``repeats`` calls.

    Args:
        step: the work to time; its result is ignored.
        device: where ``step`` queues work (decides how to wait for it).
        warmup: untimed calls first (lazy initialisation, allocator, autotuning).
        repeats: timed calls; the median is reported.
        max_seconds: stop warming up, and stop repeating, once this much wall time went into
            either (the warm-up call and the timed call that cross it still finish). Keeps a grid
            with very slow points (eigh on a large batch) inside a time budget.
    """
    begin = time.perf_counter()
    for _ in range(warmup):
        step()
        if time.perf_counter() - begin > max_seconds:
            break
    synchronize(device)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < max(repeats, 1):
        times.append(_time_once(step, device))
        if time.perf_counter() - begin > max_seconds:
            break
    return Timing(median_ms=statistics.median(times), min_ms=min(times), repeats=len(times))
