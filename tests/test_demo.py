"""The demo: a side-by-side fit with scikit-learn, and a picture of new digits."""

import io

import numpy as np
import pytest

from gaussmix.__main__ import demo
from gaussmix._pictures import png_bytes, read_png, tile


def test_demo_agrees_with_scikit_learn_and_draws_digits(tmp_path):
    out = io.StringIO()
    path = tmp_path / "digits.png"
    agreement = demo(n_components=4, n_pca=8, repeat=1, out=out, picture=str(path))
    assert agreement["bic_rel_diff"] < 1e-8 and agreement["ari"] > 0.999
    image = read_png(path.read_bytes())
    # three bands of two rows of eleven 8x8 digits at 4x, 2-pixel gaps, 12-pixel spacers
    assert image.shape == (3 * (2 * 34 + 2) + 2 * 12, 11 * 34 + 2)
    assert image.min() < 64 and image.max() == 255  # ink on a light background
    bands = [image[y:y + 70] for y in (0, 82, 164)]
    assert all(np.count_nonzero(b < 128) > 500 for b in bands)  # every band has digits in it
    assert str(path) in out.getvalue()


def test_png_round_trip_and_layout():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(7, 13), dtype=np.uint8)
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(read_png(data), image)
    corrupted = bytearray(data)
    corrupted[40] ^= 0xFF
    with pytest.raises(ValueError, match="CRC"):
        read_png(bytes(corrupted))
    grid = tile(np.ones((3, 2, 2)), columns=2, scale=3, gap=1)
    assert grid.shape == (2 * 7 + 1, 2 * 7 + 1)
    assert np.all(grid[1:7, 1:7] == 0) and np.all(grid[8:14, 8:14] == 255)  # the fourth cell is empty
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2)))
