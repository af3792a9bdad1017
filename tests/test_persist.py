"""Saved models (GaussianMixture.to_file / from_file) and the shell commands
gaussmix fit / score / predict."""

import json
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gaussmix import GaussianMixture
from gaussmix.__main__ import main


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-3, 1, (400, 3)), rng.normal(3, 0.5, (300, 3))])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_saved_model_gives_the_same_answers(tmp_path, X, covariance_type, dtype):
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=np.random.RandomState(0),
                         means_init=[[-3, -3, -3], [3, 3, 3]]).fit(X.astype(dtype))
    gm.to_file(tmp_path / "model.npz")
    back = GaussianMixture.from_file(tmp_path / "model.npz")
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        got, want = getattr(back, name), getattr(gm, name)
        assert got.dtype == want.dtype
        assert_array_equal(got, want)
    assert (back.converged_, back.n_iter_, back.lower_bound_, back.lower_bounds_) == (
        gm.converged_, gm.n_iter_, gm.lower_bound_, gm.lower_bounds_)
    assert back.covariance_type == covariance_type and back.means_init == gm.means_init
    assert back.random_state is None  # a RandomState instance is not kept
    assert_array_equal(back.score_samples(X), gm.score_samples(X))
    assert_array_equal(back.predict(X), gm.predict(X))


def _rewrite(path, **change):
    with np.load(path) as f:
        contents = {name: f[name] for name in f.files}
    meta = json.loads(str(contents["__meta__"]))
    for key, value in change.items():
        if key in meta:
            meta[key] = value
        else:
            contents[key] = value
    contents["__meta__"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **contents)


def test_bad_files_are_named_clearly(tmp_path, X):
    path = tmp_path / "model.npz"
    GaussianMixture(2, random_state=0).fit(X).to_file(path)
    _rewrite(path, format_version=99)
    with pytest.raises(ValueError, match="format version 99 .*reads version 1"):
        GaussianMixture.from_file(path)
    GaussianMixture(2, random_state=0).fit(X).to_file(path)
    _rewrite(path, means_=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"means_ has shape \(3, 3\), but 2 'full' components in 3 features need \(2, 3\)"):
        GaussianMixture.from_file(path)
    np.save(tmp_path / "plain.npy", X)
    with pytest.raises(ValueError, match="not a gaussmix model file"):
        GaussianMixture.from_file(tmp_path / "plain.npy")
    with pytest.raises(Exception, match="not fitted"):
        GaussianMixture(2).to_file(path)


@pytest.mark.filterwarnings("ignore:progress=True shows a progress bar")
def test_fit_score_predict_from_the_shell(tmp_path, X, capsys):
    np.save(tmp_path / "X.npy", X)
    model, logp, labels = tmp_path / "m.npz", tmp_path / "logp.npy", tmp_path / "labels.npy"
    assert main(["fit", str(tmp_path / "X.npy"), "--components", "2", "--covariance-type", "diag",
                 "--random-state", "0", "--progress", "--out", str(model)]) == 0
    assert main(["score", str(model), str(tmp_path / "X.npy"), "--out", str(logp)]) == 0
    assert main(["predict", str(model), str(tmp_path / "X.npy"), "--out", str(labels)]) == 0
    ref = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    np.testing.assert_allclose(np.load(logp), ref.score_samples(X), rtol=1e-10)
    assert_array_equal(np.load(labels), ref.predict(X))
    assert "saved to" in capsys.readouterr().out


def test_shell_errors_name_the_problem(tmp_path, X, capsys):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "X4.npy", np.ones((10, 4)))
    model = tmp_path / "m.npz"
    assert main(["fit", str(tmp_path / "X.npy"), "--components", "2", "--out", str(model)]) == 0
    assert main(["score", str(model), str(tmp_path / "X4.npy"), "--out", str(tmp_path / "o.npy")]) == 2
    assert "X4.npy has 4 features; the model was fitted on 3" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o.npy")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_the_console_script_runs(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    run = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(tmp_path / "X.npy"), "--components", "2",
                          "--out", str(tmp_path / "m.npz")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert GaussianMixture.from_file(tmp_path / "m.npz").means_.shape == (2, 3)
