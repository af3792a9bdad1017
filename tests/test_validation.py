"""The validation fast paths: plain valid arrays and parameters skip
scikit-learn's machinery, and everything else gets scikit-learn's own
behaviour (same result, same errors and warnings)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import validate_data

from gaussmix import GaussianMixture, KernelDensity
from gaussmix._validation import _passes_as_is, check_float_array, validate

FLOATS = [np.float64, np.float32]


def _X(n=50, d=3, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_plain_valid_array_is_returned_as_is(dtype):
    X = _X(dtype=dtype)
    gm = GaussianMixture()
    assert validate(gm, X, dtype=FLOATS, order="C", ensure_min_samples=2) is X
    assert gm.n_features_in_ == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda X: np.asfortranarray(X),
        lambda X: X.astype(np.float16),
        lambda X: X.astype(np.int64),
        lambda X: X.tolist(),
        lambda X: pd.DataFrame(X, columns=["a", "b", "c"]),
        lambda X: X[:, ::2],
        lambda X: X.reshape(-1),
        lambda X: X[:1],
        lambda X: X[:, :0],
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X),
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X),
    ],
    ids=["fortran", "float16", "int", "list", "dataframe", "strided", "1d", "one-row", "no-features",
         "inf", "nan"],
)
def test_anything_else_gets_scikit_learns_result_or_error(make):
    X = make(_X())
    ours, theirs = GaussianMixture(), SkGaussianMixture()
    kwargs = dict(dtype=FLOATS, order="C", ensure_min_samples=2)
    try:
        expected = validate_data(theirs, X, **kwargs)
    except ValueError as err:
        with pytest.raises(ValueError, match=str(err).split("\n")[0][:40].replace("(", r"\(").replace(")", r"\)")):
            validate(ours, X, **kwargs)
        return
    got = validate(ours, X, **kwargs)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype and got.flags.c_contiguous
    assert ours.n_features_in_ == theirs.n_features_in_
    assert hasattr(ours, "feature_names_in_") == hasattr(theirs, "feature_names_in_")


def test_huge_finite_values_are_not_mistaken_for_inf():
    X = np.full((10, 2), 1e308)  # the sum overflows; every value is finite
    assert not _passes_as_is(X, dtype=FLOATS)
    assert validate(GaussianMixture(), X, dtype=FLOATS, order="C") is not None


def test_feature_names_follow_scikit_learn_across_refits():
    df = pd.DataFrame(_X(), columns=["a", "b", "c"])
    for est in (GaussianMixture(n_components=2, random_state=0), SkGaussianMixture(n_components=2, random_state=0)):
        est.fit(df)
        assert list(est.feature_names_in_) == ["a", "b", "c"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.score_samples(_X(5))  # fitted with names, called without
        assert any("does not have valid feature names" in str(w.message) for w in caught)
        est.fit(_X())  # refit without names: the names are gone
        assert not hasattr(est, "feature_names_in_")


def test_wrong_feature_count_after_fit_is_scikit_learns_error():
    gm = GaussianMixture(n_components=2, random_state=0).fit(_X())
    with pytest.raises(ValueError, match="X has 4 features, but GaussianMixture is expecting 3 features"):
        gm.predict(_X(d=4))


def test_check_float_array_keeps_or_copies_as_check_array_does():
    w = np.full(3, 1 / 3)
    assert check_float_array(w, dtype=FLOATS, ensure_2d=False, input_name="weights_init") is w
    copied = check_float_array(w, dtype=FLOATS, ensure_2d=False, copy=True, input_name="weights_init")
    assert copied is not w
    with pytest.raises(ValueError, match="weights_init"):
        check_float_array(np.array([np.nan, 1.0]), dtype=FLOATS, ensure_2d=False, input_name="weights_init")


@pytest.mark.parametrize(
    "param, value",
    [("n_components", 0), ("tol", -1.0), ("covariance_type", "banana"), ("max_iter", 1.5),
     ("init_params", "nope"), ("random_state", "seed"), ("warm_start", 2), ("reg_covar", -1e-6),
     ("weights_init", 3.0), ("n_init", 0), ("verbose_interval", 0)],
)
def test_invalid_parameters_raise_scikit_learns_error(param, value):
    X = _X()
    with pytest.raises(InvalidParameterError) as theirs:
        SkGaussianMixture(**{param: value}).fit(X)
    with pytest.raises(InvalidParameterError) as ours:
        GaussianMixture(**{param: value}).fit(X)
    assert str(ours.value) == str(theirs.value)


def test_a_parameter_made_invalid_after_a_fit_is_caught():
    gm = GaussianMixture(n_components=2, random_state=0).fit(_X())
    gm.set_params(tol=-1.0)
    with pytest.raises(InvalidParameterError, match="'tol' parameter"):
        gm.fit(_X())
    kde = KernelDensity().fit(_X())
    kde.set_params(bandwidth=-1.0)
    with pytest.raises(InvalidParameterError, match="'bandwidth' parameter"):
        kde.fit(_X())
