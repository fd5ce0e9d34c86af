"""The fused kernels compile for every card they claim, and the backend never picks a
configuration that cannot launch on the device at hand.

Compiling needs Triton (ahead of time, no GPU: ``sqrtlayers.backends.triton_targets``); the
launch decisions are checked from the stored table of compiled needs, without CUDA. The default
run compiles the variants that set the limits (largest ``BLOCK``, as far as LLVM IR); the full
grid, down to cubins with registers and spills, runs under ``-m compile_grid`` (README, "Testing").
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends import triton_accurate
from sqrtlayers.backends.accurate import choose_impl
from sqrtlayers.backends.fused_limits import (
    ARCHITECTURES,
    BLOCKS,
    KIB,
    SHARED_MEMORY_PER_BLOCK,
    call_variants,
    kernel_variants,
    launch_problem,
    shared_memory_needed,
)
from sqrtlayers.backends.fused_shared_memory import SHARED_MEMORY, TRITON_VERSION
from sqrtlayers.backends.minimax import FUSED_MAX_N, PRECISIONS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "BENCHMARKS.md"
_ROW = re.compile(r"^\| `([\w-]+)` \| sm_(\d+) \| ([\d.]+) \((\d+)\)(?: \*\*over\*\*)? \| (\S+) \| (\S+(?: / \S+)?) \| [\d.]+ \|$")


def _docs_rows() -> dict[tuple[str, int], tuple[str, ...]]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            key, arch, shared, limit, registers, spills = match.groups()
            rows[key, int(arch)] = (shared, limit, registers, spills)
    return rows


def _triton_compiles() -> str | None:
    """Why compiling ahead of time cannot be tested here, or ``None``."""
    try:
        import triton
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.backends.nvidia.compiler import get_ptxas
    except Exception as error:  # an old Triton, or none
        return f"needs Triton with the CUDA backend ({error})"
    try:
        get_ptxas(90).path  # noqa: B018 - raises where ptxas is missing
    except Exception as error:
        return f"needs ptxas ({error})"
    return None


requires_compiler = pytest.mark.skipif(_triton_compiles() is not None, reason=str(_triton_compiles()))


def test_table_covers_every_variant_and_architecture() -> None:
    assert BLOCKS == (16, 32, 64)
    assert set(SHARED_MEMORY) == {variant.key for variant in kernel_variants()}
    assert all(set(needs) == set(ARCHITECTURES) for needs in SHARED_MEMORY.values())
    assert ARCHITECTURES == (80, 86, 89, 90)


def test_docs_table_is_the_package_table() -> None:
    """docs/BENCHMARKS.md shows what the backend decides from (regenerate both with
    ``python -m sqrtlayers.backends.triton_targets --write``)."""
    rows = _docs_rows()
    assert set(rows) == {(key, arch) for key, needs in SHARED_MEMORY.items() for arch in needs}
    for (key, arch), (shared, limit, _, _) in rows.items():
        assert shared == f"{SHARED_MEMORY[key][arch] / KIB:.1f}", (key, arch)
        assert int(limit) * KIB == SHARED_MEMORY_PER_BLOCK[arch]
    assert f"Triton {TRITON_VERSION}" in DOCS.read_text()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_launch_decision_follows_the_table(arch: int) -> None:
    """A call launches exactly where both its variants fit the architecture's limit."""
    for n in (1, 16, 17, 33, FUSED_MAX_N):
        for precision in PRECISIONS:
            for inverse, ridged in ((False, False), (False, True), (True, False)):
                fits = all(
                    SHARED_MEMORY[v.key][arch] <= SHARED_MEMORY_PER_BLOCK[arch]
                    for v in call_variants(n, inverse, precision, ridged)
                )
                assert (launch_problem(n, inverse, precision, ridged, arch) is None) == fits


def test_auto_falls_back_and_triton_refuses_where_shared_memory_is_short() -> None:
    need = max(shared_memory_needed(v, 90) for v in call_variants(64, False, "tf32x3", False))
    kwargs = {"precision": "tf32x3", "triton_ok": True}
    assert choose_impl("auto", "cuda", 64, torch.float32, device_limits=(90, need), **kwargs) == "triton"
    assert choose_impl("auto", "cuda", 64, torch.float32, device_limits=(90, need - 1), **kwargs) == "torch"
    limit = f"{(need - 1) / KIB:.0f} KiB"
    with pytest.raises(ValueError, match=rf"needs {need / KIB:.1f} KiB of shared memory per block, over this device's limit of {limit} \(sm_90\)"):
        choose_impl("triton", "cuda", 64, torch.float32, device_limits=(90, need - 1), **kwargs)
    assert choose_impl("auto", "cuda", 8, torch.float32, device_limits=(90, need - 1), **kwargs) == "triton"


def test_unknown_architecture_is_judged_by_the_largest_compiled_need() -> None:
    """sm_120 (RTX 50) was not compiled for: its limit (99 KiB) is held against the most any
    listed architecture asks."""
    for variant in kernel_variants():
        assert shared_memory_needed(variant, 120) == max(SHARED_MEMORY[variant.key].values())
    worst = max(shared_memory_needed(v, 120) for v in call_variants(64, False, "tf32x3", True))
    assert (launch_problem(64, False, "tf32x3", True, 120, 99 * KIB) is None) == (worst <= 99 * KIB)


def test_backend_hands_the_device_limits_to_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """``resolved_impl`` on a CUDA input asks the device; a stand-in for one (no CUDA here) with
    too little shared memory sends ``auto`` to the batched products and ``triton`` to an error."""
    monkeypatch.setattr(triton_accurate, "triton_available", lambda device: True)
    monkeypatch.setattr(triton_accurate, "device_limits", lambda device: (86, 8 * KIB))
    cuda_input = SimpleNamespace(device=torch.device("cuda"), shape=(4, 64, 64), dtype=torch.float32)
    assert sl.get_backend("accurate").resolved_impl(cuda_input) == "torch"
    with pytest.raises(ValueError, match=r"impl='triton': the fused forward kernel for n=64 .* limit of 8 KiB \(sm_86\)"):
        sl.get_backend("accurate", impl="triton").resolved_impl(cuda_input)
    monkeypatch.setattr(triton_accurate, "device_limits", lambda device: (86, 99 * KIB))
    assert sl.get_backend("accurate").resolved_impl(cuda_input) == "triton"


def test_device_limits_of_a_device_without_cuda() -> None:
    assert triton_accurate.device_limits("cpu") is None
    assert triton_accurate.device_limits("not-a-device") is None
    if not torch.cuda.is_available():
        assert triton_accurate.device_limits("cuda") is None


@requires_compiler
def test_limit_setting_variants_compile_within_each_architecture() -> None:
    """The largest-``BLOCK`` variants that set each (architecture, direction, precision)'s need
    compile, ask for what the table says (same Triton version), and fit or are refused."""
    import triton

    from sqrtlayers.backends.triton_targets import compile_all, limit_setting_pairs

    pairs = limit_setting_pairs()
    assert len(pairs) == len(ARCHITECTURES) * 2 * len(PRECISIONS)
    for report in compile_all(pairs, machine_code=False):
        variant, arch = report.variant, report.arch
        assert report.shared > 0
        if triton.__version__ == TRITON_VERSION:
            assert report.shared == SHARED_MEMORY[variant.key][arch], (variant.key, arch)
        if report.shared > SHARED_MEMORY_PER_BLOCK[arch]:
            assert launch_problem(FUSED_MAX_N, variant.inverse, variant.precision, variant.ridged, arch) is not None


@requires_compiler
@pytest.mark.compile_grid
def test_full_grid_compiles_and_tables_are_current() -> None:
    """Every variant for every architecture, to cubins: the package table and the docs table
    (shared memory, registers, spills; not the times) are what this Triton compiles."""
    import triton

    from sqrtlayers.backends.triton_targets import compile_all

    if triton.__version__ != TRITON_VERSION:
        pytest.skip(f"the tables are of Triton {TRITON_VERSION}, this is {triton.__version__}")
    rows = _docs_rows()
    for report in compile_all():
        key, arch = report.variant.key, report.arch
        assert report.shared == SHARED_MEMORY[key][arch], (key, arch)
        spills = f"{report.spill_stores} / {report.spill_loads}" if report.spill_stores is not None else "n/a"
        assert rows[key, arch][2:] == (str(report.registers), spills), (key, arch)

