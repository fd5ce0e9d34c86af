"""What a run executes on: device and dtype, the TF32 switches, and a description of the machine
and software for the report."""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import sys
from typing import Any

import torch

__all__ = ["resolve_device", "resolve_dtype", "configure_tf32", "synchronize", "describe_environment"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a device; ``None`` reads ``$DEVICE``, and without it picks CUDA when available.

    Raises:
        ValueError: for a CUDA device on a machine without one.
    """
    name = name or os.environ.get("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch.cuda.is_available() is False")
    if device.type == "cuda" and device.index is not None:
        # CUDA events, streams and graph capture use the current device: make it this one.
        torch.cuda.set_device(device)
    return device


def resolve_dtype(name: str) -> torch.dtype:
    """``"float32"`` or ``"float64"`` as a torch dtype.

    Raises:
        ValueError: for any other name (the message lists the valid ones).
    """
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def configure_tf32(enabled: bool) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions, set explicitly both ways: cuDNN's default
    is on, and TF32 rounding changes both the times and the errors."""
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU, where calls are synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.import_module(module).__version__
    except Exception as exc:  # installed but broken (a CuPy built for another CUDA): say so
        return f"unusable: {type(exc).__name__}"


def describe_environment(device: torch.device, dtype: torch.dtype, tf32: bool) -> dict[str, Any]:
    """Software and hardware facts that a reader needs to compare two runs."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "tf32": tf32,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "has_matrix_sqrth": hasattr(torch.linalg, "matrix_sqrth"),
        # CuPy is imported only on CUDA, where it can be used (and its import is slow).
        "versions": {m: _version(m) for m in ("triton", "cupy") if m != "cupy" or device.type == "cuda"},
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
