"""The study: accuracy, agreement, eager timing and memory in this process, then the other
execution modes in subprocesses; every point becomes a record of one :class:`~.records.Results`."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .accuracy import accuracy_cases, measure_accuracy, measure_agreement, not_runnable
from .constants import (CUPY_EIGH, EAGER, FORWARD_BACKWARD, FORWARD_ONLY, MATRIX_SQRTH,
                        MIN_WORKER_SECONDS, OK, PHASES, REFERENCE, SKIPPED)  # fmt: skip
from .environment import configure_tf32, describe_environment, resolve_device, resolve_dtype
from .execution import ModeJob, run_isolated, run_job
from .memory import cuda_peak_bytes, saved_tensor_bytes
from .methods import BenchMethod, method_by_name, select_methods
from .records import MemoryRecord, Results, TimingRecord, attach_ratios, describe_failure
from .settings import Shape, StudySettings, mode_entry
from .timing import Deadline, Progress, build_step, timing_inputs

__all__ = ["run_study", "timing_shapes"]


def timing_shapes(s: StudySettings) -> list[Shape]:
    """Every shape timed eagerly, once: the batch sweep, the size sweep, then ``shapes``."""
    return list(dict.fromkeys([(b, s.sweep_size) for b in s.batches] + [(s.sweep_batch, n) for n in s.sizes]
                              + [tuple(x) for x in s.shapes]))  # fmt: skip


def _mode_jobs(s: StudySettings, methods: list[BenchMethod]) -> list[tuple[str, str]]:
    """(mode, method) pairs of the non-eager modes; an unknown method name fails here, at once."""
    pairs = []
    for entry in s.modes:
        mode, name = mode_entry(entry)
        if name is not None:
            method_by_name(name)
        pairs += [(mode, name)] if name else [(mode, m.name) for m in methods if m.iterative]
    return list(dict.fromkeys(pairs))


def _job(s: StudySettings, method: str, mode: str, shapes: list[Shape], phases: list[str]) -> ModeJob:
    device = str(resolve_device(s.device))
    return ModeJob(method=method, mode=mode, shapes=shapes, ops=s.ops, phases=phases, device=device,
                   dtype=s.dtype, tf32=s.tf32, warmup=s.warmup, repeats=s.repeats, max_seconds=s.max_seconds,
                   kappa=s.timing_kappa, seed=s.seed, dynamic_batch=s.compile_dynamic,
                   compile_backend=s.compile_backend, threads=torch.get_num_threads(),
                   checked=[tuple(x) for x in s.shapes])  # fmt: skip


def _notes(s: StudySettings, device: torch.device, methods: list[BenchMethod]) -> list[str]:
    sync = "CUDA events after a device synchronisation" if device.type == "cuda" else "time.perf_counter"
    notes = [
        f"Times: median of up to {s.repeats} timed calls after up to {s.warmup} warm-up calls (each capped at "
        f"{s.max_seconds:g} s of wall time), measured with {sync}; inputs have a log-spaced spectrum with "
        f"κ = {s.timing_kappa:g}. Ratios are against {REFERENCE!r} eager in the same run.",
        "Accuracy: relative Frobenius error against the float64 closed form, on the inputs as cast to "
        f"{s.dtype}; gradient of L = <root(A), G> for a seeded random symmetric G; median over the batch.",
    ]
    if s.backends is not None and REFERENCE not in s.backends:
        notes.append(f"{REFERENCE!r} was added to the chosen methods: it is the reference of the ratios.")
    notes += [f"{m.name}: {m.unavailable}" for m in methods if m.unavailable]
    if any(m.name == MATRIX_SQRTH for m in methods):
        notes.append(f"{MATRIX_SQRTH}: torch.linalg.matrix_sqrth with its own backward; inverse by torch.linalg.inv.")
    if any(m.name == CUPY_EIGH and not m.unavailable for m in methods):
        notes.append("cupy.eigh: cupy.linalg.eigh on the tensor shared through DLPack, forward only.")
    if s.memory:
        peak = ", and the CUDA allocator's peak above what was allocated before" if device.type == "cuda" else ""
        notes.append(f"Memory: bytes of the distinct storages saved for backward{peak}.")
    if s.modes:
        dynamic = "a dynamic batch" if s.compile_dynamic else "static shapes (one compile per shape and phase)"
        notes.append(f"compile: torch.compile(fullgraph=True, backend={s.compile_backend!r}), {dynamic}; "
                     "cudagraph: one capture per point, replayed; setup time is not in the times.")  # fmt: skip
    if s.time_budget is not None:
        notes.append(f"Time budget {s.time_budget:g} s: points not started within it are '{SKIPPED}'.")
    return notes


def _memory(s: StudySettings, methods: list[BenchMethod], device: torch.device, dtype: torch.dtype,
            deadline: Deadline) -> list[MemoryRecord]:  # fmt: skip
    records = []
    for batch, n in timing_shapes(s):
        A, G = timing_inputs(batch, n, s.timing_kappa, dtype, device, s.seed)
        for method in methods:
            for op in s.ops:
                r = MemoryRecord(method.name, op, batch, n)
                r.status = not_runnable(method, device) or (FORWARD_ONLY if not method.differentiable else OK)
                r.status = SKIPPED if deadline.expired() else r.status
                try:
                    if r.status == OK:
                        step = build_step(EAGER, method.root(op), A, G, FORWARD_BACKWARD)
                        r.saved_bytes, r.saved_tensors = saved_tensor_bytes(step)
                        r.cuda_peak_bytes = cuda_peak_bytes(step, device) if device.type == "cuda" else None
                except Exception as exc:
                    r.status = describe_failure(exc)
                records.append(r)
    return records


def run_study(s: StudySettings, *, checkpoint: Callable[[Results], None] | None = None) -> Results:
    """Measure everything ``s`` asks for.

    Args:
        s: the settings (a preset with overrides).
        checkpoint: called with the results so far after each part, so a run cut short still
            leaves its numbers on disk.

    Raises:
        ValueError: for an unknown method name (before anything is measured).
    """
    device, dtype = resolve_device(s.device), resolve_dtype(s.dtype)
    configure_tf32(s.tf32)
    torch.manual_seed(s.seed)
    deadline = Deadline(s.time_budget)
    methods = select_methods(s.backends, device)
    jobs = _mode_jobs(s, methods)
    meta = describe_environment(device, dtype, s.tf32) | {"config": dict(vars(s))}
    results = Results(meta=meta, notes=_notes(s, device, methods))
    save = checkpoint or (lambda _: None)
    cases = accuracy_cases(s.kappas, s.cov_samples, s.cov_eps)
    bar = Progress(len(cases) + len(methods) + len(jobs) + len(s.agreement), s.progress)
    started = time.monotonic()
    for case in cases:
        results.accuracy += measure_accuracy(methods, case, s.accuracy_size, s.accuracy_batch, dtype, device, s.seed,
                                             skip=deadline.expired())  # fmt: skip
        bar.step(f"accuracy {case.label}")
    save(results)
    for method in methods:
        results.timing += run_job(_job(s, method.name, EAGER, timing_shapes(s), list(PHASES)), deadline)
        bar.step(f"eager {method.name}")
    attach_ratios(results.timing)
    if s.memory:
        results.memory = _memory(s, methods, device, dtype, deadline)
    save(results)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the subprocesses need the memory this process cached
    for mode, name in jobs:
        job = _job(s, name, mode, [tuple(x) for x in s.shapes], s.mode_phases)
        timeout = min(s.mode_timeout, deadline.remaining())
        if timeout < MIN_WORKER_SECONDS:
            results.timing += [TimingRecord(name, mode, *key, status=SKIPPED) for key in job.keys]
        else:
            results.timing += run_isolated(job, timeout, s.out / "workers.log")
        attach_ratios(results.timing)
        save(results)
        bar.step(f"{mode} {name}")
    for pair in s.agreement:
        first, _, second = pair.partition(" vs ")
        a, b = method_by_name(first), method_by_name(second)
        for n in dict.fromkeys(n for _, n in s.shapes):
            results.agreement += measure_agreement(a, b, n, s.accuracy_batch, s.timing_kappa, dtype, device, s.seed,
                                                   skip=deadline.expired())  # fmt: skip
        bar.step(f"agreement {pair}")
    save(results)
    results.meta["wall_s"] = round(time.monotonic() - started, 1)
    return results
