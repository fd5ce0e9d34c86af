"""Smoke tests of the benchmark (``python -m sqrtlayers.bench``): it runs on a tiny grid, writes
its files, and its numbers are sane. Benchmarks are not tests: nothing here asserts a time."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sqrtlayers.bench.__main__ import main
from sqrtlayers.bench.isolation import ModeJob, run_isolated
from sqrtlayers.bench.records import FORWARD, FORWARD_BACKWARD, TimingRecord, attach_ratios

# The quick preset, shrunk further: two backends (plus the baselines this torch has), tiny shapes.
TINY = [
    "--quick", "--backends", "eigh,ns", "--batches", "1,3", "--sizes", "8,16", "--sweep-size", "16",
    "--sweep-batch", "3", "--kappas", "1e1,1e3", "--cov-samples", "64", "--accuracy-size", "16",
    "--accuracy-batch", "2", "--repeats", "2", "--warmup", "1", "--no-progress",
]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_cpu_thread() -> Iterator[None]:
    # Nothing here is timed against a bound, and on a busy 2-core machine two torch threads
    # oversubscribe the cores: a ResNet-18 step then takes seconds instead of tens of ms.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(argv: list[str]) -> str:
    with redirect_stdout(io.StringIO()) as stdout:
        assert main(argv) == 0
    return stdout.getvalue()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, _one_cpu_thread: None) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("bench")
    stdout = _run(TINY + ["--out", str(out)])
    return out, json.loads((out / "results.json").read_text()), stdout


def test_quick_writes_markdown_and_json(quick_run: tuple[Path, dict, str]) -> None:
    out, data, stdout = quick_run
    markdown = (out / "results.md").read_text()
    assert stdout.strip() == markdown.strip()
    assert "## Forward+backward time of A^{1/2}, batch sweep" in markdown
    assert "## Accuracy of A^{-1/2}" in markdown
    assert "| eigh |" in markdown and "| ns |" in markdown
    assert set(data) == {"meta", "notes", "timing", "accuracy", "memory", "app"}


def test_quick_times_every_point(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    methods = data["meta"]["methods"]
    assert methods[:2] == ["eigh", "ns"]
    shapes = {(1, 16), (3, 16), (3, 8)}
    points = {(r["method"], r["phase"], r["batch"], r["n"]) for r in data["timing"]}
    assert points == {(m, ph, b, n) for m in methods for ph in (FORWARD, FORWARD_BACKWARD) for b, n in shapes}
    for r in data["timing"]:
        assert r["status"] == "ok", r
        assert r["median_ms"] > 0 and r["repeats"] >= 1, r
        assert r["ratio_vs_eigh"] > 0, r
    assert all(r["ratio_vs_eigh"] == 1.0 for r in data["timing"] if r["method"] == "eigh")


def test_quick_errors_are_finite_and_eigh_is_exact(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    records = data["accuracy"]
    assert {r["case"] for r in records} == {"κ=1e1", "κ=1e3", "cov s=64 ε=1e-5"}
    assert {r["op"] for r in records} == {"sqrt", "inv"}
    for r in records:
        assert r["status"] == "ok", r
        for key in ("forward_error", "forward_error_max", "gradient_error", "gradient_error_max"):
            assert r[key] is not None and math.isfinite(r[key]), r
    for r in records:
        if r["method"] == "eigh":
            assert r["forward_error_max"] < 1e-4 and r["gradient_error_max"] < 1e-4, r


def test_quick_measures_saved_tensors(quick_run: tuple[Path, dict, str]) -> None:
    _, data, _ = quick_run
    assert data["memory"]
    for r in data["memory"]:
        assert r["status"] == "ok" and r["saved_bytes"] > 0 and r["saved_tensors"] >= 1, r
        assert r["cuda_peak_bytes"] is None  # CPU run


def test_quick_writes_plots(quick_run: tuple[Path, dict, str]) -> None:
    pytest.importorskip("matplotlib")
    out, _, _ = quick_run
    for name in ("time_vs_batch.png", "time_vs_size.png", "error_vs_kappa.png"):
        assert (out / name).stat().st_size > 1000, name


def test_time_budget_skips_instead_of_measuring(tmp_path: Path) -> None:
    _run(TINY + ["--out", str(tmp_path), "--time-budget", "0", "--no-plots", "--no-baselines"])
    data = json.loads((tmp_path / "results.json").read_text())
    statuses = {r["status"] for r in data["timing"] + data["accuracy"]}
    assert statuses == {"skipped: time budget"}


def test_unknown_backend_names_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'nope'; choose one of \[.*'eigh'"):
        _run(["--quick", "--backends", "nope", "--out", str(tmp_path), "--no-progress"])


def test_bad_shape_argument_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--mode-shapes", "64", "--out", str(tmp_path)])
    assert "BxN shapes" in capsys.readouterr().err


def test_failed_capture_is_a_record_not_a_crash() -> None:
    if torch.cuda.is_available():
        pytest.skip("the failure exercised here is 'cudagraph on a CPU tensor'")
    job = ModeJob(
        method="ns", mode="cudagraph", shapes=[(2, 8)], ops=["sqrt"], phases=[FORWARD_BACKWARD],
        device="cpu", dtype="float32", tf32=False, warmup=1, repeats=1, max_seconds=1.0, kappa=10.0, seed=0,
    )  # fmt: skip
    (record,) = run_isolated(job, timeout=120)
    assert record.status.startswith("failed: ValueError: mode 'cudagraph' needs a CUDA tensor"), record
    assert record.median_ms is None


def test_ratios_use_eigh_eager_at_the_same_point() -> None:
    records = [
        TimingRecord("eigh", "eager", "sqrt", FORWARD, 4, 8, median_ms=2.0),
        TimingRecord("ns", "eager", "sqrt", FORWARD, 4, 8, median_ms=1.0),
        TimingRecord("ns", "compile", "sqrt", FORWARD, 4, 8, median_ms=0.5),
        TimingRecord("ns", "eager", "sqrt", FORWARD, 8, 8, median_ms=1.0),
    ]
    attach_ratios(records)
    assert [r.ratio_vs_eigh for r in records] == [1.0, 0.5, 0.25, None]


def test_app_head_variant_runs(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    _run([
        "app", "--variants", "head", "--backends", "ns", "--head-batch", "2", "--head-image-size", "32",
        "--reduced-dim", "8", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--no-progress",
        "--out", str(tmp_path),
    ])  # fmt: skip
    data = json.loads((tmp_path / "app.json").read_text())
    assert [r["backend"] for r in data["app"]] == [None, "ns"]
    for r in data["app"]:
        assert r["status"] == "ok" and r["median_ms"] > 0 and r["ratio_vs_baseline"] > 0, r
    assert "ISqrtCovHead" in (tmp_path / "app.md").read_text()
