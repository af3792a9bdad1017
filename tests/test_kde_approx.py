"""Approximate kernel sums: every value within its certified bound.

The tolerance semantics are scikit-learn's, made true: for every query,
|f - f_exact| <= atol + rtol * f_exact on the (normalised) density. The
battery below forces the engine's k-d tree (small leaves, so that node
approximations, pruning and the budget carried between nodes are all
exercised) on adversarial data and compares with the exact sums.
"""

import math
import pickle

import numpy as np
import pytest

from gaussmix import KernelDensity, _core, gaussian_kde
from gaussmix._kde_core import KERNELS, index_log_sums, log_kernel_norm

# The exact sums themselves round: a few units in the 15th digit.
ROUNDING = 1e-12


def within_bound(approx_log, exact_log, log_norm, atol, rtol):
    """|f - f_exact| <= atol + rtol f_exact for f = exp(log_norm + log sum),
    checked in log space where the densities underflow."""
    a = np.asarray(approx_log, dtype=np.float64) + log_norm
    e = np.asarray(exact_log, dtype=np.float64) + log_norm
    both_zero = np.isneginf(a) & np.isneginf(e)
    fa, fe = np.exp(a), np.exp(e)
    linear_ok = np.abs(fa - fe) <= atol + rtol * fe + ROUNDING * fe + 1e-300
    if atol == 0:
        # f/f_exact in [1 - rtol, 1 + rtol], also where exp underflows (far
        # from the data a log-density of -1e10 is itself only known to 1e-6)
        with np.errstate(invalid="ignore"):
            d = a - e
            slack = ROUNDING + 4e-16 * np.abs(e)
        log_ok = (d <= math.log1p(rtol) + slack) & (d >= math.log1p(-rtol) - slack)
        ok = both_zero | log_ok
    else:
        ok = both_zero | linear_ok
    return ok


def adversarial(d, rng):
    """Clusters far apart, repeated rows, zero weights."""
    centres = rng.normal(size=(4, d)) * 8.0
    X = centres[rng.integers(4, size=600)] + rng.normal(size=(600, d)) * rng.choice([0.05, 1.0], size=(600, 1))
    X[:40] = X[40]  # duplicates
    X[40:60] = X[60:80] * (1 + 1e-15)  # near duplicates
    X += 1e6  # far from the origin
    w = rng.gamma(1.0, size=600)
    w[::7] = 0.0
    Q = np.vstack(
        [
            X[rng.integers(600, size=60)],  # on training points
            X[rng.integers(600, size=60)] + rng.normal(size=(60, d)) * 0.5,
            X.mean(axis=0) + rng.normal(size=(30, d)) * 12.0,  # tails
            X.mean(axis=0) + 300.0 * rng.normal(size=(10, d)),  # far away
        ]
    )
    return X, w, Q


TOLERANCES = [(0.0, 1e-3), (0.0, 1e-8), (1e-6, 0.0), (1e-4, 1e-2)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_tree_within_bound_on_adversarial_data(kernel, d):
    rng = np.random.default_rng(d)
    X, w, Q = adversarial(d, rng)
    total = float(w.sum())
    index = _core.KdeIndex(X, w, np.eye(d), 8, 2)
    for h in (1e-3, 0.3, 2.0, 1e3):
        log_norm = log_kernel_norm(kernel, d) - d * math.log(h) - math.log(total)
        exact = index_log_sums(index, Q, kernel, 2, scale=1 / h, method="exact")
        for atol, rtol in TOLERANCES:
            approx = index_log_sums(index, Q, kernel, 2, scale=1 / h, log_norm=log_norm, atol=atol, rtol=rtol,
                                    method="tree")
            ok = within_bound(approx, exact, log_norm, atol, rtol)
            assert ok.all(), (h, atol, rtol, np.flatnonzero(~ok)[:5], approx[~ok][:5], exact[~ok][:5])


@pytest.mark.parametrize("kernel,scale", [("gaussian", 10.0), ("exponential", 10.0), ("epanechnikov", 1.0)])
def test_tree_approximates_somewhere(kernel, scale):
    # the battery would pass with an exact tree: make sure node bounds are used
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 2))
    index = _core.KdeIndex(X, None, np.eye(2), 16, 2)
    out, tight = np.empty(300), np.empty(300)
    work = index.log_sum(X[:300], kernel, scale, -np.inf, 1e-3, False, 1, out, 2)
    pruned_only = index.log_sum(X[:300], kernel, scale, -np.inf, 0.0, False, 1, tight, 2)
    assert work["tree_queries"] == 300
    assert work["leaf_points"] < 0.7 * pruned_only["leaf_points"]
    exact = index_log_sums(index, X[:300], kernel, 2, scale=scale, method="exact")
    assert not np.array_equal(out, exact)
    assert np.all(within_bound(out, exact, 0.0, 0.0, 1e-3))
    assert np.all(within_bound(tight, exact, 0.0, 0.0, 0.0))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_taylor_expansions_within_bound(d):
    # Gaussian sums in D <= 3 also take nodes' Taylor expansions (their
    # moments are made when there are enough queries to pay for them)
    rng = np.random.default_rng(20 + d)
    X, w, Q = adversarial(d, rng)
    X = np.vstack([X, rng.normal(size=(3000, d)) * 0.3 + X[0]])  # a dense clump
    w = np.concatenate([w, rng.random(3000)])
    Q = np.vstack([Q] * 8 + [X[600:] + rng.normal(size=(3000, d)) * 0.1] * 5)
    total = float(w.sum())
    index = _core.KdeIndex(X, w, np.eye(d), 16, 2)
    expansions = 0
    for h in (0.05, 0.5):
        log_norm = -d * math.log(h) - math.log(total) + log_kernel_norm("gaussian", d)
        exact = index_log_sums(index, Q, "gaussian", 2, scale=1 / h, method="exact")
        for atol, rtol in TOLERANCES:
            out = np.empty(len(Q))
            log_atol = math.log(atol) - log_norm if atol > 0 else -np.inf
            expansions += index.log_sum(Q, "gaussian", 1 / h, log_atol, rtol, False, 1, out, 2)["expansions"]
            ok = within_bound(out, exact, log_norm, atol, rtol)
            assert ok.all(), (h, atol, rtol, np.flatnonzero(~ok)[:5])
    assert expansions > 0


@pytest.mark.parametrize("kernel", KERNELS)
def test_leave_one_out_within_bound(kernel):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(500, 2)), rng.normal(size=(5, 2)) + 50.0])
    X[10] = X[11]
    w = rng.random(len(X))
    w[3] = 0.0
    index = _core.KdeIndex(X, w, np.eye(2), 8, 1)
    exact = index_log_sums(index, X, kernel, 1, scale=1 / 0.7, exclude_self=True, method="exact")
    approx = index_log_sums(index, X, kernel, 1, scale=1 / 0.7, rtol=1e-4, exclude_self=True, method="tree")
    assert np.array_equal(np.isneginf(exact), np.isneginf(approx))
    assert np.all(within_bound(approx, exact, 0.0, 0.0, 1e-4))


def test_full_whitening_within_bound():
    rng = np.random.default_rng(2)
    cov = np.array([[4.0, 3.9], [3.9, 4.0]])
    X = rng.multivariate_normal([0, 0], cov, size=3000) + [1e5, -1e5]
    chol = np.linalg.cholesky(cov * 0.05)
    u = np.linalg.inv(chol).T.copy()
    index = _core.KdeIndex(X, None, u, 16, 2)
    Q = X[:400] + rng.normal(size=(400, 2))
    exact = index_log_sums(index, Q, "gaussian", 2, method="exact")
    for atol, rtol in TOLERANCES:
        approx = index_log_sums(index, Q, "gaussian", 2, atol=atol, rtol=rtol, method="tree")
        assert within_bound(approx, exact, 0.0, atol, rtol).all()


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 3))
    Q = rng.normal(size=(3000, 3))
    index = _core.KdeIndex(X, None, np.eye(3), 32, 1)
    for method in ("tree", "auto"):
        one = index_log_sums(index, Q, "gaussian", 1, scale=3.0, rtol=1e-5, method=method)
        two = index_log_sums(index, Q, "gaussian", 2, scale=3.0, rtol=1e-5, method=method)
        np.testing.assert_array_equal(one, two)


def test_cost_model_sums_exactly_where_the_tree_does_not_pay():
    # 30-D noise with a bandwidth as wide as the data: nothing can be pruned
    rng = np.random.default_rng(4)
    X = rng.random(size=(4000, 30))
    Q = rng.random(size=(2000, 30))
    index = _core.KdeIndex(X, None, np.eye(30), 256, 2)
    out = np.empty(2000)
    work = index.log_sum(Q, "gaussian", 1.0, -np.inf, 1e-3, False, 2, out, 2)
    assert 0 < work["tree_queries"] < 0.1 * 2000  # only the pilot ran on the tree
    exact = index_log_sums(index, Q, "gaussian", 2, method="exact")
    pilot = np.zeros(2000, bool)
    pilot[:: max(1, min(2000 // 16, 32))] = True
    np.testing.assert_array_equal(out[~pilot], exact[~pilot])
    assert within_bound(out, exact, 0.0, 0.0, 1e-3).all()


def test_cost_model_takes_the_tree_where_it_pays():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20000, 2))
    index = _core.KdeIndex(X, None, np.eye(2), 256, 2)
    out = np.empty(2000)
    work = index.log_sum(X[:2000], "gaussian", 1 / 0.05, -np.inf, 1e-6, False, 2, out, 2)
    assert work["tree_queries"] == 2000


def test_index_pickles_and_keeps_the_training_array():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1000, 2))
    w = rng.random(1000)
    index = _core.KdeIndex(X, w, np.eye(2), 40, 1)
    assert index.train is X
    back = pickle.loads(pickle.dumps(index))
    for method in ("exact", "tree"):
        a = index_log_sums(index, X[:50], "epanechnikov", 1, scale=2.0, rtol=1e-3, method=method)
        b = index_log_sums(back, X[:50], "epanechnikov", 1, scale=2.0, rtol=1e-3, method=method)
        np.testing.assert_array_equal(a, b)


def test_float32_index_within_bound_up_to_rounding():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 2))
    i64 = _core.KdeIndex(X, None, np.eye(2), 16, 1)
    i32 = _core.KdeIndex(X.astype(np.float32), None, np.eye(2), 16, 1)
    exact = index_log_sums(i64, X[:200], "gaussian", 1, scale=2.0, method="exact")
    approx = index_log_sums(i32, X[:200].astype(np.float32), "gaussian", 1, scale=2.0, rtol=1e-4, method="tree")
    assert approx.dtype == np.float32
    # the float32 inputs and output add their own rounding to the bound
    assert np.all(np.abs(approx.astype(np.float64) - exact) <= -math.log1p(-1e-4) + 1e-5)


def test_index_rejects_bad_arguments():
    X = np.zeros((10, 2)) + np.arange(10)[:, None]
    index = _core.KdeIndex(X, None, np.eye(2), 4, 1)
    out = np.empty(3)
    with pytest.raises(ValueError, match="scale"):
        index.log_sum(X[:3], "gaussian", -1.0, -np.inf, 0.0, False, 1, out, 1)
    with pytest.raises(ValueError, match="tolerances"):
        index.log_sum(X[:3], "gaussian", 1.0, -np.inf, -1.0, False, 1, out, 1)
    with pytest.raises(ValueError, match="shape"):
        index.log_sum(X[:3, :1].copy(), "gaussian", 1.0, -np.inf, 0.0, False, 1, out, 1)
    with pytest.raises(ValueError, match="kernel"):
        index.log_sum(X[:3], "boxcar", 1.0, -np.inf, 0.0, False, 1, out, 1)
    with pytest.raises(ValueError, match="leaf_size"):
        _core.KdeIndex(X, None, np.eye(2), 0, 1)
    with pytest.raises(ValueError, match="training set"):
        index.log_sum(X[:3], "gaussian", 1.0, -np.inf, 0.0, True, 1, out, 1)


# -- the estimators ---------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("atol,rtol", TOLERANCES)
def test_kernel_density_honours_its_tolerance(kernel, atol, rtol):
    rng = np.random.default_rng(8)
    X = np.vstack([rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)) * 0.1 + 6.0])
    Q = np.vstack([X[:500] + 0.1, rng.normal(size=(100, 2)) * 20.0])
    exact = KernelDensity(kernel=kernel, bandwidth=0.2).fit(X).score_samples(Q)
    approx = KernelDensity(kernel=kernel, bandwidth=0.2, atol=atol, rtol=rtol).fit(X).score_samples(Q)
    assert within_bound(approx, exact, 0.0, atol, rtol).all()


def test_kernel_density_default_stays_exact():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(20000, 2))
    kde = KernelDensity(bandwidth=0.05).fit(X)
    exact = index_log_sums(kde._index, X[:3000], "gaussian", 2, scale=20.0, method="exact")
    log_norm = log_kernel_norm("gaussian", 2) - 2 * math.log(0.05) - math.log(20000)
    np.testing.assert_array_equal(kde.score_samples(X[:3000]), exact + log_norm)
    # with a tolerance, this case runs on the tree: not the exact bits, within the bound
    approx = KernelDensity(bandwidth=0.05, rtol=1e-6).fit(X).score_samples(X[:3000])
    assert not np.array_equal(approx, exact + log_norm)
    assert within_bound(approx, exact + log_norm, 0.0, 0.0, 1e-6).all()


def test_kernel_density_with_tolerance_pickles():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(2000, 3))
    kde = KernelDensity(bandwidth=0.3, rtol=1e-4).fit(X)
    first = kde.score_samples(X[:100])
    back = pickle.loads(pickle.dumps(kde))
    np.testing.assert_array_equal(back.score_samples(X[:100]), first)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("atol,rtol", TOLERANCES)
def test_gaussian_kde_fast_path_within_bound(d, atol, rtol):
    rng = np.random.default_rng(11 + d)
    cov = np.full((d, d), 0.8) + 0.2 * np.eye(d)
    data = rng.multivariate_normal(np.zeros(d), cov, size=4000).T
    weights = rng.random(4000)
    points = np.hstack([data[:, :300] + 0.05, rng.normal(size=(d, 50)) * 10.0])
    exact = gaussian_kde(data, weights=weights)
    fast = gaussian_kde(data, weights=weights, atol=atol, rtol=rtol)
    assert within_bound(fast.logpdf(points), exact.logpdf(points), 0.0, atol, rtol).all()
    f, e = fast(points), exact(points)
    assert np.all(np.abs(f - e) <= atol + rtol * e + ROUNDING * e)
    # the tolerance survives a new bandwidth and a marginal
    fast.set_bandwidth(0.5)
    exact.set_bandwidth(0.5)
    assert within_bound(fast.logpdf(points), exact.logpdf(points), 0.0, atol, rtol).all()
    if d > 1:
        m = fast.marginal([0])
        assert (m.atol, m.rtol) == (atol, rtol)


def test_gaussian_kde_default_is_exact_and_cached():
    rng = np.random.default_rng(12)
    data = rng.normal(size=(2, 500))
    kde = gaussian_kde(data)
    points = rng.normal(size=(2, 300))  # past the small evaluations summed in long double
    first = kde.logpdf(points)
    index = kde._index[3]
    np.testing.assert_array_equal(kde.logpdf(points), first)
    assert kde._index[3] is index  # one index while nothing changes
    kde.set_bandwidth(0.3)
    kde.logpdf(points)
    assert kde._index[3] is not index  # a new bandwidth, a new index


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf")])
def test_gaussian_kde_rejects_bad_tolerances(bad):
    data = np.arange(10.0)
    with pytest.raises(ValueError, match="rtol must be a non-negative finite number"):
        gaussian_kde(data, rtol=bad)
    with pytest.raises(ValueError, match="atol must be a non-negative finite number"):
        gaussian_kde(data, atol=bad)
    with pytest.raises(TypeError, match="atol must be a non-negative real number"):
        gaussian_kde(data, atol="1e-3")


@pytest.mark.parametrize("kernel,n", [("gaussian", 3000), ("exponential", 2000), ("epanechnikov", 800)])
@pytest.mark.parametrize("d", [1, 2])
def test_cv_ml_on_the_tree_chooses_the_exact_bandwidth(monkeypatch, kernel, n, d):
    from gaussmix import _kde_core, select_bandwidth

    rng = np.random.default_rng(30 + d)
    X = np.vstack([rng.normal(size=(n // 2, d)), rng.normal(size=(n - n // 2, d)) * 0.3 + 3.0])
    exact = select_bandwidth(X, "cv_ml", kernel=kernel)
    tolerances = []
    real = _kde_core.index_log_sums

    def spy(*args, **kwargs):
        tolerances.append(kwargs.get("rtol", 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(_kde_core, "CV_TREE_MIN_N", 0)  # the tree from any size
    monkeypatch.setattr(_kde_core, "index_log_sums", spy)
    approx = select_bandwidth(X, "cv_ml", kernel=kernel)
    assert tolerances and set(tolerances) == {_kde_core.CV_RTOL}
    assert abs(approx - exact) <= 1e-6 * exact


def test_gaussian_kde_cv_ml_on_the_tree_chooses_the_exact_factor(monkeypatch):
    from gaussmix import _kde_core

    rng = np.random.default_rng(40)
    data = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], size=3000).T
    exact = gaussian_kde(data, bw_method="cv_ml").factor
    monkeypatch.setattr(_kde_core, "CV_TREE_MIN_N", 0)
    approx = gaussian_kde(data, bw_method="cv_ml").factor
    assert abs(approx - exact) <= 1e-6 * exact


@pytest.mark.parametrize("kernel", ["tophat", "gaussian", "epanechnikov", "linear"])
def test_leave_one_out_when_the_own_weight_dominates(kernel):
    # a node's weight without the query's own point is a cancellation: a
    # neighbour of weight 1.5e-16 next to an own weight of 1
    X = np.array([[0.0], [0.01], [9.0], [9.01]])
    for w in (np.array([1.0, 1.5e-16, 1.0, 1.0]), np.array([1.0, 1e-17, 1.0, 1.0])):
        index = _core.KdeIndex(X, w, np.eye(1), 2, 1)
        exact = index_log_sums(index, X, kernel, 1, exclude_self=True, method="exact")
        approx = index_log_sums(index, X, kernel, 1, rtol=1e-6, exclude_self=True, method="tree")
        assert np.array_equal(np.isneginf(exact), np.isneginf(approx))
        assert within_bound(approx, exact, 0.0, 0.0, 1e-6).all()


def test_epanechnikov_moments_far_from_the_origin():
    # the node moments' centroid rounds at 1e10: its error is charged to the bound
    rng = np.random.default_rng(50)
    X = rng.random((3000, 1)) * 1e-3 + 1e10
    index = _core.KdeIndex(X, None, np.eye(1), 16, 1)
    exact = index_log_sums(index, X[:300], "epanechnikov", 1, scale=1e5, method="exact")
    approx = index_log_sums(index, X[:300], "epanechnikov", 1, scale=1e5, rtol=1e-9, method="tree")
    assert within_bound(approx, exact, 0.0, 0.0, 1e-9).all()


def test_index_refuses_weights_summing_to_infinity_and_foreign_leave_one_out_queries():
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="sums to infinity"):
        _core.KdeIndex(X, np.array([1e308, 1e308, 1.0, 1.0]), np.eye(2), 2, 1)
    index = _core.KdeIndex(X, None, np.eye(2), 2, 1)
    with pytest.raises(ValueError, match="training set as queries"):
        index.log_sum(X + 0.5, "gaussian", 1.0, -np.inf, 0.0, True, 0, np.empty(4), 1)
