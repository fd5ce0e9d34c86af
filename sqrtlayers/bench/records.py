"""The rows a benchmark run produces: one dataclass per kind of measurement.

Every number of a run is one of these records; the markdown tables, the JSON file and the plots
are all views of the same lists, so they can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .methods import REFERENCE

__all__ = [
    "FORWARD",
    "FORWARD_BACKWARD",
    "PHASES",
    "OK",
    "TimingRecord",
    "AccuracyRecord",
    "MemoryRecord",
    "AppRecord",
    "Results",
    "attach_ratios",
    "json_safe",
    "describe_failure",
]

FORWARD = "forward"
FORWARD_BACKWARD = "forward+backward"
PHASES = (FORWARD, FORWARD_BACKWARD)

#: ``status`` of a measurement that ran; anything else reads "failed: ...", "skipped: ..." or
#: "n/a: ..." and has no numbers.
OK = "ok"


@dataclass
class TimingRecord:
    """Median wall time of one (method, execution mode, op, phase, batch, n) point."""

    method: str
    mode: str  # "eager", "compile" or "cudagraph"
    op: str  # "sqrt" or "inv"
    phase: str  # FORWARD or FORWARD_BACKWARD
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
    #: median relative error of the mode's output against the float64 exact value: a
    #: capture or compile that runs but computes garbage shows up here, not as a fast time.
    check_error: float | None = None


@dataclass
class AccuracyRecord:
    """Relative Frobenius errors against the float64 closed form on one family of inputs."""

    method: str
    op: str  # "sqrt" or "inv"
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
class MemoryRecord:
    """Memory kept by one forward+backward."""

    method: str
    op: str
    batch: int
    n: int
    #: bytes of the distinct storages handed to autograd by ``save_for_backward`` and built-in
    #: ops (via ``torch.autograd.graph.saved_tensors_hooks``); includes the input when an op saves it.
    saved_bytes: int | None = None
    saved_tensors: int | None = None
    #: ``torch.cuda.max_memory_allocated`` during the step minus what was allocated before.
    cuda_peak_bytes: int | None = None
    status: str = OK


@dataclass
class AppRecord:
    """One ResNet-18 training step (forward, loss, backward, SGD update)."""

    scenario: str  # "zca" or "head"
    variant: str  # what replaced what
    backend: str | None
    batch: int
    image_size: int
    num_classes: int
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
    memory: list[MemoryRecord] = field(default_factory=list)
    app: list[AppRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict; non-finite floats become ``None``."""
        return json_safe(
            {
                "meta": self.meta,
                "notes": self.notes,
                "timing": [asdict(r) for r in self.timing],
                "accuracy": [asdict(r) for r in self.accuracy],
                "memory": [asdict(r) for r in self.memory],
                "app": [asdict(r) for r in self.app],
            }
        )


def attach_ratios(records: list[TimingRecord], reference: str = REFERENCE) -> None:
    """Set ``ratio_vs_eigh`` of every measured record from the ``reference`` method's eager
    median at the same (op, phase, batch, n), measured in the same run."""
    base = {
        (r.op, r.phase, r.batch, r.n): r.median_ms
        for r in records
        if r.method == reference and r.mode == "eager" and r.status == OK and r.median_ms
    }
    for r in records:
        ref = base.get((r.op, r.phase, r.batch, r.n))
        r.ratio_vs_eigh = r.median_ms / ref if ref and r.median_ms is not None else None


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf replaced by ``None`` (strict JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def describe_failure(exc: BaseException, limit: int = 160) -> str:
    """``"failed: <Type>: <first line of the message>"``, short enough for a table cell."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return "failed: " + (text if len(text) <= limit else text[: limit - 1] + "…")
