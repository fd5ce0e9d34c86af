"""Argument checks at the layers' boundary: errors that name the argument, the bad value and what
is accepted, raised before any computation (as torch's own layers do)."""

from __future__ import annotations

from ..dtypes import check_real_floating

__all__ = ["check_real_floating", "check_images", "check_positive_int"]


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
