"""Compile and CUDA-graph timings, each (method, mode) in a fresh Python process.

A failed CUDA graph capture can leave the process unusable (later ``eigh`` calls returned wrong
values on the H100 of PAPER.md), and ``torch.compile`` state is global; a subprocess keeps both
away from the main study. The child prints one tagged JSON line per measured point as soon as
it has it, so a child that crashes or runs out of time still hands back the points before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .environment import configure_tf32, resolve_dtype, synchronize
from .methods import method_by_name
from .modes import COMPILE, build_step, step_error, timing_inputs
from .records import TimingRecord, describe_failure
from .timing import time_step

__all__ = ["WORKER_COMMAND", "ModeJob", "run_isolated", "worker_main"]

#: Hidden first argument of ``python -m sqrtlayers.bench`` that runs a job in this process.
WORKER_COMMAND = "_worker"

_TAG = "SQRTLAYERS-BENCH-RECORD "

# The directory holding the ``sqrtlayers`` package: the child must import the same code even
# when it is not installed (``PYTHONPATH=.`` runs from the repository root).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class ModeJob:
    """Everything a child needs to time one method in one execution mode."""

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
    #: torch CPU threads, as in the parent (``torch.set_num_threads`` is not inherited).
    threads: int | None = None
    keys: list[tuple[str, str, int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.shapes = [tuple(s) for s in self.shapes]
        #: (op, phase, batch, n) in the order the child measures them.
        self.keys = [(op, ph, b, n) for ph in self.phases for b, n in self.shapes for op in self.ops]

    def to_json(self) -> str:
        data = asdict(self)
        del data["keys"]
        return json.dumps(data)


def _measure_point(job: ModeJob, key: tuple[str, str, int, int], device: torch.device, dtype: torch.dtype) -> TimingRecord:
    op, phase, batch, n = key
    record = TimingRecord(job.method, job.mode, op, phase, batch, n)
    try:
        A, G = timing_inputs(batch, n, job.kappa, dtype, device, job.seed)
        fn = method_by_name(job.method).root(op)
        begin = time.perf_counter()
        step = build_step(job.mode, fn, A, G, phase, dynamic_batch=job.dynamic_batch)
        step()  # compiles, or checks the first replay runs
        synchronize(device)
        record.setup_s = time.perf_counter() - begin
        timing = time_step(step, device, warmup=job.warmup, repeats=job.repeats, max_seconds=job.max_seconds)
        record.median_ms, record.min_ms, record.repeats = timing.median_ms, timing.min_ms, timing.repeats
        record.check_error = step_error(step(), A, G, phase, inverse=op == "inv")
    except Exception as exc:  # recorded in the table; the next point may still work
        record.status = describe_failure(exc)
    return record


def worker_main(job_json: str) -> int:
    """Child side: run the job, print each record on its own tagged line."""
    job = ModeJob(**json.loads(job_json))
    device, dtype = torch.device(job.device), resolve_dtype(job.dtype)
    configure_tf32(job.tf32)
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    if job.mode == COMPILE:
        # Static shapes compile once per shape and phase: let all of them in (the option was
        # renamed from cache_size_limit in torch 2.6).
        config = torch._dynamo.config
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, name, max(getattr(config, name), 4 * len(job.keys)))
    for key in job.keys:
        record = _measure_point(job, key, device, dtype)
        print(_TAG + json.dumps(asdict(record)), flush=True)
    return 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def run_isolated(job: ModeJob, timeout: float, log_path: Path | None = None) -> list[TimingRecord]:
    """Parent side: run ``job`` in a fresh interpreter; one record per key of the job, in
    order. Points the child did not report are ``"failed: <why>"`` (timeout, crash)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "sqrtlayers.bench", WORKER_COMMAND, job.to_json()]
    # A session of its own: on timeout the whole group goes, including torch.compile's worker
    # processes, which would otherwise hold the output pipes open and block the read.
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
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
    detail = _last_line(stderr)
    reason = f"failed: {why}" + (f" ({detail})" if detail and "timed out" not in why else "")
    return [
        reported.get(key) or TimingRecord(job.method, job.mode, *key, status=reason) for key in job.keys
    ]
