"""The rows a run produces: one dataclass per kind of measurement.

Every number of a run is one of these records; the markdown, the JSON file and the plots are
views of the same lists, so they cannot disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .constants import EAGER, OK, REFERENCE

__all__ = ["TimingRecord", "AccuracyRecord", "AgreementRecord", "MemoryRecord", "AppRecord", "Results",
           "attach_ratios", "describe_failure", "short_power"]  # fmt: skip


@dataclass
class TimingRecord:
    """Median wall time of one (method, execution mode, op, phase, batch, n) point."""

    method: str
    mode: str
    op: str  # "sqrt" or "inv"
    phase: str
    batch: int
    n: int
    median_ms: float | None = None
    min_ms: float | None = None
    repeats: int = 0
    status: str = OK
    #: median time over the ``eigh`` eager median at the same (op, phase, batch, n).
    ratio_vs_eigh: float | None = None
    #: compile / capture wall time (first call), for the non-eager modes.
    setup_s: float | None = None
    #: median relative error of this step's output (the root, or the gradient) against the
    #: float64 closed form: a capture or compile that computes garbage shows here, not as a fast time.
    check_error: float | None = None


@dataclass
class AccuracyRecord:
    """Relative Frobenius errors against the float64 closed form on one family of inputs."""

    method: str
    op: str
    case: str  # column label, e.g. "κ=1e4" or "cov s=32 ε=1e-5"
    kind: str  # "spd" (log-spaced spectrum) or "covariance" (few samples + eps)
    n: int
    batch: int
    kappa: float | None = None  # requested condition number ("spd")
    samples: int | None = None  # "covariance"
    eps: float | None = None  # "covariance"
    condition_median: float | None = None  # measured in float64 on the matrices used
    forward_error: float | None = None  # median over the batch
    forward_error_max: float | None = None
    gradient_error: float | None = None
    gradient_error_max: float | None = None
    status: str = OK


@dataclass
class AgreementRecord:
    """Largest relative difference between two methods' outputs and input gradients."""

    method: str
    against: str
    op: str
    batch: int
    n: int
    kappa: float
    forward_difference: float | None = None
    gradient_difference: float | None = None
    status: str = OK


@dataclass
class MemoryRecord:
    """Memory kept by one forward+backward."""

    method: str
    op: str
    batch: int
    n: int
    #: bytes of the distinct storages saved for backward (``saved_tensors_hooks``), the input
    #: included when an op saves it.
    saved_bytes: int | None = None
    saved_tensors: int | None = None
    #: ``torch.cuda.max_memory_allocated`` during the step minus what was allocated before.
    cuda_peak_bytes: int | None = None
    status: str = OK


@dataclass
class AppRecord:
    """One training step (ResNet-18: forward, loss, backward, SGD update), or one layer's
    forward+backward."""

    scenario: str  # "zca", "head" or "layer"
    variant: str  # what replaced what
    backend: str | None
    input: str  # shape, for the table
    median_ms: float | None = None
    min_ms: float | None = None
    repeats: int = 0
    ratio_vs_baseline: float | None = None
    status: str = OK


@dataclass
class Results:
    """Everything a run measured, plus what it ran on (``meta``) and what to know (``notes``)."""

    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: list[TimingRecord] = field(default_factory=list)
    accuracy: list[AccuracyRecord] = field(default_factory=list)
    agreement: list[AgreementRecord] = field(default_factory=list)
    memory: list[MemoryRecord] = field(default_factory=list)
    app: list[AppRecord] = field(default_factory=list)

    def write_json(self, path: Path) -> Path:
        """All numbers as strict JSON (non-finite floats become ``null``)."""
        data = {"meta": self.meta, "notes": self.notes} | {
            key: [asdict(r) for r in getattr(self, key)] for key in ("timing", "accuracy", "agreement", "memory", "app")
        }
        path.write_text(json.dumps(_json_safe(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
        return path


def attach_ratios(records: list[TimingRecord], reference: str = REFERENCE) -> None:
    """Set ``ratio_vs_eigh`` of every measured record from the ``reference`` method's eager
    median at the same (op, phase, batch, n), measured in the same run."""
    base = {
        (r.op, r.phase, r.batch, r.n): r.median_ms
        for r in records
        if r.method == reference and r.mode == EAGER and r.status == OK and r.median_ms
    }
    for r in records:
        ref = base.get((r.op, r.phase, r.batch, r.n))
        r.ratio_vs_eigh = r.median_ms / ref if ref and r.median_ms is not None else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def describe_failure(exc: BaseException, prefix: str = "failed", limit: int = 160) -> str:
    """``"failed: <Type>: <first line of the message>"``, short enough for a table cell."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{prefix}: " + (text if len(text) <= limit else text[: limit - 1] + "…")


def short_power(x: float) -> str:
    """``8e5`` for 8.2e+05, ``1e4`` for 10000.0: numbers as grids are written on the command line."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
