"""How one benchmark step executes: eagerly, under ``torch.compile``, or replayed from a CUDA graph.

A step is a zero-argument callable that runs the forward (``FORWARD``) or the forward and the
gradient with respect to the input (``FORWARD_BACKWARD``) of one root function on fixed inputs,
and returns that output. Backward is ``torch.autograd.grad`` rather than ``.backward()`` so that
nothing accumulates in ``.grad`` between repeats (and a captured graph has a static output).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..reference import exact_sqrtm, exact_sqrtm_grad, make_spd, relative_error
from .records import FORWARD, FORWARD_BACKWARD

__all__ = [
    "EAGER",
    "COMPILE",
    "CUDAGRAPH",
    "MODES",
    "Step",
    "timing_inputs",
    "symmetric_upstream_gradient",
    "build_step",
    "step_error",
]

EAGER = "eager"
COMPILE = "compile"
CUDAGRAPH = "cudagraph"
MODES = (EAGER, COMPILE, CUDAGRAPH)

RootFn = Callable[[Tensor], Tensor]
Step = Callable[[], Tensor]


def symmetric_upstream_gradient(
    shape: torch.Size | tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int
) -> Tensor:
    """A seeded random symmetric ``G = dL/dY`` (the root is symmetric, so is its gradient in
    any real loss); drawn in float64 on the CPU so every device and dtype sees the same one."""
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(shape, generator=gen, dtype=torch.float64)
    return ((G + G.mT) / 2).to(dtype=dtype, device=device)


def timing_inputs(
    batch: int, n: int, kappa: float, dtype: torch.dtype, device: torch.device, seed: int
) -> tuple[Tensor, Tensor]:
    """``(A, G)``: a batch of SPD matrices with a log-spaced spectrum of condition ``kappa``, and
    an upstream gradient for the backward pass."""
    A = make_spd(n, kappa, batch=(batch,), dtype=dtype, device=device, seed=seed)
    return A, symmetric_upstream_gradient(A.shape, dtype, device, seed + 1)


def _prepare_input(A: Tensor, phase: str) -> Tensor:
    leaf = A.detach().clone()
    return leaf.requires_grad_() if phase == FORWARD_BACKWARD else leaf


def _phase_step(fn: RootFn, leaf: Tensor, G: Tensor, phase: str) -> Step:
    if phase == FORWARD:

        def forward() -> Tensor:
            with torch.no_grad():
                return fn(leaf)

        return forward
    if phase == FORWARD_BACKWARD:

        def forward_backward() -> Tensor:
            return torch.autograd.grad(fn(leaf), leaf, G)[0]

        return forward_backward
    raise ValueError(f"phase must be {FORWARD!r} or {FORWARD_BACKWARD!r}, got {phase!r}")


def _compiled_step(fn: RootFn, A: Tensor, G: Tensor, phase: str, dynamic_batch: bool) -> Step:
    # fullgraph: the iterative backends promise no graph breaks; a break is a finding, not a
    # silent slowdown. Static shapes unless asked, to time the kernels a fixed shape gets.
    compiled = torch.compile(fn, fullgraph=True, dynamic=None if dynamic_batch else False)
    leaf = _prepare_input(A, phase)
    if dynamic_batch:
        # One compiled graph for every batch size: a shape sweep costs one compile, not one per shape.
        torch._dynamo.maybe_mark_dynamic(leaf, 0)
    return _phase_step(compiled, leaf, G, phase)


def _cudagraph_step(fn: RootFn, A: Tensor, G: Tensor, phase: str, warmup: int) -> Step:
    # The recipe of torch.cuda.graphs: static input, warm-up on a side stream (so lazy init and
    # the allocator settle outside the capture), capture once, then replay.
    leaf = _prepare_input(A, phase)
    body = _phase_step(fn, leaf, G, phase)
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


def build_step(
    mode: str,
    fn: RootFn,
    A: Tensor,
    G: Tensor,
    phase: str,
    *,
    dynamic_batch: bool = False,
    capture_warmup: int = 3,
) -> Step:
    """A step that runs ``fn`` on (a copy of) ``A`` in ``mode``.

    Args:
        mode: ``"eager"``, ``"compile"`` (``torch.compile(fullgraph=True)``; the first call
            compiles) or ``"cudagraph"`` (warm-up and capture happen here; CUDA only).
        fn: ``A -> A^{±1/2}``.
        A: ``(B, n, n)`` input, copied so the caller's tensor is never marked or captured.
        G: upstream gradient, same shape, used by ``FORWARD_BACKWARD``.
        phase: ``FORWARD`` or ``FORWARD_BACKWARD``.
        dynamic_batch: compile with a dynamic batch dimension. Default: ``False``.
        capture_warmup: eager calls on a side stream before a capture. Default: ``3``.

    Raises:
        ValueError: unknown mode or phase; whatever compiling or capturing raises.
    """
    if mode == EAGER:
        return _phase_step(fn, _prepare_input(A, phase), G, phase)
    if mode == COMPILE:
        return _compiled_step(fn, A, G, phase, dynamic_batch)
    if mode == CUDAGRAPH:
        if A.device.type != "cuda":
            raise ValueError(f"mode 'cudagraph' needs a CUDA tensor, got device {A.device}")
        return _cudagraph_step(fn, A, G, phase, capture_warmup)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def step_error(output: Tensor, A: Tensor, G: Tensor, phase: str, inverse: bool) -> float:
    """Median relative error of a step's output against the float64 closed form (on the CPU)."""
    A64 = A.detach().double().cpu()
    if phase == FORWARD:
        exact = exact_sqrtm(A64, inverse)
    else:
        exact = exact_sqrtm_grad(A64, G.detach().double().cpu(), inverse)
    return float(relative_error(output.detach().cpu(), exact).median())
