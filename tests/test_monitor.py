"""Progress bars and callbacks on long fits (gaussmix._monitor)."""

import sys
import types
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import BayesianGaussianMixture, GaussianMixture
from gmm_data import make_blobs_data


@pytest.fixture
def X():
    return make_blobs_data(n=600, d=2, seed=0, sep=1.5)[0]


def _quiet_fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_callback_sees_every_iteration_and_changes_nothing(X, cls):
    seen = []
    got = _quiet_fit(cls(n_components=3, random_state=0, tol=1e-6), X, callback=seen.append)
    ref = _quiet_fit(cls(n_components=3, random_state=0, tol=1e-6), X)
    assert_array_equal(got.means_, ref.means_)
    assert [s["n_iter"] for s in seen] == list(range(1, ref.n_iter_ + 1))
    assert [s["lower_bound"] for s in seen] == ref.lower_bounds_
    assert seen[-1]["change"] == ref.lower_bounds_[-1] - ref.lower_bounds_[-2]


def test_a_callback_stops_the_fit_cleanly(X):
    stop_at = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is not a failure
        got = GaussianMixture(3, random_state=0, tol=0, n_init=3).fit(
            X, callback=lambda info: info["n_iter"] == stop_at)
    ref = _quiet_fit(GaussianMixture(3, random_state=0, tol=0, max_iter=stop_at), X)
    assert got.n_iter_ == stop_at and not got.converged_
    assert_array_equal(got.means_, ref.means_)  # the last complete parameters
    assert got.lower_bounds_ == ref.lower_bounds_


def test_stopping_ends_the_remaining_runs(X):
    inits = []

    def stop_in_second_run(info):
        inits.append(info["init"])
        return info["init"] == 1 and info["n_iter"] == 2

    _quiet_fit(GaussianMixture(2, random_state=0, n_init=4, tol=0, max_iter=5), X,
               callback=stop_in_second_run)
    assert sorted(set(inits)) == [0, 1] and inits.count(1) == 2


def test_callback_on_data_read_in_blocks(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    got = _quiet_fit(GaussianMixture(3, random_state=0), mm, callback=lambda info: info["n_iter"] == 2)
    assert got.n_iter_ == 2 and not got.converged_
    seen = []
    GaussianMixture(3, random_state=0).fit_chunks([X[:300], X[300:]], callback=seen.append)
    assert len(seen) >= 2 and seen[0]["n_iter"] == 1


class _FakeBar:
    made = []

    def __init__(self, total=None, desc="", unit="", leave=True):
        self.total, self.desc, self.n, self.closed, self.postfix = total, desc, 0, False, None
        _FakeBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix(self, refresh=True, **kw):
        self.postfix = kw

    def close(self):
        self.closed = True


def test_progress_bar_counts_iterations(monkeypatch, X):
    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = _FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    _FakeBar.made.clear()
    gm = _quiet_fit(GaussianMixture(3, random_state=0, n_init=2, max_iter=50), X, progress=True)
    (bar,) = _FakeBar.made
    assert bar.total == 100 and bar.desc == "GaussianMixture" and bar.closed
    assert 0 < bar.n <= 100 and "lower_bound" in bar.postfix
    assert gm.converged_


def test_progress_without_tqdm_warns_and_fits(monkeypatch, X):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.warns(UserWarning, match="pip install tqdm"):
        gm = _quiet_fit(GaussianMixture(2, random_state=0), X, progress=True)
    assert hasattr(gm, "means_")


def test_a_callback_that_is_not_callable_is_refused(X):
    with pytest.raises(TypeError, match="callback must be callable"):
        GaussianMixture(2).fit(X, callback=3)
    gm = GaussianMixture(2, random_state=0).fit(X)
    assert not hasattr(gm, "_monitor")  # nothing left behind
