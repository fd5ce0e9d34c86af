"""Command line: ``python -m sqrtlayers.bench`` (or ``sqrtlayers-bench``).

    python -m sqrtlayers.bench --quick                      # < 1 min on a 2-core CPU
    python -m sqrtlayers.bench --device cuda --out results  # the full study
    python -m sqrtlayers.bench --backends eigh,mpa-lya --batches 1,64,256 --sizes 64 --kappas 1e1,1e2
    python -m sqrtlayers.bench --modes eager,compile,cudagraph --mode-shapes 64x64,256x64
    python -m sqrtlayers.bench app --quick                  # ResNet-18 training-step ratios

Writes ``results.md``, ``results.json`` and PNG plots (``app.md``, ``app.json`` for ``app``)
into ``--out`` and prints the markdown on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from .app import VARIANTS, AppConfig, AppScenario, run_app
from .config import FULL_GRID, QUICK_GRID, StudyConfig
from .environment import resolve_device, resolve_dtype
from .isolation import WORKER_COMMAND, worker_main
from .methods import default_backend_names
from .modes import EAGER, MODES
from .plots import write_plots
from .records import FORWARD, FORWARD_BACKWARD, PHASES, Results
from .report import app_markdown, study_markdown, write_json, write_text
from .study import run_study

__all__ = ["main", "study_parser", "app_parser"]

T = TypeVar("T")


def _list_of(convert: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    def parse(text: str) -> list[T]:
        try:
            items = [convert(item.strip()) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}") from None
        if not items:
            raise argparse.ArgumentTypeError(f"expected at least one {what}, got {text!r}")
        return items

    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _shape(text: str) -> tuple[int, int]:
    """``"256x64"`` -> ``(256, 64)``: batch x matrix size."""
    batch, n = text.lower().split("x")
    return _positive_int(batch), _positive_int(n)


def _kappa(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise ValueError(text)
    return value


def _mode(text: str) -> str:
    if text not in MODES:
        raise ValueError(text)
    return text


def _phase(text: str) -> str:
    if text not in PHASES:
        raise ValueError(text)
    return text


def _op(text: str) -> str:
    if text not in ("sqrt", "inv"):
        raise ValueError(text)
    return text


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small grid and few repeats (under a minute on CPU)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--backends", type=_list_of(str, "backend names"), default=None,
                        help="comma-separated registered backends (default: all but the alias 'svd')")
    parser.add_argument("--repeats", type=_positive_int, default=None,
                        help="timed calls per point; the median is reported")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls before timing")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="cap on the wall time of the warm-up, and of the repeats, of one point")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls/convolutions (default: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="start no new measurement after this long; the rest is marked skipped")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="torch CPU threads (default: torch's); fewer than cores avoids oversubscription on a busy machine")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def study_parser() -> argparse.ArgumentParser:
    """Arguments of the study (the default subcommand)."""
    parser = argparse.ArgumentParser(
        prog="python -m sqrtlayers.bench",
        description="Time, accuracy and memory of every square-root backend (subcommand 'app': "
        "ResNet-18 training-step ratios; see 'python -m sqrtlayers.bench app --help').",
    )
    _common_arguments(parser)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (default: bench_out)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="leave out torch.linalg.matrix_sqrth and CuPy eigh")
    parser.add_argument("--batches", type=_list_of(_positive_int, "ints"), default=None,
                        help="batch sweep (at n = --sweep-size)")
    parser.add_argument("--sizes", type=_list_of(_positive_int, "ints"), default=None,
                        help="matrix-size sweep (at batch = --sweep-batch)")
    parser.add_argument("--sweep-size", type=_positive_int, default=None, help="n of the batch sweep (default 64)")
    parser.add_argument("--sweep-batch", type=_positive_int, default=None, help="batch of the size sweep (default 16)")
    parser.add_argument("--ops", type=_list_of(_op, "of sqrt, inv"), default=["sqrt"],
                        help="roots to time and measure memory of (accuracy always does both)")
    parser.add_argument("--kappas", type=_list_of(_kappa, "numbers >= 1"), default=None,
                        help="condition numbers of the accuracy sweep, e.g. 1e1,1e4")
    parser.add_argument("--cov-samples", type=_list_of(_positive_int, "ints"), default=None,
                        help="samples of the covariance inputs (few samples + eps, as in ZCA)")
    parser.add_argument("--cov-eps", type=_list_of(float, "numbers"), default=None,
                        help="eps added to the covariance inputs")
    parser.add_argument("--accuracy-size", type=_positive_int, default=None, help="n of the accuracy inputs (64)")
    parser.add_argument("--accuracy-batch", type=_positive_int, default=None, help="matrices per accuracy case")
    parser.add_argument("--modes", type=_list_of(_mode, f"of {', '.join(MODES)}"), default=[EAGER],
                        help="execution modes; compile and cudagraph run each backend in a fresh subprocess")
    parser.add_argument("--mode-backends", type=_list_of(str, "backend names"), default=None,
                        help="backends for compile/cudagraph (default: the iterative ones)")
    parser.add_argument("--mode-shapes", type=_list_of(_shape, "BxN shapes"), default=None,
                        help="shapes for compile/cudagraph, e.g. 64x64,256x64,1024x64")
    parser.add_argument("--mode-phases", type=_list_of(_phase, f"of {', '.join(PHASES)}"),
                        default=[FORWARD_BACKWARD, FORWARD],
                        help="phases timed in compile/cudagraph, in order (each compiles separately)")
    parser.add_argument("--mode-timeout", type=float, default=600.0,
                        help="seconds one (backend, mode) subprocess may take (default 600)")
    parser.add_argument("--compile-dynamic", action="store_true",
                        help="compile with a dynamic batch dimension (one compile per phase, not per shape)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return parser


def _preset(args: argparse.Namespace, key: str) -> Any:
    given = getattr(args, key, None)
    if given is not None:
        return given
    return (QUICK_GRID if args.quick else FULL_GRID)[key]


def study_config(args: argparse.Namespace) -> StudyConfig:
    """The study's configuration from parsed arguments: the preset, overridden where given."""
    return StudyConfig(
        device=resolve_device(args.device),
        dtype=resolve_dtype(args.dtype),
        backends=args.backends,
        baselines=not args.no_baselines,
        timing_ops=args.ops,
        modes=list(dict.fromkeys([EAGER] + args.modes)),
        mode_backends=args.mode_backends,
        mode_phases=args.mode_phases,
        mode_timeout=args.mode_timeout,
        compile_dynamic=args.compile_dynamic,
        memory=not args.no_memory,
        tf32=args.tf32,
        seed=args.seed,
        time_budget=args.time_budget,
        **{key: _preset(args, key) for key in FULL_GRID},
    )


def _apply_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def _run_study_command(argv: list[str]) -> int:
    args = study_parser().parse_args(argv)
    _apply_threads(args)
    config = study_config(args)
    args.out.mkdir(parents=True, exist_ok=True)

    def checkpoint(results: Results) -> None:
        write_json(results, args.out / "results.json")
        write_text(study_markdown(results), args.out / "results.md")

    results = run_study(config, progress=not args.no_progress, checkpoint=checkpoint, log_dir=args.out)
    checkpoint(results)
    markdown = study_markdown(results)
    print(markdown)
    written = [args.out / "results.md", args.out / "results.json"]
    if not args.no_plots:
        plots, message = write_plots(results, args.out)
        written += plots
        if message:
            print(message, file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def app_parser() -> argparse.ArgumentParser:
    """Arguments of the ``app`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m sqrtlayers.bench app",
        description="ResNet-18 training step with ZCABatchNorm / ISqrtCovHead, as a ratio against "
        "BatchNorm2d / average pooling.",
    )
    _common_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (default: bench_out)")
    parser.add_argument("--variants", type=_list_of(str, "variants"), default=list(VARIANTS),
                        help=f"any of {', '.join(VARIANTS)}")
    parser.add_argument("--zca-batch", type=_positive_int, default=None)
    parser.add_argument("--zca-image-size", type=_positive_int, default=None)
    parser.add_argument("--head-batch", type=_positive_int, default=None)
    parser.add_argument("--head-image-size", type=_positive_int, default=None)
    parser.add_argument("--reduced-dim", type=_positive_int, default=None, help="ISqrtCovHead reduced_dim (256)")
    return parser


def app_config(args: argparse.Namespace) -> AppConfig:
    """The application benchmark's configuration: full-size inputs on a GPU, small ones on a
    CPU or with ``--quick``, overridden where given."""
    device = resolve_device(args.device)
    small = args.quick or device.type != "cuda"
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    def pick(given: Any, full: Any, reduced: Any) -> Any:
        return given if given is not None else (reduced if small else full)

    return AppConfig(
        device=device,
        backends=args.backends or default_backend_names(),
        zca=AppScenario("zca", pick(args.zca_batch, 128, 16), pick(args.zca_image_size, 32, 32), 10),
        head=AppScenario("head", pick(args.head_batch, 32, 4), pick(args.head_image_size, 224, 64), 1000),
        reduced_dim=pick(args.reduced_dim, 256, 64),
        variants=args.variants,
        repeats=pick(args.repeats, 10, 3),
        warmup=pick(args.warmup, 3, 1),
        max_seconds=pick(args.max_seconds, 5.0, 2.0),
        tf32=args.tf32,
        seed=args.seed,
        time_budget=args.time_budget,
    )


def _run_app_command(argv: list[str]) -> int:
    args = app_parser().parse_args(argv)
    _apply_threads(args)
    config = app_config(args)
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_app(config, progress=not args.no_progress)
    markdown = app_markdown(results)
    write_text(markdown, args.out / "app.md")
    write_json(results, args.out / "app.json")
    print(markdown)
    print(f"wrote {args.out / 'app.md'}, {args.out / 'app.json'}", file=sys.stderr)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # `timeout` and job schedulers send SIGTERM: unwind like Ctrl-C, so running subprocesses
    # are stopped and the parts already measured stay on disk.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sqrtlayers.bench`` and the ``sqrtlayers-bench`` script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if argv[:1] == ["app"]:
        return _run_app_command(argv[1:])
    if argv[:1] == [WORKER_COMMAND]:
        return worker_main(argv[1])
    if argv[:1] == ["study"]:
        argv = argv[1:]
    return _run_study_command(argv)


if __name__ == "__main__":
    sys.exit(main())
