"""Compile the fused ``accurate`` kernels ahead of time for GPU architectures, on any machine.

Triton compiles for a target GPU without one present (``triton.compile`` with a ``GPUTarget``), down
to the cubin that ``ptxas`` assembles: the interpreter tests check the kernels' arithmetic, this
checks that they compile for each card and what they ask of it. :func:`compile_variant` reports a
variant's shared memory (from Triton's metadata), and registers and spills per thread (from
``ptxas -v``).

``python -m sqrtlayers.backends.triton_targets --write`` compiles every variant of
:func:`~sqrtlayers.backends.fused_limits.kernel_variants` for every architecture of
:data:`~sqrtlayers.backends.fused_limits.ARCHITECTURES` and rewrites the table the backend decides
from (:mod:`sqrtlayers.backends.fused_shared_memory`) and the section "Fused kernel resources" of
``docs/BENCHMARKS.md``; without ``--write`` it prints that section.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

from .fused_limits import ARCHITECTURES, BLOCKS, KIB, SHARED_MEMORY_PER_BLOCK, KernelVariant, fused_num_warps, kernel_variants
from .minimax import BACKWARD_SHRINK, PRECISIONS

__all__ = ["CompileReport", "compile_variant", "compile_all", "limit_setting_pairs", "markdown_table", "DOCS_SECTION"]

#: The heading of the section this module writes into ``docs/BENCHMARKS.md``.
DOCS_SECTION = "## Fused kernel resources"

# The schedule lengths at the defaults in float32 (8 steps forward, 7 backward): the step count
# is a loop bound, which changes no buffer.
_FORWARD_STEPS, _BACKWARD_STEPS = 8, 7
_POINTER = "*fp32"


class CompileReport(NamedTuple):
    """What one variant asks of one architecture; ``None`` where ``ptxas`` did not say."""

    variant: KernelVariant
    arch: int
    shared: int
    registers: int | None
    spill_stores: int | None
    spill_loads: int | None
    seconds: float


def _source(variant: KernelVariant):
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    from . import triton_accurate

    # Launches pass 16-byte aligned pointers and, at n = BLOCK (the largest n of a block), an n
    # divisible by 16: the same specialisation as the call that sets the block's needs.
    aligned = [["tt.divisibility", 16]]
    if variant.kernel == "forward":
        fn = JITFunction(triton_accurate._forward_kernel)
        signature = {name: _POINTER for name in ("A_ptr", "Y_ptr", "Z_ptr", "out_ptr", "u_ptr", "coef_ptr")}
        signature.update(n="i32", ridge="fp32")
        constants = {"NUM_STEPS": _FORWARD_STEPS, "RIDGED": variant.ridged}
        attrs = {(i,): aligned for i in range(7)}
    else:
        fn = JITFunction(triton_accurate._backward_kernel)
        signature = {name: _POINTER for name in ("Y_ptr", "Z_ptr", "u_ptr", "grad_ptr", "grad_in_ptr", "coef_ptr")}
        signature.update(n="i32")
        constants = {"NUM_STEPS": _BACKWARD_STEPS, "SHRINK": BACKWARD_SHRINK}
        attrs = {(i,): aligned for i in range(7)}
    constants.update(BLOCK=variant.block, INVERSE=variant.inverse, PRECISION=variant.precision)
    signature.update({name: "constexpr" for name in constants})
    return ASTSource(fn, signature, constants, attrs)


def _ptxas_number(log: str, pattern: str) -> int | None:
    found = re.findall(pattern, log)
    return int(found[-1]) if found else None


def _without_machine_code(make_backend):
    """``make_backend`` whose backends stop after LLVM IR, where the shared memory is fixed."""

    def make(target):
        backend = make_backend(target)
        add_stages = backend.add_stages

        def trimmed(stages, options, *rest):
            add_stages(stages, options, *rest)

            def no_ptx(src, metadata):
                metadata["name"] = "kernel"  # what make_ptx would have read from the PTX
                return ""

            stages["ptx"] = no_ptx
            stages["cubin"] = lambda src, metadata: b""

        backend.add_stages = trimmed
        return backend

    return make


def compile_variant(variant: KernelVariant, arch: int, *, machine_code: bool = True) -> CompileReport:
    """Compile ``variant`` for ``sm_{arch}``; with ``machine_code=False`` only as far as LLVM IR,
    which fixes the shared memory (about half the time: no PTX, no ``ptxas``, so no registers).

    Meant for a fresh process with its own cache (see :func:`compile_all`): it changes Triton's
    process-wide settings. Raises whatever Triton raises when the kernel does not compile.
    """
    import triton
    import triton.compiler.compiler as triton_compiler
    from triton.backends.compiler import GPUTarget

    if not machine_code and not hasattr(triton_compiler.make_backend, "__wrapped_backend__"):
        trimmed = _without_machine_code(triton_compiler.make_backend)
        trimmed.__wrapped_backend__ = True
        triton_compiler.make_backend = trimmed
    knobs = getattr(triton, "knobs", None)
    if knobs is not None and hasattr(knobs.nvidia, "dump_ptxas_log"):
        knobs.nvidia.dump_ptxas_log = True
    log = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(log):
        kernel = triton.compile(
            _source(variant), target=GPUTarget("cuda", arch, 32), options={"num_warps": fused_num_warps(variant.block)}
        )
    seconds = time.perf_counter() - start
    text = log.getvalue()
    return CompileReport(
        variant,
        arch,
        int(kernel.metadata.shared),
        _ptxas_number(text, r"Used (\d+) registers"),
        _ptxas_number(text, r"(\d+) bytes spill stores"),
        _ptxas_number(text, r"(\d+) bytes spill loads"),
        seconds,
    )


def _worker_start() -> None:
    # Each worker compiles into a cache of its own that it never finds filled: the times are
    # whole compiles, and a trimmed compile never lands in the user's cache.
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="sqrtlayers-triton-")


def _compile_pair(pair: tuple[KernelVariant, int, bool]) -> CompileReport:
    variant, arch, machine_code = pair
    return compile_variant(variant, arch, machine_code=machine_code)


def compile_all(
    pairs: list[tuple[KernelVariant, int]] | None = None, *, machine_code: bool = True, workers: int = 2
) -> list[CompileReport]:
    """:func:`compile_variant` for each ``(variant, arch)`` pair (default: every variant for every
    architecture), in ``workers`` fresh processes, in the order of the pairs."""
    if pairs is None:
        pairs = [(variant, arch) for variant in kernel_variants() for arch in ARCHITECTURES]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start) as pool:
        return list(pool.map(_compile_pair, [(variant, arch, machine_code) for variant, arch in pairs]))


def limit_setting_pairs() -> list[tuple[KernelVariant, int]]:
    """Per architecture, direction and precision, the variant at the largest ``BLOCK`` that the
    table says asks for the most shared memory: the ones that decide whether a call can launch."""
    from .fused_shared_memory import SHARED_MEMORY

    largest = [v for v in kernel_variants() if v.block == max(BLOCKS)]
    pairs = []
    for arch in ARCHITECTURES:
        for kernel in ("forward", "backward"):
            for precision in PRECISIONS:
                group = [v for v in largest if v.kernel == kernel and v.precision == precision]
                pairs.append((max(group, key=lambda v: SHARED_MEMORY.get(v.key, {}).get(arch, 0)), arch))
    return pairs


def _kib(value: int) -> str:
    return f"{value / KIB:.1f}"


def markdown_table(reports: list[CompileReport]) -> str:
    """One row per variant and architecture: shared memory (KiB, with the architecture's limit;
    **over** marks one that cannot launch), registers and spill stores / loads per thread (bytes),
    and the compile time, which varies from run to run and machine to machine."""
    lines = [
        "| variant | arch | shared KiB (limit) | registers | spill stores / loads (B) | compile s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in reports:
        limit = SHARED_MEMORY_PER_BLOCK[r.arch]
        over = " **over**" if r.shared > limit else ""
        spills = f"{r.spill_stores} / {r.spill_loads}" if r.spill_stores is not None else "n/a"
        lines.append(
            f"| `{r.variant.key}` | sm_{r.arch} | {_kib(r.shared)} ({limit // KIB}){over} | {r.registers} | {spills} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def table_module(reports: list[CompileReport], triton_version: str) -> str:
    """The source of :mod:`sqrtlayers.backends.fused_shared_memory` for ``reports``."""
    table: dict[str, dict[int, int]] = {}
    for r in reports:
        table.setdefault(r.variant.key, {})[r.arch] = r.shared
    rows = "".join(f"    {key!r}: {needs!r},\n" for key, needs in table.items())
    return (
        '"""Shared memory (bytes per block) of every fused-kernel variant by architecture, compiled ahead\n'
        f"of time with Triton {triton_version}. Generated by ``python -m sqrtlayers.backends.triton_targets\n"
        '--write``; a test holds it current. Read through :mod:`sqrtlayers.backends.fused_limits`."""\n\n'
        f"TRITON_VERSION = {triton_version!r}\n\n"
        f"SHARED_MEMORY: dict[str, dict[int, int]] = {{\n{rows}}}\n"
    )


def _summary(reports: list[CompileReport]) -> str:
    """The largest need per architecture against its limit, and the most spilled variant."""
    parts = []
    for arch in sorted({r.arch for r in reports}):
        need = max(r.shared for r in reports if r.arch == arch)
        parts.append(f"sm_{arch} {_kib(need)} of {SHARED_MEMORY_PER_BLOCK[arch] // KIB} KiB")
    over = [r for r in reports if r.shared > SHARED_MEMORY_PER_BLOCK[r.arch]]
    verdict = (
        "every variant fits every architecture above" if not over else f"{len(over)} variant(s) over their limit"
    )
    spilled = max(reports, key=lambda r: r.spill_stores or 0)
    return (
        f"Largest need: {'; '.join(parts)}: {verdict}. An architecture not listed (sm_100, sm_120) is "
        "held to the most any listed one needs. Most spilled: "
        f"`{spilled.variant.key}` on sm_{spilled.arch}, {spilled.spill_stores} bytes of spill stores per thread at "
        f"{spilled.registers} registers. Compile times are of two compiles at a time on a shared 2-core machine."
    )


def _docs_section(reports: list[CompileReport], triton_version: str) -> str:
    return (
        f"{DOCS_SECTION}\n\n"
        "Every variant of the fused `accurate` kernels, compiled ahead of time without a GPU for each\n"
        f"architecture (Triton {triton_version}, `ptxas -v`; the limit is the per-block opt-in maximum) by\n"
        "`python -m sqrtlayers.backends.triton_targets --write`, which also rewrites the table the backend\n"
        "decides from. `impl=\"auto\"` falls back to batched products, and `impl=\"triton\"` refuses with\n"
        "an error naming the limit, where a call's variant is **over**. Nothing here was run on a GPU: how\n"
        "fast these kernels are, and what their spills cost, is for the pending GPU run to measure.\n\n"
        + _summary(reports)
        + "\n\n"
        + markdown_table(reports)
        + "\n"
    )


def _replace_section(text: str, section: str) -> str:
    start = text.find(DOCS_SECTION)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(DOCS_SECTION))
    return text[:start] + section + ("" if end < 0 else text[end:])


def main(argv: list[str] | None = None) -> None:
    import triton

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the package table and docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    reports = compile_all()
    section = _docs_section(reports, triton.__version__)
    if not args.write:
        print(section)
        return
    here = Path(__file__).resolve()
    (here.parent / "fused_shared_memory.py").write_text(table_module(reports, triton.__version__))
    docs = here.parents[2] / "docs" / "BENCHMARKS.md"
    docs.write_text(_replace_section(docs.read_text(), section))


if __name__ == "__main__":
    main()
