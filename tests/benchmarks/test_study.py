"""The study on a tiny grid: it writes its files and its numbers are sane; the time budget and
the subprocess timeout turn into statuses, not errors."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.constants import FORWARD, FORWARD_BACKWARD
from benchmarks.execution import ModeJob, run_isolated
from benchmarks.records import TimingRecord, attach_ratios

# The quick preset, shrunk further: two backends, tiny shapes.
TINY = ["--preset", "quick", "--backends", "eigh,ns", "--batches", "1,3", "--sizes", "8,16", "--sweep-size", "16",
        "--sweep-batch", "3", "--shapes", "3x16", "--kappas", "1e1,1e3", "--cov-samples", "64",
        "--accuracy-size", "16", "--accuracy-batch", "2", "--repeats", "2", "--warmup", "1",
        "--no-progress"]  # fmt: skip


def _run(argv: list[str]) -> str:
    with redirect_stdout(io.StringIO()) as stdout:
        assert main(argv) == 0
    return stdout.getvalue()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("bench")
    stdout = _run(TINY + ["--out", str(out)])
    return out, json.loads((out / "results.json").read_text()), stdout


def test_writes_markdown_json_and_plots(quick_run: tuple[Path, dict, str]) -> None:
    out, data, stdout = quick_run
    markdown = (out / "results.md").read_text()
    assert stdout.strip() == markdown.strip()
    for title in ("## Side by side", "## Forward+backward time of A^{1/2}, batch sweep", "## Accuracy of A^{-1/2}",
                  "## Memory of forward+backward"):  # fmt: skip
        assert title in markdown
    assert set(data) == {"meta", "notes", "timing", "accuracy", "agreement", "memory", "app"}
    for name in ("time_vs_batch.png", "time_vs_size.png", "error_vs_kappa.png"):
        assert (out / name).stat().st_size > 1000, name


def test_times_every_point_with_ratios(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    shapes = {(1, 16), (3, 16), (3, 8)}
    points = {(r["method"], r["phase"], r["batch"], r["n"]) for r in data["timing"]}
    assert points == {(m, ph, b, n) for m in ("eigh", "ns") for ph in (FORWARD, FORWARD_BACKWARD) for b, n in shapes}
    for r in data["timing"]:
        assert r["status"] == "ok" and r["median_ms"] > 0 and r["ratio_vs_eigh"] > 0, r
        # only the side-by-side shape is checked against the float64 closed form
        assert (r["check_error"] is not None) == ((r["batch"], r["n"]) == (3, 16)), r
    assert all(r["ratio_vs_eigh"] == 1.0 for r in data["timing"] if r["method"] == "eigh")
    eigh_checks = [r["check_error"] for r in data["timing"] if r["method"] == "eigh" and r["check_error"] is not None]
    assert max(eigh_checks) < 1e-4


def test_errors_are_finite_and_eigh_is_exact(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    assert {r["case"] for r in data["accuracy"]} == {"κ=1e1", "κ=1e3", "cov s=64 ε=1e-5"}
    for r in data["accuracy"]:
        assert r["status"] == "ok", r
        assert all(math.isfinite(r[k]) for k in ("forward_error", "gradient_error", "gradient_error_max")), r
        if r["method"] == "eigh":
            assert r["forward_error_max"] < 1e-4 and r["gradient_error_max"] < 1e-4, r


def test_memory_counts_saved_tensors(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    assert len(data["memory"]) == 6
    for r in data["memory"]:
        assert r["status"] == "ok" and r["saved_bytes"] > 0 and r["saved_tensors"] >= 1, r
        assert r["cuda_peak_bytes"] is None


def test_spent_time_budget_skips_instead_of_measuring(tmp_path: Path) -> None:
    _run(TINY + ["--out", str(tmp_path), "--time-budget", "0", "--no-plots"])
    data = json.loads((tmp_path / "results.json").read_text())
    assert {r["status"] for r in data["timing"] + data["accuracy"] + data["memory"]} == {"skipped: time budget"}


def test_worker_out_of_time_gives_failed_records() -> None:
    job = ModeJob(method="ns", mode="compile", shapes=[(2, 8)], ops=["sqrt"], phases=[FORWARD], device="cpu",
                  dtype="float32", tf32=False, warmup=1, repeats=1, max_seconds=1.0, kappa=10.0, seed=0,
                  compile_backend="eager")  # fmt: skip
    (record,) = run_isolated(job, timeout=0.2)
    assert record.status == "failed: timed out after 0 s" and record.median_ms is None


def test_ratios_use_eigh_eager_at_the_same_point() -> None:
    records = [
        TimingRecord("eigh", "eager", "sqrt", FORWARD, 4, 8, median_ms=2.0),
        TimingRecord("ns", "eager", "sqrt", FORWARD, 4, 8, median_ms=1.0),
        TimingRecord("ns", "compile", "sqrt", FORWARD, 4, 8, median_ms=0.5),
        TimingRecord("ns", "eager", "sqrt", FORWARD, 8, 8, median_ms=1.0),
    ]
    attach_ratios(records)
    assert [r.ratio_vs_eigh for r in records] == [1.0, 0.5, 0.25, None]
