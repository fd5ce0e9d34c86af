"""What a study measures: the grids, the methods, the repeats, and the two presets (full, quick)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .modes import EAGER
from .records import FORWARD, FORWARD_BACKWARD

__all__ = ["StudyConfig", "FULL_GRID", "QUICK_GRID"]

Shape = tuple[int, int]  # (batch, n)

#: The full study (PAPER.md's κ sweep; batch 1..1024 at n = 64; n = 16..512 at batch 16).
FULL_GRID: dict[str, Any] = {
    "batches": [1, 4, 16, 64, 256, 1024],
    "sizes": [16, 32, 64, 128, 256, 512],
    "sweep_size": 64,
    "sweep_batch": 16,
    "kappas": [1e1, 1e2, 1e3, 1e4, 1e5, 1e6],
    "cov_samples": [16, 128],
    "cov_eps": [1e-5],
    "accuracy_size": 64,
    "accuracy_batch": 8,
    "repeats": 10,
    "warmup": 3,
    "max_seconds": 5.0,
    "mode_shapes": [(64, 64), (256, 64), (1024, 64)],
}

#: ``--quick``: a grid that finishes in well under a minute on a 2-core CPU.
QUICK_GRID: dict[str, Any] = {
    "batches": [1, 16],
    "sizes": [16, 64],
    "sweep_size": 64,
    "sweep_batch": 16,
    "kappas": [1e1, 1e4],
    "cov_samples": [16],
    "cov_eps": [1e-5],
    "accuracy_size": 64,
    "accuracy_batch": 4,
    "repeats": 3,
    "warmup": 1,
    "max_seconds": 1.0,
    "mode_shapes": [(16, 64)],
}


@dataclass
class StudyConfig:
    """All knobs of one study; the CLI fills it from a preset and the command-line overrides.

    Timing runs two sweeps: batch sizes ``batches`` at ``n = sweep_size``, and matrix sizes
    ``sizes`` at ``batch = sweep_batch`` (the full product would spend minutes on ``eigh`` of
    1024 matrices of 512 x 512 and say little more).
    """

    device: torch.device
    dtype: torch.dtype
    batches: list[int]
    sizes: list[int]
    sweep_size: int
    sweep_batch: int
    kappas: list[float]
    cov_samples: list[int]
    cov_eps: list[float]
    accuracy_size: int
    accuracy_batch: int
    repeats: int
    warmup: int
    max_seconds: float
    mode_shapes: list[Shape]
    #: registered names to measure; ``None``: all but the aliases.
    backends: list[str] | None = None
    #: add the outside baselines this machine has (torch.linalg.matrix_sqrth, CuPy eigh).
    baselines: bool = True
    #: "sqrt" and/or "inv" for timing and memory (accuracy always measures both).
    timing_ops: list[str] = field(default_factory=lambda: ["sqrt"])
    #: condition number of the timing inputs (the iterative methods' time does not depend on it).
    timing_kappa: float = 1e2
    modes: list[str] = field(default_factory=lambda: [EAGER])
    #: methods timed in the non-eager modes; ``None``: the iterative ones among those measured.
    mode_backends: list[str] | None = None
    #: phases timed in the non-eager modes, in this order (a compile per phase and shape).
    mode_phases: list[str] = field(default_factory=lambda: [FORWARD_BACKWARD, FORWARD])
    #: seconds one (method, mode) subprocess may take, compiles included.
    mode_timeout: float = 600.0
    #: compile with a dynamic batch dimension: one compile per phase instead of per shape.
    compile_dynamic: bool = False
    memory: bool = True
    tf32: bool = False
    seed: int = 0
    #: stop starting new measurements after this many seconds (the rest is "skipped").
    time_budget: float | None = None

    def batch_sweep(self) -> list[Shape]:
        return [(b, self.sweep_size) for b in self.batches]

    def size_sweep(self) -> list[Shape]:
        return [(self.sweep_batch, n) for n in self.sizes]

    def timing_shapes(self) -> list[Shape]:
        """Every shape timed eagerly, each once: both sweeps and, when other modes run, their
        shapes (so the modes table has its eager row)."""
        shapes = self.batch_sweep() + self.size_sweep()
        if any(m != EAGER for m in self.modes):
            shapes += self.mode_shapes
        return list(dict.fromkeys(shapes))

    def describe(self) -> dict[str, Any]:
        """JSON-friendly copy for the results file."""
        out = {k: v for k, v in vars(self).items()}
        out["device"] = str(self.device)
        out["dtype"] = str(self.dtype).removeprefix("torch.")
        out["max_seconds"] = self.max_seconds if math.isfinite(self.max_seconds) else None
        return out
