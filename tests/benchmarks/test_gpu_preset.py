"""The GPU run's dry run on the CPU: ``DEVICE=cpu python -m benchmarks --preset gpu``, with the
packages the GPU machine may lack made unimportable, so the run (and ``import sqrtlayers``) is
shown to need only torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ("tqdm", "matplotlib", "lightning", "pytorch_lightning", "torchvision", "timm", "cupy")

# ``sys.modules[name] = None`` makes ``import name`` raise ImportError.
SCRIPT = f"""
import sys
sys.modules.update(dict.fromkeys({ABSENT!r}))
from benchmarks.__main__ import main
sys.exit(main(["--preset", "gpu", "--threads", "1", "--no-progress", "--out", sys.argv[1]]))
"""


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu")
    env = os.environ | {"DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_every_row_of_the_gpu_table_is_there(dry_run: tuple[dict, str]) -> None:
    data, markdown = dry_run
    rows = {(r["method"], r["mode"]) for r in data["timing"]}
    assert rows == {("eigh", "eager"), ("mpa-lya", "eager"), ("accurate", "eager"), ("accurate[impl=triton]", "eager"),
                    ("cupy.eigh", "eager"), ("mpa-lya[solver=newton]", "cudagraph"), ("accurate", "cudagraph"),
                    ("accurate[impl=triton]", "cudagraph"), ("accurate", "compile")}  # fmt: skip
    assert {(r["batch"], r["n"]) for r in data["timing"]} == {(4, 16), (2, 16)}
    assert "| batch×n | method | mode | root | forward ms (× eigh) | forward+backward ms (× eigh) |" in markdown


def test_rows_that_cannot_run_here_say_why(dry_run: tuple[dict, str]) -> None:
    data, _ = dry_run
    for r in data["timing"]:
        if r["mode"] == "cudagraph" or r["method"] == "accurate[impl=triton]":
            assert r["status"] == "skipped: needs CUDA" or r["status"].startswith("unavailable: "), r
        if r["method"] == "cupy.eigh":
            assert r["status"].startswith("unavailable: ModuleNotFoundError") or r["status"] == "n/a: forward only", r
    assert all(r["status"] == "skipped: needs CUDA" or r["status"].startswith("unavailable")
               for r in data["agreement"])  # fmt: skip


def test_accurate_is_timed_eager_and_compiled_with_its_accuracy(dry_run: tuple[dict, str]) -> None:
    data, _ = dry_run
    timed = [r for r in data["timing"] if r["method"] in ("eigh", "mpa-lya", "accurate") and r["mode"] != "cudagraph"]
    assert len(timed) == 16
    for r in timed:
        assert r["status"] == "ok" and r["median_ms"] > 0 and r["ratio_vs_eigh"] > 0, r
        if r["method"] == "accurate":  # float32 at κ = 1e4: forward <= 1e-5, gradient <= 1e-4
            assert r["check_error"] < (1e-5 if r["phase"] == "forward" else 1e-4), r
    accuracy = {(r["method"], r["op"]): r for r in data["accuracy"]}
    root = accuracy["accurate", "sqrt"]
    assert root["forward_error"] < 1e-5 and root["gradient_error"] < 1e-4, root
    assert accuracy["accurate", "inv"]["case"] == "κ=1e4"
