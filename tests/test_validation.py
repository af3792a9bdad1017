"""The validation fast paths: plain valid arrays and parameters skip
scikit-learn's machinery, and everything else gets scikit-learn's own
behaviour (same result, same errors and warnings)."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._array_api import get_namespace
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import validate_data

import sklearn.mixture._gaussian_mixture as sk_mixture

from gaussmix import GaussianMixture, KernelDensity, _core
from gaussmix._gaussian_mixture import _check_precisions, _check_weights, _precision_cholesky_from_precisions
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
        lambda X: X.astype(">f8"),
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
    ids=["fortran", "float16", "big-endian", "int", "list", "dataframe", "strided", "1d", "one-row", "no-features",
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


@pytest.mark.parametrize("n", [10, 5000])  # checked element by element / in the engine
def test_huge_finite_values_are_not_mistaken_for_inf(n):
    X = np.full((n, 2), 1e308)  # the sum overflows; every value is finite
    assert _passes_as_is(X, dtype=FLOATS)
    assert validate(GaussianMixture(), X, dtype=FLOATS, order="C") is X


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [1, 7, 4097, 200_003])
def test_all_finite_finds_every_non_finite_value(dtype, n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=n).astype(dtype) * dtype(1e30)
    assert _core.all_finite(X, 2)
    for bad in (np.nan, np.inf, -np.inf):
        for where in {0, n // 2, n - 1}:
            Y = X.copy()
            Y[where] = bad
            assert not _core.all_finite(Y, 2) and not _core.all_finite(Y, 1)
    assert _core.all_finite(np.zeros((0, 3), dtype=dtype), 2)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("offset", [0.0, 0.3, 0.6, 0.99, 1.01, 2.0, 100.0])
def test_weights_near_the_tolerance_are_decided_as_scikit_learn_decides(dtype, offset):
    atol = 1e-6 if dtype == np.float32 else 1e-8
    for sign in (1, -1):
        w = np.array([0.25, 0.25, 0.5], dtype=dtype)
        w[2] += dtype(sign * offset * atol)
        try:
            sk_mixture._check_weights(w.copy(), 3, xp=get_namespace(w)[0])
        except ValueError as err:
            with pytest.raises(ValueError, match=re.escape(str(err))):
                _check_weights(w.copy(), 3)
        else:
            np.testing.assert_array_equal(_check_weights(w.copy(), 3), w)


def _spd(rng, d, cond):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.geomspace(1.0, 1.0 / cond, d)) @ q.T


@pytest.mark.parametrize("d", [1, 2, 5, 17])
def test_clearly_valid_precisions_are_factored_in_the_engine(d):
    rng = np.random.default_rng(d)
    P = np.stack([_spd(rng, d, c) * s for c, s in [(1.0, 1.0), (1e3, 1e-4), (1e5, 1e6)]])
    P = (P + np.swapaxes(P, 1, 2)) / 2
    factored = _core.precisions_init_factor(P, "full")
    assert factored is not None
    U, C = factored
    np.testing.assert_array_equal(np.tril(U, -1), 0.0)  # upper triangular
    np.testing.assert_allclose(U @ np.swapaxes(U, 1, 2), P, rtol=1e-12, atol=1e-12 * np.abs(P).max())
    # an inverse as numpy computes it (symmetric only to rounding) is clearly valid too
    A = rng.normal(size=(d, d))
    raw = np.linalg.inv(A @ A.T + d * np.eye(d))[None]
    assert _core.precisions_init_factor(raw, "full") is not None
    expected = _precision_cholesky_from_precisions(P, "full")  # numpy's factor
    for k in range(3):
        scale = np.abs(expected[k]).max()
        np.testing.assert_allclose(U[k], expected[k], rtol=1e-9, atol=1e-12 * scale)
        np.testing.assert_allclose(C[k], np.linalg.inv(P[k]), rtol=1e-8, atol=1e-12 * np.abs(C[k]).max())


@pytest.mark.parametrize(
    "make",
    [
        lambda P: P * np.where(np.eye(len(P)), 1.0, 1.0 + 1e-4),  # symmetric still
        lambda P: P + np.triu(np.full_like(P, 1e-3), 1),  # not symmetric
        lambda P: P - 2.0 * np.eye(len(P)),  # indefinite
        lambda P: _spd(np.random.default_rng(1), len(P), 1e9),  # valid, ill-conditioned
        lambda P: _spd(np.random.default_rng(2), len(P), 1e17),  # singular to rounding
        lambda P: np.where(np.eye(len(P)) == 1, np.nan, P),
        # within isclose of its transpose, positive definite by its upper
        # triangle, not by its lower one (which eigvalsh reads)
        lambda P: np.kron(np.eye(len(P) // 2), [[1.0, 1.0 - 5e-6], [1.0 + 1e-6, 1.0]]),
        lambda P: np.kron(np.eye(len(P) // 2), [[1e-9, 0.0], [5e-9, 1e-9]]),
    ],
    ids=["scaled", "asymmetric", "indefinite", "ill-conditioned", "singular", "nan",
         "triangles-differ", "triangles-differ-tiny"],
)
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_other_precisions_are_decided_as_scikit_learn_decides(make, covariance_type):
    rng = np.random.default_rng(0)
    P = make(_spd(rng, 4, 10.0) * 1.5)
    if covariance_type == "full":
        P = np.stack([_spd(rng, 4, 3.0), P])
    fast = _core.precisions_init_factor(np.ascontiguousarray(P, dtype=np.float64), covariance_type)
    n = 2 if covariance_type == "full" else 1
    try:
        sk_mixture._check_precisions(P.copy(), covariance_type, n, 4, xp=get_namespace(P)[0])
    except ValueError as err:
        assert fast is None
        # (the NaN error names the parameter: "Input precisions_init contains NaN.")
        with pytest.raises(ValueError, match=re.escape(str(err)[-15:])):
            _check_precisions(P.copy(), covariance_type, n, 4)
        return
    got = _check_precisions(P.copy(), covariance_type, n, 4)
    np.testing.assert_array_equal(got.values, P)
    np.testing.assert_allclose(got.covariances, np.linalg.inv(P), rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_positive_precisions_are_factored_and_others_rejected(covariance_type):
    P = np.array([[0.5, 2.0], [4.0, 1e-3]]) if covariance_type == "diag" else np.array([0.5, 2.0])
    U, C = _core.precisions_init_factor(P, covariance_type)
    np.testing.assert_array_equal(U, np.sqrt(P))
    np.testing.assert_array_equal(C, 1.0 / P)
    for bad in (0.0, -1.0):
        Q = P.copy()
        Q.flat[-1] = bad
        assert _core.precisions_init_factor(Q, covariance_type) is None
        with pytest.raises(ValueError, match="precision' should be positive"):
            _check_precisions(Q, covariance_type, 2, 2)


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
    if param != "init_params":
        assert str(ours.value) == str(theirs.value)
        return
    # the same message, with gaussmix's one addition among the options
    pattern = re.compile(r"\{([^}]*)\}")
    options = [set(pattern.search(str(e.value)).group(1).split(", ")) for e in (ours, theirs)]
    assert options[0] == options[1] | {"'hierarchical'"}
    assert pattern.sub("", str(ours.value)) == pattern.sub("", str(theirs.value))


def test_a_parameter_made_invalid_after_a_fit_is_caught():
    gm = GaussianMixture(n_components=2, random_state=0).fit(_X())
    gm.set_params(tol=-1.0)
    with pytest.raises(InvalidParameterError, match="'tol' parameter"):
        gm.fit(_X())
    kde = KernelDensity().fit(_X())
    kde.set_params(bandwidth=-1.0)
    with pytest.raises(InvalidParameterError, match="'bandwidth' parameter"):
        kde.fit(_X())
