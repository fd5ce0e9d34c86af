"""Clocks and steps: the one deadline, the timed loop, and how a step executes (eagerly, under
``torch.compile``, or replayed from a CUDA graph).

A step is a zero-argument callable running the forward (``FORWARD``) or the forward and the
gradient with respect to the input (``FORWARD_BACKWARD``) of one root function on fixed inputs;
it returns that output. The backward is ``torch.autograd.grad`` rather than ``.backward()`` so
nothing accumulates between repeats and a captured graph has a static output.

On CUDA each timed call is bracketed by CUDA events after a device synchronisation (queued work
from before cannot leak in; the host's sync latency does not count); on CPU, where calls are
synchronous, by ``time.perf_counter``.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import Tensor

from sqrtlayers.reference import make_spd

from .constants import COMPILE, CUDAGRAPH, EAGER, FORWARD, FORWARD_BACKWARD, MODES
from .environment import synchronize

__all__ = ["Deadline", "Progress", "time_step", "Step", "build_step", "timing_inputs",
           "symmetric_upstream_gradient"]  # fmt: skip

RootFn = Callable[[Tensor], Tensor]
Step = Callable[[], Tensor]


class Deadline:
    """A wall-clock budget; ``None`` never expires. The one time limit of the benchmarks: the
    run's budget, a subprocess's share of it, and the cap on one point's repeats."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        return math.inf if self._end is None else self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


class Progress:
    """``[done/total] what`` on stderr at most every ``interval`` seconds (a log, not a bar)."""

    def __init__(self, total: int, enabled: bool = True, interval: float = 5.0) -> None:
        self.total, self.done, self.enabled, self.interval = total, 0, enabled, interval
        self._last = -math.inf

    def step(self, what: str) -> None:
        self.done += 1
        if self.enabled and (time.monotonic() - self._last >= self.interval or self.done >= self.total):
            self._last = time.monotonic()
            print(f"[{self.done}/{self.total}] {what}", file=sys.stderr, flush=True)


def _time_once(step: Step, device: torch.device) -> float:
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    begin = time.perf_counter()
    step()
    return (time.perf_counter() - begin) * 1e3


def time_step(step: Step, device: torch.device, *, warmup: int, repeats: int,
              max_seconds: float = math.inf) -> tuple[float, float, int]:  # fmt: skip
    """Run ``step`` ``warmup`` times untimed, then time up to ``repeats`` calls (at least one);
    returns the median and the minimum in milliseconds, and the number of timed calls.

    ``max_seconds`` caps the warm-up, and then the repeats, each on its own deadline (the call
    that crosses it still finishes): a grid with very slow points stays inside a time budget.
    """
    deadline = Deadline(max_seconds)
    for _ in range(warmup):
        step()
        if deadline.expired():
            break
    synchronize(device)
    times: list[float] = []
    deadline = Deadline(max_seconds)
    while len(times) < max(repeats, 1):
        times.append(_time_once(step, device))
        if deadline.expired():
            break
    return statistics.median(times), min(times), len(times)


def symmetric_upstream_gradient(shape: torch.Size | tuple[int, ...], dtype: torch.dtype, device: torch.device,
                                seed: int) -> Tensor:  # fmt: skip
    """A seeded random symmetric ``G = dL/dY`` (the root is symmetric, so is the gradient of
    any real loss); drawn in float64 on the CPU so every device and dtype sees the same one."""
    G = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ((G + G.mT) / 2).to(dtype=dtype, device=device)


def timing_inputs(batch: int, n: int, kappa: float, dtype: torch.dtype, device: torch.device,
                  seed: int) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(A, G)``: SPD matrices with a log-spaced spectrum of condition ``kappa``, and an upstream
    gradient for the backward."""
    A = make_spd(n, kappa, batch=(batch,), dtype=dtype, device=device, seed=seed)
    return A, symmetric_upstream_gradient(A.shape, dtype, device, seed + 1)


def _phase_step(fn: RootFn, leaf: Tensor, G: Tensor, phase: str) -> Step:
    if phase == FORWARD:

        def forward() -> Tensor:
            with torch.no_grad():
                return fn(leaf)

        return forward
    if phase == FORWARD_BACKWARD:
        return lambda: torch.autograd.grad(fn(leaf), leaf, G)[0]
    raise ValueError(f"phase must be {FORWARD!r} or {FORWARD_BACKWARD!r}, got {phase!r}")


def _cudagraph_step(body: Step, warmup: int) -> Step:
    # The recipe of torch.cuda.graphs: warm up on a side stream (lazy init and the allocator
    # settle outside the capture), capture once, then replay.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = body()

    def replay() -> Tensor:
        graph.replay()
        return static_out

    return replay


def build_step(mode: str, fn: RootFn, A: Tensor, G: Tensor, phase: str, *, dynamic_batch: bool = False,
               compile_backend: str | None = None, capture_warmup: int = 0) -> Step:  # fmt: skip
    """A step running ``fn`` on a copy of ``A`` (never the caller's tensor) in ``mode``.

    Args:
        mode: ``"eager"``, ``"compile"`` (``torch.compile(fullgraph=True)``; the first call
            compiles) or ``"cudagraph"`` (warm-up and capture happen here; CUDA only).
        fn: ``A -> A^{±1/2}``.
        A: ``(B, n, n)`` input.
        G: upstream gradient, same shape, used by ``FORWARD_BACKWARD``.
        phase: ``FORWARD`` or ``FORWARD_BACKWARD``.
        dynamic_batch: compile with a dynamic batch dimension. Default: ``False``.
        compile_backend: ``torch.compile``'s backend (the ``compile_backend`` setting); needed
            by ``"compile"``.
        capture_warmup: eager calls on a side stream before a capture (the ``warmup`` setting).
            Default: ``0``.

    Raises:
        ValueError: unknown mode or phase, or a capture asked for off CUDA; whatever compiling
            or capturing raises.
    """
    leaf = A.detach().clone().requires_grad_(phase == FORWARD_BACKWARD)
    if mode == EAGER:
        return _phase_step(fn, leaf, G, phase)
    if mode == COMPILE:
        if compile_backend is None:
            raise ValueError("mode 'compile' needs compile_backend (the compile_backend setting)")
        # fullgraph: the iterative backends promise no graph breaks; a break is a finding, not a
        # silent slowdown. Static shapes unless asked, to time the kernels a fixed shape gets.
        compiled = torch.compile(fn, fullgraph=True, dynamic=None if dynamic_batch else False, backend=compile_backend)
        if dynamic_batch:  # one graph for every batch size: a shape list costs one compile per n
            torch._dynamo.maybe_mark_dynamic(leaf, 0)
        return _phase_step(compiled, leaf, G, phase)
    if mode == CUDAGRAPH:
        if A.device.type != "cuda":
            raise ValueError(f"mode 'cudagraph' needs a CUDA tensor, got device {A.device}")
        return _cudagraph_step(_phase_step(fn, leaf, G, phase), capture_warmup)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
