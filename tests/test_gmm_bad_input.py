"""Bad input to every public entry point of gaussmix.GaussianMixture.

Where scikit-learn supports the input, the exception type is the one
scikit-learn's GaussianMixture raises for the same call; the message is
checked to name the problem. ``sample_weight`` and ``n_jobs`` have no
scikit-learn counterpart: they must raise ValueError/TypeError naming the
argument.
"""

import copy
import re

import numpy as np
import pytest
import scipy.sparse as sp
from gmm_data import make_blobs_data
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PREDICT_METHODS = ["predict", "predict_proba", "score_samples", "score", "bic", "aic"]
N_SAMPLES, N_FEATURES, N_COMPONENTS = 60, 2, 2


def _data(dtype=np.float64):
    X, _ = make_blobs_data(n=N_SAMPLES, d=N_FEATURES, k=N_COMPONENTS, seed=1, sep=6.0, dtype=dtype)
    return X


def _precisions(covariance_type, k=N_COMPONENTS, d=N_FEATURES):
    return {
        "full": np.array([np.eye(d) * (j + 1) for j in range(k)]),
        "tied": np.eye(d) * 2.0,
        "diag": np.ones((k, d)) * 1.5,
        "spherical": np.arange(1.0, k + 1.0),
    }[covariance_type]


def assert_raises_like_sklearn(call, match):
    """``call(cls)`` raises for scikit-learn's class, and the same type for ours."""
    with pytest.raises(Exception) as sk_info:
        call(SkGaussianMixture)
    with pytest.raises(Exception, match=match) as gm_info:
        call(GaussianMixture)
    assert gm_info.type is sk_info.type, (
        f"gaussmix raised {gm_info.type.__name__}: {gm_info.value}; "
        f"scikit-learn raised {sk_info.type.__name__}: {sk_info.value}"
    )
    return gm_info


@pytest.fixture(scope="module")
def fitted():
    """The same data fitted by scikit-learn and by gaussmix: {cls: model}."""
    X = _data()
    return {
        cls: cls(n_components=N_COMPONENTS, random_state=0).fit(X)
        for cls in (SkGaussianMixture, GaussianMixture)
    }


def _put(X, value):
    X = X.copy()
    X[3, 1] = value
    return X


# name -> (build bad X from a good X, regex the message must match)
BAD_X = {
    "nan": (lambda X: _put(X, np.nan), r"Input X contains NaN"),
    "inf": (lambda X: _put(X, np.inf), r"Input X contains infinity"),
    "-inf": (lambda X: _put(X, -np.inf), r"Input X contains infinity"),
    "1-D": (lambda X: X[:, 0], r"Expected 2D array, got 1D array"),
    "scalar": (lambda X: 3.0, r"Expected 2D array, got scalar array"),
    "3-D": (lambda X: X[:, :, np.newaxis], r"Found array with dim 3"),
    "0 rows": (lambda X: X[:0], r"Found array with 0 sample\(s\)"),
    "0 columns": (lambda X: X[:, :0], r"Found array with 0 feature\(s\)"),
    "complex": (lambda X: X + 1j, r"Complex data not supported"),
    "csr_matrix": (lambda X: sp.csr_matrix(X), r"Sparse data was passed for X, but dense data is required"),
    "csr_array": (lambda X: sp.csr_array(X), r"Sparse data was passed for X, but dense data is required"),
    "coo_matrix": (lambda X: sp.coo_matrix(X), r"Sparse data was passed for X, but dense data is required"),
    "strings": (lambda X: np.full(X.shape, "a"), r"string"),
    "object strings": (lambda X: np.array([["a", 1.0]] * len(X), dtype=object), r"could not convert string to float"),
    "object None": (lambda X: _put(X.astype(object), None), r"Input X contains NaN"),
    "ragged list": (lambda X: [[1.0, 2.0], [3.0]], r"inhomogeneous"),
}


# ------------------------------------------------------------------ X in fit


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize("case", list(BAD_X))
def test_fit_rejects_bad_X_like_sklearn(method, case):
    make_bad, match = BAD_X[case]
    bad = make_bad(_data())
    assert_raises_like_sklearn(
        lambda cls: getattr(cls(n_components=N_COMPONENTS, random_state=0), method)(bad), match
    )


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_rejects_single_sample(method, dtype):
    X = _data(dtype)[:1]
    assert_raises_like_sklearn(
        lambda cls: getattr(cls(n_components=1), method)(X),
        r"Found array with 1 sample\(s\) \(shape=\(1, 2\)\) while a minimum of 2 is required",
    )


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
def test_fit_rejects_fewer_samples_than_components(method):
    X = _data()[:3]
    assert_raises_like_sklearn(
        lambda cls: getattr(cls(n_components=4), method)(X),
        r"Expected n_samples >= n_components but got n_components = 4, n_samples = 3",
    )


# X from a given start: its finiteness is checked by the first E-step (the
# engine's), not by a pass of its own; the errors must be scikit-learn's all
# the same, raised before anything else is checked, and leave the estimator
# as scikit-learn leaves it.

NON_FINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def _given_start(covariance_type, dtype=np.float64, **params):
    return dict(
        n_components=N_COMPONENTS,
        covariance_type=covariance_type,
        weights_init=np.array([0.4, 0.6]),
        means_init=np.array([[-3.0, 0.0], [3.0, 0.0]]),
        precisions_init=_precisions(covariance_type),
        random_state=0,
        **params,
    )


def _big_data(dtype):
    X, _ = make_blobs_data(n=3000, d=N_FEATURES, k=N_COMPONENTS, seed=1, sep=6.0, dtype=dtype)
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", list(NON_FINITE))
@pytest.mark.parametrize("where", ["first row", "last row of 3000"])
@pytest.mark.parametrize("variant", ["plain", "verbose", "n_init=2", "fit_predict", "warm start"])
def test_fit_from_a_given_start_rejects_non_finite_X_like_sklearn(
    covariance_type, dtype, value, where, variant, capsys
):
    good = _big_data(dtype) if where.startswith("last") else _data(dtype)
    bad = good.copy()
    bad[-1 if where.startswith("last") else 0, 1] = NON_FINITE[value]
    params = {"verbose": 1} if variant == "verbose" else {"n_init": 2} if variant == "n_init=2" else {}
    if variant == "warm start":
        params["warm_start"] = True
    models = {}
    for cls in (SkGaussianMixture, GaussianMixture):
        model = cls(**_given_start(covariance_type, **params))
        if variant == "warm start":
            model.fit(good[:, ::-1].copy() * 1.5)
        models[cls] = model
    method = "fit_predict" if variant == "fit_predict" else "fit"
    info = assert_raises_like_sklearn(lambda cls: getattr(models[cls], method)(bad), r"Input X contains")
    with pytest.raises(ValueError) as sk_info:
        getattr(models[SkGaussianMixture], method)(bad)
    assert str(info.value) == str(sk_info.value)
    assert info.value.__suppress_context__ or info.value.__context__ is None
    if variant == "verbose":  # nothing printed before the error
        assert capsys.readouterr().out == ""
    # attributes as scikit-learn leaves them (a warm start keeps its model)
    sk, gm = models[SkGaussianMixture], models[GaussianMixture]
    assert getattr(gm, "n_features_in_", None) == getattr(sk, "n_features_in_", None)
    assert hasattr(gm, "means_") == hasattr(sk, "means_")
    if hasattr(sk, "means_"):
        assert_allclose(gm.means_, sk.means_, rtol=1e-6 if dtype == np.float32 else 1e-10)
    capsys.readouterr()


@pytest.mark.parametrize("problem", ["means_init shape", "fewer samples than components", "sample_weight"])
def test_fit_from_a_given_start_reports_non_finite_X_before_other_errors(problem):
    bad = _put(_data(), np.nan)
    params = _given_start("diag")
    if problem == "means_init shape":
        params["means_init"] = np.zeros((N_COMPONENTS, N_FEATURES + 1))
    elif problem == "fewer samples than components":
        bad = bad[:5]
        params.update(
            n_components=8, weights_init=np.full(8, 1 / 8), means_init=np.zeros((8, 2)),
            precisions_init=np.ones((8, 2)),
        )
    else:  # gaussmix only: scikit-learn's fit takes no weights
        with pytest.raises(ValueError, match=r"Input X contains NaN"):
            GaussianMixture(**params).fit(bad, sample_weight=-np.ones(len(bad)))
        return
    assert_raises_like_sklearn(lambda cls: cls(**params).fit(bad), r"Input X contains NaN")


def test_fit_from_a_given_start_on_finite_X_is_unchanged_by_the_deferred_check():
    X = _big_data(np.float64)
    params = _given_start("full", max_iter=5, tol=0.0)
    gm = GaussianMixture(**params)
    with pytest.warns(ConvergenceWarning):
        gm.fit(X)
    sk = SkGaussianMixture(**params)
    with pytest.warns(ConvergenceWarning):
        sk.fit(X)
    assert gm.n_iter_ == sk.n_iter_ == 5
    assert_allclose(gm.means_, sk.means_, rtol=1e-10)
    assert_allclose(gm.lower_bound_, sk.lower_bound_, rtol=1e-10)


# ------------------------------------------------------- X after fitting


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("case", list(BAD_X))
def test_predict_methods_reject_bad_X_like_sklearn(fitted, method, case):
    make_bad, match = BAD_X[case]
    bad = make_bad(_data())
    assert_raises_like_sklearn(lambda cls: getattr(fitted[cls], method)(bad), match)


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("value", list(NON_FINITE))
@pytest.mark.parametrize("model_dtype", [np.float64, np.float32])
def test_predict_methods_reject_non_finite_X_in_a_late_block(method, value, model_dtype):
    # the check is the engine's: a value in the last rows of a large X, and a
    # float64 X given to a float32 model (checked before it is cast)
    X = _big_data(model_dtype)
    models = {cls: cls(n_components=N_COMPONENTS, random_state=0).fit(X) for cls in (SkGaussianMixture, GaussianMixture)}
    bad = X.astype(np.float64)
    bad[-2, 0] = NON_FINITE[value]
    info = assert_raises_like_sklearn(lambda cls: getattr(models[cls], method)(bad), r"Input X contains")
    with pytest.raises(ValueError) as sk_info:
        getattr(models[SkGaussianMixture], method)(bad)
    assert str(info.value) == str(sk_info.value)
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_float32_model_scores_float64_X_that_overflows_float32():
    # finite in float64, infinite once cast to the model's float32: not an
    # error (the check is made before the cast), a point far from the model
    X = _big_data(np.float32)
    gm = GaussianMixture(n_components=N_COMPONENTS, random_state=0).fit(X)
    far = X[:3].astype(np.float64)
    far[0, 0] = 1e300
    got = gm.score_samples(far)
    assert got[0] == -np.inf
    assert np.all(np.isfinite(got[1:]))


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("n_features", [1, 3])
def test_predict_methods_reject_wrong_feature_count(fitted, method, n_features):
    X = np.ones((5, n_features))
    assert_raises_like_sklearn(
        lambda cls: getattr(fitted[cls], method)(X),
        rf"X has {n_features} features, but GaussianMixture is expecting {N_FEATURES} features",
    )


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_predict_methods_before_fit_raise_not_fitted(method):
    X = _data()
    info = assert_raises_like_sklearn(
        lambda cls: getattr(cls(n_components=N_COMPONENTS), method)(X), r"not fitted yet"
    )
    assert issubclass(info.type, NotFittedError)


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_predict_methods_accept_a_single_sample(fitted, method):
    out = getattr(fitted[GaussianMixture], method)(_data()[:1])
    assert np.all(np.isfinite(out))
    assert np.shape(out) in {(), (1,), (1, N_COMPONENTS)}


# ----------------------------------------------------------------- sample


def test_sample_before_fit_raises_not_fitted():
    info = assert_raises_like_sklearn(lambda cls: cls(n_components=2).sample(3), r"not fitted yet")
    assert issubclass(info.type, NotFittedError)


@pytest.mark.parametrize("n_samples", [0, -1])
def test_sample_rejects_non_positive_n_samples(fitted, n_samples):
    assert_raises_like_sklearn(
        lambda cls: fitted[cls].sample(n_samples),
        rf"Invalid value for 'n_samples': {n_samples} \. The sampling requires at least one sample",
    )


@pytest.mark.parametrize("n_samples", ["a", None])
def test_sample_rejects_non_numeric_n_samples(fitted, n_samples):
    assert_raises_like_sklearn(lambda cls: fitted[cls].sample(n_samples), r"not supported")


# ----------------------------------------------------- constructor params

BAD_PARAMS = [
    ("n_components", 0, r"'n_components' parameter of GaussianMixture must be an int in the range \[1, inf\)"),
    ("n_components", 1.5, r"'n_components' parameter of GaussianMixture must be an int"),
    ("covariance_type", "bogus", r"'covariance_type' parameter of GaussianMixture must be a str among"),
    ("tol", -1, r"'tol' parameter of GaussianMixture must be a float in the range \[0\.0, inf\)"),
    ("reg_covar", -1, r"'reg_covar' parameter of GaussianMixture must be a float in the range \[0\.0, inf\)"),
    ("max_iter", -1, r"'max_iter' parameter of GaussianMixture must be an int in the range \[0, inf\)"),
    ("n_init", 0, r"'n_init' parameter of GaussianMixture must be an int in the range \[1, inf\)"),
    ("init_params", "bogus", r"'init_params' parameter of GaussianMixture must be a str among"),
    ("verbose_interval", 0, r"'verbose_interval' parameter of GaussianMixture must be an int"),
    ("warm_start", "yes", r"'warm_start' parameter of GaussianMixture must be an instance of 'bool'"),
    ("random_state", "a", r"'random_state' parameter of GaussianMixture must be"),
]


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize(("name", "value", "match"), BAD_PARAMS)
def test_invalid_constructor_params_like_sklearn(method, name, value, match):
    X = _data()
    info = assert_raises_like_sklearn(lambda cls: getattr(cls(**{name: value}), method)(X), match)
    assert issubclass(info.type, ValueError)


@pytest.mark.parametrize(("name", "value", "match"), BAD_PARAMS)
def test_constructor_stores_params_without_validating(name, value, match):
    gm = GaussianMixture(**{name: value})
    assert gm.get_params()[name] == value
    assert not hasattr(gm, "n_features_in_")


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize(("n_jobs", "exc"), [(0, ValueError), ("a", TypeError), (1.5, TypeError)])
def test_invalid_n_jobs_in_fit(method, n_jobs, exc):
    with pytest.raises(exc, match=r"n_jobs"):
        getattr(GaussianMixture(n_components=2, n_jobs=n_jobs), method)(_data())


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize(("n_jobs", "exc"), [(0, ValueError), ("a", TypeError)])
def test_invalid_n_jobs_set_after_fit(fitted, method, n_jobs, exc):
    gm = copy.deepcopy(fitted[GaussianMixture]).set_params(n_jobs=n_jobs)
    with pytest.raises(exc, match=r"n_jobs"):
        getattr(gm, method)(_data())


def test_n_jobs_beyond_int_range_fits_or_names_n_jobs():
    gm = GaussianMixture(n_components=2, n_jobs=2**31, random_state=0)
    try:
        gm.fit(_data())
    except (ValueError, TypeError) as exc:
        names_n_jobs = "n_jobs" in str(exc)
        assert names_n_jobs, f"{type(exc).__name__} does not name n_jobs: {str(exc)[:160]}"
    else:
        assert gm.converged_


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1, -2, -(2**40)])
def test_valid_n_jobs_fit_the_same_model(n_jobs):
    X = _data()
    ref = GaussianMixture(n_components=2, random_state=0, n_jobs=1).fit(X)
    gm = GaussianMixture(n_components=2, random_state=0, n_jobs=n_jobs).fit(X)
    assert_array_equal(gm.means_, ref.means_)
    assert_array_equal(gm.predict_proba(X), ref.predict_proba(X))


# ------------------------------------------------------------ sample_weight

BAD_SAMPLE_WEIGHT = {
    "negative": (lambda n: np.r_[-1.0, np.ones(n - 1)], ValueError, r"Negative values in data passed to sample_weight"),
    "negative scalar": (lambda n: -1.0, ValueError, r"Negative values in data passed to sample_weight"),
    "nan": (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError, r"Input sample_weight contains NaN"),
    "inf": (lambda n: np.r_[np.inf, np.ones(n - 1)], ValueError, r"Input sample_weight contains infinity"),
    "all zero": (lambda n: np.zeros(n), ValueError, r"(?i)sample[ _]weights? must contain at least one non-zero"),
    "zero scalar": (lambda n: 0.0, ValueError, r"(?i)sample[ _]weights? must contain at least one non-zero"),
    "too short": (lambda n: np.ones(n - 1), ValueError, rf"sample_weight\.shape == \({N_SAMPLES - 1},\), expected \({N_SAMPLES},\)"),
    "too long": (lambda n: np.ones(n + 1), ValueError, rf"sample_weight\.shape == \({N_SAMPLES + 1},\), expected \({N_SAMPLES},\)"),
    "short list": (lambda n: [1.0, 2.0], ValueError, r"sample_weight\.shape == \(2,\)"),
    "2-D column": (lambda n: np.ones((n, 1)), ValueError, rf"sample_weight must be 1-D, got an array of shape \({N_SAMPLES}, 1\)"),
    "2-D row": (lambda n: np.ones((1, n)), ValueError, r"sample_weight must be 1-D"),
    "complex": (lambda n: np.ones(n) + 1j, ValueError, r"Complex data not supported"),
    "strings": (lambda n: np.full(n, "a"), ValueError, r"could not convert string to float"),
    "sparse": (lambda n: sp.csr_matrix(np.ones((n, 1))), TypeError, r"Sparse data was passed for sample_weight"),
}


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize("case", list(BAD_SAMPLE_WEIGHT))
def test_bad_sample_weight(method, case):
    make_bad, exc, match = BAD_SAMPLE_WEIGHT[case]
    gm = GaussianMixture(n_components=2, random_state=0)
    with pytest.raises(exc, match=match):
        getattr(gm, method)(_data(), sample_weight=make_bad(N_SAMPLES))
    assert not hasattr(gm, "means_")


@pytest.mark.parametrize("scale", [1e300, 1e308])
def test_sample_weight_scale_does_not_matter(scale):
    X = _data()
    ref = GaussianMixture(n_components=2, random_state=0).fit(X, sample_weight=np.ones(N_SAMPLES))
    gm = GaussianMixture(n_components=2, random_state=0)
    try:
        gm.fit(X, sample_weight=np.full(N_SAMPLES, scale))
    except ValueError as exc:
        names_sample_weight = "sample_weight" in str(exc)
        assert names_sample_weight, f"error does not name sample_weight: {exc}"
    else:
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-9)
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-9)


# ------------------------------------------------------ initial parameters


def _fit_with(**params):
    X = _data()
    return lambda cls: cls(n_components=N_COMPONENTS, random_state=0, **params).fit(X)


@pytest.mark.parametrize(
    ("weights_init", "match"),
    [
        ([0.2, 0.3, 0.5], r"The parameter 'weights' should have the shape of \(2,\), but got \(3,\)"),
        ([1.0], r"The parameter 'weights' should have the shape of \(2,\), but got \(1,\)"),
        ([[0.5, 0.5]], r"The parameter 'weights' should have the shape of \(2,\), but got \(1, 2\)"),
        ([0.2, 0.3], r"The parameter 'weights' should be normalized, but got sum\(weights\) = 0\.50000"),
        ([0.7, 0.7], r"The parameter 'weights' should be normalized, but got sum\(weights\) = 1\.40000"),
        ([-0.5, 1.5], r"The parameter 'weights' should be in the range \[0, 1\]"),
        ([1.5, -0.5], r"The parameter 'weights' should be in the range \[0, 1\]"),
        ([np.nan, 0.5], r"contains NaN"),
        ([np.inf, 0.5], r"contains infinity"),
        (["a", "b"], r"could not convert string to float"),
    ],
)
def test_bad_weights_init_like_sklearn(weights_init, match):
    assert_raises_like_sklearn(_fit_with(weights_init=weights_init), match)


@pytest.mark.parametrize("weights_init", [[-0.5, 1.5], [1.5, -0.5]])
def test_weights_init_range_message_is_scikit_learns_word_for_word(weights_init):
    # scikit-learn's own test file checks its message, whose labels are swapped
    with pytest.raises(ValueError, match=r"should be in the range") as ours:
        _fit_with(weights_init=weights_init)(GaussianMixture)
    with pytest.raises(ValueError, match=r"should be in the range") as theirs:
        _fit_with(weights_init=weights_init)(SkGaussianMixture)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    ("means_init", "match"),
    [
        (np.zeros((3, 2)), r"The parameter 'means' should have the shape of \(2, 2\), but got \(3, 2\)"),
        (np.zeros((2, 3)), r"The parameter 'means' should have the shape of \(2, 2\), but got \(2, 3\)"),
        (np.zeros(2), r"The parameter 'means' should have the shape of \(2, 2\), but got \(2,\)"),
        (np.zeros((2, 2, 1)), r"Found array with dim 3"),
        (np.full((2, 2), np.nan), r"contains NaN"),
        (np.full((2, 2), np.inf), r"contains infinity"),
    ],
)
def test_bad_means_init_like_sklearn(means_init, match):
    assert_raises_like_sklearn(_fit_with(means_init=means_init), match)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("change", ["bigger", "1-D", "nan", "inf"])
def test_bad_precisions_init_shape_or_values_like_sklearn(covariance_type, change):
    good = _precisions(covariance_type)
    bad, match = {
        "bigger": (
            np.ones(tuple(s + 1 for s in good.shape)),
            rf"The parameter '{covariance_type} precision' should have the shape of "
            + re.escape(str(good.shape)),
        ),
        "1-D": (np.ones(7), rf"The parameter '{covariance_type} precision' should have the shape of"),
        "nan": (np.full(good.shape, np.nan), r"contains NaN"),
        "inf": (np.full(good.shape, np.inf), r"contains infinity"),
    }[change]
    assert_raises_like_sklearn(_fit_with(covariance_type=covariance_type, precisions_init=bad), match)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize(
    "matrix",
    [
        [[1.0, 2.0], [2.0, 1.0]],  # symmetric, indefinite
        [[1.0, 0.5], [0.0, 1.0]],  # positive eigenvalues, not symmetric
        [[-1.0, 0.0], [0.0, -1.0]],  # negative definite
        [[1.0, 1.0], [1.0, 1.0]],  # singular
    ],
    ids=["indefinite", "non-symmetric", "negative-definite", "singular"],
)
def test_non_spd_precisions_init_like_sklearn(covariance_type, matrix):
    matrix = np.array(matrix)
    precisions = matrix if covariance_type == "tied" else np.array([np.eye(2), matrix])
    assert_raises_like_sklearn(
        _fit_with(covariance_type=covariance_type, precisions_init=precisions),
        rf"'{covariance_type} precision' should be symmetric, positive-definite",
    )


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_non_positive_precisions_init_like_sklearn(covariance_type, value):
    precisions = _precisions(covariance_type).copy()
    precisions.flat[-1] = value
    assert_raises_like_sklearn(
        _fit_with(covariance_type=covariance_type, precisions_init=precisions),
        rf"'{covariance_type} precision' should be positive",
    )


# -------------------------------------------------------- degenerate fits


def _collapsed(dtype):
    return np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 10, axis=0).astype(dtype)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_collapsed_component_raises_ill_defined_covariance(covariance_type, dtype):
    X = _collapsed(dtype)
    info = assert_raises_like_sklearn(
        lambda cls: cls(
            n_components=2, covariance_type=covariance_type, reg_covar=0.0, random_state=0
        ).fit(X),
        r"ill-defined empirical covariance",
    )
    message = str(info.value)
    assert "increase reg_covar" in message
    if dtype == np.float32:
        assert "passing float64 data instead of float32" in message
    else:
        assert "float64" not in message


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapsed_component_fits_with_reg_covar(covariance_type):
    gm = GaussianMixture(n_components=2, covariance_type=covariance_type, reg_covar=1e-3, random_state=0)
    gm.fit(_collapsed(np.float64))
    assert np.all(np.isfinite(gm.covariances_))
    assert_array_equal(np.sort(gm.means_[:, 0].round(6)), [0.0, 1.0])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_overflowing_data_raises_instead_of_nan(covariance_type):
    gm = GaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0)
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance"):
        gm.fit(_data() * 1e200)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(("dtype", "scale"), [(np.float64, 1e160), (np.float32, 1e20)])
def test_score_samples_far_from_the_model_is_minus_inf_like_sklearn(covariance_type, dtype, scale):
    X = _data(dtype)
    far = (X[:4] * scale).astype(dtype)
    assert np.all(np.isfinite(far))
    sk = SkGaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = sk.score_samples(far)
    assert np.all(expected == -np.inf)
    gm = GaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    got = gm.score_samples(far)
    assert not np.any(np.isnan(got)), got
    assert_array_equal(got, expected)


# ----------------------------------------------- inputs are never modified


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_iter", [0, 100])
def test_fit_and_predict_do_not_modify_caller_arrays(covariance_type, dtype, max_iter):
    X = _data(dtype)
    rng = np.random.default_rng(3)
    sample_weight = rng.uniform(0.5, 2.0, N_SAMPLES)
    weights_init = np.array([0.4, 0.6], dtype=dtype)
    means_init = X[[0, 1]].copy()
    precisions_init = _precisions(covariance_type).astype(dtype)
    arrays = {
        "X": X,
        "sample_weight": sample_weight,
        "weights_init": weights_init,
        "means_init": means_init,
        "precisions_init": precisions_init,
    }
    saved = {name: a.copy() for name, a in arrays.items()}

    gm = GaussianMixture(
        n_components=2,
        covariance_type=covariance_type,
        weights_init=weights_init,
        means_init=means_init,
        precisions_init=precisions_init,
        max_iter=max_iter,
        random_state=0,
    )
    gm.fit(X, sample_weight=sample_weight)
    gm.fit_predict(X, sample_weight=sample_weight)
    for method in PREDICT_METHODS:
        getattr(gm, method)(X)
    gm.sample(5)
    for name, a in arrays.items():
        assert a.dtype == saved[name].dtype, name
        assert_array_equal(a, saved[name], err_msg=name)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_fit_does_not_modify_read_only_X(init_params):
    X = _data()
    X.setflags(write=False)
    sample_weight = np.linspace(0.5, 1.5, N_SAMPLES)
    sample_weight.setflags(write=False)
    gm = GaussianMixture(n_components=2, init_params=init_params, random_state=0)
    labels = gm.fit_predict(X, sample_weight=sample_weight)
    assert labels.shape == (N_SAMPLES,)
    assert not X.flags.writeable


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_does_not_mutate_constructor_params(covariance_type):
    weights_init = [0.4, 0.6]
    means_init = [[0.0, 0.0], [1.0, 1.0]]
    precisions_init = _precisions(covariance_type).tolist()
    gm = GaussianMixture(
        n_components=2,
        covariance_type=covariance_type,
        weights_init=weights_init,
        means_init=means_init,
        precisions_init=precisions_init,
        random_state=0,
    )
    before = gm.get_params(deep=False)
    values = copy.deepcopy(before)
    gm.fit(_data())
    gm.fit_predict(_data())
    gm.predict(_data())
    after = gm.get_params(deep=False)

    assert gm.weights_init is weights_init
    assert weights_init == [0.4, 0.6]
    assert gm.means_init is means_init
    assert means_init == [[0.0, 0.0], [1.0, 1.0]]
    assert gm.precisions_init is precisions_init
    assert precisions_init == _precisions(covariance_type).tolist()
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] is before[name], name
        assert after[name] == values[name], name


def test_fit_with_array_inits_keeps_param_objects():
    weights_init = np.array([0.4, 0.6])
    gm = GaussianMixture(n_components=2, weights_init=weights_init, warm_start=True, random_state=0)
    gm.fit(_data())
    gm.fit(_data())
    assert gm.weights_init is weights_init
    assert_array_equal(weights_init, [0.4, 0.6])
    assert clone(gm).get_params()["weights_init"].tolist() == [0.4, 0.6]
