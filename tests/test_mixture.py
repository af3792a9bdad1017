"""GaussianMixture: parity with scikit-learn, invariants, weights, threads, numerics.

Tolerances: float64 fits from the same start agree with scikit-learn to 1e-10
relative (the engine's arithmetic differs only in rounding: centred second
moments, fused log-sum-exp); float32 fits agree to 2e-3 relative with
scikit-learn's float32 fit, whose own error is of that order.
"""

import io
import re
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGM

from gaussmix import GaussianMixture

from gmm_data import make_blobs_data

COV_TYPES = ["full", "tied", "diag", "spherical"]
RTOL = {np.float64: 1e-10, np.float32: 2e-3}


def start_from_labels(X, labels, k, covariance_type, reg=1e-3):
    """Weights, means and precisions of a labelling (a deliberately rough start)."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    nk = np.bincount(labels, minlength=k).astype(float)
    means = np.array([X[labels == j].mean(axis=0) for j in range(k)])
    covs = np.array(
        [np.cov(X[labels == j].T, bias=True).reshape(d, d) + reg * np.eye(d) for j in range(k)]
    )
    if covariance_type == "full":
        prec = np.linalg.inv(covs)
    elif covariance_type == "tied":
        prec = np.linalg.inv(np.einsum("k,kij->ij", nk, covs) / nk.sum())
    elif covariance_type == "diag":
        prec = 1.0 / np.diagonal(covs, axis1=1, axis2=2)
    else:
        prec = 1.0 / np.diagonal(covs, axis1=1, axis2=2).mean(axis=1)
    return dict(weights_init=nk / nk.sum(), means_init=means, precisions_init=prec)


def fit_both(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(**params).fit(X)
        theirs = SkGM(**params).fit(X)
    return ours, theirs


def assert_same_model(ours, theirs, X, rtol, atol=0.0, first_bound_rtol=None):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.shape == b.shape, name
        scale = np.max(np.abs(b))
        assert_allclose(a, b, rtol=rtol, atol=atol + rtol * scale * 1e-3, err_msg=name)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=rtol)
    assert_allclose(ours.lower_bounds_[1:], theirs.lower_bounds_[1:], rtol=rtol)
    assert_allclose(ours.lower_bounds_[:1], theirs.lower_bounds_[:1], rtol=first_bound_rtol or rtol)
    assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=rtol, atol=atol)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=rtol, atol=max(atol, rtol))
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_allclose(ours.bic(X), theirs.bic(X), rtol=rtol)
    assert_allclose(ours.aic(X), theirs.aic(X), rtol=rtol)


@pytest.mark.parametrize("d", [2, 4, 8, 9, 16, 17, 26])  # the engine's kernels differ by D
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_with_given_start(covariance_type, dtype, d):
    X, labels = make_blobs_data(n=803, d=d, k=3, seed=1, dtype=dtype)
    rough = (labels + (np.arange(len(labels)) % 5 == 0)) % 3  # 20% mislabelled
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        tol=1e-9 if dtype == np.float64 else 1e-4,
        max_iter=60,
        **start_from_labels(X, rough, 3, covariance_type),
    )
    ours, theirs = fit_both(X, **params)
    assert ours.n_iter_ > 2
    assert_same_model(ours, theirs, X, RTOL[dtype], atol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_random_initialisations(covariance_type, init_params):
    # The random initialisations draw the same numbers as scikit-learn, so
    # whole fits (n_init runs included) agree.
    if covariance_type == "tied" and init_params == "random_from_data":
        pytest.skip(
            "scikit-learn's initial tied covariance from a partial assignment depends "
            "on the data's origin; gaussmix uses the assigned samples' scatter"
        )
    X, _ = make_blobs_data(n=1500, d=3, k=3, seed=2, sep=6.0)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params=init_params,
        n_init=3,
        random_state=7,
        tol=1e-6,
        max_iter=300,
    )
    ours, theirs = fit_both(X, **params)
    # random_from_data starts from variances of reg_covar (1e-6): scikit-learn
    # expands ||x - mu||^2 p as x^2 p - 2 x mu p + mu^2 p for diag and spherical,
    # which loses ~7 digits of the first (huge, negative) bound there.
    assert_same_model(ours, theirs, X, 1e-9, atol=1e-10, first_bound_rtol=1e-6)


def test_tied_initial_covariance_is_translation_invariant():
    X, _ = make_blobs_data(n=300, d=2, k=3, seed=3)
    params = dict(n_components=3, covariance_type="tied", init_params="random_from_data",
                  random_state=0, max_iter=0)
    a = GaussianMixture(**params).fit(X)
    b = GaussianMixture(**params).fit(X + 100.0)
    assert_allclose(a.covariances_, b.covariances_, rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_kmeans_initialisation_quality(covariance_type, init_params):
    # Over 20 seeds, fits started by gaussmix's k-means are on average as good
    # as those started by scikit-learn's: the means may differ by no more than
    # two standard errors of their difference (the seeds differ, so the local
    # optima found differ).
    X, _ = make_blobs_data(n=1500, d=3, k=6, seed=4, sep=3.0)
    ours, theirs = [], []
    for seed in range(20):
        a, b = fit_both(X, n_components=6, covariance_type=covariance_type,
                        init_params=init_params, random_state=seed)
        ours.append(a.lower_bound_)
        theirs.append(b.lower_bound_)
    ours, theirs = np.array(ours), np.array(theirs)
    stderr = np.sqrt(ours.var() / len(ours) + theirs.var() / len(theirs))
    assert ours.mean() >= theirs.mean() - 2 * stderr - 1e-9
    # and every run reaches a sensible fit (no collapsed or wasted component)
    assert ours.min() > theirs.min() - 0.1 * abs(theirs.min())


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_invariants(covariance_type):
    X, _ = make_blobs_data(n=700, d=3, k=4, seed=5)
    gm = GaussianMixture(4, covariance_type=covariance_type, tol=1e-10, max_iter=50,
                         init_params="random", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-12)
    assert np.all(gm.weights_ > 0)
    lbs = np.array(gm.lower_bounds_)
    assert np.all(np.diff(lbs) >= -1e-12 * np.abs(lbs[1:])), "EM decreased the likelihood"
    covs = gm.covariances_
    if covariance_type in ("full", "tied"):
        covs = covs.reshape(-1, 3, 3)
        assert_allclose(covs, np.swapaxes(covs, 1, 2))
        assert np.all(np.linalg.eigvalsh(covs) > 0)
        prec = np.linalg.inv(covs)
        assert_allclose(gm.precisions_.reshape(-1, 3, 3), prec, rtol=1e-9)
        u = gm.precisions_cholesky_.reshape(-1, 3, 3)
        assert_allclose(np.tril(u, -1), 0.0)
    else:
        assert np.all(covs > 0)
        assert_allclose(gm.precisions_, 1.0 / covs, rtol=1e-12)
    proba = gm.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(gm.predict(X), proba.argmax(axis=1))
    assert_allclose(gm.score(X), gm.score_samples(X).mean())


def test_lower_bound_is_log_likelihood_before_last_m_step(blobs):
    X, _ = blobs
    gm = GaussianMixture(3, max_iter=4, tol=0, init_params="random_from_data", random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm.fit(X)
    # The bound of the last iteration is the likelihood of the parameters the
    # third M-step produced: refit with max_iter=3 and score.
    gm3 = GaussianMixture(3, max_iter=3, tol=0, init_params="random_from_data", random_state=0)
    with pytest.warns(ConvergenceWarning):
        gm3.fit(X)
    assert_allclose(gm.lower_bound_, gm3.score(X), rtol=1e-12)
    assert len(gm.lower_bounds_) == 4 and gm.lower_bounds_[-1] == gm.lower_bound_


def test_fit_predict_matches_fit_then_predict(blobs):
    X, _ = blobs
    for max_iter in (1, 2, 100):
        params = dict(n_components=3, max_iter=max_iter, random_state=0, tol=1e-8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = GaussianMixture(**params).fit_predict(X)
            assert_array_equal(labels, GaussianMixture(**params).fit(X).predict(X))


def test_max_iter_zero_returns_the_start(blobs):
    X, labels = blobs
    start = start_from_labels(X, labels, 3, "full")
    gm = GaussianMixture(3, max_iter=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning for max_iter=0
        gm.fit(X)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == [] and gm.lower_bound_ == -np.inf
    assert not gm.converged_
    assert_allclose(gm.means_, start["means_init"])
    assert_allclose(gm.precisions_, start["precisions_init"], rtol=1e-10)
    assert_allclose(gm.covariances_, np.linalg.inv(start["precisions_init"]), rtol=1e-10)


def test_warm_start_matches_scikit_learn(blobs):
    X, _ = blobs
    params = dict(n_components=3, warm_start=True, max_iter=2, tol=0,
                  init_params="random", random_state=3)
    ours, theirs = GaussianMixture(**params), SkGM(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            ours.fit(X)
            theirs.fit(X)
            assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-10)
    assert_same_model(ours, theirs, X, 1e-10, atol=1e-12)


def test_convergence_warning_wording(blobs):
    X, _ = blobs
    with pytest.warns(ConvergenceWarning, match=re.escape(
        "Best performing initialization did not converge. Try different init "
        "parameters, or increase max_iter, tol, or check for degenerate data."
    )):
        GaussianMixture(3, max_iter=1, random_state=0).fit(X)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_matches_scikit_learn(blobs, verbose):
    X, _ = blobs
    params = dict(n_components=3, verbose=verbose, verbose_interval=2, n_init=2,
                  init_params="random", random_state=0, max_iter=7, tol=1e-12)
    outputs = []
    for cls in (GaussianMixture, SkGM):
        buf = io.StringIO()
        with redirect_stdout(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**params).fit(X)
        # times differ; everything else must not
        outputs.append(re.sub(r"time lapse [0-9.]+s", "time lapse Ts", buf.getvalue()))
    assert outputs[0] == outputs[1]
    assert "Iteration 6" in outputs[0]
    # The fit is the same whether or not it is verbose.
    quiet = dict(params, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(**quiet).fit(X)
        with redirect_stdout(io.StringIO()):
            b = GaussianMixture(**params).fit(X)
    assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_matches_scikit_learn(blobs, covariance_type):
    X, _ = blobs
    ours, theirs = fit_both(X, n_components=3, covariance_type=covariance_type,
                            init_params="random", random_state=11, tol=1e-8)
    xs_a, ys_a = ours.sample(500)
    xs_b, ys_b = theirs.sample(500)
    assert xs_a.shape == (500, 3) and ys_a.dtype == ys_b.dtype
    assert_array_equal(ys_a, ys_b)
    assert_allclose(xs_a, xs_b, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    X, labels = make_blobs_data(n=300, d=3, k=3, seed=6)
    w = np.random.default_rng(0).integers(0, 4, len(X))
    Xrep = np.repeat(X, w, axis=0)
    start = start_from_labels(X, labels, 3, covariance_type)
    params = dict(n_components=3, covariance_type=covariance_type, tol=1e-10,
                  max_iter=40, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(**params).fit(X, sample_weight=w)
        repeated = GaussianMixture(**params).fit(Xrep)
        # Zero weights are the same as dropping the rows.
        dropped = GaussianMixture(**params).fit(X[w > 0], sample_weight=w[w > 0])
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-12)
        assert_allclose(getattr(weighted, name), getattr(dropped, name), rtol=1e-9, atol=1e-12)
    assert weighted.n_iter_ == repeated.n_iter_
    assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_weighted_kmeans_initialisation_equals_repeated_rows(init_params):
    X, _ = make_blobs_data(n=400, d=2, k=4, seed=7)
    w = np.random.default_rng(1).integers(1, 3, len(X))
    params = dict(n_components=4, init_params=init_params, random_state=0, max_iter=0)
    a = GaussianMixture(**params).fit(X, sample_weight=w)
    b = GaussianMixture(**params).fit(np.repeat(X, w, axis=0))
    assert_allclose(np.sort(a.means_, axis=0), np.sort(b.means_, axis=0), rtol=1e-9)


def test_uniform_weights_change_nothing(blobs):
    X, _ = blobs
    params = dict(n_components=3, random_state=0, init_params="random", tol=1e-8)
    a = GaussianMixture(**params).fit(X)
    b = GaussianMixture(**params).fit(X, sample_weight=np.full(len(X), 2.5))
    assert_allclose(a.means_, b.means_, rtol=1e-10)
    assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bitwise_identical_for_any_thread_count(covariance_type, dtype):
    X, _ = make_blobs_data(n=20_000, d=5, k=4, seed=8, dtype=dtype)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    fits = []
    for n_jobs in (1, 2, 3):
        gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                             n_jobs=n_jobs, tol=1e-6)
        gm.fit(X, sample_weight=w)
        fits.append((gm, gm.score_samples(X), gm.predict_proba(X)))
    for gm, ll, proba in fits[1:]:
        assert_array_equal(gm.means_, fits[0][0].means_)
        assert_array_equal(gm.covariances_, fits[0][0].covariances_)
        assert gm.lower_bounds_ == fits[0][0].lower_bounds_
        assert_array_equal(ll, fits[0][1])
        assert_array_equal(proba, fits[0][2])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_data_fits_as_well_as_centred_data(covariance_type):
    X, labels = make_blobs_data(n=2000, d=3, k=3, seed=9)
    offset = 1e6
    start = start_from_labels(X, labels, 3, covariance_type)
    shifted_start = dict(start, means_init=start["means_init"] + offset)
    params = dict(n_components=3, covariance_type=covariance_type, tol=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        centred = GaussianMixture(**params, **start).fit(X)
        far = GaussianMixture(**params, **shifted_start).fit(X + offset)
    # X + 1e6 is itself rounded to ~1e-10: that is the accuracy to expect.
    assert_allclose(far.means_ - offset, centred.means_, atol=1e-8)
    assert_allclose(far.covariances_, centred.covariances_, rtol=1e-7)
    assert_allclose(far.weights_, centred.weights_, rtol=1e-8)


def test_float32_diag_keeps_positive_variances():
    # Small spread far from the origin: E[x^2] - E[x]^2 in float32 (as
    # scikit-learn computes it) cancels catastrophically; centred moments do not.
    rng = np.random.default_rng(10)
    X64 = np.vstack([rng.normal(size=(2000, 2)) * 1e-2 + 1e3,
                     rng.normal(size=(2000, 2)) * 2e-2 + 1e3 + 0.5])
    X32 = X64.astype(np.float32)
    labels = np.repeat([0, 1], 2000)
    start = start_from_labels(X32, labels, 2, "diag", reg=1e-6)
    params = dict(n_components=2, covariance_type="diag", reg_covar=1e-10, max_iter=5, tol=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours32 = GaussianMixture(**params).fit(X32)
        ours64 = GaussianMixture(**params).fit(X32.astype(np.float64))
    assert ours32.covariances_.dtype == np.float32
    assert np.all(ours32.covariances_ > 0)
    assert_allclose(ours32.covariances_, ours64.covariances_, rtol=1e-3)


def test_float32_in_float32_out(blobs):
    X, _ = blobs
    gm = GaussianMixture(3, random_state=0).fit(X.astype(np.float32))
    sk = SkGM(3, random_state=0).fit(X.astype(np.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm, name).dtype == np.float32, name
        assert getattr(gm, name).dtype == getattr(sk, name).dtype, name
    assert gm.score_samples(X.astype(np.float32)).dtype == np.float32
    assert gm.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert gm.score_samples(X).dtype == np.float64


def test_n_jobs_values(blobs):
    X, _ = blobs
    ref = GaussianMixture(3, random_state=0).fit(X)
    for n_jobs in (None, -1, -2, 1, 4):
        gm = GaussianMixture(3, random_state=0, n_jobs=n_jobs).fit(X)
        assert_array_equal(gm.means_, ref.means_)


def test_dataframe_input_sets_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, _ = blobs
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    gm = GaussianMixture(3, random_state=0).fit(df)
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    assert gm.n_features_in_ == 3
    assert_array_equal(gm.predict(df), GaussianMixture(3, random_state=0).fit(X).predict(X))


def test_zero_weight_row_far_away_is_left_out():
    # Its log-density underflows to -inf; with weight 0 it must add nothing
    # (0 * -inf would make the lower bound NaN).
    X, _ = make_blobs_data(n=200, d=2, k=2, seed=12)
    X_far = np.vstack([X, [[1e200, -1e200]]])
    w = np.r_[np.ones(len(X)), 0.0]
    for init_params in ("k-means++", "random_from_data"):
        params = dict(n_components=2, random_state=0, init_params=init_params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            weighted = GaussianMixture(**params).fit(X_far, sample_weight=w)
        assert np.isfinite(weighted.lower_bound_), init_params
        assert np.all(np.isfinite(weighted.means_))
    # init_params="kmeans" is scikit-learn's KMeans(sample_weight=w), which
    # centres the data on their unweighted mean and scales its tolerance by
    # their unweighted variance: the row swamps both, every other row rounds
    # to one point, and the single cluster found leaves a component without
    # samples, which is reported as an ill-defined covariance.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            GaussianMixture(2, random_state=0).fit(X_far, sample_weight=w)


@pytest.mark.parametrize("scale", [1e-15, 1e-300, 1e300])
def test_weight_scale_does_not_matter(scale):
    X, _ = make_blobs_data(n=300, d=2, k=3, seed=13)
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0).fit(X, sample_weight=np.full(len(X), scale))
    assert_allclose(b.means_, a.means_, rtol=1e-12)
    assert_allclose(b.covariances_, a.covariances_, rtol=1e-12)
