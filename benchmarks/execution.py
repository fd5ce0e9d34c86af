"""Timed points of one method in one execution mode: in this process (eager), or in a fresh
Python process (``torch.compile``, CUDA graphs).

A failed CUDA graph capture can leave a process unusable (later ``eigh`` calls have returned
wrong values after one), and ``torch.compile`` state is global; a subprocess keeps both away
from the rest of the run. The child prints one tagged JSON line per point as soon as it has it,
so a child that crashes or runs out of time still hands back the points before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sqrtlayers.reference import relative_error

from .accuracy import exact_step, not_runnable
from .constants import (COMPILE, CUDAGRAPH, EAGER, FORWARD_BACKWARD, FORWARD_ONLY, NEEDS_CUDA, OK, SKIPPED,
                        WORKER_COMMAND)
from .environment import configure_tf32, resolve_dtype, synchronize
from .methods import BenchMethod, method_by_name
from .records import TimingRecord, describe_failure
from .timing import Deadline, build_step, time_step, timing_inputs

__all__ = ["ModeJob", "run_job", "run_isolated", "worker_main"]

_TAG = "SQRTLAYERS-BENCH-RECORD "
# The repository root, holding ``benchmarks`` and (when it is not installed) ``sqrtlayers``.
_ROOT = str(Path(__file__).resolve().parents[1])

Key = tuple[str, str, int, int]  # (op, phase, batch, n)


@dataclass
class ModeJob:
    """Everything needed to time one method in one execution mode, as JSON for a child."""

    method: str
    mode: str
    shapes: list[tuple[int, int]]  # (batch, n)
    ops: list[str]
    phases: list[str]
    device: str
    dtype: str
    tf32: bool
    warmup: int
    repeats: int
    max_seconds: float
    kappa: float
    seed: int
    dynamic_batch: bool = False
    compile_backend: str | None = None  # the setting's value, handed on by the study
    #: torch CPU threads, as in the parent (``torch.set_num_threads`` is not inherited).
    threads: int | None = None
    #: shapes whose outputs are checked against the float64 closed form (``check_error``).
    checked: list[tuple[int, int]] = field(default_factory=list)

    @property
    def keys(self) -> list[Key]:
        """(op, phase, batch, n) in the order they are measured."""
        return [(op, ph, b, n) for ph in self.phases for b, n in map(tuple, self.shapes) for op in self.ops]


def _point(job: ModeJob, method: BenchMethod, key: Key, inputs: dict[tuple, Any], deadline: Deadline) -> TimingRecord:
    """One timed point; ``inputs`` caches the inputs of each shape and their exact results."""
    op, phase, batch, n = key
    record = TimingRecord(job.method, job.mode, *key)
    device = torch.device(job.device)
    record.status = SKIPPED if deadline.expired() else not_runnable(method, device) or record.status
    if record.status == OK and phase == FORWARD_BACKWARD and not method.differentiable:
        record.status = FORWARD_ONLY
    if record.status != OK:
        return record
    try:
        if (batch, n) not in inputs:
            inputs[batch, n] = timing_inputs(batch, n, job.kappa, resolve_dtype(job.dtype), device, job.seed)
        A, G = inputs[batch, n]
        begin = time.perf_counter()
        step = build_step(job.mode, method.root(op), A, G, phase, dynamic_batch=job.dynamic_batch,
                          compile_backend=job.compile_backend, capture_warmup=max(job.warmup, 1))  # fmt: skip
        out = step()  # compiles, or checks that the first replay runs
        synchronize(device)
        record.setup_s = time.perf_counter() - begin if job.mode != EAGER else None
        record.median_ms, record.min_ms, record.repeats = time_step(
            step, device, warmup=job.warmup, repeats=job.repeats, max_seconds=job.max_seconds)
        if [batch, n] in [list(s) for s in job.checked]:
            if key not in inputs:
                inputs[key] = exact_step(A, G, phase, op == "inv")
            output = (out if job.mode == EAGER else step()).detach().cpu()
            record.check_error = float(relative_error(output, inputs[key]).median())
    except Exception as exc:  # an out-of-memory or an unsupported shape is a table entry
        record.status = describe_failure(exc)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return record


def run_job(job: ModeJob, deadline: Deadline | None = None,
            report: Callable[[TimingRecord], object] | None = None) -> list[TimingRecord]:  # fmt: skip
    """Measure every key of ``job`` here; points after ``deadline`` are skipped. ``report`` is
    called with each record as soon as it exists."""
    method, inputs, records = method_by_name(job.method), {}, []
    for key in job.keys:
        records.append(_point(job, method, key, inputs, deadline or Deadline(None)))
        if report is not None:
            report(records[-1])
    return records


def worker_main(job_json: str) -> int:
    """Child side: run the job, print each record on its own tagged line."""
    job = ModeJob(**json.loads(job_json))
    configure_tf32(job.tf32)
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    if job.mode == COMPILE:
        # Static shapes compile once per shape and phase: let all of them in (the option was
        # renamed from cache_size_limit in torch 2.6).
        config = torch._dynamo.config
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, name, max(getattr(config, name), 4 * len(job.keys)))
    run_job(job, report=lambda record: print(_TAG + json.dumps(asdict(record)), flush=True))
    return 0


def run_isolated(job: ModeJob, timeout: float, log_path: Path | None = None) -> list[TimingRecord]:
    """Parent side: run ``job`` in a fresh interpreter; one record per key, in order. Points the
    child did not report are ``"failed: <why>"`` (a timeout, a crash)."""
    if torch.device(job.device).type != "cuda" and (job.mode == CUDAGRAPH or method_by_name(job.method).needs_cuda):
        return [TimingRecord(job.method, job.mode, *key, status=NEEDS_CUDA) for key in job.keys]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    # A session of its own: on timeout the whole group goes, torch.compile's worker processes
    # too, which would otherwise hold the output pipes open and block the read.
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", WORKER_COMMAND, json.dumps(asdict(job))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=_ROOT,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        why = f"worker exited with code {proc.returncode}" if proc.returncode else "no result from worker"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        why = f"timed out after {timeout:.0f} s"
    except BaseException:  # interrupted: leave no worker running on its own
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if log_path is not None and stderr.strip():
        with open(log_path, "a") as log:
            log.write(f"==== {job.method} / {job.mode}\n{stderr}\n")
    reported = {}
    for line in stdout.splitlines():
        if line.startswith(_TAG):
            record = TimingRecord(**json.loads(line[len(_TAG):]))
            reported[(record.op, record.phase, record.batch, record.n)] = record
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = f" ({lines[-1][:160]})" if lines and "timed out" not in why else ""
    return [reported.get(key) or TimingRecord(job.method, job.mode, *key, status=f"failed: {why}{detail}")
            for key in job.keys]  # fmt: skip
