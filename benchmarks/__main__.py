"""Command line of the benchmarks, run from the repository root (``PYTHONPATH=.`` when
``sqrtlayers`` is not installed):

    python -m benchmarks --preset quick                     # < 1 min on a 2-core CPU
    python -m benchmarks --device cuda --out results        # the full study
    python -m benchmarks --preset gpu --out bench_out/gpu   # one H100/H200, 420 s budget (DEVICE=cpu: a dry run)
    python -m benchmarks --backends eigh,mpa-lya --batches 1,64 --sizes 64 --kappas 1e1,1e2
    python -m benchmarks --modes compile,cudagraph:accurate --shapes 64x64,256x64
    python -m benchmarks app --preset quick                 # ResNet-18 training steps, the bare ZCA layer
    python -m benchmarks gaussian --preset quick            # whitening and colouring, Fréchet distance
    python -m benchmarks zca --steps 100                    # ResNet-18, every BatchNorm whitened, per backend
    python -m benchmarks zca --curves eigh=runs/eigh ...    # the default job's curves, table and plot

Writes ``results.md`` and ``results.json`` (``app.md``, ``app.json`` for ``app``; ``gaussian.md``,
``gaussian.json`` for ``gaussian``) and the PNG plots
into ``--out`` and prints the markdown on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import torch

from .app import run_app
from .constants import WORKER_COMMAND
from .environment import resolve_device
from .execution import worker_main
from .gaussian import gaussian_markdown, run_gaussian
from .report import app_markdown, study_markdown
from .settings import (APP_PRESETS, GAUSSIAN_GPU_DRY_RUN, GAUSSIAN_PRESETS, GPU_DRY_RUN, PRESETS, AppSettings,
                       GaussianSettings, StudySettings, add_arguments, from_arguments)
from .study import run_study

__all__ = ["main", "parser"]


def parser(app: bool = False) -> argparse.ArgumentParser:
    """Arguments of the study, or of the ``app`` subcommand: one flag per settings field."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks" + (" app" if app else ""),
        description=(AppSettings if app else StudySettings).__doc__.split("\n\n")[0]
        + ("" if app else " Subcommand 'app': ResNet-18 training steps (see 'python -m benchmarks app --help')."),
    )
    add_arguments(p, AppSettings if app else StudySettings, APP_PRESETS if app else PRESETS)
    return p


def _run(argv: list[str], app: bool) -> int:
    args = parser(app).parse_args(argv)
    device = resolve_device(getattr(args, "device", None))
    preset = args.preset or ("quick" if app and device.type != "cuda" else "full")
    presets = APP_PRESETS if app else PRESETS | {"gpu": PRESETS["gpu"] | (GPU_DRY_RUN if device.type != "cuda" else {})}
    settings = from_arguments(AppSettings if app else StudySettings, args, presets, preset)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    settings.out.mkdir(parents=True, exist_ok=True)
    name, render = ("app", app_markdown) if app else ("results", study_markdown)

    def save(results) -> None:
        results.write_json(settings.out / f"{name}.json")
        (settings.out / f"{name}.md").write_text(render(results), encoding="utf-8")

    results = run_app(settings) if app else run_study(settings, checkpoint=save)
    save(results)
    print(render(results))
    written = [settings.out / f"{name}.md", settings.out / f"{name}.json"]
    if not app and settings.plots:
        from .plots import write_plots  # matplotlib is needed only here

        written += write_plots(results, settings.out)
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return 0


def _run_gaussian(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks gaussian", description=GaussianSettings.__doc__.split("\n\n")[0])
    add_arguments(p, GaussianSettings, GAUSSIAN_PRESETS)
    args = p.parse_args(argv)
    device = resolve_device(getattr(args, "device", None))
    presets = GAUSSIAN_PRESETS | {"gpu": GAUSSIAN_PRESETS["gpu"] | (GAUSSIAN_GPU_DRY_RUN if device.type != "cuda" else {})}
    settings = from_arguments(GaussianSettings, args, presets, args.preset or "full")
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    settings.out.mkdir(parents=True, exist_ok=True)
    results = run_gaussian(settings)
    results.write_json(settings.out / "gaussian.json")
    markdown = gaussian_markdown(results)
    (settings.out / "gaussian.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {settings.out / 'gaussian.md'}, {settings.out / 'gaussian.json'}", file=sys.stderr)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # `timeout` and job schedulers send SIGTERM: unwind like Ctrl-C, so running subprocesses
    # are stopped and the parts already measured stay on disk.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if argv[:1] == [WORKER_COMMAND]:
        return worker_main(argv[1])
    if argv[:1] == ["app"]:
        return _run(argv[1:], app=True)
    if argv[:1] == ["gaussian"]:
        return _run_gaussian(argv[1:])
    if argv[:1] == ["zca"]:
        from .zca_training import main as zca_main

        return zca_main(argv[1:])
    return _run(argv[1:] if argv[:1] == ["study"] else argv, app=False)


if __name__ == "__main__":
    sys.exit(main())
