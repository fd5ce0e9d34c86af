"""Markdown views of a run's records (formatting only: nothing here measures)."""

from __future__ import annotations

from collections.abc import Iterable

from .constants import EAGER, FORWARD, FORWARD_BACKWARD, MODES, OK, OP_LABELS, OPS, PHASES
from .records import AppRecord, Results, TimingRecord, short_power

__all__ = ["markdown_table", "study_markdown", "app_markdown"]


def markdown_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])


def _ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def _ratio(x: float) -> str:
    return f"{x:.2g}×" if x < 10 else f"{x:.0f}×"


def _error(x: float | None) -> str:
    return "—" if x is None else f"{x:.1e}"


def _time_cell(r: TimingRecord | None) -> str:
    if r is None:
        return "—"
    if r.status != OK or r.median_ms is None:
        return r.status
    return _ms(r.median_ms) + (f" ({_ratio(r.ratio_vs_eigh)})" if r.ratio_vs_eigh is not None else "")


def _bytes(x: int | None) -> str:
    if x is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x} B"


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


def _sweep_table(results: Results, op: str, phase: str, shapes: list[tuple[int, int]]) -> str:
    """Eager times: rows methods, columns shapes."""
    index = {(r.method, r.batch, r.n): r for r in results.timing if (r.op, r.phase, r.mode) == (op, phase, EAGER)}
    methods = _unique(r.method for r in results.timing if r.mode == EAGER)
    body = [[m] + [_time_cell(index.get((m, b, n))) for b, n in shapes] for m in methods]
    return markdown_table(["method"] + [f"{b}×{n}" for b, n in shapes], body)


def _side_by_side_table(results: Results, shapes: list[tuple[int, int]]) -> str:
    """Every method and mode at each shape: time of both phases, and the error each step reached."""
    index = {(r.method, r.mode, r.op, r.phase, r.batch, r.n): r for r in results.timing}
    rows = _unique((r.method, r.mode, r.op) for r in results.timing)
    # Each method's modes together, configured variants ("accurate[impl=triton]") after their base.
    bases, specs = _unique(m.split("[")[0] for m, _, _ in rows), _unique(m for m, _, _ in rows)
    rows.sort(key=lambda r: (bases.index(r[0].split("[")[0]), specs.index(r[0]), MODES.index(r[1])))
    # With the "eager" compile backend Dynamo only traces: its times are not of compiled code.
    traced_only = results.meta.get("config", {}).get("compile_backend") == "eager"
    body = []
    for b, n in shapes:
        for method, mode, op in rows:
            found = [index.get((method, mode, op, ph, b, n)) for ph in (FORWARD, FORWARD_BACKWARD)]
            if any(found):
                errors = [_error(r.check_error) if r else "—" for r in found]
                label = "compile (eager: traced, not compiled)" if traced_only and mode == "compile" else mode
                body.append([f"{b}×{n}", method, label, OP_LABELS[op]] + [_time_cell(r) for r in found] + errors)
    return markdown_table(["batch×n", "method", "mode", "root", "forward ms (× eigh)", "forward+backward ms (× eigh)",
                           "forward error", "gradient error"], body)  # fmt: skip


def _accuracy_table(results: Results, op: str) -> str:
    records = [r for r in results.accuracy if r.op == op]
    cases = _unique(r.case for r in records)
    condition = {r.case: r.condition_median for r in records}
    headers = ["method"] + [c if c.startswith("κ") else f"{c} (κ≈{short_power(condition[c])})" for c in cases]
    index = {(r.method, r.case): r for r in records}

    def cell(r) -> str:
        return f"{_error(r.forward_error)} / {_error(r.gradient_error)}" if r.status == OK else r.status

    methods = _unique(r.method for r in records)
    return markdown_table(headers, [[m] + [cell(index[(m, c)]) for c in cases] for m in methods])


def _agreement_table(results: Results) -> str:
    body = [[f"{r.method} vs {r.against}", OP_LABELS[r.op], f"{r.batch}×{r.n}", short_power(r.kappa)]
            + ([_error(r.forward_difference), _error(r.gradient_difference)] if r.status == OK else [r.status, ""])
            for r in results.agreement]  # fmt: skip
    return markdown_table(["methods", "root", "batch×n", "κ", "forward difference", "gradient difference"], body)


def _memory_table(results: Results, op: str) -> str:
    records = [r for r in results.memory if r.op == op]
    shapes = sorted(_unique((r.batch, r.n) for r in records), key=lambda s: (s[1], s[0]))
    index = {(r.method, r.batch, r.n): r for r in records}

    def cell(r) -> str:
        if r.status != OK:
            return r.status
        return _bytes(r.saved_bytes) + (f" / {_bytes(r.cuda_peak_bytes)}" if r.cuda_peak_bytes is not None else "")

    rows = [[m] + [cell(index[(m, b, n)]) for b, n in shapes] for m in _unique(r.method for r in records)]
    return markdown_table(["method"] + [f"{b}×{n}" for b, n in shapes], rows)


def _header(results: Results, title: str) -> list[str]:
    meta = results.meta
    threads = meta.get("cpu_threads")
    where = meta.get("gpu") or f"CPU, {threads} thread{'' if threads == 1 else 's'}"
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items() if v)
    facts = [f"device {meta.get('device')} ({where})",
             f"torch {meta.get('torch')}" + (f" + CUDA {meta['cuda']}" if meta.get("cuda") else ""),
             versions, str(meta.get("dtype")), f"TF32 {'on' if meta.get('tf32') else 'off'}", str(meta.get("date"))]
    return [f"# {title}", "", " · ".join(f for f in facts if f), ""] + [f"- {note}" for note in results.notes]


def study_markdown(results: Results) -> str:
    """Every table of a study, as one markdown document."""
    config = results.meta.get("config", {})
    parts = _header(results, "sqrtlayers benchmark")
    if config.get("shapes") and results.timing:
        shapes = [tuple(s) for s in config["shapes"]]
        parts += ["", "## Side by side: every method and mode at each shape", "", _side_by_side_table(results, shapes)]
    if results.agreement:
        parts += ["", "## Agreement: largest relative difference over the batch", "", _agreement_table(results)]
    size, batch = config.get("sweep_size"), config.get("sweep_batch")
    for sweep, fixed, shapes in (("batch sweep", f"n = {size}", [(b, size) for b in config.get("batches", [])]),
                                 ("size sweep", f"batch {batch}", [(batch, n) for n in config.get("sizes", [])])):
        for op in _unique(r.op for r in results.timing) if shapes else []:
            for phase in PHASES:
                parts += ["", f"## {phase.capitalize()} time of {OP_LABELS[op]}, {sweep} ({fixed}): ms (× eigh)", "",
                          _sweep_table(results, op, phase, shapes)]  # fmt: skip
    for op in OPS if results.accuracy else []:
        r = results.accuracy[0]
        parts += ["", f"## Accuracy of {OP_LABELS[op]}: median relative error, forward / gradient "
                  f"({results.meta.get('dtype')}, n = {r.n}, {r.batch} matrices)", "",
                  _accuracy_table(results, op)]  # fmt: skip
    what = "saved for backward / CUDA peak" if any(r.cuda_peak_bytes for r in results.memory) else "saved for backward"
    for op in _unique(r.op for r in results.memory):
        parts += ["", f"## Memory of forward+backward of {OP_LABELS[op]}: {what}", "", _memory_table(results, op)]
    return "\n".join(parts) + "\n"


def app_markdown(results: Results) -> str:
    """Training-step time of each variant against its baseline."""

    def row(r: AppRecord) -> list[str]:
        ok = r.status == OK and r.median_ms is not None
        ratio = _ratio(r.ratio_vs_baseline) if ok and r.ratio_vs_baseline is not None else ""
        return [r.scenario, r.variant, r.backend or "—", r.input, _ms(r.median_ms) if ok else r.status, ratio]

    table = markdown_table(["scenario", "variant", "backend", "input", "ms", "× baseline"], map(row, results.app))
    return "\n".join(_header(results, "sqrtlayers application benchmark") + ["", table]) + "\n"
