"""Argument checks at the layers' boundary: errors that name the argument, the bad value and what
is accepted, raised before any computation (as torch's own layers do)."""

from __future__ import annotations

from ..backends.base import check_positive_int
from ..dtypes import check_real_floating

__all__ = ["check_real_floating", "check_images", "check_positive_int"]


def check_images(images: object) -> None:
    """Raise unless ``images`` is a real floating-point ``(N, C, H, W)`` tensor: the input of a
    whole network, checked before its first layer turns a bad one into an error of its own."""
    check_real_floating(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")

