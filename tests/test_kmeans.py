"""k-means++ and Lloyd's k-means against scikit-learn's (gaussmix._kmeans).

The contract: the same seeds (k-means++ indices), the same partition (labels)
and iteration count as sklearn.cluster.kmeans_plusplus and
KMeans(n_init=1).fit, and the caller's RandomState left in the same state,
for an int, a RandomState or None (numpy's global generator).

Distances are summed in double in the engine and by BLAS in scikit-learn,
so a point equidistant from two centres to the last bits may be labelled
either way. In float64 that never happens on continuous data. In float32
scikit-learn rounds its Lloyd distances and its centre sums in float32, so a
point within about 1e-6 (relative) of a tie can go either way; those runs
are counted, not hidden (test_kmeans_float32_matches_sklearn_but_for_float32_ties).
The k-means++ seeds are exact in both types: the sums that decide them are
numpy's own expressions.
"""

import warnings

import numpy as np
import pytest
from gmm_data import make_blobs_data
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture, _core
from gaussmix import _kmeans as _kmeans_module
from gaussmix._kmeans import kmeans, kmeans_plusplus_indices
from gaussmix._validation import check_sample_weight

N_THREADS = 2


def _same_state(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_state(), b.get_state()))


def _random_problem(seed, dtype):
    """Blobs of random size, dimension and cluster count, weighted for a third of seeds."""
    g = np.random.default_rng(seed)
    n = int(g.integers(20, 2000))
    d = int(g.integers(1, 21))
    k = min(int(g.integers(1, 21)), n)
    centers = g.normal(scale=5.0, size=(max(k // 2, 1), d))
    X = centers[g.integers(0, len(centers), n)] + g.normal(size=(n, d))
    sw = g.uniform(0.0, 3.0, n) if seed % 3 == 0 else None
    return X.astype(dtype), sw, k


def _sklearn_kmeans(X, sw, k, random_state, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(k, n_init=1, random_state=random_state, **kw).fit(X, sample_weight=sw)


def _kmeans(X, sw, k, random_state, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return kmeans(X, sw, k, random_state, N_THREADS, **kw)


# ---------------------------------------------------------------- datasets


def plot_gmm_data():
    """The data of scikit-learn's examples/mixture/plot_gmm.py."""
    n_samples = 500
    np.random.seed(0)
    C = np.array([[0.0, -0.1], [1.7, 0.4]])
    return np.r_[
        np.dot(np.random.randn(n_samples, 2), C),
        0.7 * np.random.randn(n_samples, 2) + np.array([-6, 3]),
    ]


def plot_gmm_sin_data():
    """The data of examples/mixture/plot_gmm_sin.py."""
    n_samples = 100
    np.random.seed(0)
    X = np.zeros((n_samples, 2))
    step = 4.0 * np.pi / n_samples
    for i in range(X.shape[0]):
        x = i * step - 6.0
        X[i, 0] = x + np.random.normal(0, 0.1)
        X[i, 1] = 3.0 * (np.sin(x) + np.random.normal(0, 0.2))
    return X


def plot_gmm_init_data():
    """The data of examples/mixture/plot_gmm_init.py."""
    X, _ = make_blobs(n_samples=4000, centers=4, cluster_std=0.60, random_state=0)
    return X[:, ::-1]


def plot_gmm_selection_data():
    """The data of examples/mixture/plot_gmm_selection.py."""
    n_samples = 500
    np.random.seed(0)
    C = np.array([[0.0, -0.1], [1.7, 0.4]])
    component_1 = np.dot(np.random.randn(n_samples, 2), C)
    component_2 = 0.7 * np.random.randn(n_samples, 2) + np.array([-4, 1])
    return np.concatenate([component_1, component_2])


# Each example's data with the component counts its script fits (plot_gmm_selection
# searches 1..6 components; plot_gmm_init fits 4 with random_state=RandomState(1234)).
EXAMPLES = {
    "plot_gmm": (plot_gmm_data, [5]),
    "plot_gmm_sin": (plot_gmm_sin_data, [10]),
    "plot_gmm_init": (plot_gmm_init_data, [4]),
    "plot_gmm_selection": (plot_gmm_selection_data, [1, 2, 3, 4, 5, 6]),
}


# ------------------------------------------------------ k-means++ seeding


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(40))
def test_kmeans_plusplus_matches_sklearn(seed, dtype):
    X, sw, k = _random_problem(seed, dtype)
    rs_sk, rs_gm = np.random.RandomState(seed), np.random.RandomState(seed)
    _, expected = kmeans_plusplus(X, k, sample_weight=sw, random_state=rs_sk)
    got = kmeans_plusplus_indices(X, sw, k, rs_gm, N_THREADS)
    assert_array_equal(got, expected)
    assert _same_state(rs_gm, rs_sk)


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_plusplus_matches_sklearn_on_example_data(name, dtype):
    make, ks = EXAMPLES[name]
    X = np.ascontiguousarray(make(), dtype=dtype)
    for k in ks + [20]:
        for seed in range(10):
            _, expected = kmeans_plusplus(X, k, random_state=seed)
            assert_array_equal(kmeans_plusplus_indices(X, None, k, seed, N_THREADS), expected)


def test_kmeans_plusplus_with_global_random_state():
    X, _, k = _random_problem(1, np.float64)
    np.random.seed(5)
    _, expected = kmeans_plusplus(X, k)
    after_sklearn = np.random.get_state()
    np.random.seed(5)
    got = kmeans_plusplus_indices(X, None, k, None, N_THREADS)
    assert_array_equal(got, expected)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), after_sklearn))


def test_kmeans_plusplus_never_picks_zero_weight_rows():
    X, _ = make_blobs_data(n=300, d=2, k=3, seed=8)
    sample_weight = np.zeros(300)
    sample_weight[::7] = 1.0
    for seed in range(10):
        seeds = kmeans_plusplus_indices(X, sample_weight, 5, seed)
        assert np.all(sample_weight[seeds] > 0)
        assert len(set(seeds.tolist())) == 5


# ------------------------------------------------------------------ Lloyd


@pytest.mark.parametrize("seed", range(60))
def test_kmeans_float64_matches_sklearn(seed):
    X, sw, k = _random_problem(seed, np.float64)
    rs_sk, rs_gm = np.random.RandomState(seed), np.random.RandomState(seed)
    km = _sklearn_kmeans(X, sw, k, rs_sk)
    labels, centers, n_iter = _kmeans(X, sw, k, rs_gm)
    assert_array_equal(labels, km.labels_)
    assert n_iter == km.n_iter_
    assert _same_state(rs_gm, rs_sk)
    assert_allclose(centers, km.cluster_centers_, rtol=1e-9, atol=1e-9)


def test_kmeans_float32_matches_sklearn_but_for_float32_ties():
    """Over 60 problems, labels as scikit-learn's but in float32 near-ties.

    Where the labels differ, each differing point must be within float32
    rounding of a tie between its two labels' centres, in scikit-learn's
    iteration that first labels it differently.
    """
    mismatches = 0
    for seed in range(60):
        X, sw, k = _random_problem(seed, np.float32)
        rs_sk, rs_gm = np.random.RandomState(seed), np.random.RandomState(seed)
        km = _sklearn_kmeans(X, sw, k, rs_sk)
        labels, centers, n_iter = _kmeans(X, sw, k, rs_gm)
        assert _same_state(rs_gm, rs_sk)
        if np.array_equal(labels, km.labels_):
            assert n_iter == km.n_iter_
            assert_allclose(centers, km.cluster_centers_, rtol=1e-4, atol=1e-4)
            continue
        mismatches += 1
        # the first iteration at which the runs part: the labels there differ
        # only at points that are float32-close to a tie
        for m in range(1, n_iter + 1):
            a = _sklearn_kmeans(X, sw, k, seed, max_iter=m)
            b_labels, b_centers, _ = _kmeans(X, sw, k, seed, max_iter=m)
            diff = np.flatnonzero(a.labels_ != b_labels)
            if diff.size:
                break
        mean = X.mean(axis=0, dtype=np.float64)
        Xc = X.astype(np.float64) - mean
        c = a.cluster_centers_.astype(np.float64) - mean
        for i in diff:
            d = ((Xc[i] - c) ** 2).sum(axis=1)
            da, db = d[a.labels_[i]], d[b_labels[i]]
            scale = (Xc[i] ** 2).sum() + (c**2).sum(axis=1).max()
            assert abs(da - db) <= 1e-5 * scale, (seed, i, da, db)
    assert mismatches <= 6


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_matches_sklearn_on_example_data(name, dtype):
    make, ks = EXAMPLES[name]
    X = np.ascontiguousarray(make(), dtype=dtype)
    for k in ks + [20]:
        for seed in range(5):
            rs_sk, rs_gm = np.random.RandomState(seed), np.random.RandomState(seed)
            km = _sklearn_kmeans(X, None, k, rs_sk)
            labels, _, n_iter = _kmeans(X, None, k, rs_gm)
            assert_array_equal(labels, km.labels_)
            assert n_iter == km.n_iter_
            assert _same_state(rs_gm, rs_sk)


def test_kmeans_with_global_random_state():
    X = plot_gmm_data()
    np.random.seed(3)
    km = _sklearn_kmeans(X, None, 5, None)
    after_sklearn = np.random.get_state()
    np.random.seed(3)
    labels, _, _ = _kmeans(X, None, 5, None)
    assert_array_equal(labels, km.labels_)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), after_sklearn))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normalised_weights_give_sklearn_labels_for_the_callers_weights(dtype):
    """gaussmix scales sample weights (by a power of two): the seeds and labels
    are scikit-learn's for the caller's unscaled weights, float32 included."""
    X, _ = make_blobs_data(n=3000, d=3, k=6, seed=4, dtype=dtype)
    raw = np.random.default_rng(0).uniform(0.1, 7.3, 3000) * 1e3
    sw = check_sample_weight(raw, 3000)
    for seed in range(10):
        _, expected = kmeans_plusplus(X, 8, sample_weight=raw, random_state=seed)
        assert_array_equal(kmeans_plusplus_indices(X, sw, 8, seed), expected)
        km = _sklearn_kmeans(X, raw, 8, seed)
        assert_array_equal(_kmeans(X, sw, 8, seed)[0], km.labels_)


@pytest.mark.parametrize("n_empty", [1, 2, 3])
def test_empty_clusters_are_relocated_as_sklearn_does(n_empty):
    """The relocation step against scikit-learn's own (rarely reached from
    k-means++ seeds, so tested on its own): the same farthest rows, in
    argpartition's order, moved the same way."""
    from sklearn.cluster._k_means_common import _relocate_empty_clusters_dense

    g = np.random.default_rng(n_empty)
    X = g.normal(size=(300, 3))
    sw = g.uniform(0.5, 2.0, 300)
    k = 6
    centers_old = g.normal(size=(k, 3))
    labels = g.integers(0, k - n_empty, 300)  # the last n_empty clusters are empty
    sums = np.zeros((k, 3))
    weights = np.zeros(k)
    np.add.at(sums, labels, X * sw[:, None])
    np.add.at(weights, labels, sw)
    expected_sums, expected_weights = sums.copy(), weights.copy()
    _relocate_empty_clusters_dense(
        X, sw, centers_old, expected_sums, expected_weights, labels.astype(np.int32)
    )
    _kmeans_module._relocate_empty_clusters(X, sw, np.zeros(3), centers_old, sums, weights, labels)
    assert_array_equal(sums, expected_sums)
    assert_array_equal(weights, expected_weights)
    assert np.all(weights > 0)


def test_average_centers_places_empty_clusters_as_sklearn_does():
    """An empty cluster takes the heaviest cluster's row as it is when reached:
    its mean if that cluster comes first, its sum if it comes later."""
    sums = np.array([[2.0, 4.0], [0.0, 0.0], [9.0, 3.0], [0.0, 0.0]])
    weights = np.array([2.0, 0.0, 3.0, 0.0])
    centers = _kmeans_module._average_centers(sums.copy(), weights)
    assert_array_equal(centers, [[1.0, 2.0], [9.0, 3.0], [3.0, 1.0], [3.0, 1.0]])


def test_duplicate_points_warn_as_kmeans_does():
    X = np.repeat(np.arange(4.0), 10).reshape(-1, 1) * np.ones((1, 2))
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(4\) found smaller"):
        expected = KMeans(6, n_init=1, random_state=0).fit(X).labels_
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(4\) found smaller"):
        labels, _, _ = kmeans(X, None, 6, 0)
    assert_array_equal(labels, expected)


def test_labels_are_consistent_with_centers():
    X, _ = make_blobs_data(n=500, d=3, k=3, seed=9)
    labels, centers, n_iter = kmeans(X, None, 3, 0, max_iter=300, tol=0.0)
    assert labels.dtype == np.int64 and 1 <= n_iter <= 300
    distances = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    assert_array_equal(labels, distances.argmin(axis=1))
    for j in range(3):
        assert_allclose(centers[j], X[labels == j].mean(axis=0), rtol=1e-10)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_results_do_not_depend_on_the_thread_count(n_threads):
    X, sw, k = _random_problem(3, np.float64)
    expected = kmeans(X, sw, k, 0, 1)
    got = kmeans(X, sw, k, 0, n_threads)
    assert_array_equal(got[0], expected[0])
    assert_array_equal(got[1], expected[1])


# ------------------------------------------------- numpy's column statistics


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 2), (7, 3), (1000, 2), (100_003, 5), (5000, 17)])
def test_column_stats_are_numpys_bits(shape, dtype):
    X = (np.random.default_rng(1).normal(size=shape) * 3.0 + 100.0).astype(dtype)
    mean, var = _core.kmeans_column_stats(X)
    assert mean.dtype == dtype and var.dtype == dtype
    assert_array_equal(mean, X.mean(axis=0))
    assert_array_equal(var, np.var(X, axis=0))


def test_column_stats_reject_one_column():
    with pytest.raises(ValueError, match="at least two features"):
        _core.kmeans_column_stats(np.zeros((5, 1)))


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [kmeans, kmeans_plusplus_indices])
def test_bad_input(fn):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(TypeError, match="float32 or float64 numpy array"):
        fn(X.tolist(), None, 2, 0)
    with pytest.raises(TypeError, match="float32 or float64 numpy array"):
        fn(X.astype(np.int64), None, 2, 0)
    with pytest.raises(ValueError, match="2-D array"):
        fn(X[:, 0].copy(), None, 2, 0)
    with pytest.raises(ValueError, match="2-D array"):
        fn(np.zeros((20, 0)), None, 2, 0)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
            fn(X, None, k, 0)
    with pytest.raises(ValueError, match=r"n_samples=20 should be >= n_clusters=21"):
        fn(X, None, 21, 0)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(19,\), expected \(20,\)"):
        fn(X, np.ones(19), 2, 0)
    for w in (-np.ones(20), np.zeros(20), np.full(20, np.nan)):
        with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
            fn(X, w, 2, 0)
    with pytest.raises(ValueError, match="cannot be used to seed"):
        fn(X, None, 2, "seed")


def test_kmeans_rejects_bad_max_iter():
    X = np.random.default_rng(0).normal(size=(20, 2))
    for max_iter in (0, -1, 1.5):
        with pytest.raises(ValueError, match="max_iter must be a positive integer"):
            kmeans(X, None, 2, 0, max_iter=max_iter)


def test_engine_lloyd_rejects_bad_arrays():
    X = np.random.default_rng(0).normal(size=(20, 2))
    good = dict(
        X=X, sample_weight=None, shift=None, centers=X[:3].copy(),
        labels=np.zeros(20, dtype=np.int64), sums=np.zeros((3, 2)), weight_sums=np.zeros(3),
        max_iter=5, tol=0.0,
    )
    _core.kmeans_lloyd(**good)
    centers = np.zeros((3, 2))
    for key, value, message in [
        ("centers", np.zeros((3, 3)), "centers must have shape"),
        ("centers", np.zeros((0, 2)), "centers must have shape"),
        ("labels", np.zeros(19, dtype=np.int64), "labels must have shape"),
        ("sums", np.zeros((2, 2)), "sums must have shape"),
        ("weight_sums", np.zeros(4), "weight_sums must have shape"),
        ("sample_weight", np.ones(19), "sample_weight must have shape"),
        ("shift", np.zeros(3), "shift must have shape"),
        ("max_iter", 0, "max_iter must be >= 1"),
        ("n_threads", 0, "n_threads must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            _core.kmeans_lloyd(**{**good, "centers": centers.copy(), key: value})
    with pytest.raises(ValueError, match="must not overlap"):
        _core.kmeans_lloyd(**{**good, "centers": centers, "sums": centers})
    with pytest.raises(ValueError, match="not writeable"):
        readonly = np.zeros((3, 2))
        readonly.setflags(write=False)
        _core.kmeans_lloyd(**{**good, "centers": readonly})
    with pytest.raises(TypeError, match="incompatible function arguments"):
        _core.kmeans_lloyd(**{**good, "centers": np.zeros((3, 2), dtype=np.float32)})


def test_fortran_ordered_x_gives_the_same_result():
    X, _, k = _random_problem(4, np.float64)
    assert_array_equal(kmeans(np.asfortranarray(X), None, k, 0)[0], kmeans(X, None, k, 0)[0])


# ------------------------------------------------ GaussianMixture parity


def _fit_both(X, random_state_kind, **params):
    fits = []
    for cls in (SkGaussianMixture, GaussianMixture):
        if random_state_kind == "none":
            np.random.seed(123)
            rs = None
        elif random_state_kind == "instance":
            rs = np.random.RandomState(7)
        else:
            rs = 7
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = cls(random_state=rs, **params).fit(X)
        state = np.random.get_state() if rs is None else (rs.get_state() if rs != 7 else None)
        fits.append((model, state))
    return fits


def _assert_same_fit(fits):
    (sk, sk_state), (gm, gm_state) = fits
    assert gm.n_iter_ == sk.n_iter_
    assert_allclose(gm.weights_, sk.weights_, rtol=0, atol=1e-10)
    assert_allclose(gm.means_, sk.means_, rtol=0, atol=1e-10)
    assert_allclose(gm.covariances_, sk.covariances_, rtol=0, atol=1e-10)
    assert_allclose(gm.lower_bound_, sk.lower_bound_, rtol=0, atol=1e-10)
    if sk_state is not None:
        assert all(np.array_equal(a, b) for a, b in zip(gm_state, sk_state))


# A k-means++ start assigns only the K seed rows; scikit-learn's initial tied
# covariance is then X^T X over all rows minus the seeds' means, gaussmix's the
# seeds' scatter (see test_mixture.py): the fits start apart by design.
TIED_PARTIAL = "initial tied covariance from a partial assignment differs by design"

EXAMPLE_FITS = [
    ("plot_gmm", dict(n_components=5, covariance_type="full")),
    ("plot_gmm_sin", dict(n_components=10, covariance_type="full", max_iter=100)),
    ("plot_gmm_init", dict(n_components=4, tol=1e-9, max_iter=2000)),
] + [
    ("plot_gmm_selection", dict(n_components=k, covariance_type=cov))
    for k in (2, 4, 6)
    for cov in ("spherical", "tied", "diag", "full")
]


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
@pytest.mark.parametrize("random_state_kind", ["none", "instance", "int"])
@pytest.mark.parametrize(("name", "params"), EXAMPLE_FITS, ids=[f[0] for f in EXAMPLE_FITS])
def test_gaussian_mixture_fit_matches_sklearn_on_example_data(name, params, random_state_kind, init_params):
    if init_params == "k-means++" and params.get("covariance_type") == "tied":
        pytest.skip(TIED_PARTIAL)
    X = EXAMPLES[name][0]()
    _assert_same_fit(_fit_both(X, random_state_kind, init_params=init_params, **params))


def test_plot_gmm_init_sequence_matches_sklearn():
    """The example's two fits on one RandomState: max_iter=0 for the initial
    means, then a fit from them that draws from the same generator."""
    X = plot_gmm_init_data()
    for method in ["kmeans", "random_from_data", "k-means++", "random"]:
        out = []
        for cls in (SkGaussianMixture, GaussianMixture):
            r = np.random.RandomState(seed=1234)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                ini = cls(4, init_params=method, tol=1e-9, max_iter=0, random_state=r).fit(X).means_
            gmm = cls(4, means_init=ini, tol=1e-9, max_iter=2000, random_state=r).fit(X)
            out.append((ini, gmm, r.get_state()))
        (ini_a, a, sa), (ini_b, b, sb) = out
        assert_allclose(ini_b, ini_a, rtol=0, atol=1e-10)
        assert_allclose(b.means_, a.means_, rtol=0, atol=1e-10)
        assert b.n_iter_ == a.n_iter_
        assert all(np.array_equal(x, y) for x, y in zip(sa, sb))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
@pytest.mark.parametrize("seed", range(8))
def test_gaussian_mixture_fit_matches_sklearn_on_random_data(seed, init_params):
    g = np.random.default_rng(seed)
    k = int(g.integers(2, 9))
    d = int(g.integers(1, 6))
    X, _ = make_blobs_data(n=int(g.integers(300, 1500)), d=d, k=k, seed=seed, sep=3.0)
    cov = ["full", "tied", "diag", "spherical"][seed % 4]
    if init_params == "k-means++" and cov == "tied":
        pytest.skip(TIED_PARTIAL)
    params = dict(n_components=k + 1, covariance_type=cov, n_init=2, init_params=init_params)
    _assert_same_fit(_fit_both(X, ["none", "instance", "int"][seed % 3], **params))
