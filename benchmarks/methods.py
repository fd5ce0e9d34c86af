"""The methods a run measures: registered backends (optionally configured, ``name[key=value]``)
and outside baselines, wrapped as :class:`~sqrtlayers.SqrtmBackend` so that timing, accuracy and
memory treat all of them alike."""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sqrtlayers import SqrtmBackend, get_backend, list_backends

from .constants import ALIASES, CUPY_EIGH, MATRIX_SQRTH, REFERENCE
from .records import describe_failure

__all__ = ["BenchMethod", "parse_spec", "default_method_names", "method_by_name", "select_methods"]

_SPEC = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<options>[^\[\]]*)\])?$")


class TorchMatrixSqrthBackend(SqrtmBackend):
    """``torch.linalg.matrix_sqrth`` with its own autograd backward; the inverse root is
    ``torch.linalg.inv`` of it (the inverse and its backward are part of the timing)."""

    name = MATRIX_SQRTH

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        root = torch.linalg.matrix_sqrth(A)
        return torch.linalg.inv(root) if inverse else root


class CupyEighBackend(SqrtmBackend):
    """Forward only: ``cupy.linalg.eigh`` (batched) on the tensor shared through DLPack, then
    ``V diag(λ^{±1/2}) Vᵀ`` in CuPy, shared back."""

    name = CUPY_EIGH

    def __init__(self) -> None:
        import cupy  # an optional dependency: a method that cannot be built is "unavailable"

        self._cupy = cupy

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        cp = self._cupy
        w, V = cp.linalg.eigh(cp.from_dlpack(A.detach()))
        s = cp.sqrt(cp.clip(w, 0, None))
        return torch.from_dlpack((V * (1 / s if inverse else s)[..., None, :]) @ cp.swapaxes(V, -1, -2))


@dataclass(frozen=True)
class BenchMethod:
    """A method under test (``backend`` is ``None`` when it could not be built: see ``unavailable``)."""

    name: str
    backend: SqrtmBackend | None
    #: gradients flow (``False`` for forward-only baselines: no backward timing, no gradient error).
    differentiable: bool = True
    #: no host synchronisation: compiled and captured when a mode names no method.
    iterative: bool = False
    #: only runs on CUDA tensors (CuPy, the Triton kernel).
    needs_cuda: bool = False
    #: why the method could not be built, e.g. ``"unavailable: TypeError: ..."``.
    unavailable: str | None = None

    def root(self, op: str) -> Callable[[Tensor], Tensor]:
        """The function of ``A`` for ``op`` ("sqrt" or "inv")."""
        if self.backend is None:
            raise RuntimeError(self.unavailable)
        return self.backend.inv_sqrtm if op == "inv" else self.backend.sqrtm


def parse_spec(spec: str) -> tuple[str, dict[str, object]]:
    """A method spec as a registered name and the options to build it with.

    Values are Python literals where they parse as one, strings otherwise.

    Raises:
        ValueError: for a malformed spec.

    Example:
        >>> parse_spec("mpa-lya[solver=newton;lya_iters=4]")
        ('mpa-lya', {'solver': 'newton', 'lya_iters': 4})
    """
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"expected NAME or NAME[key=value;...], got {spec!r}")
    options: dict[str, object] = {}
    for item in filter(None, (match["options"] or "").split(";")):
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"expected key=value in {spec!r}, got {item!r}")
        try:
            options[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = text.strip()
    return match["name"].strip(), options


def default_method_names(device: torch.device) -> list[str]:
    """Registered names minus the aliases, the reference first, then the baselines this torch
    and this machine have."""
    names = sorted((n for n in list_backends() if n not in ALIASES), key=lambda n: n != REFERENCE)
    if hasattr(torch.linalg, "matrix_sqrth"):
        names.append(MATRIX_SQRTH)
    if device.type == "cuda" and importlib.util.find_spec("cupy") is not None:
        names.append(CUPY_EIGH)
    return names


def method_by_name(spec: str) -> BenchMethod:
    """A registered backend (``name`` or ``name[key=value;...]``) or a baseline.

    A known name whose options or dependencies fail comes back ``unavailable``, so one row of a
    table cannot stop a run.

    Raises:
        ValueError: for a name that is neither registered nor a baseline (the message lists the
            registered ones).
    """
    name, options = parse_spec(spec)
    if name not in list_backends() + [MATRIX_SQRTH, CUPY_EIGH]:
        raise ValueError(f"unknown backend {name!r}; choose one of {list_backends() + [MATRIX_SQRTH, CUPY_EIGH]}")
    triton = options.get("impl") == "triton"
    try:
        if name == CUPY_EIGH:
            return BenchMethod(spec, CupyEighBackend(), differentiable=False, needs_cuda=True)
        backend = TorchMatrixSqrthBackend() if name == MATRIX_SQRTH else get_backend(name, **options)
    except (ImportError, TypeError, ValueError) as exc:  # an option this version lacks, no CuPy
        return BenchMethod(spec, None, differentiable=name != CUPY_EIGH, needs_cuda=triton or name == CUPY_EIGH,
                           unavailable=describe_failure(exc, "unavailable"))  # fmt: skip
    # Every registered backend but the eigendecomposition promises no host sync; auto runs
    # whatever it picks, so compiling or capturing it would repeat another row.
    return BenchMethod(spec, backend, iterative=name not in (REFERENCE, "svd", "auto", MATRIX_SQRTH), needs_cuda=triton)


def select_methods(names: list[str] | None, device: torch.device) -> list[BenchMethod]:
    """The methods of a run: ``names`` (default: :func:`default_method_names`), with the
    reference added first when missing (the ratios need it)."""
    chosen = list(default_method_names(device) if names is None else names)
    if REFERENCE not in chosen:
        chosen.insert(0, REFERENCE)
    return [method_by_name(n) for n in dict.fromkeys(chosen)]
