"""PNG plots of a study (log axes): time against batch size, time against matrix size, and
error against condition number. matplotlib is optional: without it the plots are skipped."""

from __future__ import annotations

from pathlib import Path

from .modes import EAGER
from .records import FORWARD_BACKWARD, OK, Results

__all__ = ["write_plots"]


def _style(index: int) -> dict[str, str]:
    # matplotlib's default cycle has ten colours; later backends get a new line style instead
    # of a repeated colour.
    return {"linestyle": ("-", "--", ":")[index // 10 % 3], "marker": "os^"[index // 10 % 3]}


def _time_lines(results: Results, vary: str, fixed: str, fixed_value: int) -> dict[str, list[tuple[int, float]]]:
    """method -> [(x, ms)] of eager forward+backward sqrt timings along one sweep."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in results.timing:
        if (r.mode, r.op, r.phase, r.status) != (EAGER, "sqrt", FORWARD_BACKWARD, OK):
            continue
        if getattr(r, fixed) == fixed_value:
            lines.setdefault(r.method, []).append((getattr(r, vary), r.median_ms))
    return {m: sorted(points) for m, points in lines.items() if len(points) > 1}


def _plot_time(plt, results: Results, vary: str, fixed: str, fixed_value: int, path: Path) -> Path | None:
    lines = _time_lines(results, vary, fixed, fixed_value)
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (method, points) in enumerate(lines.items()):
        xs, ys = zip(*points)
        ax.plot(xs, ys, label=method, linewidth=2.5 if method == "eigh" else 1.5, **_style(i))
    ticks = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    label = "batch size" if vary == "batch" else "matrix size n"
    ax.set_xlabel(label)
    ax.set_ylabel("forward+backward time of A^{1/2} (ms)")
    ax.set_title(f"{results.meta.get('device')} {results.meta.get('dtype')}, {fixed} = {fixed_value}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_errors(plt, results: Results, path: Path) -> Path | None:
    spd = [r for r in results.accuracy if r.kind == "spd" and r.status == OK]
    if len({r.kappa for r in spd}) < 2:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for row, op in enumerate(("sqrt", "inv")):
        for col, (field, title) in enumerate((("forward_error", "forward"), ("gradient_error", "gradient"))):
            ax = axes[row][col]
            for i, method in enumerate(dict.fromkeys(r.method for r in spd)):
                points = sorted(
                    (r.kappa, getattr(r, field)) for r in spd
                    if r.method == method and r.op == op and getattr(r, field) is not None
                )
                if points:
                    xs, ys = zip(*points)
                    # a zero error (exact on a diagonal, say) cannot sit on a log axis
                    ax.plot(xs, [max(y, 1e-17) for y in ys], label=method, **_style(i))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{'A^{1/2}' if op == 'sqrt' else 'A^{-1/2}'}: {title} error")
            ax.grid(True, which="both", alpha=0.3)
            if row == 1:
                ax.set_xlabel("condition number κ")
    axes[0][0].set_ylabel("median relative error")
    axes[1][0].set_ylabel("median relative error")
    axes[0][1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(results: Results, out_dir: Path) -> tuple[list[Path], str | None]:
    """Write the PNGs that have data; returns ``(paths, message)``, the message saying why
    nothing was plotted when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed: plots skipped (pip install matplotlib)"
    config = results.meta.get("config", {})
    written = [
        _plot_time(plt, results, "batch", "n", config.get("sweep_size"), out_dir / "time_vs_batch.png"),
        _plot_time(plt, results, "n", "batch", config.get("sweep_batch"), out_dir / "time_vs_size.png"),
        _plot_errors(plt, results, out_dir / "error_vs_kappa.png"),
    ]
    return [p for p in written if p is not None], None
