"""The markdown views: the side-by-side table groups each method's modes and shows failures."""

from __future__ import annotations

from benchmarks.constants import FORWARD, FORWARD_BACKWARD
from benchmarks.records import Results, TimingRecord, attach_ratios
from benchmarks.report import study_markdown


def test_side_by_side_rows_group_modes_and_keep_failures_in_their_cells() -> None:
    rows = [("eigh", "eager"), ("accurate", "eager"), ("accurate", "cudagraph"), ("accurate[impl=triton]", "eager"),
            ("mpa-lya[solver=newton]", "cudagraph"), ("accurate", "compile")]  # fmt: skip
    timing = [TimingRecord(m, mode, "sqrt", ph, 4, 16, median_ms=2.0, check_error=1e-6)
              for m, mode in rows for ph in (FORWARD, FORWARD_BACKWARD)]  # fmt: skip
    timing[7].status, timing[7].median_ms = "failed: RuntimeError: CUDA error: an illegal memory access", None
    attach_ratios(timing)
    markdown = study_markdown(Results(meta={"config": {"shapes": [(4, 16)]}}, timing=timing))
    lines = [line for line in markdown.splitlines() if line.startswith("| 4×16 |")]
    assert [tuple(line.split(" | ")[1:3]) for line in lines] == [
        ("eigh", "eager"), ("accurate", "eager"), ("accurate", "compile"), ("accurate", "cudagraph"),
        ("accurate[impl=triton]", "eager"), ("mpa-lya[solver=newton]", "cudagraph")]  # fmt: skip
    assert lines[0] == "| 4×16 | eigh | eager | A^{1/2} | 2 (1×) | 2 (1×) | 1.0e-06 | 1.0e-06 |"
    assert lines[4] == ("| 4×16 | accurate[impl=triton] | eager | A^{1/2} | 2 (1×) | failed: RuntimeError: CUDA "
                        "error: an illegal memory access | 1.0e-06 | 1.0e-06 |")  # fmt: skip


def test_compile_rows_of_the_eager_compile_backend_say_they_were_only_traced() -> None:
    """The GPU preset's CPU dry run compiles with backend 'eager': Dynamo traces, nothing is
    compiled, so its 'compile' times must not read as times of compiled code."""
    timing = [TimingRecord(m, mode, "sqrt", FORWARD, 4, 16, median_ms=2.0) for m, mode in
              [("eigh", "eager"), ("accurate", "compile")]]  # fmt: skip
    attach_ratios(timing)
    for backend, label in (("eager", "compile (eager: traced, not compiled)"), ("inductor", "compile")):
        config = {"shapes": [(4, 16)], "compile_backend": backend}
        markdown = study_markdown(Results(meta={"config": config}, timing=timing))
        rows = [line.split(" | ")[1:3] for line in markdown.splitlines() if line.startswith("| 4×16 | accurate")]
        assert rows == [["accurate", label]]
