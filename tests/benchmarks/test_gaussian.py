"""The Gaussian rows of the benchmarks (whitening and colouring, Fréchet distance): every method
gets a row with its ratio against eigh and its error, a failing method is a row, the command line
writes its tables. Benchmarks are not tests: no time is asserted."""

from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main
from benchmarks.gaussian import EIGVALS, SCIPY, gaussian_markdown, run_gaussian
from benchmarks.settings import GaussianSettings


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):
    s = GaussianSettings(device="cpu", backends=["accurate", "mpa-lya", "no-such-backend"], wct_levels=["relu2_1"],
                         wct_image_size=16, wct_batch=1, frechet_sizes=[24], repeats=1, warmup=0, max_seconds=0.1,
                         progress=False, out=tmp_path_factory.mktemp("gaussian"))  # fmt: skip
    return run_gaussian(s)


def test_every_method_has_a_row_with_ratio_and_error(results) -> None:
    rows = {(r.task, r.method): r for r in results.records}
    assert [r.shape for r in results.records if r.task == "wct"][0] == "relu2_1: 1×128×8×8"
    assert set(rows) == {("wct", m) for m in ("eigh", "accurate", "mpa-lya", "no-such-backend", SCIPY)} | {
        ("frechet", m) for m in ("eigh", "accurate", "mpa-lya", "no-such-backend", SCIPY, EIGVALS)}
    for task in ("wct", "frechet"):
        eigh = rows[task, "eigh"]
        assert (eigh.forward_ratio, eigh.forward_backward_ratio) == (1.0, 1.0)
        accurate = rows[task, "accurate"]
        assert accurate.status == "ok" and accurate.forward_backward_ratio > 0 and accurate.error < 1e-2
        # Forward only: no backward time.
        assert rows[task, SCIPY].forward_backward_ms is None and rows[task, SCIPY].forward_ratio > 0
        assert rows[task, SCIPY].error < 1e-10  # float64
        assert rows[task, "no-such-backend"].status.startswith("failed: ValueError: unknown backend 'no-such-backend'")
    assert rows["frechet", EIGVALS].error < 1e-3


def test_markdown_has_a_table_per_task(results) -> None:
    text = gaussian_markdown(results)
    assert "## Whitening and colouring (VGG-19 levels)" in text and "## Fréchet distance" in text
    assert "| relu2_1: 1×128×8×8 | eigh | " in text and "(1×)" in text


def test_command_line_writes_markdown_and_json(tmp_path, capsys) -> None:
    assert main(["gaussian", "--preset", "quick", "--wct-levels", "relu2_1", "--wct-image-size", "16",
                 "--frechet-sizes", "8", "--backends", "eigh", "--baselines", EIGVALS, "--device", "cpu",
                 "--no-progress", "--out", str(tmp_path)]) == 0  # fmt: skip
    data = json.loads((tmp_path / "gaussian.json").read_text())
    assert [(r["task"], r["method"]) for r in data["records"]] == [("wct", "eigh"), ("frechet", "eigh"), ("frechet", EIGVALS)]
    assert (tmp_path / "gaussian.md").read_text() in capsys.readouterr().out


def test_gpu_preset_runs_every_row_as_a_dry_run_on_a_cpu(tmp_path) -> None:
    assert main(["gaussian", "--preset", "gpu", "--device", "cpu", "--no-progress", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gaussian.json").read_text())
    methods = {r["method"] for r in data["records"]}
    assert {"eigh", "accurate", "mpa-lya", "auto", SCIPY, EIGVALS} == methods
    assert all(r["status"] == "ok" for r in data["records"]), [r["status"] for r in data["records"]]
