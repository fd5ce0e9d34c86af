"""PNG plots of a study (log axes): time against batch size, time against matrix size, and
error against condition number. Imported only when plots are asked for."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from .constants import EAGER, FORWARD_BACKWARD, OK, OP_LABELS, REFERENCE  # noqa: E402
from .records import Results  # noqa: E402

__all__ = ["write_plots"]


def _style(index: int) -> dict[str, str]:
    # The default cycle has ten colours; later methods get a new line style, not a repeated colour.
    return {"linestyle": ("-", "--", ":")[index // 10 % 3], "marker": "os^"[index // 10 % 3]}


def _axes(ax, xlabel: str, ylabel: str, title: str, base: float = 10) -> None:
    ax.set_xscale("log", base=base)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def _plot_time(results: Results, vary: str, fixed: str, fixed_value: int, path: Path) -> Path | None:
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in results.timing:
        wanted = (r.mode, r.op, r.phase, r.status) == (EAGER, "sqrt", FORWARD_BACKWARD, OK)
        if wanted and getattr(r, fixed) == fixed_value:
            lines.setdefault(r.method, []).append((getattr(r, vary), r.median_ms))
    lines = {m: sorted(points) for m, points in lines.items() if len(points) > 1}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (method, points) in enumerate(lines.items()):
        ax.plot(*zip(*points), label=method, linewidth=2.5 if method == REFERENCE else 1.5, **_style(i))
    _axes(ax, "batch size" if vary == "batch" else "matrix size n", "forward+backward time of A^{1/2} (ms)",
          f"{results.meta.get('device')} {results.meta.get('dtype')}, {fixed} = {fixed_value}", base=2)  # fmt: skip
    ticks = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_errors(results: Results, path: Path) -> Path | None:
    spd = [r for r in results.accuracy if r.kind == "spd" and r.status == OK]
    if len({r.kappa for r in spd}) < 2:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for row, op in enumerate(("sqrt", "inv")):
        for col, (field, title) in enumerate((("forward_error", "forward"), ("gradient_error", "gradient"))):
            ax = axes[row][col]
            for i, method in enumerate(dict.fromkeys(r.method for r in spd)):
                points = sorted((r.kappa, getattr(r, field)) for r in spd
                                if r.method == method and r.op == op and getattr(r, field) is not None)  # fmt: skip
                if points:  # a zero error (exact on a diagonal) cannot sit on a log axis
                    ax.plot([x for x, _ in points], [max(y, 1e-17) for _, y in points], label=method, **_style(i))
            _axes(ax, "condition number κ" if row else "", "median relative error" if not col else "",
                  f"{OP_LABELS[op]}: {title} error")  # fmt: skip
    axes[0][1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(results: Results, out_dir: Path) -> list[Path]:
    """Write the PNGs that have data; returns their paths."""
    config = results.meta.get("config", {})
    written = [
        _plot_time(results, "batch", "n", config.get("sweep_size"), out_dir / "time_vs_batch.png"),
        _plot_time(results, "n", "batch", config.get("sweep_batch"), out_dir / "time_vs_size.png"),
        _plot_errors(results, out_dir / "error_vs_kappa.png"),
    ]
    return [p for p in written if p is not None]
