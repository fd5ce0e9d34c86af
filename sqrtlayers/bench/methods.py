"""The methods a run measures: every registered backend plus outside baselines.

Baselines are wrapped as :class:`~sqrtlayers.SqrtmBackend` subclasses so that timing, accuracy
and memory code treats them exactly like the registered backends.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..backends import SqrtmBackend, get_backend, list_backends
from ..backends.auto import AutoBackend
from ..backends.eigh import EighBackend

__all__ = [
    "ALIASES",
    "REFERENCE",
    "BenchMethod",
    "TorchMatrixSqrthBackend",
    "CupyEighBackend",
    "default_backend_names",
    "available_baselines",
    "method_by_name",
    "select_methods",
]

#: Registered names skipped by default because they compute exactly what another name does.
ALIASES = frozenset({"svd"})

#: Times are given as ratios against this backend, measured in the same run.
REFERENCE = "eigh"

_MATRIX_SQRTH = "torch.matrix_sqrth"
_CUPY_EIGH = "cupy.eigh"


class TorchMatrixSqrthBackend(SqrtmBackend):
    """``torch.linalg.matrix_sqrth`` with its own autograd backward; the inverse root is
    ``torch.linalg.inv`` of it (the extra inverse and its backward are part of the timing)."""

    name = _MATRIX_SQRTH

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        root = torch.linalg.matrix_sqrth(A)
        return torch.linalg.inv(root) if inverse else root


class CupyEighBackend(SqrtmBackend):
    """Forward only: ``cupy.linalg.eigh`` (batched) on the tensor shared through DLPack, then
    ``V diag(λ^{±1/2}) Vᵀ`` in CuPy, shared back. Not differentiable."""

    name = _CUPY_EIGH

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        import cupy  # lazily: an optional dependency, and slow to import

        w, V = cupy.linalg.eigh(cupy.from_dlpack(A.detach()))
        s = cupy.sqrt(cupy.clip(w, 0, None))
        values = 1 / s if inverse else s
        return torch.from_dlpack((V * values[..., None, :]) @ cupy.swapaxes(V, -1, -2))


@dataclass(frozen=True)
class BenchMethod:
    """A backend under test and what the benchmark may do with it."""

    name: str
    backend: SqrtmBackend
    #: gradients flow (``False`` for forward-only baselines: no backward timing, no gradient error).
    differentiable: bool = True
    #: no host synchronisation: timed under ``torch.compile`` and in CUDA graphs by default.
    iterative: bool = False
    #: an outside baseline rather than a registered backend.
    baseline: bool = False

    def root(self, op: str) -> Callable[[Tensor], Tensor]:
        """The function of ``A`` for ``op`` ("sqrt" or "inv")."""
        return self.backend.inv_sqrtm if op == "inv" else self.backend.sqrtm


def default_backend_names() -> list[str]:
    """Registered names, minus the aliases, with the reference first."""
    names = [n for n in list_backends() if n not in ALIASES]
    return sorted(names, key=lambda n: n != REFERENCE)


def available_baselines(device: torch.device) -> list[str]:
    """Outside baselines that this torch / this machine has."""
    found = []
    if hasattr(torch.linalg, "matrix_sqrth"):
        found.append(_MATRIX_SQRTH)
    if device.type == "cuda" and importlib.util.find_spec("cupy") is not None:
        found.append(_CUPY_EIGH)
    return found


def method_by_name(name: str) -> BenchMethod:
    """A registered backend or a baseline by name.

    Raises:
        ValueError: for a name that is neither (the message lists the registered ones).
    """
    if name == _MATRIX_SQRTH:
        return BenchMethod(name, TorchMatrixSqrthBackend(), baseline=True)
    if name == _CUPY_EIGH:
        return BenchMethod(name, CupyEighBackend(), differentiable=False, baseline=True)
    backend = get_backend(name)
    # Every registered backend but the eigendecomposition promises no host sync (DESIGN §1),
    # new ones included; one that breaks the promise shows up as "failed: ..." in the modes table.
    # auto runs whatever it picks (eigh on CPUs, accurate on GPUs): timing it in a graph or
    # compiled would repeat another row.
    return BenchMethod(name, backend, iterative=not isinstance(backend, (EighBackend, AutoBackend)))


def select_methods(names: list[str] | None, baselines: bool, device: torch.device) -> list[BenchMethod]:
    """The methods of a run: ``names`` (default: all registered but aliases), the reference
    added when missing (ratios need it), then the available baselines."""
    chosen = list(default_backend_names() if names is None else names)
    if REFERENCE not in chosen:
        chosen.insert(0, REFERENCE)
    if baselines:
        chosen += [b for b in available_baselines(device) if b not in chosen]
    return [method_by_name(n) for n in dict.fromkeys(chosen)]
