"""Markdown tables and the JSON file of a run's results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .methods import REFERENCE
from .modes import EAGER
from .records import FORWARD, FORWARD_BACKWARD, OK, AppRecord, Results, TimingRecord

__all__ = ["markdown_table", "study_markdown", "app_markdown", "write_json", "write_text"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def _time_cell(r: TimingRecord | None) -> str:
    if r is None:
        return "—"
    if r.status != OK or r.median_ms is None:
        return r.status
    ratio = f" ({_ratio(r.ratio_vs_eigh)})" if r.ratio_vs_eigh is not None else ""
    return _ms(r.median_ms) + ratio


def _ratio(x: float) -> str:
    return f"{x:.2g}×" if x < 10 else f"{x:.0f}×"


def _error(x: float | None) -> str:
    return "—" if x is None else f"{x:.1e}"


def short_power(x: float) -> str:
    """``8e5`` for 8.2e+05, ``1e4`` for 10000.0: the way grids are written on the command line."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _bytes(x: int | None) -> str:
    if x is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x} B"


def _shape(batch: int, n: int) -> str:
    return f"{batch}×{n}"


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


def _time_table(
    results: Results, op: str, phase: str, shapes: list[tuple[int, int]], rows: list[tuple[str, str]]
) -> str:
    """Rows ``(method, mode)``, columns shapes; the mode column only when modes vary."""
    index = {(r.method, r.mode, r.batch, r.n): r for r in results.timing if r.op == op and r.phase == phase}
    with_mode = any(mode != EAGER for _, mode in rows)
    headers = ["method", "mode"] if with_mode else ["method"]
    body = [
        [method] + ([mode] if with_mode else []) + [_time_cell(index.get((method, mode, b, n))) for b, n in shapes]
        for method, mode in rows
    ]
    return markdown_table(headers + [_shape(b, n) for b, n in shapes], body)


def _accuracy_table(results: Results, op: str) -> str:
    records = [r for r in results.accuracy if r.op == op]
    cases = _unique(r.case for r in records)
    condition = {r.case: r.condition_median for r in records}
    headers = ["method"] + [
        c if c.startswith("κ") or condition[c] is None else f"{c} (κ≈{short_power(condition[c])})" for c in cases
    ]
    index = {(r.method, r.case): r for r in records}
    rows = []
    for method in _unique(r.method for r in records):
        cells = []
        for case in cases:
            r = index[(method, case)]
            cells.append(f"{_error(r.forward_error)} / {_error(r.gradient_error)}" if r.status == OK else r.status)
        rows.append([method] + cells)
    return markdown_table(headers, rows)


def _memory_table(results: Results, op: str) -> str:
    records = [r for r in results.memory if r.op == op]
    shapes = sorted(_unique((r.batch, r.n) for r in records), key=lambda s: (s[1], s[0]))
    index = {(r.method, r.batch, r.n): r for r in records}

    def cell(key: tuple[str, int, int]) -> str:
        r = index.get(key)
        if r is None:
            return "—"
        if r.status != OK:
            return r.status
        peak = f" / {_bytes(r.cuda_peak_bytes)}" if r.cuda_peak_bytes is not None else ""
        return _bytes(r.saved_bytes) + peak

    rows = [[m] + [cell((m, b, n)) for b, n in shapes] for m in _unique(r.method for r in records)]
    return markdown_table(["method"] + [_shape(b, n) for b, n in shapes], rows)


def _header(results: Results, title: str) -> list[str]:
    meta = results.meta
    threads = meta.get("cpu_threads")
    where = meta.get("gpu") or f"CPU, {threads} thread{'' if threads == 1 else 's'}"
    facts = [
        f"device {meta.get('device')} ({where})",
        f"torch {meta.get('torch')}" + (f" + CUDA {meta['cuda']}" if meta.get("cuda") else ""),
        str(meta.get("dtype")),
        f"TF32 {'on' if meta.get('tf32') else 'off'}",
        str(meta.get("date")),
    ]
    lines = [f"# {title}", "", " · ".join(facts), ""]
    lines += [f"- {note}" for note in results.notes]
    return lines


def study_markdown(results: Results) -> str:
    """Every table of a study, as one markdown document."""
    config = results.meta.get("config", {})
    ops = _unique(r.op for r in results.timing) or ["sqrt"]
    eager_rows = [(m, EAGER) for m in _unique(r.method for r in results.timing if r.mode == EAGER)]
    other_modes = _unique(r.mode for r in results.timing if r.mode != EAGER)
    mode_rows = _unique([(REFERENCE, EAGER)] + [
        (m, mode) for m in results.meta.get("mode_methods", []) for mode in [EAGER] + other_modes
    ])
    batch_sweep = [(b, config["sweep_size"]) for b in config.get("batches", [])]
    size_sweep = [(config["sweep_batch"], n) for n in config.get("sizes", [])]
    parts = _header(results, "sqrtlayers benchmark")
    op_name = {"sqrt": "A^{1/2}", "inv": "A^{-1/2}"}
    for op in ops:
        for phase in (FORWARD_BACKWARD, FORWARD):
            parts += [
                "",
                f"## {phase.capitalize()} time of {op_name[op]}, batch sweep (n = {config.get('sweep_size')}): ms (× eigh)",
                "",
                _time_table(results, op, phase, batch_sweep, eager_rows),
                "",
                f"## {phase.capitalize()} time of {op_name[op]}, size sweep (batch {config.get('sweep_batch')}): ms (× eigh)",
                "",
                _time_table(results, op, phase, size_sweep, eager_rows),
            ]
    if other_modes:
        shapes = [tuple(s) for s in config.get("mode_shapes", [])]
        mode_phases = [p for p in (FORWARD_BACKWARD, FORWARD) if any(r.phase == p and r.mode != EAGER for r in results.timing)]
        for op in ops:
            for phase in mode_phases:
                parts += [
                    "",
                    f"## Execution modes, {phase} time of {op_name[op]}: ms (× eigh eager)",
                    "",
                    _time_table(results, op, phase, shapes, mode_rows),
                ]
    if results.accuracy:
        n, batch = results.accuracy[0].n, results.accuracy[0].batch
        for op in ("sqrt", "inv"):
            parts += [
                "",
                f"## Accuracy of {op_name[op]}: median relative error, forward / gradient "
                f"({results.meta.get('dtype')}, n = {n}, {batch} matrices)",
                "",
                _accuracy_table(results, op),
            ]
    if results.memory:
        cuda = any(r.cuda_peak_bytes is not None for r in results.memory)
        what = "saved for backward / CUDA peak" if cuda else "saved for backward"
        for op in _unique(r.op for r in results.memory):
            parts += ["", f"## Memory of forward+backward of {op_name[op]}: {what}", "", _memory_table(results, op)]
    return "\n".join(parts) + "\n"


def app_markdown(results: Results) -> str:
    """The application-level table: training-step time of each variant against its baseline."""
    parts = _header(results, "sqrtlayers application benchmark: ResNet-18 training step")

    def row(r: AppRecord) -> list[str]:
        ok = r.status == OK and r.median_ms is not None
        return [
            r.scenario,
            r.variant,
            r.backend or "—",
            f"{r.batch}×3×{r.image_size}²",
            _ms(r.median_ms) if ok else r.status,
            _ratio(r.ratio_vs_baseline) if ok and r.ratio_vs_baseline is not None else "",
        ]

    table = markdown_table(["scenario", "variant", "backend", "input", "ms", "× baseline"], map(row, results.app))
    return "\n".join(parts + ["", table]) + "\n"


def write_json(results: Results, path: Path) -> Path:
    """All numbers, strict JSON (non-finite values as ``null``)."""
    path.write_text(json.dumps(results.to_json(), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    return path


def write_text(text: str, path: Path) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
