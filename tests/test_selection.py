"""GaussianMixtureIC (model selection) and init_params="hierarchical".

Every candidate must be the fit GaussianMixture makes alone with the same
parameters and seed, and its criteria those of scikit-learn's bic(X) /
aic(X); the hierarchical tree must be Ward's (SciPy's linkage is the
reference) on the sphered data.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture, GaussianMixtureIC, _core, _hierarchical
from gmm_data import make_blobs_data

COV_TYPES = ["full", "tied", "diag", "spherical"]
PARAMS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _same_partition(a, b):
    """a and b split the rows the same way (labels may be permuted)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _cigars(n=900, seed=0):
    """Three parallel cigars (scikit-learn #34845): blobs 5 apart along x, then
    x compressed and y stretched, so k-means cuts across them."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 3, n)
    X = np.c_[(labels - 1) * 5.0, np.zeros(n)] + rng.normal(size=(n, 2))
    return X * [0.2, 5.0], labels


def _vvv_reference(Z, k):
    """Greedy unconstrained merges from singletons, straight from the criterion."""
    n, d = Z.shape
    s0 = np.trace(np.cov(Z.T, bias=True)) / d * n ** (-2.0 / d)
    parts = [[i] for i in range(n)]

    def term(rows):
        z = Z[rows]
        W = (z - z.mean(axis=0)).T @ (z - z.mean(axis=0))
        return len(rows) * np.linalg.slogdet((W + s0 * np.eye(d)) / (len(rows) + 1))[1]

    while len(parts) > k:
        costs = {
            (a, b): term(parts[a] + parts[b]) - term(parts[a]) - term(parts[b])
            for a in range(len(parts)) for b in range(a + 1, len(parts))
        }
        a, b = min(costs, key=costs.get)
        parts[a] = parts[a] + parts.pop(b)
    labels = np.empty(n, dtype=np.int64)
    for j, rows in enumerate(parts):
        labels[rows] = j
    return labels


# ------------------------------------------------------- the hierarchical tree


@pytest.mark.parametrize("d", [1, 3])
def test_ward_partitions_are_scipys_ward_linkage(d):
    Z = np.random.default_rng(d).normal(size=(300, d))
    ks = np.array([1, 2, 4, 9, 300])
    labels = _core.ward_partitions(Z, None, ks)
    tree = linkage(Z, "ward")
    for q, k in enumerate(ks):
        assert len(np.unique(labels[q])) == k
        assert _same_partition(labels[q], fcluster(tree, k, "maxclust"))
        # numbered in the order of each cluster's first row
        first = [np.flatnonzero(labels[q] == j)[0] for j in range(k)]
        assert first == sorted(first)


def test_ward_weights_count_as_repeated_rows():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(120, 2))
    w = rng.integers(1, 4, size=120).astype(np.float64)
    labels = _core.ward_partitions(Z, w, np.array([5]))[0]
    repeated = fcluster(linkage(np.repeat(Z, w.astype(int), axis=0), "ward"), 5, "maxclust")
    assert _same_partition(np.repeat(labels, w.astype(int)), repeated)


def test_trees_survive_overflowing_distances_and_lattices_of_ties():
    # distances overflow to inf for values near 1e200: still K clusters, no crash
    huge = np.random.default_rng(3).normal(size=(40, 2)) * 1e200
    for call in (_core.ward_partitions, _core.hierarchical_partitions):
        labels = call(huge, None, np.array([1, 3, 40]))
        assert [len(np.unique(row)) for row in labels] == [1, 3, 40]
    # an integer lattice: every distance tied many times over
    lattice = np.array([[i, j] for i in range(12) for j in range(12)], dtype=np.float64)
    for call in (_core.ward_partitions, _core.hierarchical_partitions):
        labels = call(lattice, None, np.array([2, 7, 60]))
        assert [len(np.unique(row)) for row in labels] == [2, 7, 60]


def test_ward_partitions_reject_bad_input():
    Z = np.zeros((5, 2))
    with pytest.raises(ValueError, match="number of clusters"):
        _core.ward_partitions(Z, None, np.array([6]))
    with pytest.raises(ValueError, match="positive"):
        _core.ward_partitions(Z, np.array([1.0, 0, 1, 1, 1]), np.array([2]))
    Z[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        _core.ward_partitions(Z, None, np.array([2]))


def test_unconstrained_merges_follow_the_criterion():
    # fewer rows than Ward's parts: the merges start from singletons
    Z = np.random.default_rng(2).normal(size=(30, 2)) * [1.0, 3.0]
    labels = _core.hierarchical_partitions(Z, None, np.array([4, 2]))
    assert _same_partition(labels[0], _vvv_reference(Z, 4))
    assert _same_partition(labels[1], _vvv_reference(Z, 2))


def test_hierarchical_start_is_the_partition_of_the_sphered_data():
    X, _ = _cigars(n=400)
    gm = GaussianMixture(3, init_params="hierarchical", max_iter=0).fit(X)
    Xc = X - X.mean(axis=0)
    sphered = Xc @ np.linalg.inv(np.linalg.cholesky(np.cov(Xc.T)).T)  # another whitening: same parts
    labels = _core.hierarchical_partitions(sphered, None, np.array([3]))[0]
    assert _same_partition(labels, _core.hierarchical_partitions(_hierarchical._sphered(X), None, np.array([3]))[0])
    means = np.array([X[labels == j].mean(axis=0) for j in range(3)])
    assert_allclose(gm.means_, means, rtol=1e-10)


def test_hierarchical_init_finds_the_cigars_that_kmeans_cuts_across():
    X, truth = _cigars()
    kmeans = GaussianMixture(3, init_params="kmeans", random_state=0).fit(X)
    tree = GaussianMixture(3, init_params="hierarchical", random_state=0).fit(X)
    assert adjusted_rand_score(truth, kmeans.predict(X)) < 0.1
    assert adjusted_rand_score(truth, tree.predict(X)) > 0.95


def test_hierarchical_on_many_rows_builds_the_tree_on_a_seeded_sample():
    X, _ = make_blobs_data(n=_hierarchical.TREE_ROWS + 500, d=2, seed=3)
    a = GaussianMixture(3, init_params="hierarchical", random_state=1, max_iter=0).fit(X)
    b = GaussianMixture(3, init_params="hierarchical", random_state=1, max_iter=0).fit(X)
    c = GaussianMixture(3, init_params="hierarchical", random_state=2, max_iter=0).fit(X)
    assert_array_equal(a.means_, b.means_)
    assert not np.array_equal(a.means_, c.means_)
    rows = _hierarchical.tree_rows(None, X.shape[0], np.random.RandomState(1))
    assert rows.shape[0] == _hierarchical.TREE_ROWS and np.all(np.diff(rows) > 0)


def test_hierarchical_ignores_rows_of_zero_weight():
    X, _ = make_blobs_data(n=300, d=2, seed=4)
    w = np.ones(300)
    w[::3] = 0.0
    a = GaussianMixture(3, init_params="hierarchical", max_iter=0).fit(X, sample_weight=w)
    b = GaussianMixture(3, init_params="hierarchical", max_iter=0).fit(X[w > 0])
    assert_allclose(a.means_, b.means_, rtol=1e-12)
    w[3:] = 0.0
    with pytest.raises(ValueError, match="positive weight"):
        GaussianMixture(3, init_params="hierarchical").fit(X, sample_weight=w)


# -------------------------------------------------------- GaussianMixtureIC


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data", "hierarchical"])
def test_every_candidate_is_the_fit_gaussianmixture_makes_alone(init_params):
    X, _ = make_blobs_data(n=300, d=2, seed=5)
    sel = GaussianMixtureIC([1, 2, 4], covariance_type=COV_TYPES, init_params=init_params, n_init=2,
                            random_state=3).fit(X)
    assert len(sel.results_["params"]) == 12
    for i, params in enumerate(sel.results_["params"]):
        ref = GaussianMixture(**params, init_params=init_params, n_init=2, random_state=3).fit(X)
        assert_allclose(sel.results_["bic"][i], ref.bic(X), rtol=1e-10)
        assert_allclose(sel.results_["aic"][i], ref.aic(X), rtol=1e-10)
        assert sel.results_["n_iter"][i] == ref.n_iter_
        assert_allclose(sel.results_["lower_bound"][i], ref.lower_bound_, rtol=1e-10)
        if i == sel.best_index_:
            best = sel.best_estimator_
            for name in PARAMS:
                assert_allclose(getattr(best, name), getattr(ref, name), rtol=1e-10, atol=1e-12)
            assert best.lower_bounds_ == pytest.approx(ref.lower_bounds_, rel=1e-10)
            assert best.get_params() == ref.get_params()


def test_criteria_equal_scikit_learns_loop():
    X, _ = make_blobs_data(n=400, d=3, seed=6)
    sel = GaussianMixtureIC(range(1, 5), random_state=0).fit(X)
    for i, params in enumerate(sel.results_["params"]):
        ref = SkGaussianMixture(**params, random_state=0).fit(X)
        assert_allclose(sel.results_["bic"][i], ref.bic(X), rtol=1e-10)
        assert_allclose(sel.results_["aic"][i], ref.aic(X), rtol=1e-10)
        assert sel.results_["n_parameters"][i] == ref._n_parameters()
    bic = np.array([SkGaussianMixture(**p, random_state=0).fit(X).bic(X) for p in sel.results_["params"]])
    assert sel.best_index_ == int(np.argmin(bic))
    assert sel.results_["rank"][sel.best_index_] == 1


def test_icl_is_bic_plus_twice_the_classification_entropy():
    X, _ = make_blobs_data(n=300, d=2, seed=7, sep=1.5)
    sel = GaussianMixtureIC([2, 3], covariance_type=["full", "diag"], criterion="icl", random_state=0).fit(X)
    for i, params in enumerate(sel.results_["params"]):
        ref = GaussianMixture(**params, random_state=0).fit(X)
        entropy = -np.sum(np.log(ref.predict_proba(X).max(axis=1)))
        assert entropy > 1.0  # overlapping: the term matters
        assert_allclose(sel.results_["icl"][i], ref.bic(X) + 2 * entropy, rtol=1e-10)
    assert sel.best_index_ == int(np.argmin(sel.results_["icl"]))


@pytest.mark.parametrize(
    "shape, covariance_type, k",
    [("spherical", "spherical", 3), ("diag", "diag", 4), ("full", "full", 2), ("tied", "tied", 3)],
)
def test_recovers_the_true_number_of_components_and_structure(shape, covariance_type, k):
    rng = np.random.default_rng(8)
    d, n = 3, 1500
    centres = rng.normal(size=(k, d)) * 8
    labels = rng.integers(0, k, n)
    z = rng.normal(size=(n, d))
    shared = np.diag([3.0, 1.0, 0.3]) @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    X = np.empty((n, d))
    for j in range(k):
        m = labels == j
        if shape == "spherical":
            X[m] = z[m] * (0.5 + j)
        elif shape == "diag":
            X[m] = z[m] * rng.uniform(0.3, 3.0, d)
        elif shape == "full":
            X[m] = z[m] @ (np.diag(rng.uniform(0.3, 3.0, d)) @ np.linalg.qr(rng.normal(size=(d, d)))[0])
        else:
            X[m] = z[m] @ shared
        X[m] += centres[j]
    sel = GaussianMixtureIC(range(1, 7), init_params="hierarchical", random_state=0).fit(X)
    assert sel.best_params_ == {"covariance_type": covariance_type, "n_components": k}


def test_hierarchical_start_recovers_the_cigars_by_bic_where_kmeans_does_not():
    X, _ = _cigars()
    tree = GaussianMixtureIC(range(1, 7), init_params="hierarchical", random_state=0).fit(X)
    kmeans = GaussianMixtureIC(range(1, 7), init_params="kmeans", random_state=0).fit(X)
    assert tree.best_params_ == {"covariance_type": "tied", "n_components": 3}
    assert kmeans.best_params_["n_components"] == 1
    assert tree.results_["bic"][tree.best_index_] < kmeans.results_["bic"][kmeans.best_index_]


def test_sample_weight_and_float32():
    X, _ = make_blobs_data(n=300, d=2, seed=9)
    w = np.random.default_rng(0).uniform(0.1, 10.0, 300)
    w_before = w.copy()
    sel = GaussianMixtureIC([2, 3], covariance_type="full", random_state=0).fit(X, sample_weight=w)
    assert_array_equal(w, w_before)
    for i, params in enumerate(sel.results_["params"]):
        ref = GaussianMixture(**params, random_state=0).fit(X, sample_weight=w)
        loglik = np.sum(w * ref.score_samples(X)) * 300 / w.sum()
        assert_allclose(sel.results_["log_likelihood"][i], loglik, rtol=1e-10)
    X32 = X.astype(np.float32)
    sel32 = GaussianMixtureIC([2, 3], covariance_type="diag", random_state=0).fit(X32)
    assert sel32.best_estimator_.means_.dtype == np.float32
    ref = GaussianMixture(**sel32.best_params_, random_state=0).fit(X32)
    assert_allclose(sel32.best_estimator_.means_, ref.means_, rtol=1e-6)


def test_results_do_not_depend_on_the_thread_count():
    X, _ = make_blobs_data(n=500, d=2, seed=10)
    one = GaussianMixtureIC(range(1, 5), random_state=0, n_jobs=1).fit(X)
    two = GaussianMixtureIC(range(1, 5), random_state=0, n_jobs=2).fit(X)
    for key in ("bic", "icl", "n_iter", "lower_bound"):
        assert_array_equal(one.results_[key], two.results_[key])
    assert_array_equal(one.best_estimator_.means_, two.best_estimator_.means_)


def test_a_random_state_instance_gives_one_recorded_seed():
    X, _ = make_blobs_data(n=200, d=2, seed=11)
    sel = GaussianMixtureIC([2, 3], covariance_type="full", random_state=np.random.RandomState(0)).fit(X)
    seed = sel.best_estimator_.random_state
    assert isinstance(seed, int)
    ref = GaussianMixture(**sel.best_params_, random_state=seed).fit(X)
    assert_allclose(sel.best_estimator_.means_, ref.means_, rtol=1e-10)


def test_candidates_that_cannot_be_fitted_are_recorded_not_chosen():
    X = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 20, axis=0)  # three distinct points
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="could not be fitted"):
            sel = GaussianMixtureIC([1, 5], covariance_type="full", reg_covar=0.0, random_state=0).fit(X)
    status = dict(zip(sel.results_["param_n_components"], sel.results_["status"]))
    assert status == {1: "fitted", 5: "ill-defined covariance"}
    bad = sel.results_["status"] != "fitted"
    assert np.all(np.isinf(sel.results_["bic"][bad]))
    assert sel.best_params_["n_components"] == 1
    with pytest.raises(ValueError, match="No candidate could be fitted: .*ill-defined"):
        GaussianMixtureIC([4, 5], covariance_type="full", reg_covar=0.0, random_state=0).fit(X)


def test_outputs_are_the_best_models():
    X, _ = make_blobs_data(n=300, d=2, seed=12)
    sel = GaussianMixtureIC(range(1, 4), random_state=0).fit(X)
    best = sel.best_estimator_
    assert_array_equal(sel.predict(X), best.predict(X))
    assert_array_equal(sel.predict_proba(X), best.predict_proba(X))
    assert_array_equal(sel.score_samples(X), best.score_samples(X))
    assert sel.score(X) == best.score(X)
    assert sel.bic(X) == pytest.approx(sel.results_["bic"][sel.best_index_], rel=1e-10)
    assert sel.sample(5)[0].shape == (5, 2)
    assert_array_equal(GaussianMixtureIC(range(1, 4), random_state=0).fit_predict(X), sel.predict(X))
    again = pickle.loads(pickle.dumps(sel))
    assert_array_equal(again.predict(X), sel.predict(X))
    table = pd.DataFrame(sel.results_)
    assert table.shape == (len(sel.results_["params"]), len(sel.results_))
    assert table.loc[table["rank"] == 1, "bic"].item() == table["bic"].min()


def test_parameters_round_trip_and_the_grid_forms():
    sel = GaussianMixtureIC(4, covariance_type="diag", criterion="aic")
    assert clone(sel).get_params() == sel.get_params()
    X, _ = make_blobs_data(n=200, d=2, seed=13)
    fitted = sel.set_params(random_state=0).fit(X)
    assert list(fitted.results_["param_n_components"]) == [1, 2, 3, 4]
    assert set(fitted.results_["param_covariance_type"]) == {"diag"}
    assert fitted.best_index_ == int(np.argmin(fitted.results_["aic"]))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=[]), "n_components"),
        (dict(n_components=[0, 2]), "n_components"),
        (dict(n_components=[1.5]), "n_components"),
        (dict(covariance_type="round"), "covariance_type"),
        (dict(covariance_type=["full", "round"]), "covariance_type"),
        (dict(criterion="mdl"), "criterion"),
        (dict(n_components=[500]), "n_samples >= n_components"),
        (dict(init_params="nearest"), "init_params"),
    ],
)
def test_bad_parameters_name_the_problem(params, match):
    X, _ = make_blobs_data(n=100, d=2, seed=14)
    with pytest.raises(ValueError, match=match):
        GaussianMixtureIC(**params).fit(X)


def test_bad_data_names_the_problem():
    X, _ = make_blobs_data(n=100, d=2, seed=15)
    X_before = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureIC([1, 2]).fit(X)
    X[3, 1] = X_before[3, 1]
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixtureIC([1, 2]).fit(X, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="Negative"):
        GaussianMixtureIC([1, 2]).fit(X, sample_weight=-np.ones(100))
    assert_array_equal(X, X_before)
