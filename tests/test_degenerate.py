"""Degenerate fits: a clear ValueError or finite, valid parameters, never NaN."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
ILL_DEFINED = "ill-defined empirical covariance"


def _assert_valid(gm, n_features):
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(gm, name)
        assert np.all(np.isfinite(value)), name
    assert gm.weights_.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.all(gm.weights_ >= 0)
    cov = gm.covariances_
    if gm.covariance_type in ("full", "tied"):
        mats = cov.reshape(-1, n_features, n_features)
        np.testing.assert_allclose(mats, np.swapaxes(mats, 1, 2), rtol=0, atol=1e-12 * np.abs(mats).max())
        assert np.all(np.linalg.eigvalsh(mats) > 0)
    else:
        assert np.all(cov > 0)


def _fit_or_ill_defined(X, **params):
    """Fit; an ill-defined covariance must be scikit-learn's ValueError."""
    gm = GaussianMixture(**params)
    try:
        gm.fit(X)
    except ValueError as exc:
        assert ILL_DEFINED in str(exc)
        assert "reg_covar" in str(exc)
        return None
    _assert_valid(gm, X.shape[1])
    assert np.all(np.isfinite(gm.score_samples(X)))
    return gm


def _identity_precisions(cov, k, d):
    return {
        "full": np.stack([np.eye(d)] * k),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[cov]


@pytest.mark.parametrize("cov", COV_TYPES)
def test_component_collapsing_mid_fit_raises(cov):
    """Each component owns a single repeated point after the first E-step:
    its (and the pooled) covariance is zero with reg_covar=0."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(2, 3)) * 5
    X = np.repeat(points, 50, axis=0)
    params = dict(
        n_components=2,
        covariance_type=cov,
        reg_covar=0.0,
        weights_init=[0.5, 0.5],
        means_init=points + 0.1,
        precisions_init=_identity_precisions(cov, 2, 3),
    )
    with pytest.raises(ValueError, match=ILL_DEFINED) as info:
        GaussianMixture(**params).fit(X)
    assert "reg_covar" in str(info.value)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_component_emptying_mid_fit(cov):
    """A component far from all data gets no responsibility: with reg_covar=0
    its covariance is zero -> the error naming it (scikit-learn raises too);
    a tied covariance is pooled from the others and stays valid."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    params = dict(
        n_components=3,
        covariance_type=cov,
        reg_covar=0.0,
        weights_init=[0.4, 0.4, 0.2],
        means_init=[[-3.0, -3.0], [3.0, 3.0], [1e3, 1e3]],
        precisions_init=_identity_precisions(cov, 3, 2),
    )
    if cov == "tied":
        gm = GaussianMixture(**params).fit(X)
        sk = SkGaussianMixture(**params).fit(X)
        _assert_valid(gm, 2)
        assert gm.weights_[2] < 1e-6
        np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-6)
        return
    with pytest.raises(ValueError, match=ILL_DEFINED) as info:
        GaussianMixture(**params).fit(X)
    assert "component 2" in str(info.value)
    with pytest.raises(ValueError, match=ILL_DEFINED):
        SkGaussianMixture(**params).fit(X)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_empty_component_with_default_reg_is_finite(cov):
    """The same empty component with the default reg_covar: a valid fit."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    gm = GaussianMixture(
        n_components=3,
        covariance_type=cov,
        weights_init=[0.4, 0.4, 0.2],
        means_init=[[-3.0, -3.0], [3.0, 3.0], [1e3, 1e3]],
        precisions_init=_identity_precisions(cov, 3, 2),
    ).fit(X)
    _assert_valid(gm, 2)
    assert gm.weights_[2] < 1e-6
    # the empty component keeps its mean rather than jumping to the origin
    np.testing.assert_allclose(gm.means_[2], [1e3, 1e3])


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("case", ["duplicated_column", "points_on_a_line"])
def test_singular_data_without_regularization(cov, case):
    rng = np.random.default_rng(2)
    if case == "duplicated_column":
        Z = np.vstack([rng.normal(-4, 1, (100, 3)), rng.normal(4, 1, (100, 3))])
        X = np.c_[Z, Z[:, 0]]
    else:
        t = np.r_[rng.normal(-4, 1, 100), rng.normal(4, 1, 100)]
        X = np.c_[t, 2 * t + 1, -t]
    gm = _fit_or_ill_defined(X, n_components=2, covariance_type=cov, reg_covar=0.0, random_state=0)
    if cov in ("full", "tied"):
        # a rank-deficient covariance has no Cholesky factor
        assert gm is None
    else:
        # per-feature variances of real spread are positive
        assert gm is not None


@pytest.mark.parametrize("cov", COV_TYPES)
def test_many_more_features_than_samples(cov):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 200))
    X[10:] += 3.0
    gm = _fit_or_ill_defined(X, n_components=2, covariance_type=cov, random_state=0)
    assert gm is not None  # reg_covar=1e-6 makes every covariance definite
    assert gm.means_.shape == (2, 200)
    assert np.all(np.isfinite(gm.predict_proba(X)))
    assert set(np.unique(gm.predict(X))) <= {0, 1}


def test_many_components():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5000, 2))
    gm = GaussianMixture(n_components=1000, covariance_type="diag", random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    _assert_valid(gm, 2)
    assert gm.means_.shape == (1000, 2)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("offset", [0.0, 7.0, 1e6])
def test_constant_data(cov, offset):
    X = np.full((50, 3), offset)
    gm = GaussianMixture(n_components=1, covariance_type=cov, random_state=0).fit(X)
    _assert_valid(gm, 3)
    np.testing.assert_array_equal(gm.means_, np.full((1, 3), offset))
    # the covariance is exactly the regularization
    expected = {
        "full": np.eye(3)[None] * 1e-6,
        "tied": np.eye(3) * 1e-6,
        "diag": np.full((1, 3), 1e-6),
        "spherical": np.full(1, 1e-6),
    }[cov]
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-9, atol=1e-15)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("cov", COV_TYPES)
def test_constant_data_more_components(cov):
    X = np.full((50, 3), 7.0)
    # the k-means initialisation finds one cluster and says so, as scikit-learn's KMeans does
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(1\) found smaller"):
        gm = _fit_or_ill_defined(X, n_components=2, covariance_type=cov, random_state=0)
    assert gm is not None
    np.testing.assert_allclose(gm.means_, 7.0)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_constant_data_without_regularization_raises(cov):
    X = np.full((50, 3), 7.0)
    with pytest.raises(ValueError, match=ILL_DEFINED):
        GaussianMixture(n_components=1, covariance_type=cov, reg_covar=0.0).fit(X)


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_single_repeated_point(cov, dtype):
    point = np.array([1.5, -2.0, 1e3, 0.0])
    X = np.tile(point, (30, 1)).astype(dtype)
    gm = GaussianMixture(n_components=1, covariance_type=cov, random_state=0).fit(X)
    _assert_valid(gm, 4)
    assert gm.converged_
    np.testing.assert_allclose(gm.means_[0], point.astype(dtype), rtol=1e-6)
    np.testing.assert_array_equal(gm.predict(X), 0)
    np.testing.assert_allclose(gm.predict_proba(X), 1.0)
    scores = gm.score_samples(X)
    assert np.all(np.isfinite(scores))
    # the density at the point is that of N(0, 1e-6 I) at its mean
    np.testing.assert_allclose(scores, -2.0 * np.log(2 * np.pi * 1e-6), rtol=1e-4)
