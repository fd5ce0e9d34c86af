"""Argument checks at the layers' boundary: errors that name the argument, the bad value and what
is accepted, raised before any computation (as torch's own layers do)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_real_floating", "check_images", "check_positive_int"]


def check_real_floating(value: object, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a real floating-point tensor, the inputs every
    backend computes on (integer, bool and complex tensors are refused).

    Example:
        >>> import torch
        >>> from sqrtlayers.layers.input_checks import check_real_floating
        >>> check_real_floating(torch.ones(2, dtype=torch.int64), "input")
        Traceback (most recent call last):
        ...
        TypeError: input must be a real floating-point tensor (float16, bfloat16, float32 or float64), got dtype torch.int64
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_complex() or not value.is_floating_point():
        raise TypeError(
            f"{name} must be a real floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {value.dtype}"
        )


def check_images(images: object) -> None:
    """Raise unless ``images`` is a real floating-point ``(N, C, H, W)`` tensor: the input of a
    whole network, checked before its first layer turns a bad one into an error of its own."""
    check_real_floating(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an ``int >= 1`` (``bool`` refused), else raise ``TypeError`` or
    ``ValueError`` echoing it.

    Example:
        >>> from sqrtlayers.layers.input_checks import check_positive_int
        >>> check_positive_int(0, "num_classes")
        Traceback (most recent call last):
        ...
        ValueError: num_classes must be an int >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value
