"""Gaussian kernel sums on the grid (one and two dimensions), within their bound.

The grid answers a query only where its own error bound (expansion
remainder, reach, rounding) meets the tolerance; the other queries go to the
tree or the exact sum. Every value is compared with the exact sum.
"""

import math

import numpy as np
import pytest

from gaussmix import KernelDensity, _core, gaussian_kde
from gaussmix._kde_core import index_log_sums, log_kernel_norm
from test_kde_approx import adversarial, within_bound

TOLERANCES = [(0.0, 1e-10), (0.0, 1e-8), (0.0, 1e-6), (0.0, 1e-3), (1e-6, 0.0), (1e-12, 1e-5), (1e-4, 1e-2)]


def grid_sums(index, Q, scale, log_norm, atol, rtol, exclude_self=False, threads=2):
    out = np.empty(len(Q), dtype=index.train.dtype)
    log_atol = math.log(atol) - log_norm if atol > 0 else -math.inf
    work = index.log_sum(Q, "gaussian", scale, log_atol, rtol, exclude_self, 3, out, threads)
    return out, work


@pytest.mark.parametrize("d", [1, 2])
def test_grid_within_bound_on_adversarial_data(d):
    # clusters far apart and far from the origin, duplicates, zero weights,
    # queries in the tails and far away; bandwidths from tiny to huge
    rng = np.random.default_rng(100 + d)
    X, w, Q = adversarial(d, rng)
    total = float(w.sum())
    index = _core.KdeIndex(X, w, np.eye(d), 8, 2)
    served = 0
    for h in (1e-3, 0.05, 0.3, 2.0, 1e3):
        log_norm = log_kernel_norm("gaussian", d) - d * math.log(h) - math.log(total)
        exact = index_log_sums(index, Q, "gaussian", 2, scale=1 / h, method="exact")
        for atol, rtol in TOLERANCES:
            approx, work = grid_sums(index, Q, 1 / h, log_norm, atol, rtol)
            served += work["grid_queries"]
            ok = within_bound(approx, exact, log_norm, atol, rtol)
            assert ok.all(), (h, atol, rtol, np.flatnonzero(~ok)[:5], approx[~ok][:5], exact[~ok][:5])
    assert served > 0


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("atol,rtol", TOLERANCES)
def test_grid_serves_the_bulk_within_bound(d, atol, rtol):
    # a smooth density: nearly every query is answered by the grid
    rng = np.random.default_rng(7 * d)
    n = 12000
    X = np.vstack([rng.normal(size=(n // 2, d)), rng.standard_t(3, size=(n // 2, d)) + 2.0])
    Q = np.vstack([X[:1500] + 0.01, rng.normal(size=(500, d)) * 3.0])
    h = 0.5 * n ** (-1 / (d + 4))
    index = _core.KdeIndex(X, None, np.eye(d), 40, 2)
    log_norm = log_kernel_norm("gaussian", d) - d * math.log(h) - math.log(n)
    exact = index_log_sums(index, Q, "gaussian", 2, scale=1 / h, method="exact")
    approx, work = grid_sums(index, Q, 1 / h, log_norm, atol, rtol)
    assert within_bound(approx, exact, log_norm, atol, rtol).all()
    assert work["grid_queries"] >= 0.9 * len(Q)
    assert not np.array_equal(approx, exact)


@pytest.mark.parametrize("d", [1, 2])
def test_grid_leave_one_out_within_bound(d):
    rng = np.random.default_rng(3 + d)
    X = np.vstack([rng.normal(size=(3000, d)), rng.normal(size=(4, d)) * 0.01 + 40.0])  # an isolated clump
    X[10] = X[11]
    w = rng.random(len(X))
    w[5] = 0.0
    w[-1] = 1e6  # its neighbours' totals are mostly this point
    index = _core.KdeIndex(X, w, np.eye(d), 40, 2)
    for h, rtol in ((0.2, 1e-10), (0.05, 1e-6), (1.0, 1e-3)):
        exact = index_log_sums(index, X, "gaussian", 2, scale=1 / h, exclude_self=True, method="exact")
        approx, work = grid_sums(index, X, 1 / h, 0.0, 0.0, rtol, exclude_self=True)
        assert work["grid_queries"] > 0.9 * len(X)
        assert within_bound(approx, exact, 0.0, 0.0, rtol).all(), h


def test_grid_with_a_full_bandwidth_matrix():
    # gaussian_kde's covariance: the grid runs in whitened coordinates
    rng = np.random.default_rng(5)
    data = rng.multivariate_normal([1e4, -3.0], [[4.0, 3.9], [3.9, 4.0]], size=20000)
    Q = data[:3000] + rng.normal(size=(3000, 2)) * 0.1
    cov = np.cov(data.T) * 20000 ** (-1 / 3)
    whiten = np.linalg.inv(np.linalg.cholesky(cov)).T
    index = _core.KdeIndex(data, None, whiten, 40, 2)
    exact = index_log_sums(index, Q, "gaussian", 2, method="exact")
    for rtol in (1e-10, 1e-6):
        approx, work = grid_sums(index, Q, 1.0, 0.0, 0.0, rtol)
        assert work["grid_queries"] > 0.9 * len(Q)
        assert within_bound(approx, exact, 0.0, 0.0, rtol).all()


def test_grid_results_do_not_depend_on_threads():
    rng = np.random.default_rng(6)
    for d in (1, 2):
        X = rng.normal(size=(30000, d))
        index = _core.KdeIndex(X, rng.random(30000), np.eye(d), 40, 2)
        one, _ = grid_sums(index, X[:5000], 8.0, 0.0, 0.0, 1e-8, threads=1)
        two, _ = grid_sums(index, X[:5000], 8.0, 0.0, 0.0, 1e-8, threads=2)
        np.testing.assert_array_equal(one, two)


def test_grid_in_float32_within_bound_up_to_rounding():
    # float32 points give float32 sums: within the bound of the float64 sums
    # up to float32's rounding
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20000, 2))
    index64 = _core.KdeIndex(X, None, np.eye(2), 40, 1)
    index32 = _core.KdeIndex(X.astype(np.float32), None, np.eye(2), 40, 1)
    Q = X[:2000]
    exact = index_log_sums(index64, Q.astype(np.float32).astype(np.float64), "gaussian", 2, scale=6.0, method="exact")
    approx, work = grid_sums(index32, Q.astype(np.float32), 6.0, 0.0, 0.0, 1e-4)
    assert approx.dtype == np.float32 and work["grid_queries"] > 1900
    assert np.all(np.abs(np.expm1(approx.astype(np.float64) - exact)) <= 1e-4 + 1e-6)


def test_automatic_choice_takes_the_grid_for_many_queries_and_not_for_few():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(50000, 1))
    index = _core.KdeIndex(X, None, np.eye(1), 40, 2)
    out = np.empty(50000)
    many = index.log_sum(X, "gaussian", 15.0, -math.inf, 1e-8, False, 2, out, 2)
    assert many["grid_queries"] >= 49000
    few = index.log_sum(X[:3], "gaussian", 15.0, -math.inf, 1e-8, False, 2, out[:3], 2)
    assert few["grid_queries"] == 0
    # other kernels and dimensions never take it
    out3 = np.empty(2000)
    X3 = rng.normal(size=(50000, 3))
    index3 = _core.KdeIndex(X3, None, np.eye(3), 40, 2)
    assert index3.log_sum(X3[:2000], "gaussian", 5.0, -math.inf, 1e-6, False, 3, out3, 2)["grid_queries"] == 0
    assert index.log_sum(X[:2000], "epanechnikov", 5.0, -math.inf, 1e-6, False, 3, out3, 2)["grid_queries"] == 0


def test_estimators_use_the_grid_and_stay_within_bound():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(12000, 2))
    Q = rng.normal(size=(4000, 2)) * 1.5
    exact = KernelDensity(bandwidth=0.1).fit(X).score_samples(Q)
    kde = KernelDensity(bandwidth=0.1, rtol=1e-7).fit(X)
    assert within_bound(kde.score_samples(Q), exact, 0.0, 0.0, 1e-7).all()
    data = X.T
    f = gaussian_kde(data, rtol=1e-9).logpdf(Q.T)
    assert within_bound(f, gaussian_kde(data).logpdf(Q.T), 0.0, 0.0, 1e-9).all()


def test_cv_ml_on_the_grid_chooses_the_exact_bandwidth(monkeypatch):
    from gaussmix import _kde_core, select_bandwidth

    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(size=3000), rng.normal(size=1000) * 0.2 + 4.0])[:, None]
    exact = select_bandwidth(X, "cv_ml")
    served = []
    real = _core.KdeIndex.log_sum

    class Spy:
        def __init__(self, index):
            self.index = index
            self.train, self.whiten = index.train, index.whiten

        def log_sum(self, *args):
            work = self.index.log_sum(*args)
            served.append(work["grid_queries"])
            return work

    monkeypatch.setattr(_kde_core, "CV_TREE_MIN_N", 0)
    build = _kde_core.build_index
    monkeypatch.setattr(_kde_core, "build_index", lambda *a: Spy(build(*a)))
    import gaussmix._kde as kde_module

    monkeypatch.setattr(kde_module, "build_index", lambda *a: Spy(build(*a)))
    approx = select_bandwidth(X, "cv_ml")
    assert served and min(served) >= 3900
    assert abs(approx - exact) <= 1e-6 * exact
    assert real is _core.KdeIndex.log_sum
