"""gaussmix.gaussian_kde against scipy.stats.gaussian_kde and numpy references."""

import doctest
import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import linalg, stats
from scipy.special import logsumexp, ndtr

import gaussmix
from gaussmix import _gaussian_kde, gaussian_kde

RTOL = 1e-12

ATTRIBUTES = [
    "d",
    "n",
    "neff",
    "factor",
    "covariance",
    "cho_cov",
    "log_det",
    "weights",
    "inv_cov",
    "_data_covariance",
    "_data_cho_cov",
    "dataset",
]


def make_data(d, n=150, weighted=False, seed=0):
    """Correlated, slightly skewed data (d, n) and optional weights."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(d, n))
    mix = np.eye(d) + 0.4 * np.tril(rng.normal(size=(d, d)), -1)
    x = mix @ z + 0.3 * z**2 + np.arange(d)[:, None]
    w = rng.uniform(0.1, 2.0, size=n) if weighted else None
    return (x[0] if d == 1 else x), w


def queries(x, m=40, seed=1):
    x2 = np.atleast_2d(x)
    rng = np.random.default_rng(seed)
    lo, hi = x2.min(axis=1), x2.max(axis=1)
    return lo[:, None] + (hi - lo)[:, None] * rng.uniform(-0.1, 1.1, size=(x2.shape[0], m))


def half_silverman(kde):
    return 0.5 * kde.silverman_factor()


BW_METHODS = [None, "scott", "silverman", 0.4, np.float64(0.7), half_silverman]
BW_IDS = ["default", "scott", "silverman", "float", "np.float64", "callable"]
DATA = [(d, weighted) for d in (1, 2, 5) for weighted in (False, True)]
DATA_IDS = [f"{d}d-{'weighted' if w else 'unweighted'}" for d, w in DATA]


def pair(d, weighted, bw_method=None, n=150, seed=0):
    x, w = make_data(d, n=n, weighted=weighted, seed=seed)
    return (
        stats.gaussian_kde(x, bw_method=bw_method, weights=w),
        gaussian_kde(x, bw_method=bw_method, weights=w),
        x,
        w,
    )


def exact_logpdf(dataset, weights, covariance, points):
    """log sum_i w_i N(q - x_i; 0, covariance) from the differences, in numpy."""
    dataset = np.atleast_2d(dataset)
    d = dataset.shape[0]
    cho = np.linalg.cholesky(np.atleast_2d(covariance))
    diff = points[:, :, None] - dataset[:, None, :]
    z = linalg.solve_triangular(cho, diff.reshape(d, -1), lower=True).reshape(diff.shape)
    log_kernel = -0.5 * np.sum(z * z, axis=0)
    log_norm = -0.5 * d * math.log(2 * math.pi) - np.sum(np.log(np.diag(cho)))
    return logsumexp(log_kernel, b=weights[None, :], axis=1) + log_norm


def loo_reference(dataset, weights, factor):
    """Weighted leave-one-out log-likelihood, O(n^2) in numpy."""
    x = np.atleast_2d(dataset)
    d, n = x.shape
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights) / np.sum(weights)
    cov = np.atleast_2d(np.cov(x, aweights=w)) * factor**2
    cho = np.linalg.cholesky(cov)
    diff = x[:, :, None] - x[:, None, :]
    z = linalg.solve_triangular(cho, diff.reshape(d, -1), lower=True).reshape(diff.shape)
    log_k = -0.5 * np.sum(z * z, axis=0)
    log_k -= 0.5 * d * math.log(2 * math.pi) + np.sum(np.log(np.diag(cho)))
    np.fill_diagonal(log_k, -np.inf)
    log_sum = logsumexp(log_k, b=np.broadcast_to(w, (n, n)), axis=1)
    return float(np.dot(w, log_sum - np.log(np.sum(w) - w)))


# --------------------------------------------------------------------------
# parity with scipy


def test_exported():
    assert "gaussian_kde" in gaussmix.__all__
    assert gaussmix.gaussian_kde is gaussian_kde


@pytest.mark.parametrize("bw_method", BW_METHODS, ids=BW_IDS)
@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_attributes_match_scipy(d, weighted, bw_method):
    ref, kde, _, _ = pair(d, weighted, bw_method)
    for name in ATTRIBUTES:
        assert_allclose(getattr(kde, name), getattr(ref, name), rtol=1e-14, atol=0, err_msg=name)
    assert kde.covariance_factor() == ref.covariance_factor()
    assert kde.scotts_factor() == ref.scotts_factor()
    assert kde.silverman_factor() == ref.silverman_factor()
    assert kde.dataset.shape == (d, 150)
    assert isinstance(kde.d, int) and isinstance(kde.n, int)


@pytest.mark.parametrize("bw_method", BW_METHODS, ids=BW_IDS)
@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_density_matches_scipy(d, weighted, bw_method):
    ref, kde, x, _ = pair(d, weighted, bw_method)
    q = queries(x)
    expected = ref.evaluate(q)
    assert np.all(expected > 0)
    for got in (kde.evaluate(q), kde(q), kde.pdf(q)):
        assert got.shape == (q.shape[1],)
        assert got.dtype == np.float64
        assert_allclose(got, expected, rtol=RTOL, atol=0)
    assert_allclose(kde.logpdf(q), ref.logpdf(q), rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_more_points_than_data(d):
    x, w = make_data(d, n=12, weighted=True)
    ref, kde = stats.gaussian_kde(x, weights=w), gaussian_kde(x, weights=w)
    q = queries(x, m=3000)
    assert_allclose(kde.logpdf(q), ref.logpdf(q), rtol=RTOL, atol=1e-14)
    assert_allclose(kde.pdf(q), ref.pdf(q), rtol=RTOL, atol=0)


def test_point_shapes_match_scipy():
    ref2, kde2, _, _ = pair(2, False)
    single = np.array([0.5, 1.2])
    assert kde2(single).shape == ref2(single).shape == (1,)
    assert_allclose(kde2(single), ref2(single), rtol=RTOL)
    assert_allclose(kde2([0.5, 1.2]), kde2(single[:, None]), rtol=1e-15)
    assert_allclose(kde2.logpdf([[0.5], [1.2]]), ref2.logpdf([[0.5], [1.2]]), rtol=RTOL)

    ref1, kde1, _, _ = pair(1, False)
    assert_allclose(kde1(0.25), ref1(0.25), rtol=RTOL)
    assert_allclose(kde1([0.25, 0.5]), ref1([0.25, 0.5]), rtol=RTOL)
    assert_allclose(kde1([[0.25, 0.5]]), ref1([[0.25, 0.5]]), rtol=RTOL)
    assert kde1.evaluate(np.empty(0)).shape == ref1.evaluate(np.empty(0)).shape == (0,)
    assert kde2.logpdf(np.empty((2, 0))).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_other_dtypes_computed_in_float64(dtype):
    x, w = make_data(2, n=60, weighted=True)
    x = (x * 10).astype(dtype)
    q = queries(x).astype(dtype)
    ref, kde = stats.gaussian_kde(x, weights=w), gaussian_kde(x, weights=w)
    assert kde.dataset.dtype == np.float64
    assert_array_equal(kde.dataset, x.astype(np.float64))
    got = kde(q)
    assert got.dtype == ref(q).dtype == np.float64
    assert_allclose(got, ref(q), rtol=RTOL)
    assert_allclose(kde.logpdf(q), ref.logpdf(q), rtol=RTOL)
    assert_array_equal(kde.resample(10, seed=4), ref.resample(10, seed=4))


def test_non_contiguous_inputs():
    x, w = make_data(3, n=80, weighted=True)
    x_f = np.asfortranarray(x)
    x_strided = np.repeat(x, 2, axis=1)[:, ::2]
    q = queries(x)
    expected = stats.gaussian_kde(x, weights=w).logpdf(q)
    for data in (x_f, x_strided, x.T.copy().T):
        kde = gaussian_kde(data, weights=np.repeat(w, 2)[::2])
        assert_allclose(kde.logpdf(q[:, ::-1]), expected[::-1], rtol=RTOL)
        assert_allclose(kde.logpdf(np.asfortranarray(q)), expected, rtol=RTOL)


def test_set_bandwidth_matches_scipy():
    ref, kde, x, _ = pair(2, True)
    q = queries(x)
    for bw in (0.5, "silverman", half_silverman, None, np.float32(0.3), "scott"):
        ref.set_bandwidth(bw)
        kde.set_bandwidth(bw)
        assert kde.factor == ref.factor
        assert_allclose(kde.covariance, ref.covariance, rtol=1e-15)
        assert_allclose(kde.log_det, ref.log_det, rtol=1e-15)
        assert_allclose(kde.pdf(q), ref.pdf(q), rtol=RTOL)
    assert kde.factor == kde.scotts_factor()


def test_set_bandwidth_scalar_then_back_matches_scipy_values():
    x1 = np.array([-7, -5, 1, 4, 5], dtype=float)
    kde = gaussian_kde(x1)
    kde.set_bandwidth(bw_method=0.5)
    assert kde.factor == 0.5
    kde.set_bandwidth(bw_method="scott")
    expected = [0.02463386, 0.04689208, 0.05395444, 0.05337754, 0.01664475]
    assert_allclose(kde(np.linspace(-10, 10, num=5)), expected, atol=5e-9)


class _Subclass1(gaussian_kde):
    def __init__(self, dataset):
        self.dataset = np.atleast_2d(dataset)
        self.d, self.n = self.dataset.shape
        self.covariance_factor = self.scotts_factor
        self._compute_covariance()


class _Subclass2(gaussian_kde):
    def __init__(self, dataset):
        self.covariance_factor = self.scotts_factor
        super().__init__(dataset)


class _Subclass4(gaussian_kde):
    def covariance_factor(self):
        return 0.5 * self.silverman_factor()


def test_subclassing_and_monkeypatching():
    x1 = np.array([-7, -5, 1, 4, 5], dtype=float)
    xs = np.linspace(-10, 10, num=50)
    ys = stats.gaussian_kde(x1)(xs)
    assert_allclose(_Subclass1(x1)(xs), ys, rtol=RTOL)
    assert_allclose(_Subclass2(x1)(xs), ys, rtol=RTOL)
    y4 = _Subclass4(x1)(x1)
    assert_allclose(y4, [0.06292987, 0.06346938, 0.05860291, 0.08657652, 0.07904017], atol=5e-9)

    kde = gaussian_kde(x1)
    kde.covariance_factor = kde.silverman_factor
    kde._compute_covariance()
    assert_allclose(kde(xs), stats.gaussian_kde(x1, bw_method="silverman")(xs), rtol=RTOL)


def test_integer_input_reference_values():
    kde = gaussian_kde(np.arange(5))
    expected = [0.13480721, 0.18222869, 0.19514935, 0.18222869, 0.13480721]
    assert_allclose(kde(np.arange(5)), expected, atol=5e-9)


@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_integrate_gaussian_matches_scipy(d, weighted):
    ref, kde, _, _ = pair(d, weighted)
    rng = np.random.default_rng(5)
    mean = rng.normal(size=d) + np.arange(d)
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.5 * np.eye(d)
    expected = ref.integrate_gaussian(mean, cov)
    assert expected > 0
    assert_allclose(kde.integrate_gaussian(mean, cov), expected, rtol=RTOL)
    if d == 1:
        expected_1d = ref.integrate_gaussian(0.3, 2.0)
        assert_allclose(kde.integrate_gaussian(0.3, 2.0), expected_1d, rtol=RTOL)


def test_integrate_gaussian_bad_input():
    _, kde, _, _ = pair(2, False)
    with pytest.raises(ValueError, match="mean does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="covariance does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(linalg.LinAlgError):
        kde.integrate_gaussian([0.0, 0.0], -10 * np.eye(2))


@pytest.mark.parametrize("weighted", [False, True])
def test_integrate_box_1d_matches_scipy(weighted):
    ref, kde, x, _ = pair(1, weighted)
    for low, high in [(-np.inf, np.inf), (-0.5, 1.0), (np.median(x), np.inf), (3.0, -1.0)]:
        expected = ref.integrate_box_1d(low, high)
        assert_allclose(kde.integrate_box_1d(low, high), expected, rtol=RTOL, atol=1e-16)
    assert_allclose(kde.integrate_box_1d(-np.inf, np.inf), 1.0, rtol=1e-14)
    _, kde2, _, _ = pair(2, False)
    with pytest.raises(ValueError, match="only handles 1D pdfs"):
        kde2.integrate_box_1d(0.0, 1.0)


@pytest.mark.parametrize(("d", "weighted"), [(1, False), (2, True), (3, False)])
def test_integrate_box_matches_scipy(d, weighted):
    ref, kde, _, _ = pair(d, weighted, n=40)
    low, high = -np.ones(d), np.ones(d) + np.arange(d)
    expected = ref.integrate_box(low, high, rng=np.random.default_rng(3))
    got = kde.integrate_box(low, high, rng=np.random.default_rng(3))
    assert 0 < got < 1
    assert_allclose(got, expected, rtol=RTOL)
    got_pts = kde.integrate_box(low, high, maxpts=2000 * d, rng=np.random.default_rng(4))
    expected_pts = ref.integrate_box(low, high, maxpts=2000 * d, rng=np.random.default_rng(4))
    assert_allclose(got_pts, expected_pts, rtol=RTOL)


@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_integrate_kde_matches_scipy(d, weighted):
    ref, kde, _, _ = pair(d, weighted)
    ref_other, other, _, _ = pair(d, not weighted, bw_method="silverman", n=70, seed=9)
    assert_allclose(kde.integrate_kde(kde), ref.integrate_kde(ref), rtol=RTOL)
    expected = ref.integrate_kde(ref_other)
    assert expected > 0
    assert_allclose(kde.integrate_kde(other), expected, rtol=RTOL)
    assert_allclose(other.integrate_kde(kde), expected, rtol=RTOL)
    assert_allclose(kde.integrate_kde(ref_other), expected, rtol=RTOL)


def test_integrate_kde_dimension_mismatch():
    _, kde1, _, _ = pair(1, False)
    _, kde2, _, _ = pair(2, False)
    with pytest.raises(ValueError, match="not the same dimensionality"):
        kde1.integrate_kde(kde2)


@pytest.mark.parametrize("dims", [[0, 3], [-1, 1], 2, np.array([4, 0, 2])])
@pytest.mark.parametrize("bw_method", [None, 0.6, "silverman"])
def test_marginal_matches_scipy(dims, bw_method):
    ref, kde, x, _ = pair(5, True, bw_method)
    ref_m, m = ref.marginal(dims), kde.marginal(dims)
    assert isinstance(m, gaussian_kde)
    assert m.d == ref_m.d == np.atleast_1d(dims).size
    assert m.factor == ref_m.factor
    assert_allclose(m.weights, ref_m.weights, rtol=1e-15)
    q = queries(x)[np.atleast_1d(dims)]
    assert_allclose(m.pdf(q), ref_m.pdf(q), rtol=RTOL)


def test_marginal_bad_dimensions():
    _, kde, _, _ = pair(5, False)
    with pytest.raises(ValueError, match="must be integers"):
        kde.marginal([1, 2.5])
    with pytest.raises(ValueError, match="must be unique"):
        kde.marginal([1, 2, -4])
    msg = r"Dimensions \[-6  7\] are invalid for a distribution in 5"
    with pytest.raises(ValueError, match=msg):
        kde.marginal([1, -6, 7])


# --------------------------------------------------------------------------
# sampling


@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_resample_matches_scipy(d, weighted):
    ref, kde, _, _ = pair(d, weighted)
    assert_array_equal(kde.resample(53, seed=123), ref.resample(53, seed=123))
    assert_array_equal(
        kde.resample(seed=np.random.RandomState(7)), ref.resample(seed=np.random.RandomState(7))
    )
    assert_array_equal(
        kde.resample(31, seed=np.random.default_rng(8)),
        ref.resample(31, seed=np.random.default_rng(8)),
    )
    assert kde.resample(seed=1).shape == (d, int(ref.neff))
    state = np.random.get_state()
    try:
        np.random.seed(99)
        expected = ref.resample(17)
        np.random.seed(99)
        got = kde.resample(17)
        np.random.seed(99)
        also = kde.resample(17, seed=np.random)
    finally:
        np.random.set_state(state)
    assert_array_equal(got, expected)
    assert_array_equal(also, expected)
    assert not np.array_equal(kde.resample(17, seed=1), kde.resample(17, seed=2))


def test_resample_bad_seed():
    _, kde, _, _ = pair(1, False)
    with pytest.raises(ValueError, match="cannot be used to seed"):
        kde.resample(5, seed="abc")


def test_resample_follows_kde_distribution():
    rng = np.random.default_rng(2024)
    x = np.concatenate([rng.normal(-2.0, 0.5, 120), rng.normal(1.5, 1.0, 80)])
    w = rng.uniform(0.2, 1.0, size=x.size)
    kde = gaussian_kde(x, weights=w)
    sigma = math.sqrt(kde.covariance[0, 0])

    def cdf(t, shift=0.0):
        t = np.atleast_1d(t)
        return ndtr((t[:, None] - x[None, :] - shift) / sigma) @ kde.weights

    sample = kde.resample(3000, seed=11)[0]
    assert stats.kstest(sample, cdf).pvalue > 0.01
    assert stats.kstest(sample, lambda t: cdf(t, shift=0.3)).pvalue < 1e-4

    grid = np.linspace(x.min() - 10 * sigma, x.max() + 10 * sigma, 20001)
    inverse = np.interp(np.random.default_rng(12).uniform(size=3000), cdf(grid), grid)
    assert stats.ks_2samp(sample, inverse).pvalue > 0.01
    assert stats.ks_2samp(sample, inverse + 0.3).pvalue < 1e-4


# --------------------------------------------------------------------------
# log-density far from the data


@pytest.mark.parametrize(("d", "weighted"), DATA, ids=DATA_IDS)
def test_logpdf_far_from_data_is_exact(d, weighted):
    _, kde, x, w = pair(d, weighted)
    rng = np.random.default_rng(17)
    directions = rng.normal(size=(d, 4))
    directions /= np.linalg.norm(directions, axis=0)
    centre = np.atleast_2d(x).mean(axis=1)[:, None]
    q = centre + 1000.0 * kde.cho_cov @ directions
    expected = exact_logpdf(x, kde.weights, kde.covariance, q)
    assert np.all(expected < -4e5)
    got = kde.logpdf(q)
    assert np.all(np.isfinite(got))
    assert_allclose(got, expected, rtol=RTOL, atol=0)
    assert_array_equal(kde.pdf(q), np.zeros(4))


@pytest.mark.parametrize("d", [1, 3])
def test_logpdf_exact_for_data_far_from_origin(d):
    x, w = make_data(d, n=150, weighted=True)
    x = x + 1e6
    kde = gaussian_kde(x, weights=w)
    q = queries(x)
    expected = exact_logpdf(x, kde.weights, kde.covariance, q)
    assert_allclose(kde.logpdf(q), expected, rtol=RTOL, atol=0)


def test_zero_weights_are_ignored_exactly():
    x, w = make_data(2, n=60, weighted=True)
    w[::3] = 0.0
    ref, kde = stats.gaussian_kde(x, weights=w), gaussian_kde(x, weights=w)
    q = queries(x)
    assert_allclose(kde.pdf(q), ref.pdf(q), rtol=RTOL)
    expected = exact_logpdf(x, kde.weights, kde.covariance, q)
    assert_allclose(kde.logpdf(q), expected, rtol=RTOL)
    # a zero-weight point nearest to a far query must not swallow the others
    x[:, 0] = [50.0, 60.0]
    kde = gaussian_kde(x, weights=w)
    far = np.array([[50.0], [60.0]])
    expected = exact_logpdf(x[:, w > 0], kde.weights[w > 0], kde.covariance, far)
    got = kde.logpdf(far)
    assert np.isfinite(got[0])
    assert_allclose(got, expected, rtol=RTOL)


# --------------------------------------------------------------------------
# cross-validated bandwidth


@pytest.mark.parametrize(("d", "weighted"), [(1, False), (1, True), (2, False), (2, True)])
def test_cv_ml_maximises_leave_one_out_likelihood(d, weighted):
    x, w = make_data(d, n=150, weighted=weighted, seed=3)
    kde = gaussian_kde(x, bw_method="cv_ml", weights=w)
    h = float(kde.factor)
    assert kde._bw_method == "cv_ml"
    assert kde.covariance_factor() == kde.factor
    assert_allclose(kde.covariance, kde._data_covariance * h**2, rtol=1e-15)

    at_h = loo_reference(x, w, h)
    assert loo_reference(x, w, h * 1.01) <= at_h
    assert loo_reference(x, w, h * 0.99) <= at_h

    h0 = float(kde.scotts_factor())
    coarse = h0 * np.geomspace(0.05, 5.0, 200)
    best = coarse[np.argmax([loo_reference(x, w, c) for c in coarse])]
    fine = best * np.geomspace(0.96, 1.04, 400)
    grid_best = fine[np.argmax([loo_reference(x, w, f) for f in fine])]
    assert_allclose(h, grid_best, rtol=1e-3)
    assert at_h > loo_reference(x, w, h0)

    same = gaussian_kde(x, bw_method=kde.factor, weights=w)
    q = queries(x)
    assert_allclose(kde.logpdf(q), same.logpdf(q), rtol=1e-15)
    assert_allclose(kde.cv_ml_factor(), h, rtol=1e-15)


def test_cv_ml_through_set_bandwidth_and_marginal():
    x, _ = make_data(3, n=120, seed=4)
    kde = gaussian_kde(x)
    scott = kde.factor
    kde.set_bandwidth("cv_ml")
    assert kde.factor != scott
    assert kde.factor == gaussian_kde(x, bw_method="cv_ml").factor
    kde.set_bandwidth()
    assert kde.factor == gaussian_kde(x, bw_method="cv_ml").factor
    assert kde.marginal([0, 2]).factor == kde.factor
    assert_allclose(kde.inv_cov, np.linalg.inv(kde.covariance), rtol=1e-10)


def test_cv_ml_repeated_points():
    x = np.repeat(np.random.default_rng(5).normal(size=40), 2)
    with pytest.raises(ValueError, match="repeated points"):
        gaussian_kde(x, bw_method="cv_ml")
    kde = gaussian_kde(x)
    with pytest.raises(ValueError, match="repeated points"):
        kde.set_bandwidth("cv_ml")
    assert kde.factor == kde.scotts_factor()


# --------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_dataset(bad):
    x, _ = make_data(2, n=30)
    x[1, 7] = bad
    with pytest.raises(ValueError, match="`dataset` must not contain infs or NaNs"):
        gaussian_kde(x)
    with pytest.raises(ValueError, match="`dataset` must not contain infs or NaNs"):
        gaussian_kde(x[1])


def test_dataset_shape_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Number of dimensions is greater than number of samples"):
        gaussian_kde(rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="should have multiple elements"):
        gaussian_kde([1.0])
    with pytest.raises(ValueError, match="should have multiple elements"):
        gaussian_kde([])
    with pytest.raises(ValueError, match="1-D array or a 2-D array"):
        gaussian_kde(rng.normal(size=(2, 3, 10)))


@pytest.mark.parametrize(
    "data",
    [np.full(10, 3.0), np.vstack([np.arange(10.0), np.full(10, -1.0)])],
    ids=["constant-1d", "constant-row"],
)
def test_singular_data_covariance(data):
    with pytest.raises(linalg.LinAlgError, match="lower-dimensional subspace") as info:
        gaussian_kde(data)
    assert isinstance(info.value, ValueError)
    with pytest.raises(linalg.LinAlgError, match="lower-dimensional subspace"):
        stats.gaussian_kde(data)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.r_[-1.0, np.ones(29)], "non-negative"),
        (np.r_[np.nan, np.ones(29)], "must not contain infs or NaNs"),
        (np.r_[np.inf, np.ones(29)], "must not contain infs or NaNs"),
        (np.zeros(30), "at least one positive"),
        (np.ones(29), "should be of length n"),
        (np.ones((30, 1)), "one-dimensional"),
    ],
    ids=["negative", "nan", "inf", "all-zero", "wrong-length", "2-d"],
)
def test_bad_weights(weights, match):
    x, _ = make_data(1, n=30)
    with pytest.raises(ValueError, match=match):
        gaussian_kde(x, weights=weights)


def test_integer_and_huge_weights():
    x = [0.2, 13.5, 21.0, 75.0, 99.0]
    a = gaussian_kde(x, weights=[1, 2, 4, 8, 16])
    b = gaussian_kde(x, weights=np.float64([1, 2, 4, 8, 16]))
    c = gaussian_kde(x, weights=np.float64([1, 2, 4, 8, 16]) * 1e307)
    xn = [0.3, 11, 88]
    assert_allclose(a(xn), b(xn), rtol=1e-14)
    assert_allclose(c(xn), b(xn), rtol=1e-14)
    assert_allclose(c.weights, b.weights, rtol=1e-15)


@pytest.mark.parametrize(
    "bw",
    [0, 0.0, -0.5, np.nan, np.inf, lambda kde: 0.0, "wrongstring", [0.1, 0.2], lambda kde: "x"],
)
def test_bad_bandwidth_keeps_previous_state(bw):
    ref, kde, x, _ = pair(2, False)
    q = queries(x)
    before = kde.logpdf(q)
    with pytest.raises(ValueError):
        kde.set_bandwidth(bw)
    assert kde.factor == ref.factor
    assert kde.covariance_factor() == ref.factor
    assert_array_equal(kde.logpdf(q), before)
    with pytest.raises(ValueError):
        gaussian_kde(x, bw_method=bw)


def test_points_of_wrong_dimension():
    _, kde, _, _ = pair(2, False)
    rng = np.random.default_rng(0)
    msg = "points have dimension 3, dataset has dimension 2"
    for method in (kde.evaluate, kde.pdf, kde.logpdf, kde):
        with pytest.raises(ValueError, match=msg):
            method(rng.normal(size=(3, 10)))
    with pytest.raises(ValueError, match="points have dimension 1, dataset has dimension 2"):
        kde.logpdf([1.0, 2.0, 3.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_points(bad):
    _, kde, _, _ = pair(2, False)
    q = np.zeros((2, 3))
    q[0, 1] = bad
    for method in (kde.evaluate, kde.logpdf):
        with pytest.raises(ValueError, match="must not contain infs or NaNs"):
            method(q)


def test_caller_arrays_never_modified():
    x, w = make_data(3, n=90, weighted=True)
    q = queries(x)
    inputs = {"x": x, "w": w, "q": q}
    copies = {k: v.copy() for k, v in inputs.items()}
    for v in inputs.values():
        v.flags.writeable = False
    kde = gaussian_kde(x, weights=w)
    assert not np.shares_memory(kde.dataset, x)
    assert not np.shares_memory(kde.weights, w)
    kde.evaluate(q)
    kde.logpdf(q)
    kde.resample(10, seed=0)
    kde.integrate_gaussian(q[:, 0], np.eye(3))
    kde.integrate_kde(gaussian_kde(q))
    kde.integrate_box(q[:, 0], q[:, 1], rng=np.random.default_rng(0))
    kde.marginal([0, 1])
    kde.set_bandwidth("cv_ml")
    kde.dataset[0, 0] = 1e9
    kde.weights[0] = 5.0
    for k, v in inputs.items():
        assert_array_equal(v, copies[k], err_msg=k)


@pytest.mark.parametrize("bw_method", [None, "silverman", 0.4, "cv_ml", half_silverman])
def test_pickle_round_trip(bw_method):
    x, w = make_data(2, n=80, weighted=True)
    kde = gaussian_kde(x, bw_method=bw_method, weights=w)
    q = queries(x)
    clone = pickle.loads(pickle.dumps(kde))
    assert clone.factor == kde.factor
    assert_array_equal(clone.logpdf(q), kde.logpdf(q))
    clone.set_bandwidth()
    assert clone.factor == kde.factor
    assert_array_equal(clone.resample(7, seed=3), kde.resample(7, seed=3))


def test_docstring_examples():
    result = doctest.testmod(_gaussian_kde, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20
    assert result.failed == 0


def _decimal_density(dataset, weights, point, cho):
    """sum_i w_i N(point; x_i, L L^T) / sum w in 2-D, L = cho, in 40-digit decimal."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 40
        l00, l10, l11 = (Decimal(float(v)) for v in (cho[0, 0], cho[1, 0], cho[1, 1]))
        a, b, c = l00 * l00, l10 * l00, l10 * l10 + l11 * l11
        det = a * c - b * b
        total = Decimal(0)
        for i in range(dataset.shape[1]):
            dx = Decimal(float(point[0])) - Decimal(float(dataset[0, i]))
            dy = Decimal(float(point[1])) - Decimal(float(dataset[1, i]))
            q = (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
            total += Decimal(float(weights[i])) * (-q / 2).exp()
        pi = Decimal("3.141592653589793238462643383279502884197")
        return float(total / sum(Decimal(float(w)) for w in weights) / (2 * pi * det.sqrt()))


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                    reason="long double is float64 on this platform")
def test_small_evaluations_are_exact_to_the_last_digits_far_from_the_data():
    # Far from the data the Gaussian exponent is large, and float64 whitening
    # costs up to ~1e-13 relative; small evaluations are summed in long double
    # (the kernel covariance is cho_cov cho_cov^T, as SciPy evaluates it).
    rng = np.random.RandomState(8765678)
    cov = np.array([[1.0, 2.0], [2.0, 6.0]])
    data = rng.multivariate_normal([1.0, 3.0], cov, size=20).T
    w = rng.rand(20)
    kde = gaussian_kde(data, weights=w)
    points = np.array([[1.0, 3.0, 5.0, -4.0], [2.0, 4.0, 6.0, 9.0]])
    got = kde(points)
    want = np.array([_decimal_density(data, kde.weights, points[:, j], kde.cho_cov) for j in range(4)])
    assert want[2] < 1e-12 and want[3] < 1e-12  # far points
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=0)
    np.testing.assert_allclose(kde.logpdf(points), np.log(want), rtol=0, atol=4e-15)
    # the same points among many (the engine's float64 path) agree to its accuracy
    many = np.hstack([points, rng.normal(size=(2, 6000))])
    np.testing.assert_allclose(kde(many)[:4], want, rtol=2e-12, atol=0)
