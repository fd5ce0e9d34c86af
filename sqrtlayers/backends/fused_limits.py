"""What the fused ``accurate`` kernel needs of a GPU, and whether a device at hand can launch it.

Torch- and Triton-free: the needs come from :mod:`sqrtlayers.backends.fused_shared_memory`, a table
that ``python -m sqrtlayers.backends.triton_targets --write`` generates by compiling every kernel
variant ahead of time for each architecture below (no GPU needed; a test holds it current), so a
choice made here never compiles or launches anything.

A kernel variant is fixed by the direction (``forward``/``backward``), the tile side ``BLOCK``, the
root (square or inverse), the product precision and, for the forward square root of a
float16/bfloat16 input, the ridge. Shared memory is what can stop a launch: the register file
(64K 32-bit registers per block) holds a block of up to 8 warps at the 255 registers a thread may
use, and Triton spills what does not fit to local memory, which costs speed, not launches.

Per-block shared memory (the opt-in maximum, 1 KiB under the SM's carve-out) is from NVIDIA's
CUDA C++ Programming Guide (technical specifications per compute capability) and the Ampere, Ada
and Hopper tuning guides; ``docs/BENCHMARKS.md`` ("Fused kernel resources") has the measured table.
"""

from __future__ import annotations

from typing import NamedTuple

from .fused_shared_memory import SHARED_MEMORY, TRITON_VERSION
from .minimax import FUSED_MAX_N, PRECISIONS

__all__ = [
    "KIB",
    "SHARED_MEMORY_PER_BLOCK",
    "ARCHITECTURES",
    "BLOCKS",
    "KernelVariant",
    "fused_block",
    "fused_num_warps",
    "kernel_variants",
    "call_variants",
    "shared_memory_needed",
    "launch_problem",
    "TRITON_VERSION",
]

KIB = 1024

#: Shared memory one block may use, in bytes, by architecture (compute capability ``10 * major +
#: minor``): sm_80 (A100, A30), sm_86 (RTX 30, A10, A40), sm_89 (RTX 40, L4, L40), sm_90 (H100, H200).
SHARED_MEMORY_PER_BLOCK: dict[int, int] = {80: 163 * KIB, 86: 99 * KIB, 89: 99 * KIB, 90: 227 * KIB}

#: The architectures the kernels are compiled for ahead of time, in the table and the tests.
ARCHITECTURES: tuple[int, ...] = tuple(SHARED_MEMORY_PER_BLOCK)


def fused_block(n: int) -> int:
    """The tile side for ``n x n`` matrices: ``max(16, next power of two)``; ``tl.dot`` needs 16
    or more along every side."""
    return max(16, 1 << (n - 1).bit_length())


def fused_num_warps(block: int) -> int:
    """Warps per program: 4 up to ``BLOCK = 32``, 8 at 64 (16 would cap a thread at 128 registers
    and spill more)."""
    return 4 if block <= 32 else 8


#: Every ``BLOCK`` the kernels run at: ``fused_block(n)`` for ``1 <= n <= FUSED_MAX_N``.
BLOCKS: tuple[int, ...] = tuple(sorted({fused_block(n) for n in range(1, FUSED_MAX_N + 1)}))


class KernelVariant(NamedTuple):
    """One compiled form of a fused kernel."""

    kernel: str  # "forward" or "backward"
    block: int
    inverse: bool
    precision: str
    ridged: bool = False

    @property
    def key(self) -> str:
        """``forward-64-sqrt-tf32x3-ridged``: the variant's name in the tables."""
        root = "inv" if self.inverse else "sqrt"
        return "-".join([self.kernel, str(self.block), root, self.precision] + (["ridged"] if self.ridged else []))


def kernel_variants(blocks: tuple[int, ...] = BLOCKS) -> tuple[KernelVariant, ...]:
    """Every variant the backend can launch at these tile sides: forward and backward, both roots,
    both precisions, and the ridged forward square root."""
    variants = []
    for block in blocks:
        for precision in PRECISIONS:
            for inverse in (False, True):
                variants.append(KernelVariant("forward", block, inverse, precision))
                if not inverse:
                    variants.append(KernelVariant("forward", block, inverse, precision, ridged=True))
                variants.append(KernelVariant("backward", block, inverse, precision))
    return tuple(variants)


def call_variants(n: int, inverse: bool, precision: str, ridged: bool) -> tuple[KernelVariant, KernelVariant]:
    """The forward and backward variants one call on ``n x n`` matrices launches."""
    block = fused_block(n)
    return KernelVariant("forward", block, inverse, precision, ridged), KernelVariant("backward", block, inverse, precision)


def shared_memory_needed(variant: KernelVariant, arch: int) -> int:
    """Bytes of shared memory ``variant`` asks for on ``arch``; for an architecture that was not
    compiled for, the most any compiled one asks (a guess that errs towards refusing)."""
    needs = SHARED_MEMORY[variant.key]
    return needs[arch] if arch in needs else max(needs.values())


def launch_problem(n: int, inverse: bool, precision: str, ridged: bool, arch: int, limit: int | None = None) -> str | None:
    """Why the fused kernels for ``n x n`` matrices cannot launch on a device of architecture
    ``arch`` with ``limit`` bytes of shared memory per block (default: the architecture's, else
    the smallest listed), or ``None`` when both directions fit.

    Sizes beyond :data:`~sqrtlayers.backends.minimax.FUSED_MAX_N` are not this function's to
    judge (the kernel refuses them itself): ``None``.

    Example:
        >>> launch_problem(64, inverse=False, precision="ieee", ridged=False, arch=90) is None
        True
    """
    if not 1 <= n <= FUSED_MAX_N:
        return None
    if limit is None:
        limit = SHARED_MEMORY_PER_BLOCK.get(arch, min(SHARED_MEMORY_PER_BLOCK.values()))
    over = _first_over(n, inverse, precision, ridged, arch, limit)
    if over is None:
        return None
    variant, need = over
    others = [p for p in PRECISIONS if p != precision and _first_over(n, inverse, p, ridged, arch, limit) is None]
    instead = "impl='torch'" + "".join(f" or precision={p!r}" for p in others)
    return (
        f"the fused {variant.kernel} kernel for n={n} (BLOCK={variant.block}, precision={precision!r}) "
        f"needs {need / KIB:.1f} KiB of shared memory per block, over this device's limit of "
        f"{limit / KIB:.0f} KiB (sm_{arch}); use {instead}"
    )


def _first_over(n: int, inverse: bool, precision: str, ridged: bool, arch: int, limit: int) -> tuple[KernelVariant, int] | None:
    """The first of a call's variants that asks for more than ``limit``, with its need."""
    for variant in call_variants(n, inverse, precision, ridged):
        need = shared_memory_needed(variant, arch)
        if need > limit:
            return variant, need
    return None
