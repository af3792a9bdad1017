"""GroupedGaussianMixture / fit_many: one mixture per group of rows.

Each group's fit must be the one GaussianMixture makes on that group alone
from the same start; the random draws are those of a loop of fits sharing
one RandomState, so the loop itself is the reference.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture, GroupedGaussianMixture, fit_many

COV_TYPES = ["full", "tied", "diag", "spherical"]
PARAMS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _ragged(seed=0, lengths=(50, 80, 120, 64, 200), d=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    parts = []
    for n in lengths:
        centres = rng.normal(size=(3, d)) * 3
        parts.append(centres[rng.integers(0, 3, size=n)] + rng.normal(size=(n, d)))
    X = np.concatenate(parts).astype(dtype)
    groups = np.repeat(np.arange(len(lengths)), lengths)
    return X, groups


def _assert_group_equals(batch, g, ref, rtol=1e-10):
    for name in PARAMS:
        assert_allclose(getattr(batch, name)[g], getattr(ref, name), rtol=rtol, atol=rtol, err_msg=name)
    assert_allclose(batch.lower_bound_[g], ref.lower_bound_, rtol=rtol)
    assert batch.n_iter_[g] == ref.n_iter_
    assert batch.converged_[g] == ref.converged_


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random"])
def test_each_group_is_the_fit_of_a_loop_sharing_one_random_state(covariance_type, init_params):
    X, groups = _ragged()
    kw = dict(n_components=3, covariance_type=covariance_type, init_params=init_params, n_init=2)
    batch = fit_many(X, groups, random_state=0, **kw)
    rs = np.random.RandomState(0)
    for g in range(5):
        ref = GaussianMixture(random_state=rs, **kw).fit(X[groups == g])
        _assert_group_equals(batch, g, ref)
        # the whole fit history of the best start
        assert_allclose(batch.estimator(g).lower_bounds_, ref.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_each_group_is_scikit_learns_fit(covariance_type, init_params):
    X, groups = _ragged(seed=1)
    kw = dict(n_components=3, covariance_type=covariance_type, init_params=init_params)
    batch = fit_many(X, groups, random_state=7, **kw)
    rs = np.random.RandomState(7)
    for g in range(5):
        ref = SkGaussianMixture(random_state=rs, **kw).fit(X[groups == g])
        for name in PARAMS:
            assert_allclose(getattr(batch, name)[g], getattr(ref, name), rtol=1e-9, atol=1e-9)
        assert batch.n_iter_[g] == ref.n_iter_


class _GivenRows(np.random.RandomState):
    """A RandomState whose choice() returns the given row sets in turn."""

    def __init__(self, rows):
        super().__init__(0)
        self._rows = iter(rows)

    def choice(self, a, size=None, replace=True, p=None):
        return next(self._rows)


def test_random_from_data_starts_from_the_rows_with_the_smallest_keys():
    X, groups = _ragged(seed=2)
    lengths = np.bincount(groups)
    kw = dict(n_components=3, covariance_type="full", init_params="random_from_data", n_init=2)
    batch = fit_many(X, groups, random_state=3, **kw)
    rs = np.random.RandomState(3)
    rows = []  # one key per row, per (group, start), in that order
    for n in lengths:
        for _ in range(2):
            rows.append(np.argsort(rs.uniform(size=n), kind="stable")[:3])
    rows = iter(rows)
    for g, n in enumerate(lengths):
        ref = GaussianMixture(random_state=_GivenRows([next(rows), next(rows)]), **kw)
        _assert_group_equals(batch, g, ref.fit(X[groups == g]))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_given_starting_values_per_group(covariance_type):
    X, groups = _ragged(seed=3, d=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = fit_many(X, groups, n_components=2, covariance_type=covariance_type, random_state=0, max_iter=2)
    starts = dict(
        weights_init=first.weights_, means_init=first.means_, precisions_init=first.precisions_
    )
    batch = fit_many(X, groups, n_components=2, covariance_type=covariance_type, **starts)
    for g in range(5):
        ref = GaussianMixture(
            2, covariance_type=covariance_type, weights_init=starts["weights_init"][g],
            means_init=starts["means_init"][g], precisions_init=starts["precisions_init"][g],
        ).fit(X[groups == g])
        _assert_group_equals(batch, g, ref)


def test_means_init_alone_overrides_the_kmeans_start():
    X, groups = _ragged(seed=4, d=2)
    means = np.stack([X[groups == g][:2] for g in range(5)])
    batch = fit_many(X, groups, n_components=2, means_init=means, random_state=0)
    rs = np.random.RandomState(0)
    for g in range(5):
        ref = GaussianMixture(2, means_init=means[g], random_state=rs).fit(X[groups == g])
        _assert_group_equals(batch, g, ref)


def test_sample_weight_per_group():
    X, groups = _ragged(seed=5, d=2)
    w = np.random.default_rng(0).uniform(0.1, 50.0, size=X.shape[0])
    w_before = w.copy()
    batch = fit_many(X, groups, sample_weight=w, n_components=2, random_state=0)
    assert_array_equal(w, w_before)
    rs = np.random.RandomState(0)
    for g in range(5):
        rows = groups == g
        ref = GaussianMixture(2, random_state=rs).fit(X[rows], sample_weight=w[rows])
        _assert_group_equals(batch, g, ref)


def test_float32_stays_float32_and_equals_the_loop():
    X, groups = _ragged(seed=6, d=2, dtype=np.float32)
    batch = fit_many(X, groups, n_components=2, init_params="random", random_state=0)
    assert batch.means_.dtype == np.float32
    rs = np.random.RandomState(0)
    for g in range(5):
        ref = GaussianMixture(2, init_params="random", random_state=rs).fit(X[groups == g])
        _assert_group_equals(batch, g, ref, rtol=1e-6)


def test_groups_lengths_and_dense_batches_agree():
    rng = np.random.default_rng(7)
    X3 = rng.normal(size=(6, 40, 2))
    dense = fit_many(X3, n_components=2, random_state=0)
    flat = X3.reshape(-1, 2)
    by_lengths = fit_many(flat, lengths=[40] * 6, n_components=2, random_state=0)
    labels = np.repeat(np.array(list("fedcba")), 40)  # unsorted labels, rows shuffled
    perm = rng.permutation(flat.shape[0])
    by_labels = fit_many(flat[perm], labels[perm], n_components=2, random_state=0)
    assert_array_equal(by_labels.groups_, np.array(list("abcdef")))
    for name in PARAMS:
        assert_array_equal(getattr(dense, name), getattr(by_lengths, name))
    # label "a" holds dense group 5, with its rows in another order: same
    # fit up to the order of the sums
    assert_allclose(by_labels.estimator("a").lower_bound_, dense.lower_bound_[5], rtol=1e-12)


def test_per_sample_outputs_route_each_row_to_its_group():
    X, groups = _ragged(seed=8)
    rng = np.random.default_rng(0)
    labels = np.array(["x", "y", "z", "u", "v"])[groups]
    batch = fit_many(X, labels, n_components=3, random_state=0)
    perm = rng.permutation(X.shape[0])
    Q, qlab = X[perm], labels[perm]
    logp = batch.score_samples(Q, qlab)
    resp = batch.predict_proba(Q, qlab)
    pred = batch.predict(Q, qlab)
    for name in "xyzuv":
        rows = qlab == name
        gm = batch.estimator(name)
        assert_allclose(logp[rows], gm.score_samples(Q[rows]), rtol=1e-12)
        assert_allclose(resp[rows], gm.predict_proba(Q[rows]), rtol=1e-12, atol=1e-300)
        assert_array_equal(pred[rows], gm.predict(Q[rows]))
    X3 = rng.normal(size=(4, 30, 2))
    dense = fit_many(X3, n_components=2, random_state=0)
    assert dense.score_samples(X3).shape == (4, 30)
    assert dense.predict_proba(X3).shape == (4, 30, 2)


def test_results_do_not_depend_on_the_thread_count():
    X, groups = _ragged(seed=9)
    for lengths in (None, [X.shape[0]]):  # many groups, then one
        kw = dict(n_components=3, random_state=0, n_init=2)
        if lengths is None:
            one = fit_many(X, groups, n_jobs=1, **kw)
            two = fit_many(X, groups, n_jobs=2, **kw)
        else:
            one = fit_many(X, lengths=lengths, n_jobs=1, **kw)
            two = fit_many(X, lengths=lengths, n_jobs=2, **kw)
        for name in PARAMS + ("lower_bound_", "n_iter_"):
            assert_array_equal(getattr(one, name), getattr(two, name))


# ----------------------------------------------------------- bad groups


def test_a_group_smaller_than_k_raises_by_default_and_is_skipped_on_request():
    X, groups = _ragged(lengths=(50, 2, 60))
    with pytest.raises(ValueError, match=r"Group 1 \(position 1\): Expected n_samples >= n_components"):
        fit_many(X, groups, n_components=3, random_state=0)
    batch = fit_many(X, groups, n_components=3, random_state=0, errors="skip")
    assert list(batch.status_) == ["fitted", "too few samples", "fitted"]
    assert_array_equal(batch.fitted_, [True, False, True])
    assert np.all(np.isnan(batch.means_[1]))
    assert np.all(np.isfinite(batch.means_[[0, 2]]))
    # the other groups are the fits of a loop that carries on past the
    # error (whose fit raised before drawing anything)
    rs = np.random.RandomState(0)
    _assert_group_equals(batch, 0, GaussianMixture(3, random_state=rs).fit(X[groups == 0]))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3, random_state=rs).fit(X[groups == 1])
    _assert_group_equals(batch, 2, GaussianMixture(3, random_state=rs).fit(X[groups == 2]))
    with pytest.raises(ValueError, match="was not fitted: too few samples"):
        batch.estimator(1)
    with pytest.raises(ValueError, match="was not fitted"):
        batch.score_samples(X, groups)
    keep = groups != 1
    assert np.all(np.isfinite(batch.score_samples(X[keep], groups[keep])))


def test_nan_in_one_group():
    X, groups = _ragged(lengths=(40, 40, 40))
    X[45, 1] = np.nan
    X_before = X.copy()
    with pytest.raises(ValueError, match=r"Group 1 .*infinity or NaN"):
        fit_many(X, groups, n_components=2, random_state=0)
    batch = fit_many(X, groups, n_components=2, random_state=0, errors="skip")
    assert list(batch.status_) == ["fitted", "non-finite values", "fitted"]
    assert_array_equal(X, X_before)  # the caller's array is left alone
    with pytest.raises(ValueError, match="infinity or NaN"):
        batch.score_samples(X, groups)


def test_zero_weights_in_one_group_and_empty_runs():
    X, groups = _ragged(lengths=(30, 30))
    w = np.ones(60)
    w[30:] = 0
    with pytest.raises(ValueError, match="Group 1 .*non-zero"):
        fit_many(X, groups, sample_weight=w, n_components=2)
    batch = fit_many(X, lengths=[30, 0, 30], n_components=2, errors="skip", random_state=0)
    assert list(batch.status_) == ["fitted", "too few samples", "fitted"]


def test_ill_defined_covariance_is_a_group_status():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(30, 2)), np.ones((30, 2))])
    with pytest.raises(ValueError, match=r"Group 1 .*ill-defined empirical covariance.*component"):
        fit_many(X, lengths=[30, 30], n_components=2, reg_covar=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = fit_many(X, lengths=[30, 30], n_components=2, reg_covar=0.0, random_state=0, errors="skip")
    assert list(batch.status_) == ["fitted", "ill-defined covariance"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, g: fit_many(X, g, lengths=[10, 10]), "exactly one of groups"),
        (lambda X, g: fit_many(X), "exactly one of groups"),
        (lambda X, g: fit_many(X, g[:-1]), "one label per row"),
        (lambda X, g: fit_many(X, lengths=[5, 5]), "add up to 10, but X has 20"),
        (lambda X, g: fit_many(X, lengths=[25, -5]), "non-negative"),
        (lambda X, g: fit_many(X.reshape(2, 10, 2), g), "dense batch"),
        (lambda X, g: fit_many(X, g, n_components=0), "n_components"),
        (lambda X, g: fit_many(X, g, errors="ignore"), "errors"),
        (lambda X, g: fit_many(X, g, weights_init=np.ones((3, 1))), "weights_init"),
        (lambda X, g: fit_many(X, g, n_components=2, weights_init=[[0.5, 0.6], [0.5, 0.5]]), "normalized"),
        (lambda X, g: fit_many(X, g, means_init=np.zeros((2, 2, 2))), "means_init"),
        (
            lambda X, g: fit_many(X, g, covariance_type="diag", precisions_init=-np.ones((2, 1, 2))),
            "positive",
        ),
    ],
)
def test_bad_input_names_the_problem(call, match):
    X = np.random.default_rng(0).normal(size=(20, 2))
    groups = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match=match):
        call(X, groups)


def test_queries_are_checked_against_the_fit():
    X, groups = _ragged(lengths=(30, 30))
    batch = fit_many(X, groups, n_components=2, random_state=0)
    with pytest.raises(ValueError, match="Group 7 was not fitted"):
        batch.predict(X[:3], [0, 7, 1])
    with pytest.raises(ValueError, match="features"):
        batch.predict(X[:3, :2], [0, 0, 1])
    with pytest.raises(KeyError):
        batch.estimator(9)


def test_convergence_warning_is_one_for_the_batch():
    X, groups = _ragged()
    with pytest.warns(ConvergenceWarning, match=r"of 5 groups did not converge") as record:
        batch = fit_many(X, groups, n_components=3, max_iter=1, tol=0.0, random_state=0)
    assert len([w for w in record if "did not converge" in str(w.message)]) == 1
    assert not batch.converged_.any()


def test_max_iter_zero_keeps_the_start():
    X, groups = _ragged()
    batch = fit_many(X, groups, n_components=3, max_iter=0, random_state=0)
    rs = np.random.RandomState(0)
    ref = GaussianMixture(3, max_iter=0, random_state=rs).fit(X[groups == 0])
    assert_allclose(batch.means_[0], ref.means_, rtol=1e-12)
    assert batch.n_iter_[0] == 0 and batch.lower_bound_[0] == -np.inf


def test_estimator_params_round_trip():
    gm = GroupedGaussianMixture(3, covariance_type="diag", errors="skip")
    assert gm.get_params()["errors"] == "skip"
    assert GroupedGaussianMixture(**gm.get_params()).get_params() == gm.get_params()
