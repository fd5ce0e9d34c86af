"""Every knob of a run, written once: the dataclass fields are the defaults (the ``full``
preset), their metadata is the ``--help`` text, their types make the command-line parsers, and
the other presets are sets of overrides checked against the same fields."""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .constants import CUPY_EIGH, EAGER, MODES, OPS, PHASES, VARIANTS

__all__ = ["Shape", "CommonSettings", "StudySettings", "AppSettings", "GaussianSettings", "PRESETS", "APP_PRESETS",
           "GAUSSIAN_PRESETS", "GPU_DRY_RUN", "GAUSSIAN_GPU_DRY_RUN", "add_arguments", "from_arguments",
           "split_list"]  # fmt: skip

Shape = tuple[int, int]  # (batch, n)


def setting(default: Any, help: str, *, minimum: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with its ``--help`` text and the checks of its command-line values."""
    meta = {"help": help, "minimum": minimum, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class CommonSettings:
    """Knobs of both the study and the application benchmark."""

    device: str | None = setting(None, "cpu, cuda, cuda:1 ... (default: $DEVICE, else cuda when available)")
    backends: list[str] | None = setting(
        None, "comma-separated methods: registered names, optionally configured as name[key=value;...], "
        f"or the baselines torch.matrix_sqrth and {CUPY_EIGH} (default: all registered but aliases, "
        "plus the baselines this machine has)")  # fmt: skip
    repeats: int = setting(10, "timed calls per point; the median is reported", minimum=1)
    warmup: int = setting(3, "untimed calls before timing", minimum=0)
    max_seconds: float = setting(
        5.0, "cap on the wall time of the warm-up, and of the repeats, of one point", minimum=0)
    tf32: bool = setting(False, "allow TF32 matmuls and convolutions (default: off)")
    seed: int = setting(0, "seed of every random input")
    time_budget: float | None = setting(
        None, "seconds after which no new measurement starts; the rest is marked skipped", minimum=0)
    threads: int | None = setting(
        None, "torch CPU threads (default: torch's); fewer than cores avoids oversubscribing a busy machine", minimum=1)
    progress: bool = setting(True, "progress lines on stderr")
    out: Path = setting(Path("bench_out"), "output folder")


@dataclass
class StudySettings(CommonSettings):
    """The study: eager times over two sweeps and a list of shapes, other execution modes at
    those shapes, accuracy over condition numbers, memory. Defaults: the ``full`` preset."""

    dtype: str = setting("float32", "dtype of the inputs", choices=("float32", "float64"))
    batches: list[int] = setting([1, 4, 16, 64, 256, 1024], "batch sweep, at n = sweep-size", minimum=1)
    sweep_size: int = setting(64, "n of the batch sweep", minimum=1)
    sizes: list[int] = setting([16, 32, 64, 128, 256, 512], "matrix-size sweep, at batch = sweep-batch", minimum=1)
    sweep_batch: int = setting(16, "batch of the size sweep", minimum=1)
    shapes: list[Shape] = setting(
        [(64, 64), (256, 64), (1024, 64)], "BxN shapes timed side by side in every mode, with the error reached")
    ops: list[str] = setting(["sqrt"], "roots to time and measure memory of (accuracy does both)", choices=OPS)
    timing_kappa: float = setting(1e2, "condition number of the timing inputs", minimum=1)
    kappas: list[float] = setting([1e1, 1e2, 1e3, 1e4, 1e5, 1e6], "condition numbers of the accuracy sweep", minimum=1)
    cov_samples: list[int] = setting([16, 128], "samples of the covariance accuracy inputs (as in ZCA)", minimum=1)
    cov_eps: list[float] = setting([1e-5], "eps added to the covariance accuracy inputs", minimum=0)
    accuracy_size: int = setting(64, "n of the accuracy inputs", minimum=1)
    accuracy_batch: int = setting(8, "matrices per accuracy case", minimum=1)
    agreement: list[str] = setting(
        [], "pairs 'A vs B' of methods whose outputs and gradients are compared (at every n of --shapes)")
    modes: list[str] = setting(
        [], f"runs at --shapes in fresh processes, in order: {MODES[1]} or {MODES[2]} (every iterative "
        "method measured) or MODE:METHOD (that one; eager:METHOD keeps a method that may break the process "
        "apart)")  # fmt: skip
    mode_phases: list[str] = setting(list(PHASES), "phases timed in the other modes", choices=PHASES)
    mode_timeout: float = setting(600.0, "seconds one (method, mode) subprocess may take", minimum=0)
    compile_dynamic: bool = setting(False, "compile with a dynamic batch dimension (one compile per n and phase)")
    compile_backend: str = setting("inductor", "torch.compile backend ('eager' only checks that Dynamo traces)")
    memory: bool = setting(True, "measure the memory kept for backward")
    plots: bool = setting(True, "write PNG plots (needs matplotlib)")


@dataclass
class AppSettings(CommonSettings):
    """ResNet-18 training steps and the bare layer, as ratios against BatchNorm2d / avgpool + fc.
    Defaults: the ``full`` preset (a GPU's sizes)."""

    variants: list[str] = setting(list(VARIANTS), "what to replace", choices=VARIANTS)
    zca_batch: int = setting(128, "batch of the ZCA scenarios (CIFAR-like)", minimum=1)
    zca_image_size: int = setting(32, "image size of the ZCA scenarios", minimum=1)
    zca_group_size: int = setting(16, "ZCABatchNorm group size when every BN is replaced", minimum=1)
    head_batch: int = setting(32, "batch of the covariance-head scenario (ImageNet-like)", minimum=1)
    head_image_size: int = setting(224, "image size of the covariance-head scenario", minimum=1)
    reduced_dim: int = setting(256, "ISqrtCovHead reduced_dim", minimum=1)


@dataclass
class GaussianSettings(CommonSettings):
    """Whitening and colouring at the VGG-19 levels (one matrix per sample) and the Fréchet
    distance at the Inception size, each method as a ratio against eigh. Defaults: the ``full``
    preset (the CPU table of docs/BENCHMARKS.md)."""

    backends: list[str] | None = setting(
        None, "comma-separated registered backends (default: eigh, accurate, mpa-lya, ns)")
    baselines: list[str] = setting(
        ["scipy.linalg.sqrtm", "torch.linalg.eigvals"], "outside methods, where they apply (SciPy: both, on the "
        "CPU in float64; eigvals of S_a S_b: the Fréchet distance)", choices=("scipy.linalg.sqrtm", "torch.linalg.eigvals"))
    wct_levels: list[str] = setting(
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], "VGG-19 levels of the WCT rows",
        choices=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    wct_image_size: int = setting(256, "image size whose VGG-19 feature maps the WCT rows take", minimum=16)
    wct_batch: int = setting(4, "samples (content and style each) of the WCT rows", minimum=1)
    wct_kappa: float = setting(1e4, "condition number of the features' covariance (before the ridge)", minimum=1)
    eps: float = setting(1e-5, "ridge of the whitening and colouring, relative to the mean variance", minimum=0)
    frechet_sizes: list[int] = setting([2048], "n of the Fréchet rows (2048: Inception's pool features)", minimum=1)
    frechet_kappa: float = setting(1e3, "condition number of each Fréchet covariance", minimum=1)


_QUICK_COMMON = {"repeats": 3, "warmup": 1, "max_seconds": 1.0}

#: Study presets as overrides of the defaults. ``quick`` finishes in well under a minute on a
#: 2-core CPU. ``gpu`` is the side-by-side table of one H100/H200, sized to its 420 s budget
#: (no GPU run of it has been recorded yet).
PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": _QUICK_COMMON | {
        "batches": [1, 16], "sizes": [16, 64], "shapes": [(16, 64)], "kappas": [1e1, 1e4],
        "cov_samples": [16], "accuracy_batch": 4,
    },
    "gpu": {
        "backends": ["eigh", "mpa-lya", "accurate", CUPY_EIGH],
        "batches": [], "sizes": [], "shapes": [(256, 64), (1024, 64), (1024, 16), (32, 256), (4, 16), (1, 64)],
        "timing_kappa": 1e4, "kappas": [1e4], "cov_samples": [], "repeats": 20, "max_seconds": 1.0,
        "agreement": ["accurate[impl=triton] vs accurate[impl=torch]"],
        # The fused kernel runs only in fresh processes (a faulting kernel can leave the CUDA
        # context unusable), and its agreement with the torch path is measured last.
        "modes": ["cudagraph:mpa-lya[solver=newton]", "cudagraph:accurate", "eager:accurate[impl=triton]",
                  "cudagraph:accurate[impl=triton]", "compile:accurate"],
        "compile_dynamic": True, "mode_timeout": 200.0, "time_budget": 420.0, "memory": False, "plots": False,
    },
}  # fmt: skip

#: What ``--preset gpu`` becomes on a CPU: the same rows at small sizes, compile traced by Dynamo
#: only, so the whole path runs in CI in well under a minute (the budget only guards a stalled run).
GPU_DRY_RUN: dict[str, Any] = {
    "shapes": [(4, 16), (2, 16)], "accuracy_size": 16, "accuracy_batch": 2, "repeats": 2, "warmup": 1,
    "max_seconds": 0.5, "compile_backend": "eager", "mode_timeout": 90.0, "time_budget": 120.0,
}  # fmt: skip

APP_PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": _QUICK_COMMON | {"zca_batch": 16, "head_batch": 4, "head_image_size": 64, "reduced_dim": 64},
}


GAUSSIAN_PRESETS: dict[str, dict[str, Any]] = {
    "full": {"repeats": 3, "warmup": 1, "max_seconds": 5.0},
    "quick": _QUICK_COMMON | {"wct_levels": ["relu1_1", "relu3_1"], "wct_image_size": 64, "wct_batch": 1,
                              "frechet_sizes": [128], "max_seconds": 0.5},
    "gpu": {
        "backends": ["eigh", "accurate", "mpa-lya", "auto"], "wct_image_size": 512, "wct_batch": 8,
        "frechet_sizes": [2048], "repeats": 20, "max_seconds": 2.0, "time_budget": 420.0,
    },
}  # fmt: skip
#: What the ``gpu`` preset of the Gaussian rows becomes on a CPU: every method, two levels, small sizes.
GAUSSIAN_GPU_DRY_RUN: dict[str, Any] = {
    "wct_levels": ["relu1_1", "relu3_1"], "wct_image_size": 32, "wct_batch": 1, "frechet_sizes": [64], "repeats": 1,
    "warmup": 0, "max_seconds": 0.5,
}  # fmt: skip


def split_list(text: str) -> list[str]:
    """Split a comma-separated command-line list; commas inside brackets stay.

    Example:
        >>> split_list("eigh, accurate[impl=triton],ns[iters=(7)]")
        ['eigh', 'accurate[impl=triton]', 'ns[iters=(7)]']
    """
    return [item.strip() for item in re.split(r",(?![^\[]*\])", text) if item.strip()]


def _scalar_parser(kind: type, meta: dict[str, Any]) -> typing.Callable[[str], Any]:
    def parse(text: str) -> Any:
        if kind is tuple:  # a Shape, "256x64"
            value = tuple(int(part) for part in text.lower().split("x"))
            if len(value) != 2 or min(value) < 1:
                raise ValueError(text)
            return value
        value = kind(text)
        if meta["choices"] and value not in meta["choices"]:
            raise ValueError(text)
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ValueError(text)
        return value

    # argparse names the type in its error: "invalid int >= 1 value: '0'".
    parse.__name__ = ("BxN shape" if kind is tuple else " or ".join(meta["choices"]) if meta["choices"]
                      else kind.__name__ + (f" >= {meta['minimum']:g}" if meta["minimum"] is not None else ""))
    return parse


def _parser_for(hint: Any, meta: dict[str, Any], name: str) -> dict[str, Any]:
    """argparse keywords for a field of type ``hint``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [h for h in typing.get_args(hint) if h is not type(None)]
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is not list:
        return {"type": _scalar_parser(typing.get_origin(hint) or hint, meta)}
    (item,) = typing.get_args(hint)
    one = _scalar_parser(typing.get_origin(item) or item, meta)
    what = " or ".join(meta["choices"]) if meta["choices"] else "BxN shapes" if item == Shape else item.__name__

    def parse_list(text: str) -> list[Any]:
        try:
            return [one(part) for part in split_list(text)]
        except ValueError:
            message = f"--{name}: expected a comma-separated list of {what}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None

    return {"type": parse_list}


def add_arguments(parser: argparse.ArgumentParser, cls: type, presets: dict[str, dict[str, Any]]) -> None:
    """One ``--flag`` per field of ``cls``, plus ``--preset``; flags not given stay unset."""
    parser.add_argument("--preset", choices=sorted(presets), help="starting values (default: full)")
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        flag = f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = "" if default is None or isinstance(default, bool) else f" (full: {default})"
        parser.add_argument(f"--{flag}", dest=f.name, default=argparse.SUPPRESS, help=f.metadata["help"] + shown,
                            **_parser_for(hints[f.name], f.metadata, flag))  # fmt: skip


def from_arguments(cls: type, args: argparse.Namespace, presets: dict[str, dict[str, Any]], preset: str) -> Any:
    """``cls`` at the preset's values, overridden by the flags that were given."""
    given = {k: v for k, v in vars(args).items() if k != "preset"}
    return cls(**presets[preset] | given)


# ``modes`` entries name a mode, optionally ``:METHOD``; check the mode part at parse time too.
def mode_entry(text: str) -> tuple[str, str | None]:
    """A ``modes`` entry as (mode, method or ``None`` for every iterative method).

    Raises:
        ValueError: for an unknown mode, or ``eager`` without a method.

    Example:
        >>> mode_entry("compile:accurate"), mode_entry("cudagraph")
        (('compile', 'accurate'), ('cudagraph', None))
    """
    mode, _, method = text.partition(":")
    if mode not in MODES or (mode == EAGER and not method):
        raise ValueError(f"mode must be one of {MODES[1:]}, optionally ':METHOD', or eager:METHOD, got {text!r}")
    return mode, method or None
