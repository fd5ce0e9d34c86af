"""Memory of one forward+backward step.

``tracemalloc`` cannot see torch's allocations and the CPU allocator keeps no peak, so the
portable measure is what autograd keeps alive between forward and backward: the tensors saved
for backward, seen through ``torch.autograd.graph.saved_tensors_hooks``. It is the part that
grows with depth in a network and means the same on CPU and GPU. On CUDA the allocator's peak is
reported as well: it adds the forward's temporaries, the output and the gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .environment import synchronize
from .timing import Step

__all__ = ["saved_tensor_bytes", "cuda_peak_bytes"]


def saved_tensor_bytes(step: Step) -> tuple[int, int]:
    """Run ``step``; ``(bytes, count)`` of the distinct storages autograd saved.

    Storages count once and whole: a view saved twice keeps one storage alive, and a view keeps
    all of its storage alive. Tensors a custom ``autograd.Function`` keeps as plain ``ctx``
    attributes (instead of ``save_for_backward``) are invisible to the hook.
    """
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values()), len(storages)


def cuda_peak_bytes(step: Step, device: torch.device) -> int:
    """The CUDA allocator's peak during one call of ``step``, above what was allocated before."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
