r"""Colour transfer between two photographs by the optimal transport map between their pixel
Gaussians, with no download: the photographs are the two that scikit-learn installs
(``sklearn.datasets.load_sample_images``: ``china.jpg``, a temple, and ``flower.jpg``).

Each image's pixels are RGB points; their mean and 3 x 3 covariance define a Gaussian, and
:func:`sqrtlayers.gaussian_transport_map` gives the affine map that moves the input's Gaussian
onto the reference's at the least mean squared colour change. The written PNG shows, side by
side: the input, the reference, the input through that map, and, for comparison, the input
through the whitening and colouring transform (:func:`sqrtlayers.whitening_coloring`), which
matches the same mean and covariance but rotates the colours on the way.

Run from the repository root::

    python -m examples.colour_transfer --out docs/img/colour_transfer.png
    python -m examples.colour_transfer --input flower --reference china --out flower_as_china.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

import sqrtlayers as sl

__all__ = ["PHOTOGRAPHS", "load_photograph", "pixel_gaussian", "transfer_colours", "side_by_side", "main"]

#: The photographs scikit-learn ships, by name.
PHOTOGRAPHS = ("china", "flower")
LABEL_HEIGHT = 22


def load_photograph(name: str) -> Tensor:
    """The photograph ``name`` (one of :data:`PHOTOGRAPHS`) as ``(H, W, 3)`` float64 in ``[0, 1]``."""
    from sklearn.datasets import load_sample_images

    if name not in PHOTOGRAPHS:
        raise ValueError(f"photograph must be one of {PHOTOGRAPHS}, got {name!r}")
    images = load_sample_images()
    (index,) = [i for i, path in enumerate(images.filenames) if Path(path).stem == name]
    return torch.from_numpy(np.array(images.images[index])).double() / 255


def pixel_gaussian(image: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(3,)`` and covariance ``(3, 3)`` of the pixels of an ``(H, W, 3)`` image."""
    pixels = image.reshape(-1, 3)
    mean = pixels.mean(0)
    centred = pixels - mean
    return mean, centred.T @ centred / pixels.shape[0]


def transfer_colours(image: Tensor, reference: Tensor, method: str = "transport", backend: str = "eigh") -> Tensor:
    """``image`` ``(H, W, 3)`` with the colour mean and covariance of ``reference``, by the
    transport map (``method="transport"``) or by whitening and colouring (``"wct"``), clipped
    to ``[0, 1]``.

    Example:
        >>> import torch
        >>> image, reference = torch.rand(8, 8, 3, dtype=torch.float64), torch.rand(6, 5, 3, dtype=torch.float64) / 2
        >>> out = transfer_colours(image, reference)
        >>> out.shape, bool(out.min() >= 0) and bool(out.max() <= 1)
        (torch.Size([8, 8, 3]), True)
    """
    if method == "transport":
        transport = sl.gaussian_transport_map(*pixel_gaussian(image), *pixel_gaussian(reference), backend=backend)
        out = transport.apply(image.reshape(-1, 3))
    elif method == "wct":
        # Colour channels as the feature channels of a one-sample "feature map", pixels as positions.
        out = sl.whitening_coloring(image.reshape(1, -1, 3).mT, reference.reshape(1, -1, 3).mT, eps=0.0,
                                    backend=backend)[0].T  # fmt: skip
    else:
        raise ValueError(f"method must be 'transport' or 'wct', got {method!r}")
    return out.reshape(image.shape).clamp(0, 1)


def side_by_side(images: Sequence[Tensor], labels: Sequence[str], scale: float = 0.5) -> Image.Image:
    """The ``(H, W, 3)`` images in ``[0, 1]`` in one row, resized by ``scale``, each labelled above."""
    tiles = []
    for image in images:
        tile = Image.fromarray((image.numpy() * 255).round().astype(np.uint8))
        tiles.append(tile.resize((round(tile.width * scale), round(tile.height * scale)), Image.Resampling.LANCZOS))
    width = sum(tile.width for tile in tiles)
    canvas = Image.new("RGB", (width, max(tile.height for tile in tiles) + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    left = 0
    for tile, label in zip(tiles, labels):
        canvas.paste(tile, (left, LABEL_HEIGHT))
        draw.text((left + 6, 4), label, fill="black")
        left += tile.width
    return canvas


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Write the side-by-side PNG; print and return the Fréchet distances between pixel Gaussians."""
    parser = argparse.ArgumentParser(prog="python -m examples.colour_transfer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", choices=PHOTOGRAPHS, default="china", help="photograph to recolour (default: china)")
    parser.add_argument("--reference", choices=PHOTOGRAPHS, default="flower",
                        help="photograph whose colours to take (default: flower)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("colour_transfer.png"), help="PNG to write")
    parser.add_argument("--backend", default="eigh", help="square-root backend (default: eigh)")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="size of each panel relative to the photograph (default: 0.5)")  # fmt: skip
    args = parser.parse_args(argv)

    image, reference = load_photograph(args.input), load_photograph(args.reference)
    transported = transfer_colours(image, reference, "transport", args.backend)
    whitened_coloured = transfer_colours(image, reference, "wct", args.backend)
    target = pixel_gaussian(reference)
    distances = {
        "input": float(sl.frechet_distance(*pixel_gaussian(image), *target, backend=args.backend)),
        "transport": float(sl.frechet_distance(*pixel_gaussian(transported), *target, backend=args.backend)),
        "wct": float(sl.frechet_distance(*pixel_gaussian(whitened_coloured), *target, backend=args.backend)),
        # How far each result moved the colours: the transport map moves them least.
        "transport_shift": float((transported - image).square().sum(-1).mean()),
        "wct_shift": float((whitened_coloured - image).square().sum(-1).mean()),
    }
    labels = [f"input ({args.input})", f"reference ({args.reference})", "transport map", "whitening-colouring"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    side_by_side([image, reference, transported, whitened_coloured], labels, args.scale).save(args.out, optimize=True)
    print(
        f"squared Fréchet distance of the pixel colours to the reference's: input {distances['input']:.4f}, "
        f"transport map {distances['transport']:.2e}, whitening-colouring {distances['wct']:.2e} (after clipping "
        f"to [0, 1]); mean squared colour change: transport map {distances['transport_shift']:.4f}, "
        f"whitening-colouring {distances['wct_shift']:.4f}\nwrote {args.out}"
    )
    return distances


if __name__ == "__main__":
    main()
