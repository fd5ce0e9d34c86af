"""What a backend does while ``torch.onnx.export`` traces it: products-only paths, or a refusal.

ONNX has matrix products but no LU solve and no eigendecomposition. While the dynamo exporter
traces a model (``torch.onnx.export(..., dynamo=True)``), ``mpa`` and ``mpa-lya`` replace their
LU solve by the Newton-Schulz inverse of ``solver="newton"`` (matrix products only, the same
values to float32 rounding), and ``eigh``/``svd`` raise :class:`OnnxExportError` naming the
backends that export. Outside an export nothing changes. See README, "Deploying".
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

__all__ = ["OnnxExportError", "exporting_to_onnx", "refuse_onnx_export", "add_to_diagonal"]

#: The backends that export, by what they need: products, elementwise ops and reductions.
EXPORTABLE_BACKENDS = ("accurate", "auto", "mpa", "mpa-lya", "mtp", "mtp-lya", "ns", "ns-lya")


class OnnxExportError(RuntimeError):
    """Raised while exporting to ONNX a backend whose operations ONNX does not have."""


# The dynamo exporter's flag. Its strict capture traces with dynamo, which folds
# torch.onnx.is_in_onnx_export() to False, but reads a module attribute as it is.
_ONNX_FLAGS_MODULE = "torch.onnx._internal.exporter._flags"


def exporting_to_onnx() -> bool:
    """True while ``torch.onnx.export`` traces the caller (either exporter); no host sync."""
    if torch.onnx.is_in_onnx_export():
        return True
    flags = sys.modules.get(_ONNX_FLAGS_MODULE)
    return bool(getattr(flags, "_is_onnx_exporting", False))


def refuse_onnx_export(name: str, reason: str) -> None:
    """Raise :class:`OnnxExportError` for backend ``name``, saying ``reason``, if an ONNX export
    is tracing it."""
    if exporting_to_onnx():
        raise OnnxExportError(
            f"backend {name!r} does not export to ONNX: {reason}. Build the model with "
            f"backend='accurate' (matrix products only, eigh-class accuracy), or another of "
            f"{list(EXPORTABLE_BACKENDS)}"
        )


def add_to_diagonal(T: Tensor, value: float) -> Tensor:
    """``T + value * I``: in place on ``T`` (a fresh tensor nobody else holds), except under an
    ONNX export, whose graph must be functional (an in-place add on a diagonal view is not, and
    the exporter lowers ``diagonal_scatter`` to one); the values are the same either way."""
    if exporting_to_onnx():
        return T + value * torch.eye(T.shape[-1], dtype=T.dtype, device=T.device)
    T.diagonal(dim1=-2, dim2=-1).add_(value)
    return T
