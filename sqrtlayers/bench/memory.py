"""Memory of one forward+backward step.

``tracemalloc`` cannot see torch's allocations, and the CPU allocator keeps no peak statistics,
so the portable measure is what autograd keeps alive between forward and backward: the tensors
saved for backward, seen through ``torch.autograd.graph.saved_tensors_hooks``. It is the part of
the memory that grows with depth in a network, and it means the same thing on CPU and GPU. On
CUDA the allocator's peak is reported as well: it adds the forward's temporaries, the output
and the gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .environment import synchronize

__all__ = ["MemoryUse", "saved_tensor_bytes", "measure_memory"]


@dataclass(frozen=True)
class MemoryUse:
    """Bytes kept for backward (distinct storages) and, on CUDA, the allocator's peak."""

    saved_bytes: int
    saved_tensors: int
    cuda_peak_bytes: int | None


def saved_tensor_bytes(step: Callable[[], object]) -> tuple[int, int]:
    """Run ``step`` and return ``(bytes, count)`` of the distinct storages autograd saved.

    Storages are counted once and whole: a view saved twice keeps one storage alive, and a view
    keeps all of its storage alive. Tensors a custom ``autograd.Function`` stores as plain
    ``ctx`` attributes (instead of ``save_for_backward``) are invisible to the hook.
    """
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values()), len(storages)


def _cuda_peak_bytes(step: Callable[[], object], device: torch.device) -> int:
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure_memory(step: Callable[[], object], device: torch.device) -> MemoryUse:
    """Saved-for-backward bytes of one call of ``step``, plus the CUDA peak of another call."""
    saved, count = saved_tensor_bytes(step)
    peak = _cuda_peak_bytes(step, device) if device.type == "cuda" else None
    return MemoryUse(saved_bytes=saved, saved_tensors=count, cuda_peak_bytes=peak)
