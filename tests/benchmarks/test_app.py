"""The application benchmark's bare-layer rows (ZCABatchNorm against nn.BatchNorm2d)."""

from __future__ import annotations

from benchmarks.settings import AppSettings
from benchmarks.app import run_app


def test_layer_rows_are_timed_against_batchnorm(tmp_path) -> None:
    s = AppSettings(device="cpu", backends=["eigh", "no-such-backend"], variants=["zca-layer"], zca_batch=4,
                    zca_image_size=4, repeats=1, warmup=0, progress=False, out=tmp_path)  # fmt: skip
    baseline, eigh, bogus = run_app(s).app
    assert (baseline.backend, baseline.status, baseline.ratio_vs_baseline) == (None, "ok", 1.0)
    assert eigh.input == "4×64×4×4" and eigh.status == "ok" and eigh.ratio_vs_baseline > 0
    assert bogus.status.startswith("failed: ValueError: unknown backend 'no-such-backend'"), bogus.status
