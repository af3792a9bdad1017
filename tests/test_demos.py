"""The other demos (gaussmix._demos), headless and small: what they find,
and that their pictures are real, non-blank PNG files."""

import io
import sys

import numpy as np
import pytest

from gaussmix import _demos


def _check_png(path):
    plt = pytest.importorskip("matplotlib.pyplot")
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.std(image[..., :3])) > 0.05  # not blank


def test_select_demo_finds_the_four_sheared_clusters(tmp_path):
    out = io.StringIO()
    sel = _demos.select(n=1200, picture=str(tmp_path / "s.png"), out=out)
    assert sel.best_params_ == {"covariance_type": "tied", "n_components": 4}
    _check_png(tmp_path / "s.png")
    assert "chosen" in out.getvalue()


def test_kde_demo_data_driven_bandwidths_beat_the_rules_on_two_scales(tmp_path):
    errors = _demos.kde(n=1500, picture=str(tmp_path / "k.png"), out=io.StringIO())
    assert max(errors["cv_ml"], errors["isj"]) < min(errors["scott"], errors["silverman"])
    _check_png(tmp_path / "k.png")


def test_bayes_demo_switches_components_off(tmp_path):
    weights = _demos.bayes(n=900, picture=str(tmp_path / "b.png"), out=io.StringIO())
    assert np.sum(weights > 0.01) == 3 and weights.sum() == pytest.approx(1.0)
    _check_png(tmp_path / "b.png")


def test_big_demo_fits_a_memory_map(capsys):
    gm = _demos.big(n=20_000, d=3, k=3, progress=False)
    assert gm.converged_ and gm.means_.dtype == np.float32
    assert "read in blocks" in capsys.readouterr().out


def test_demos_without_matplotlib_say_how_to_get_pictures(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = io.StringIO()
    _demos.bayes(n=600, picture=str(tmp_path / "b.png"), out=out)
    assert "pip install gaussmix[plot]" in out.getvalue()
    assert not (tmp_path / "b.png").exists()
