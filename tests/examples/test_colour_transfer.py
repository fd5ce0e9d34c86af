"""The colour transfer example: one command, no download, a PNG with the four panels, and the
transport map's two promises on the photographs (the reference's colour statistics, and the
least colour change of the maps that give them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from examples.colour_transfer import load_photograph, main, pixel_gaussian, transfer_colours


def test_the_command_writes_the_side_by_side_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "panels.png"
    distances = main(["--out", str(out), "--scale", "0.1"])
    with Image.open(out) as png:
        # Four 64 x 43 panels (640 x 427 photographs at 0.1) under a label strip.
        assert png.size == (4 * 64, 43 + 22) and png.mode == "RGB"
    assert f"wrote {out}" in capsys.readouterr().out
    # The colours moved onto the reference's Gaussian (clipping to [0, 1] leaves a little).
    assert distances["transport"] < 0.05 * distances["input"]
    assert distances["wct"] < 0.05 * distances["input"]
    # Both reach the same Gaussian; the transport map by the smaller change.
    assert distances["transport_shift"] < distances["wct_shift"]


def test_unclipped_transport_gives_the_reference_statistics_exactly() -> None:
    image, reference = load_photograph("flower")[::4, ::4], load_photograph("china")[::4, ::4]
    mean_a, cov_a = pixel_gaussian(image)
    mean_b, cov_b = pixel_gaussian(reference)
    import sqrtlayers as sl

    moved = sl.gaussian_transport_map(mean_a, cov_a, mean_b, cov_b, backend="eigh").apply(image.reshape(-1, 3))
    mean, cov = pixel_gaussian(moved.reshape(image.shape))
    torch.testing.assert_close(mean, mean_b)
    torch.testing.assert_close(cov, cov_b)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"photograph must be one of \('china', 'flower'\), got 'lena'"):
        load_photograph("lena")
    with pytest.raises(ValueError, match="method must be 'transport' or 'wct', got 'hist'"):
        transfer_colours(torch.rand(2, 2, 3), torch.rand(2, 2, 3), method="hist")


def test_docstring_examples() -> None:
    import doctest

    import examples.colour_transfer

    result = doctest.testmod(examples.colour_transfer)
    assert result.failed == 0 and result.attempted >= 2
