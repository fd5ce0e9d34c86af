"""``auto``: the fastest backend that meets a tolerance, chosen per device, dtype and shape."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SqrtmBackend
from .minimax import check_kappa
from .onnx_export import exporting_to_onnx
from .registry import get_backend

__all__ = ["AutoBackend", "MEASURED_ERRORS"]

# Condition numbers of the accuracy table below.
KAPPAS = (1e1, 1e2, 1e3, 1e4, 1e6)

# Worst of (forward, gradient) x (sqrt, inverse sqrt) relative error, float32, n = 64,
# log-spaced spectrum, median over 8 matrices, per kappa above; measured with
# ``sqrtlayers.reference.measure_errors`` (see docs/BENCHMARKS.md for the full table).
MEASURED_ERRORS: dict[str, tuple[float, ...]] = {
    "accurate": (1.2e-5, 1.0e-5, 1.0e-5, 4.3e-5, 3.8e-3),
    "eigh": (1.5e-6, 4.3e-6, 2.4e-5, 1.7e-4, 9.8e-2),
    "mpa-lya": (5.5e-2, 5.7e-1, 9.5e-1, 1.0, 1.0),
    "ns-lya": (4.4e-1, 8.2e-1, 9.8e-1, 1.0, 1.0),
    "mtp-lya": (5.3e-1, 9.3e-1, 1.0, 1.0, 1.0),
}

# Fastest first, per device type. On CPUs LAPACK's eigh beat every matrix-product method at every
# size of the CPU study (docs/BENCHMARKS.md), so eigh leads. The CUDA order is an estimate, not a
# measurement of this code: it ranks by launches and products per call (docs/BENCHMARKS.md,
# "Operations per call"), and puts eigh last after the H100 anchors measured outside this
# repository (torch eigh + autograd took 51 ms at 64 x 64x64; docs/METHODS.md).
SPEED_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("eigh", "mpa-lya", "accurate", "ns-lya", "mtp-lya"),
    "cuda": ("mtp-lya", "ns-lya", "mpa-lya", "accurate", "eigh"),
}


#: What each speed order rests on, as :meth:`AutoBackend.explain` says it.
SPEED_EVIDENCE: dict[str, str] = {
    "cpu": "measured on CPUs, docs/BENCHMARKS.md",
    "cuda": "estimated from product counts, not measured on a GPU by this code (docs/BENCHMARKS.md)",
}

# Above this size eigh leads on every device.
LARGE_MATRIX = 1024


class AutoBackend(SqrtmBackend):
    r"""Pick, per device type, dtype and matrix size, the fastest backend whose measured error
    (forward and gradient, sqrt and inverse) is at most ``tol`` for condition numbers up to
    ``kappa``. The choice is made from static information when the call is traced, so ``auto``
    compiles like the backend it picks.

    Args:
        tol: largest acceptable relative Frobenius error. Default: ``1e-3`` ("eigh-class":
            float32 eigh itself reaches 1.7e-4 on the inverse root's gradient at ``kappa=1e4``).
        kappa: largest condition number the inputs will have. Default: ``1e4``.

    When no backend meets ``tol`` at ``kappa``, the most accurate one is used. ``accurate`` is
    configured with ``kappa`` itself, so a smaller promise buys fewer steps.

    Example:
        >>> import torch, sqrtlayers as sl
        >>> auto = sl.get_backend("auto")
        >>> auto.choose(torch.eye(64))  # on a CPU tensor
        EighBackend(name='eigh')
        >>> auto.explain(torch.eye(64))
        "auto picks eigh for cpu torch.float32 64x64: fastest on cpu of ['accurate', 'eigh'] (error <= 0.001 up to kappa 10000; speed order measured on CPUs, docs/BENCHMARKS.md)"
    """

    name = "auto"

    def __init__(self, tol: float = 1e-3, kappa: float = 1e4) -> None:
        if not (isinstance(tol, float) and tol > 0):
            raise ValueError(f"tol must be a positive float, got {tol!r}")
        self.tol = tol
        self.kappa = check_kappa(kappa)
        # The first tabulated kappa that covers the promise (the last one beyond the table).
        self._column = next((i for i, k in enumerate(KAPPAS) if k >= self.kappa), len(KAPPAS) - 1)
        self._cache: dict[tuple[str, torch.dtype, int, bool], SqrtmBackend] = {}

    def options(self) -> dict[str, object]:
        return {"tol": self.tol, "kappa": self.kappa}

    def qualifying(self) -> list[str]:
        """Backends whose measured error is within ``tol`` up to ``kappa``."""
        return [name for name, errors in MEASURED_ERRORS.items() if errors[self._column] <= self.tol]

    def choose_name(self, device_type: str, n: int, *, onnx: bool = False) -> str:
        """The name picked for ``n x n`` matrices on ``device_type``; ``onnx=True`` leaves out
        ``eigh``, which does not export to ONNX (``auto`` picks so while an export traces it)."""
        order = SPEED_ORDER.get(device_type, SPEED_ORDER["cuda"])
        if n > LARGE_MATRIX:
            # ~100 O(n^3) products lose to one eigendecomposition once a single matrix is big.
            order = ("eigh", *[name for name in order if name != "eigh"])
        measured = [name for name in MEASURED_ERRORS if not (onnx and name == "eigh")]
        candidates = [name for name in order if name in self.qualifying() and name in measured]
        if candidates:
            return candidates[0]
        return min(measured, key=lambda name: MEASURED_ERRORS[name][self._column])

    def choose(self, A: Tensor) -> SqrtmBackend:
        """The configured backend ``auto`` uses for inputs like ``A``."""
        onnx = exporting_to_onnx()
        key = (A.device.type, A.dtype, A.shape[-1], onnx)
        if key not in self._cache:
            name = self.choose_name(A.device.type, A.shape[-1], onnx=onnx)
            self._cache[key] = get_backend(name, kappa=self.kappa) if name == "accurate" else get_backend(name)
        return self._cache[key]

    def explain(self, A: Tensor) -> str:
        """One line saying what ``auto`` picks for inputs like ``A`` and why."""
        chosen = self.choose(A)
        qualifying = self.qualifying()
        reason = f"fastest on {A.device.type} of {qualifying}" if qualifying else "most accurate; none qualifies"
        evidence = SPEED_EVIDENCE.get(A.device.type, SPEED_EVIDENCE["cuda"])
        return (
            f"auto picks {chosen.name} for {A.device.type} {A.dtype} {A.shape[-1]}x{A.shape[-1]}: "
            f"{reason} (error <= {self.tol:g} up to kappa {self.kappa:g}; speed order {evidence})"
        )

    def _compute_from(self, A: Tensor, inverse: bool, input_dtype: torch.dtype) -> Tensor:
        return self.choose(A)._compute_from(A, inverse, input_dtype)

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        return self.choose(A)._compute(A, inverse)
