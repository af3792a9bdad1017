"""gaussmix.BayesianGaussianMixture against scikit-learn's, and beyond it.

Parity: the same data and the same random draws give scikit-learn's fit to
1e-10 (every posterior attribute, the lower bounds, the iteration count), for
both weight priors and all four covariance types; scikit-learn's own test
file passes with the import swapped. Beyond: sample weights as counts,
memory maps and chunks, float32, degenerate data, thread counts.
"""

import copy
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGMM

from gaussmix import BayesianGaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
POSTERIOR = [
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "mean_precision_",
    "degrees_of_freedom_",
    "mean_prior_",
    "covariance_prior_",
]


def blobs(n=600, d=3, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [4.0] * d, [9.0, -3.0] + [1.0] * (d - 2)])[:, :d]
    X = np.concatenate([rng.normal(c, 1.0, (n // 3, d)) for c in centres])
    return X + offset


def fit_quietly(est, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, **kwargs)


def assert_same_posterior(got, ref, rtol=1e-10):
    """Every posterior attribute of two fits, relative to each array's scale."""
    for attr in POSTERIOR:
        a, b = np.asarray(getattr(got, attr), float), np.asarray(getattr(ref, attr), float)
        assert a.shape == b.shape, attr
        assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)), err_msg=attr)
    for a, b in zip(np.atleast_2d(got.weight_concentration_), np.atleast_2d(ref.weight_concentration_)):
        assert_allclose(a, b, rtol=rtol)
    assert got.n_iter_ == ref.n_iter_
    assert got.converged_ == ref.converged_
    assert_allclose(got.lower_bound_, ref.lower_bound_, rtol=rtol)
    # (scikit-learn keeps a tied fit's bounds as 1-element arrays)
    assert_allclose(np.ravel(got.lower_bounds_), np.ravel(ref.lower_bounds_), rtol=rtol)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_equals_sklearn(covariance_type, prior_type, init_params):
    if covariance_type == "tied" and init_params in ("random_from_data", "k-means++"):
        pytest.skip(
            "scikit-learn's initial tied covariance from a partial assignment depends on "
            "the data's origin; gaussmix uses the assigned samples' scatter"
        )
    X = blobs()
    kw = dict(
        n_components=5, covariance_type=covariance_type, init_params=init_params,
        weight_concentration_prior_type=prior_type, random_state=1, max_iter=300,
    )
    ref = fit_quietly(SkBGMM(**kw), X)
    got = fit_quietly(BayesianGaussianMixture(**kw), X)
    assert_same_posterior(got, ref)
    assert_array_equal(got.predict(X), ref.predict(X))
    assert_allclose(got.predict_proba(X), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert_allclose(got.score_samples(X), ref.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_given_priors_and_n_init_equal_sklearn(covariance_type):
    X = blobs(d=4, seed=3)
    prior = {"full": np.diag([1.0, 2.0, 0.5, 1.5]), "tied": np.eye(4) * 2.0,
             "diag": np.array([1.0, 2.0, 0.5, 1.5]), "spherical": 0.7}[covariance_type]
    kw = dict(
        n_components=4, covariance_type=covariance_type, init_params="random", n_init=3,
        weight_concentration_prior=0.3, mean_precision_prior=0.1, mean_prior=np.ones(4),
        degrees_of_freedom_prior=6.5, covariance_prior=prior, random_state=7, reg_covar=1e-4,
    )
    assert_same_posterior(fit_quietly(BayesianGaussianMixture(**kw), X), fit_quietly(SkBGMM(**kw), X))


def test_warm_start_and_max_iter_zero_equal_sklearn():
    X = blobs(seed=4)
    kw = dict(n_components=4, init_params="random", random_state=2, max_iter=3, warm_start=True)
    ref, got = SkBGMM(**kw), BayesianGaussianMixture(**kw)
    for _ in range(3):
        fit_quietly(ref, X)
        fit_quietly(got, X)
    assert_same_posterior(got, ref)
    kw = dict(n_components=4, init_params="random_from_data", random_state=2, max_iter=0)
    ref, got = fit_quietly(SkBGMM(**kw), X), fit_quietly(BayesianGaussianMixture(**kw), X)
    for attr in ("means_", "covariances_", "weights_", "degrees_of_freedom_"):
        assert_allclose(getattr(got, attr), getattr(ref, attr), rtol=1e-12, err_msg=attr)


def test_sklearn_test_file_passes(tmp_path):
    """scikit-learn's own test_bayesian_mixture.py, run against gaussmix's
    estimator (the import swapped, nothing else changed)."""
    source = os.path.join(os.path.dirname(sklearn.__file__), "mixture", "tests",
                          "test_bayesian_mixture.py")
    if not os.path.exists(source):
        pytest.skip("this scikit-learn installation ships no tests")
    with open(source) as f:
        text = f.read()
    original = "from sklearn.mixture import BayesianGaussianMixture"
    assert original in text
    (tmp_path / "test_sk_bayesian_mixture.py").write_text(
        text.replace(original, "from gaussmix import BayesianGaussianMixture")
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
         "ignore::DeprecationWarning", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


# ------------------------------------------------------ beyond scikit-learn


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    X = blobs(n=300, seed=5)
    counts = np.random.default_rng(5).integers(0, 4, len(X))
    repeated = np.repeat(X, counts, axis=0)
    # both start from the same posterior (an initialisation on the repeated
    # rows), then iterate: on the repeated rows, and on X weighted by counts
    kw = dict(n_components=4, covariance_type=covariance_type, random_state=0,
              init_params="random_from_data")
    start = fit_quietly(BayesianGaussianMixture(max_iter=0, **kw), repeated)
    ref = copy.deepcopy(start).set_params(warm_start=True, max_iter=200)
    got = copy.deepcopy(start).set_params(warm_start=True, max_iter=200)
    fit_quietly(ref, repeated)
    fit_quietly(got, X, sample_weight=counts)
    assert ref.n_iter_ > 5
    assert_same_posterior(got, ref, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weighted_priors_are_those_of_repeated_rows(covariance_type):
    X = blobs(n=300, seed=6)
    counts = np.random.default_rng(6).integers(0, 4, len(X))
    a = BayesianGaussianMixture(covariance_type=covariance_type)
    b = BayesianGaussianMixture(covariance_type=covariance_type)
    a._check_parameters(np.repeat(X, counts, axis=0))
    ref = SkBGMM(covariance_type=covariance_type)
    ref._check_parameters(np.repeat(X, counts, axis=0))
    from gaussmix import _sources

    source = _sources.MemorySource(X, counts, 1, normalise_weights=False).scan()
    b._prepare_fit(source, 1)
    for est in (a, b):
        assert_allclose(est.mean_prior_, ref.mean_prior_, rtol=1e-12)
        assert_allclose(est.covariance_prior_, ref.covariance_prior_, rtol=1e-11)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_and_chunks_equal_in_memory(covariance_type, tmp_path):
    X = blobs(n=3000, d=4, seed=7)
    w = np.random.default_rng(7).uniform(0.5, 2.0, len(X))
    kw = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=50)
    ref = fit_quietly(BayesianGaussianMixture(**kw), X, sample_weight=w)
    path = tmp_path / "x.dat"
    M = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    M[:] = X
    M.flush()
    mm = fit_quietly(BayesianGaussianMixture(**kw), np.memmap(path, dtype=np.float64, mode="r",
                                                              shape=X.shape), sample_weight=w)
    parts = [(X[i:i + 700], w[i:i + 700]) for i in range(0, len(X), 700)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chunks = BayesianGaussianMixture(**kw).fit_chunks(parts)
    for got in (mm, chunks):
        assert_same_posterior(got, ref, rtol=1e-10)


def test_fit_predict_is_fit_then_predict():
    X = blobs(seed=8)
    kw = dict(n_components=5, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = BayesianGaussianMixture(**kw).fit_predict(X)
    assert_array_equal(labels, fit_quietly(BayesianGaussianMixture(**kw), X).predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32_and_agrees_with_float64(covariance_type):
    X = blobs(n=1500, seed=9)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0,
              init_params="random_from_data", max_iter=30)
    f64 = fit_quietly(BayesianGaussianMixture(**kw), X)
    f32 = fit_quietly(BayesianGaussianMixture(**kw), X.astype(np.float32))
    assert f32.means_.dtype == np.float32
    assert f32.score_samples(X.astype(np.float32)).dtype == np.float32
    assert_allclose(f32.means_, f64.means_, rtol=1e-3, atol=1e-3)


def test_same_bits_for_any_thread_count():
    X = blobs(n=6000, d=5, seed=10)
    kw = dict(n_components=6, random_state=0, max_iter=15)
    one = fit_quietly(BayesianGaussianMixture(n_jobs=1, **kw), X)
    two = fit_quietly(BayesianGaussianMixture(n_jobs=2, **kw), X)
    for attr in POSTERIOR + ["lower_bounds_"]:
        assert_array_equal(getattr(one, attr), getattr(two, attr), err_msg=attr)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_lower_bound_never_decreases(prior_type):
    X = blobs(n=900, seed=11)
    est = fit_quietly(BayesianGaussianMixture(
        n_components=6, weight_concentration_prior_type=prior_type, random_state=3,
        init_params="random", max_iter=200, tol=0.0), X)
    bounds = np.asarray(est.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


def test_dirichlet_process_switches_unneeded_components_off():
    X = blobs(n=900, seed=12)
    est = fit_quietly(BayesianGaussianMixture(
        n_components=10, weight_concentration_prior=1e-3, random_state=0, max_iter=500), X)
    assert np.sum(est.weights_ > 1e-2) == 3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("case", ["constant_column", "duplicates", "more_features_than_rows",
                                  "far_offset_float32"])
def test_degenerate_data_gives_a_finite_fit(covariance_type, case):
    rng = np.random.default_rng(13)
    if case == "constant_column":
        X = blobs(n=300, seed=13)
        X[:, 1] = 5.0
    elif case == "duplicates":
        X = np.repeat(rng.normal(size=(10, 3)), 30, axis=0)
    elif case == "more_features_than_rows":
        X = rng.normal(size=(12, 20))
    else:
        X = (blobs(n=600, seed=13) + 1e8).astype(np.float32)
    est = fit_quietly(BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                              random_state=0, max_iter=30), X)
    for attr in POSTERIOR + ["lower_bound_"]:
        assert np.all(np.isfinite(np.asarray(getattr(est, attr), float))), attr
    assert np.all(np.isfinite(est.score_samples(X)))


def test_bad_priors_raise_scikit_learn_errors():
    X = blobs(n=60)
    with pytest.raises(ValueError, match="'degrees_of_freedom_prior' should be greater than 2"):
        BayesianGaussianMixture(degrees_of_freedom_prior=1.5).fit(X)
    # scikit-learn's wording (its precision checks serve the covariance prior)
    with pytest.raises(ValueError, match="'full precision' should be symmetric"):
        BayesianGaussianMixture(covariance_prior=-np.eye(3)).fit(X)
    with pytest.raises(ValueError, match="'diag precision' should be positive"):
        BayesianGaussianMixture(covariance_type="diag", covariance_prior=np.array([1.0, 0.0, 1.0])).fit(X)
    with pytest.raises(ValueError, match="The parameter 'means' should have the shape"):
        BayesianGaussianMixture(mean_prior=np.zeros(2)).fit(X)
    with pytest.raises(ValueError, match="Negative values in data passed to sample_weight"):
        BayesianGaussianMixture().fit(X, sample_weight=-np.ones(len(X)))


def test_default_covariance_prior_needs_weights_summing_above_one():
    X = blobs(n=60)
    with pytest.raises(ValueError, match="sample weights summing to more than 1"):
        BayesianGaussianMixture().fit(X, sample_weight=np.full(len(X), 0.5 / len(X)))
    # with a covariance prior given, fractional weights are fine
    est = fit_quietly(BayesianGaussianMixture(covariance_prior=np.eye(3), max_iter=5), X,
                      sample_weight=np.full(len(X), 0.5 / len(X)))
    assert np.all(np.isfinite(est.means_))


def test_failed_refit_keeps_a_usable_model():
    X = blobs(n=300)
    est = fit_quietly(BayesianGaussianMixture(n_components=3, random_state=0, max_iter=20), X)
    labels = est.predict(X)
    with pytest.raises(ValueError, match="The parameter 'means' should have the shape"):
        est.set_params(mean_prior=np.zeros(2)).fit(X)
    assert_array_equal(est.predict(X), labels)
