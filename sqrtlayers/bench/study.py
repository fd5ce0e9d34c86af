"""The study: accuracy, eager timing and memory in this process, then the other execution modes
in subprocesses; every point becomes a record in one :class:`~.records.Results`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .accuracy import OPS, accuracy_cases, measure_accuracy, reference_values
from .config import StudyConfig
from .environment import configure_tf32, describe_environment
from .isolation import ModeJob, run_isolated
from .memory import measure_memory
from .methods import REFERENCE, BenchMethod, method_by_name, select_methods
from .modes import CUDAGRAPH, EAGER, build_step, timing_inputs
from .progress import Progress, make_progress
from .records import (
    FORWARD_BACKWARD,
    PHASES,
    AccuracyRecord,
    MemoryRecord,
    Results,
    TimingRecord,
    attach_ratios,
    describe_failure,
)
from .timing import time_step

__all__ = ["Deadline", "run_study"]

_SKIPPED = "skipped: time budget"
# A subprocess needs this long just to import torch and start: not worth launching with less.
_MIN_WORKER_SECONDS = 10.0


class Deadline:
    """Wall-clock budget; ``None`` never expires."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        return math.inf if self._end is None else self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


def _notes(config: StudyConfig, methods: list[BenchMethod]) -> list[str]:
    names = {m.name for m in methods}
    sync = "CUDA events after a device synchronisation" if config.device.type == "cuda" else "time.perf_counter"
    notes = [
        f"Times: median of up to {config.repeats} timed calls after up to {config.warmup} warm-up "
        f"calls (each capped at {config.max_seconds:g} s of wall time), measured with {sync}; "
        f"inputs have a log-spaced spectrum with κ = {config.timing_kappa:g}. Ratios are against "
        f"{REFERENCE!r} eager in the same run.",
        "Accuracy: relative Frobenius error against the float64 closed form, on the inputs as "
        f"cast to {str(config.dtype).removeprefix('torch.')}; gradient of L = <root(A), G> for a "
        "seeded random symmetric G. Tables show the median over the batch (the JSON also has the max).",
    ]
    if config.backends is not None and REFERENCE not in config.backends:
        notes.append(f"{REFERENCE!r} was added to the chosen backends: it is the reference of the ratios.")
    if "torch.matrix_sqrth" in names:
        notes.append(
            "torch.matrix_sqrth: torch.linalg.matrix_sqrth with its own autograd backward; its "
            "inverse root is torch.linalg.inv of it."
        )
    elif config.baselines and not hasattr(torch.linalg, "matrix_sqrth"):
        notes.append(f"torch.linalg.matrix_sqrth is not in torch {torch.__version__}: baseline skipped.")
    if "cupy.eigh" in names:
        notes.append("cupy.eigh: cupy.linalg.eigh on the tensor shared through DLPack, forward only.")
    if config.memory:
        notes.append(
            "Memory: bytes of the distinct storages saved for backward "
            "(torch.autograd.graph.saved_tensors_hooks; the input counts when an op saves it)"
            + (
                ", and the CUDA allocator's peak during forward+backward above what was allocated before."
                if config.device.type == "cuda"
                else "; tracemalloc cannot see torch's CPU allocations."
            )
        )
    if CUDAGRAPH in config.modes and config.device.type != "cuda":
        notes.append("cudagraph: skipped, CUDA graphs need a CUDA device.")
    if "compile" in config.modes:
        shapes = "dynamic batch dimension" if config.compile_dynamic else "static shapes, one compile per shape and phase"
        notes.append(
            f"compile: torch.compile(fullgraph=True), {shapes}; compile time is not in the "
            "times (setup_s in the JSON)."
        )
    if config.time_budget is not None:
        notes.append(f"Time budget {config.time_budget:g} s: points not started within it are '{_SKIPPED}'.")
    return notes


def _run_accuracy(
    config: StudyConfig, methods: list[BenchMethod], bar: Progress, deadline: Deadline
) -> list[AccuracyRecord]:
    records = []
    for case in accuracy_cases(config.kappas, config.cov_samples, config.cov_eps):
        ref = reference_values(case, config.accuracy_size, config.accuracy_batch, config.dtype, config.seed)
        for method in methods:
            bar.set_description_str(f"accuracy {method.name} {case.label}")
            for op in OPS:
                if deadline.expired():
                    records.append(
                        AccuracyRecord(method.name, op, case.label, case.kind, config.accuracy_size,
                                       config.accuracy_batch, case.kappa, case.samples, case.eps, status=_SKIPPED)
                    )  # fmt: skip
                else:
                    records.append(measure_accuracy(method, case, ref, op, config.device))
            bar.update()
    return records


def _time_point(
    config: StudyConfig, method: BenchMethod, op: str, phase: str, A: torch.Tensor, G: torch.Tensor
) -> TimingRecord:
    batch, n = A.shape[0], A.shape[-1]
    record = TimingRecord(method.name, EAGER, op, phase, batch, n)
    if phase == FORWARD_BACKWARD and not method.differentiable:
        record.status = "n/a: forward only"
        return record
    try:
        step = build_step(EAGER, method.root(op), A, G, phase)
        timing = time_step(
            step, config.device, warmup=config.warmup, repeats=config.repeats, max_seconds=config.max_seconds
        )
        record.median_ms, record.min_ms, record.repeats = timing.median_ms, timing.min_ms, timing.repeats
    except Exception as exc:  # an out-of-memory or unsupported shape is a table entry
        record.status = describe_failure(exc)
        if config.device.type == "cuda":
            torch.cuda.empty_cache()
    return record


def _memory_point(config: StudyConfig, method: BenchMethod, op: str, A: torch.Tensor, G: torch.Tensor) -> MemoryRecord:
    record = MemoryRecord(method.name, op, A.shape[0], A.shape[-1])
    if not method.differentiable:
        record.status = "n/a: forward only"
        return record
    try:
        use = measure_memory(build_step(EAGER, method.root(op), A, G, FORWARD_BACKWARD), config.device)
        record.saved_bytes, record.saved_tensors, record.cuda_peak_bytes = (
            use.saved_bytes,
            use.saved_tensors,
            use.cuda_peak_bytes,
        )
    except Exception as exc:
        record.status = describe_failure(exc)
    return record


def _run_timing(
    config: StudyConfig, methods: list[BenchMethod], bar: Progress, deadline: Deadline, results: Results
) -> None:
    for batch, n in config.timing_shapes():
        A, G = timing_inputs(batch, n, config.timing_kappa, config.dtype, config.device, config.seed)
        for method in methods:
            bar.set_description_str(f"time {method.name} {batch}x{n}")
            for op in config.timing_ops:
                if deadline.expired():
                    results.timing += [TimingRecord(method.name, EAGER, op, ph, batch, n, status=_SKIPPED) for ph in PHASES]
                    continue
                results.timing += [_time_point(config, method, op, phase, A, G) for phase in PHASES]
                if config.memory:
                    results.memory.append(_memory_point(config, method, op, A, G))
            bar.update()
        del A, G


def _mode_methods(config: StudyConfig, methods: list[BenchMethod]) -> list[str]:
    if config.mode_backends is None:
        return [m.name for m in methods if m.iterative]
    for name in config.mode_backends:
        method_by_name(name)  # an unknown name fails here, not once per subprocess
    return config.mode_backends


def _run_modes(
    config: StudyConfig, names: list[str], bar: Progress, deadline: Deadline, log_dir: Path | None
) -> list[TimingRecord]:
    records = []
    for mode in (m for m in config.modes if m != EAGER):
        for name in names:
            bar.set_description_str(f"{mode} {name}")
            job = ModeJob(
                method=name,
                mode=mode,
                shapes=config.mode_shapes,
                ops=config.timing_ops,
                phases=config.mode_phases,
                device=str(config.device),
                dtype=str(config.dtype).removeprefix("torch."),
                tf32=config.tf32,
                warmup=config.warmup,
                repeats=config.repeats,
                max_seconds=config.max_seconds,
                kappa=config.timing_kappa,
                seed=config.seed,
                dynamic_batch=config.compile_dynamic,
                threads=torch.get_num_threads(),
            )
            timeout = min(config.mode_timeout, deadline.remaining())
            if mode == CUDAGRAPH and config.device.type != "cuda":
                records += [TimingRecord(name, mode, *key, status="skipped: needs CUDA") for key in job.keys]
            elif timeout < _MIN_WORKER_SECONDS:
                records += [TimingRecord(name, mode, *key, status=_SKIPPED) for key in job.keys]
            else:
                records += run_isolated(job, timeout, None if log_dir is None else log_dir / "workers.log")
            bar.update()
    return records


def run_study(
    config: StudyConfig,
    *,
    progress: bool = True,
    checkpoint: Callable[[Results], None] | None = None,
    log_dir: Path | None = None,
) -> Results:
    """Measure everything ``config`` asks for.

    Args:
        config: grids, methods and repeats.
        progress: show a progress bar on stderr. Default: ``True``.
        checkpoint: called with the results so far after each part (accuracy, eager timing,
            other modes), so a run cut short still leaves its numbers on disk.
        log_dir: where the subprocesses' stderr goes (``workers.log``). Default: nowhere.

    Raises:
        ValueError: for an unknown backend name (before anything is measured).
    """
    configure_tf32(config.tf32)
    torch.manual_seed(config.seed)
    deadline = Deadline(config.time_budget)
    methods = select_methods(config.backends, config.baselines, config.device)
    mode_names = _mode_methods(config, methods)
    results = Results(
        meta=describe_environment(config.device, config.dtype, config.tf32)
        | {"config": config.describe(), "methods": [m.name for m in methods], "mode_methods": mode_names},
        notes=_notes(config, methods),
    )
    save = checkpoint or (lambda _: None)
    n_cases = len(config.kappas) + len(config.cov_samples) * len(config.cov_eps)
    n_modes = sum(m != EAGER for m in config.modes)
    bar = make_progress(len(methods) * (n_cases + len(config.timing_shapes())) + n_modes * len(mode_names), progress)
    started = time.monotonic()
    try:
        results.accuracy = _run_accuracy(config, methods, bar, deadline)
        save(results)
        _run_timing(config, methods, bar, deadline, results)
        attach_ratios(results.timing)
        save(results)
        if n_modes:
            if config.device.type == "cuda":
                torch.cuda.empty_cache()  # the subprocesses need the memory this process cached
            results.timing += _run_modes(config, mode_names, bar, deadline, log_dir)
            attach_ratios(results.timing)
            save(results)
    finally:
        bar.close()
    results.meta["wall_s"] = round(time.monotonic() - started, 1)
    return results
