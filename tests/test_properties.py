"""Property-based attacks on the public API with awkward inputs.

Every call must either give a correct result or raise a clear ValueError /
TypeError. It must never crash, hang, warn (other than ConvergenceWarning),
return NaN, or modify the caller's data.
"""

import copy
import math
import subprocess
import sys
import textwrap
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KernelDensity as SkKernelDensity

import gaussmix
from gaussmix import _core
from gaussmix._kde_core import log_kernel_norm
from gaussmix import BayesianGaussianMixture, GaussianMixture, KernelDensity, gaussian_kde, select_bandwidth

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COV_TYPES = ["full", "tied", "diag", "spherical"]
KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]
ACCEPTED = (ValueError, TypeError)

CASES = Counter()


def _settings(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="session", autouse=True)
def _report_case_counts():
    yield
    if CASES:
        lines = [f"  {name}: {count}" for name, count in sorted(CASES.items())]
        sys.stderr.write("\ngenerated cases per test:\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------- strategies

VALUE_KINDS = [
    "normal",
    "blobs",
    "duplicates",
    "constant_column",
    "all_equal",
    "near_max",
    "near_min",
    "denormal",
    "offset",
    "mixed_scale",
    "nonfinite_sprinkle",
    "any_float",
    "integers",
]

CLEAN_KINDS = ["normal", "blobs", "constant_column", "offset", "mixed_scale"]


@st.composite
def values(draw, kinds=VALUE_KINDS, rows=(0, 12), cols=(0, 4)):
    """A float64 (n, d) array of one awkward kind, and the kind."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(*rows))
    d = draw(st.integers(*cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "normal":
        X = rng.normal(size=(n, d))
    elif kind == "blobs":
        centers = rng.normal(scale=10.0, size=(3, d))
        X = centers[rng.integers(0, 3, n)] + rng.normal(size=(n, d))
    elif kind == "duplicates":
        base = rng.normal(size=(max(1, n // 3), d))
        X = base[rng.integers(0, base.shape[0], n)]
    elif kind == "constant_column":
        X = rng.normal(size=(n, d))
        if d:
            X[:, rng.integers(0, d)] = draw(st.sampled_from([0.0, 1.0, -3.5, 1e8]))
    elif kind == "all_equal":
        X = np.full((n, d), draw(st.floats(-1e6, 1e6)))
    elif kind == "near_max":
        X = rng.uniform(-1.0, 1.0, size=(n, d)) * np.finfo(np.float64).max
    elif kind == "near_min":
        X = rng.normal(size=(n, d)) * np.finfo(np.float64).tiny
    elif kind == "denormal":
        X = rng.normal(size=(n, d)) * 1e-315
    elif kind == "offset":
        X = 1e8 + 1e-3 * rng.normal(size=(n, d))
    elif kind == "mixed_scale":
        scales = 10.0 ** rng.integers(-150, 150, size=d)
        X = rng.normal(size=(n, d)) * scales
    elif kind == "nonfinite_sprinkle":
        X = rng.normal(size=(n, d))
        if X.size:
            bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            X.flat[rng.integers(0, X.size)] = bad
    elif kind == "any_float":
        X = draw(
            hnp.arrays(
                np.float64,
                (n, d),
                elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
            )
        )
    else:  # integers
        X = rng.integers(-5, 6, size=(n, d)).astype(np.float64)
    return np.ascontiguousarray(X, dtype=np.float64), kind


DTYPES = ["f8", "f4", ">f8", ">f4", "f2", "i8", ">i4", "u1", "bool", "c16", "object", "object_str"]
CLEAN_DTYPES = ["f8", "f4", ">f8", ">f4", "i8", ">i4"]
LAYOUTS = ["C", "F", "strided_rows", "strided_cols", "negative_strides", "readonly"]
CONTAINERS = ["ndarray", "list", "dataframe", "3d", "1d"]


def _cast(X, dtype):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype in ("i8", ">i4", "u1"):
            info = np.iinfo(np.dtype(dtype))
            Y = np.nan_to_num(X, nan=0.0, posinf=info.max, neginf=info.min)
            Y = np.clip(np.round(Y), max(info.min, -(2.0**62)), min(info.max, 2.0**62))
            return Y.astype(dtype)
        if dtype == "bool":
            return np.nan_to_num(X) > 0
        if dtype == "c16":
            return X.astype(np.complex128) + 0.5j
        if dtype == "object":
            return X.astype(object)
        if dtype == "object_str":
            Y = X.astype(object)
            if Y.size:
                Y.flat[0] = "x"
            return Y
        return X.astype(dtype)


def _layout(X, layout):
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "strided_rows":
        big = np.repeat(X, 2, axis=0)
        return big[::2]
    if layout == "strided_cols":
        big = np.repeat(X, 2, axis=1)
        return big[:, ::2]
    if layout == "negative_strides":
        return X[::-1].copy()[::-1]
    if layout == "readonly":
        Y = X.copy()
        Y.flags.writeable = False
        return Y
    return X


def _container(X, container):
    if container == "list":
        return X.tolist()
    if container == "dataframe":
        if X.dtype.byteorder == ">":
            X = X.astype(X.dtype.newbyteorder("="))
        return pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    if container == "3d":
        return X[..., np.newaxis]
    if container == "1d":
        return X.ravel()
    return X


@st.composite
def awkward(draw, kinds=VALUE_KINDS, dtypes=DTYPES, containers=CONTAINERS, rows=(0, 12), cols=(0, 4)):
    """(object to pass, float64 array of its values or None, description)."""
    X, kind = draw(values(kinds=kinds, rows=rows, cols=cols))
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    container = draw(st.sampled_from(containers))
    Y = _layout(_cast(X, dtype), layout)
    obj = _container(Y, container)
    numeric = None
    if dtype not in ("c16", "object_str") and container in ("ndarray", "list", "dataframe"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            numeric = np.asarray(Y, dtype=np.float64)
    desc = dict(kind=kind, dtype=dtype, layout=layout, container=container, shape=X.shape)
    return obj, numeric, desc


def clean():
    return awkward(kinds=CLEAN_KINDS, dtypes=CLEAN_DTYPES, containers=["ndarray", "list", "dataframe"])


# ------------------------------------------------------------------ helpers


def snapshot(obj):
    if isinstance(obj, pd.DataFrame):
        return obj.copy(deep=True)
    if isinstance(obj, np.ndarray):
        return (obj.dtype, obj.shape, obj.strides, obj.flags.writeable,
                repr(obj.tolist()) if obj.dtype == object else obj.tobytes())
    return copy.deepcopy(obj)


def assert_unchanged(obj, snap):
    if isinstance(obj, pd.DataFrame):
        pd.testing.assert_frame_equal(obj, snap)
    elif isinstance(obj, np.ndarray):
        assert snapshot(obj) == snap, "the caller's array was modified"
    else:
        assert repr(obj) == repr(snap), "the caller's data was modified"


def assert_no_nan(a, what):
    a = np.asarray(a)
    assert not np.any(np.isnan(a)), f"{what} contains NaN: {a!r}"


def assert_spd(cov, name):
    """Positive definite as Cholesky sees it (the library's own test).

    Eigenvalues cannot decide it for matrices whose condition number exceeds
    1/eps (columns scaled 1e104 and 1e2: the smallest eigenvalue is below the
    rounding of the largest), so the criterion is that the factorisation of
    every matrix succeeds with a positive diagonal.
    """
    mats = np.asarray(cov, dtype=np.float64).reshape((-1,) + np.shape(cov)[-2:])
    try:
        factors = np.linalg.cholesky(mats)
    except np.linalg.LinAlgError as exc:
        raise AssertionError(f"{name} not SPD: {exc}") from exc
    assert np.all(np.diagonal(factors, axis1=-2, axis2=-1) > 0), f"{name} not SPD"


def assert_finite(a, what):
    a = np.asarray(a)
    assert np.all(np.isfinite(a)), f"{what} is not finite: {a!r}"


def moderate(numeric, limit=1e100):
    """Finite values of moderate size, where finite outputs are representable."""
    return (
        numeric is not None
        and numeric.ndim == 2
        and np.all(np.isfinite(numeric))
        and (numeric.size == 0 or np.max(np.abs(numeric)) < limit)
    )


def call(fn, *args, **kwargs):
    """fn(...) or None when it raised an accepted error."""
    try:
        return fn(*args, **kwargs), None
    except ACCEPTED as e:
        return None, e


def fitted_features(est, X, numeric, desc, snap):
    """Fits est on X: None when fit raised an accepted error, else the number
    of features, after checking that only finite 2-D data was accepted and
    that X is unchanged."""
    _, err = call(est.fit, X)
    assert_unchanged(X, snap)
    if err is not None:
        return None
    assert numeric is not None and numeric.ndim == 2, f"fit accepted {desc}"
    assert np.all(np.isfinite(numeric)), f"fit accepted non-finite data {desc}"
    return numeric.shape[1]


def check_gmm_parameters(gm, d):
    k = gm.n_components
    tol = 1e-5 if gm.means_.dtype == np.float32 else 1e-10
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert_finite(getattr(gm, name), name)
    assert gm.weights_.shape == (k,)
    assert np.all(gm.weights_ >= 0)
    assert abs(float(np.sum(gm.weights_, dtype=np.float64)) - 1.0) < tol * 10
    assert gm.means_.shape == (k, d)
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type == "full":
        assert cov.shape == (k, d, d)
        np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2), rtol=1e-6, atol=0)
        assert_spd(cov, "covariances_")
    elif gm.covariance_type == "tied":
        assert cov.shape == (d, d)
        np.testing.assert_allclose(cov, cov.T, rtol=1e-6, atol=0)
        assert_spd(cov, "covariances_")
    elif gm.covariance_type == "diag":
        assert cov.shape == (k, d)
        assert np.all(cov > 0)
    else:
        assert cov.shape == (k,)
        assert np.all(cov > 0)
    assert not math.isnan(gm.lower_bound_)
    assert all(not math.isnan(v) for v in gm.lower_bounds_)


def check_gmm_outputs(gm, X, numeric, expect_finite):
    """Every prediction entry point on X: a correct result or an accepted error."""
    k = gm.n_components
    snap = snapshot(X)
    labels, err = call(gm.predict, X)
    assert_unchanged(X, snap)
    if err is not None:
        for m in ("predict_proba", "score_samples", "score", "bic", "aic"):
            out, err2 = call(getattr(gm, m), X)
            assert_unchanged(X, snap)
            assert err2 is not None, f"predict raised {err!r} but {m} returned {out!r}"
        return
    n = numeric.shape[0]
    assert labels.shape == (n,)
    assert np.all((labels >= 0) & (labels < k))

    proba = gm.predict_proba(X)
    assert_unchanged(X, snap)
    assert proba.shape == (n, k)
    assert_no_nan(proba, "predict_proba")
    assert np.all((proba >= 0) & (proba <= 1))
    atol = 1e-5 if proba.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.sum(proba, axis=1, dtype=np.float64), 1.0, rtol=0, atol=atol)
    assert np.array_equal(labels, np.argmax(proba, axis=1)) or np.allclose(
        proba[np.arange(n), labels], proba.max(axis=1), rtol=1e-6
    )

    log_prob = gm.score_samples(X)
    assert_unchanged(X, snap)
    assert log_prob.shape == (n,)
    assert_no_nan(log_prob, "score_samples")
    assert not np.any(log_prob == np.inf), "score_samples is +inf"
    if expect_finite:
        assert_finite(log_prob, "score_samples")

    if n:
        score = gm.score(X)
        assert not math.isnan(score)
        if isinstance(X, pd.DataFrame):
            # DataFrames: test_gmm_bic_aic_on_a_dataframe_do_not_warn
            bic = aic = 0.0
        else:
            bic, aic = gm.bic(X), gm.aic(X)
        assert not math.isnan(bic) and not math.isnan(aic)
        if expect_finite:
            assert math.isfinite(score) and math.isfinite(bic) and math.isfinite(aic)
        assert_unchanged(X, snap)


def check_gmm_sample(gm, d):
    Xs, ys = gm.sample(7)
    assert Xs.shape == (7, d) and ys.shape == (7,)
    assert_finite(Xs, "sample")
    assert np.all((ys >= 0) & (ys < gm.n_components))


# -------------------------------------------------------- GaussianMixture


@given(
    data=awkward(),
    covariance_type=st.sampled_from(COV_TYPES),
    n_components=st.integers(1, 4),
    n_jobs=st.sampled_from([None, 1, 2]),
    init_params=st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"]),
)
@_settings(400)
def test_gmm_fit_and_predict_on_awkward_data(data, covariance_type, n_components, n_jobs, init_params):
    CASES["test_gmm_fit_and_predict_on_awkward_data"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    gm = GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        init_params=init_params,
        random_state=0,
        max_iter=30,
        n_jobs=n_jobs,
    )
    d = fitted_features(gm, X, numeric, desc, snap)
    if d is None:
        return
    check_gmm_parameters(gm, d)
    check_gmm_outputs(gm, X, numeric, expect_finite=moderate(numeric))
    check_gmm_sample(gm, d)


@given(
    data=awkward(rows=(0, 16)),
    labels=st.lists(st.integers(0, 3), min_size=16, max_size=16),
    covariance_type=st.sampled_from(COV_TYPES),
    n_components=st.integers(1, 3),
    init_params=st.sampled_from(["kmeans", "k-means++", "random"]),
)
@_settings(200)
def test_fit_many_is_a_loop_of_fits_on_awkward_data(data, labels, covariance_type, n_components, init_params):
    """Each group is fitted exactly when GaussianMixture fits its rows alone,
    and then to the same parameters (a loop sharing one RandomState, going
    on past the groups it cannot fit)."""
    CASES["test_fit_many_is_a_loop_of_fits_on_awkward_data"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    groups = np.asarray(labels[: len(X) if hasattr(X, "__len__") else 0])
    kw = dict(n_components=n_components, covariance_type=covariance_type, init_params=init_params,
              max_iter=30)
    batch, err = call(gaussmix.fit_many, X, groups, random_state=0, errors="skip", **kw)
    assert_unchanged(X, snap)
    if err is not None:
        return
    assert numeric is not None and numeric.ndim == 2, f"fit_many accepted {desc}"
    rows = np.asarray(numeric, dtype=batch.means_.dtype) if desc["dtype"] != "f2" else None
    if rows is None or not np.array_equal(rows, numeric, equal_nan=True):
        return  # values the cast changed: GaussianMixture would see other data
    rs = np.random.RandomState(0)
    tol = 1e-5 if rows.dtype == np.float32 else 1e-10
    for g, label in enumerate(batch.groups_):
        ref, ref_err = call(GaussianMixture(random_state=rs, **kw).fit, rows[groups == label])
        assert (ref_err is None) == bool(batch.fitted_[g]), (desc, batch.status_[g], ref_err)
        if ref_err is None:
            got = batch.estimator(label)
            check_gmm_parameters(got, rows.shape[1])
            for name in ("weights_", "means_", "covariances_"):
                np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=tol, atol=tol)


@given(
    data=awkward(rows=(0, 24)),
    covariance_types=st.lists(st.sampled_from(COV_TYPES), min_size=1, max_size=2, unique=True),
    n_components=st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True),
    init_params=st.sampled_from(["kmeans", "random_from_data", "hierarchical"]),
)
@_settings(150)
def test_model_selection_candidates_are_fits_on_awkward_data(data, covariance_types, n_components,
                                                            init_params):
    """A clear error, or a table of candidates each fitted exactly when
    GaussianMixture fits them alone, to the same criteria; the best by BIC."""
    CASES["test_model_selection_candidates_are_fits_on_awkward_data"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    kw = dict(init_params=init_params, max_iter=30, random_state=0)
    sel, err = call(gaussmix.GaussianMixtureIC(n_components, covariance_type=covariance_types, **kw).fit, X)
    assert_unchanged(X, snap)
    if err is not None:
        return
    assert numeric is not None and numeric.ndim == 2, f"GaussianMixtureIC accepted {desc}"
    rows = np.asarray(numeric, dtype=sel.best_estimator_.means_.dtype)
    if desc["dtype"] == "f2" or not np.array_equal(rows, numeric, equal_nan=True):
        return  # values the cast changed: GaussianMixture would see other data
    check_gmm_parameters(sel.best_estimator_, rows.shape[1])
    tol = 1e-4 if rows.dtype == np.float32 else 1e-9
    for i, params in enumerate(sel.results_["params"]):
        ref, ref_err = call(GaussianMixture(**params, **kw).fit, rows)
        assert (ref_err is None) == (sel.results_["status"][i] == "fitted"), (desc, params, ref_err)
        if ref_err is None:
            bic = ref.bic(rows)
            if np.isfinite(bic):
                np.testing.assert_allclose(sel.results_["bic"][i], bic, rtol=tol, atol=tol)
    assert sel.results_["bic"][sel.best_index_] == np.min(sel.results_["bic"])


@given(
    data=awkward(),
    covariance_type=st.sampled_from(COV_TYPES),
    n_components=st.integers(1, 4),
    prior_type=st.sampled_from(["dirichlet_process", "dirichlet_distribution"]),
    init_params=st.sampled_from(["kmeans", "random", "random_from_data"]),
)
@_settings(250)
def test_bayesian_fit_and_predict_on_awkward_data(data, covariance_type, n_components, prior_type,
                                                  init_params):
    CASES["test_bayesian_fit_and_predict_on_awkward_data"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    bgm = BayesianGaussianMixture(
        n_components=n_components, covariance_type=covariance_type, init_params=init_params,
        weight_concentration_prior_type=prior_type, random_state=0, max_iter=30,
    )
    d = fitted_features(bgm, X, numeric, desc, snap)
    if d is None:
        return
    check_gmm_parameters(bgm, d)
    for name in ("mean_precision_", "degrees_of_freedom_"):
        assert_finite(np.asarray(getattr(bgm, name)), name)
    assert np.all(np.asarray(bgm.degrees_of_freedom_) > d - 1)
    # (scikit-learn's bound drops terms and the updates add reg_covar, so on
    # tiny data it may fall slightly between iterations, as scikit-learn's
    # does; test_bayesian_mixture checks that it rises on real data)
    assert_finite(np.asarray(bgm.lower_bounds_), "lower_bounds_")
    labels = bgm.predict(X)
    proba = bgm.predict_proba(X)
    assert_unchanged(X, snap)
    assert_no_nan(proba, "predict_proba")
    np.testing.assert_allclose(np.sum(proba, axis=1, dtype=np.float64), 1.0, rtol=0,
                               atol=1e-5 if proba.dtype == np.float32 else 1e-10)
    assert np.all((labels >= 0) & (labels < n_components))
    assert_no_nan(bgm.score_samples(X), "score_samples")
    assert_no_nan(bgm.score_samples_predictive(X), "score_samples_predictive")
    assert_unchanged(X, snap)
    prior = np.asarray(bgm.covariance_prior_, dtype=np.float64)
    proper = (np.linalg.slogdet(prior)[0] > 0 if prior.ndim == 2 else np.all(prior > 0))
    assert not np.isnan(bgm.elbo_) and bgm.elbo_ < np.inf
    if proper and moderate(numeric):  # a singular prior has no density: -inf
        assert_finite(np.asarray(bgm.elbo_), "elbo_")
    assert 0 <= bgm.n_active_components_ <= n_components
    check_gmm_sample(bgm, d)


@given(
    train=clean(),
    covariance_type=st.sampled_from(COV_TYPES),
    n_components=st.integers(1, 3),
    equal_nk=st.booleans(),
)
@_settings(250)
def test_gmm_clean_data_always_fits_and_layout_does_not_matter(train, covariance_type, n_components, equal_nk):
    """Finite numeric 2-D data with n >= K and d >= 1: fit succeeds (or reports a
    degenerate covariance) and the result does not depend on container, layout,
    byte order or integer dtype."""
    CASES["test_gmm_clean_data_always_fits_and_layout_does_not_matter"] += 1
    X, numeric, desc = train
    n, d = numeric.shape
    if equal_nk and n >= 1:
        n_components = min(n, 6)
    if d == 0 or n < max(2, n_components):
        return
    assume(np.all(np.isfinite(numeric)))
    gm = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0, max_iter=30)
    try:
        gm.fit(X)
    except ValueError as e:
        assert "ill-defined empirical covariance" in str(e), f"{desc}: {e!r}"
        return
    check_gmm_parameters(gm, d)
    check_gmm_outputs(gm, X, numeric, expect_finite=True)
    check_gmm_sample(gm, d)
    # Lists and DataFrames are converted to float64, float32 arrays stay float32:
    # compare with the same data, C-ordered, in the dtype the fit worked in.
    dtype = gm.means_.dtype.type
    ref = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0, max_iter=30)
    ref.fit(np.ascontiguousarray(numeric, dtype=dtype))
    rtol = 1e-4 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(gm.weights_, ref.weights_, rtol=rtol, atol=1e-6)
    scale = max(1.0, float(np.max(np.abs(numeric))))
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=rtol, atol=1e-6 * scale)


_GMM_CACHE = {}


@given(
    spec=st.tuples(st.sampled_from(COV_TYPES), st.sampled_from(["f8", "f4"]), st.integers(1, 3), st.integers(1, 3)),
    query=awkward(),
)
@_settings(400)
def test_gmm_prediction_entry_points_on_awkward_queries(spec, query):
    CASES["test_gmm_prediction_entry_points_on_awkward_queries"] += 1
    covariance_type, dt, d, k = spec
    if spec not in _GMM_CACHE:
        rng = np.random.default_rng(d * 10 + k)
        Xtrain = (rng.normal(size=(40, d)) + 5 * rng.integers(0, k, size=(40, 1))).astype(dt)
        _GMM_CACHE[spec] = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(Xtrain)
    gm = _GMM_CACHE[spec]
    X, numeric, desc = query
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
        numeric = None if numeric is None else numeric
    snap = snapshot(X)
    before = {a: np.copy(getattr(gm, a)) for a in ("weights_", "means_", "covariances_")}
    labels, err = call(gm.predict, X)
    assert_unchanged(X, snap)
    if err is None:
        assert numeric is not None and numeric.ndim == 2 and numeric.shape[1] == d, desc
        assert np.all(np.isfinite(numeric)), f"predict accepted non-finite data {desc}"
    if numeric is not None and numeric.ndim == 2 and numeric.shape[1] == d:
        check_gmm_outputs(gm, X, numeric, expect_finite=moderate(numeric, 1e100))
    else:
        check_gmm_outputs(gm, X, numeric, expect_finite=False)
    for a, v in before.items():
        assert np.array_equal(getattr(gm, a), v), "prediction changed the model"


WEIGHT_KINDS = [
    "ones", "random", "zeros_some", "all_zero", "negative", "nan", "inf", "huge", "tiny",
    "int", "bool", "list", "2d", "wrong_length", "readonly", "scalar", "complex", "object_str",
]


@st.composite
def weights(draw, n):
    kind = draw(st.sampled_from(WEIGHT_KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    w = rng.uniform(0.1, 3.0, size=n)
    if kind == "ones":
        w = np.ones(n)
    elif kind == "zeros_some" and n:
        w[rng.integers(0, n, size=max(1, n // 2))] = 0.0
    elif kind == "all_zero":
        w = np.zeros(n)
    elif kind == "negative" and n:
        w[0] = -1.0
    elif kind == "nan" and n:
        w[-1] = np.nan
    elif kind == "inf" and n:
        w[0] = np.inf
    elif kind == "huge":
        w = w * 1e305
    elif kind == "tiny":
        w = w * 1e-310
    elif kind == "int":
        w = rng.integers(0, 4, size=n)
    elif kind == "bool":
        w = rng.integers(0, 2, size=n).astype(bool)
    elif kind == "list":
        w = w.tolist()
    elif kind == "2d":
        w = w[:, np.newaxis]
    elif kind == "wrong_length":
        w = np.ones(n + 1)
    elif kind == "readonly":
        w.flags.writeable = False
    elif kind == "scalar":
        w = draw(st.sampled_from([1.0, 0.0, -1.0, 2]))
    elif kind == "complex":
        w = w.astype(complex)
    elif kind == "object_str":
        w = w.astype(object)
        if n:
            w[0] = "a"
    return w, kind


@given(data=st.data(), covariance_type=st.sampled_from(COV_TYPES), n_components=st.integers(1, 3))
@_settings(250)
def test_gmm_sample_weight(data, covariance_type, n_components):
    CASES["test_gmm_sample_weight"] += 1
    X, numeric, desc = data.draw(awkward(kinds=["normal", "blobs", "duplicates"], dtypes=["f8", "f4"],
                                         containers=["ndarray"], rows=(2, 12), cols=(1, 3)))
    w, kind = data.draw(weights(X.shape[0]))
    w_snap = snapshot(w)
    gm = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0, max_iter=30)
    _, err = call(gm.fit, X, sample_weight=w)
    assert_unchanged(w, w_snap)
    if err is not None:
        return
    wa = np.asarray(w)
    assert wa.dtype.kind in "biuf", f"accepted weights of dtype {wa.dtype}"
    assert np.all(np.isfinite(wa)) and np.all(wa >= 0) and np.any(wa > 0), f"accepted {kind} weights"
    check_gmm_parameters(gm, numeric.shape[1])
    check_gmm_outputs(gm, X, numeric, expect_finite=True)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_gmm_bic_aic_on_a_dataframe_do_not_warn(covariance_type):
    CASES["test_gmm_bic_aic_on_a_dataframe_do_not_warn"] += 1
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(df)
    n = df.shape[0]
    expected_bic = -2 * gm.score(df) * n + gm._n_parameters() * math.log(n)
    assert math.isclose(gm.bic(df), expected_bic, rel_tol=1e-12)
    assert math.isclose(gm.aic(df), -2 * gm.score(df) * n + 2 * gm._n_parameters(), rel_tol=1e-12)


def test_gmm_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 6])
    w = rng.integers(1, 4, size=40)
    a = GaussianMixture(2, random_state=0, tol=1e-10, max_iter=500, means_init=[[0, 0], [6, 6]])
    b = GaussianMixture(2, random_state=0, tol=1e-10, max_iter=500, means_init=[[0, 0], [6, 6]])
    a.fit(X, sample_weight=w)
    b.fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-6)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-6)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-6)


# ---------------------------------------------------------- KernelDensity


def _log_kernel_norm_ref(kernel, d):
    """log normalising constant for h = 1 (independent of the library)."""
    from scipy.integrate import quad
    from scipy.special import gammaln

    log_vol = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    log_surface = math.log(d) + log_vol  # surface of the unit sphere in R^d
    radial = {
        "gaussian": lambda r: math.exp(-0.5 * r * r),
        "tophat": lambda r: 1.0,
        "epanechnikov": lambda r: 1 - r * r,
        "exponential": lambda r: math.exp(-r),
        "linear": lambda r: 1 - r,
        "cosine": lambda r: math.cos(0.5 * math.pi * r),
    }[kernel]
    upper = np.inf if kernel in ("gaussian", "exponential") else 1.0
    integral, _ = quad(lambda r: r ** (d - 1) * radial(r), 0.0, upper, epsabs=0, epsrel=1e-13, limit=200)
    return -(log_surface + math.log(integral))


def _log_kernel_ref(kernel, r):
    with np.errstate(divide="ignore", invalid="ignore"):
        if kernel == "gaussian":
            return -0.5 * r * r
        if kernel == "exponential":
            return -r
        inside = r < 1
        val = {
            "tophat": np.zeros_like(r),
            "epanechnikov": np.log1p(-np.minimum(r, 1) ** 2),
            "linear": np.log1p(-np.minimum(r, 1)),
            "cosine": np.log(np.cos(0.5 * np.pi * np.minimum(r, 1))),
        }[kernel]
        return np.where(inside, val, -np.inf)


def kde_reference(train, w, queries, h, kernel):
    with np.errstate(all="ignore"):
        return _kde_reference(train, w, queries, h, kernel)


def _kde_reference(train, w, queries, h, kernel):
    n, d = train.shape
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    diff = (queries[:, None, :] - train[None, :, :]) / h
    r = np.sqrt(np.sum(diff * diff, axis=2))
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    terms = _log_kernel_ref(kernel, r) + logw[None, :]
    return logsumexp(terms, axis=1) - math.log(np.sum(w)) + _log_kernel_norm_ref(kernel, d) - d * math.log(h)


@given(
    data=awkward(),
    query=awkward(kinds=["normal", "blobs", "duplicates", "offset", "near_max", "denormal", "nonfinite_sprinkle"],
                  containers=["ndarray", "list"], rows=(0, 6), cols=(0, 4)),
    kernel=st.sampled_from(KERNELS),
    bandwidth=st.one_of(st.sampled_from(["scott", "silverman", "cv_ml"]),
                        st.floats(1e-3, 1e3), st.sampled_from([1e-300, 1e300, 5e-324])),
    n_jobs=st.sampled_from([None, 1, 2]),
)
@_settings(400)
def test_kernel_density_on_awkward_data(data, query, kernel, bandwidth, n_jobs):
    CASES["test_kernel_density_on_awkward_data"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    kde = KernelDensity(bandwidth=bandwidth, kernel=kernel, n_jobs=n_jobs)
    _, err = call(kde.fit, X)
    assert_unchanged(X, snap)
    if err is not None:
        return
    assert numeric is not None and numeric.ndim == 2, f"fit accepted {desc}"
    assert np.all(np.isfinite(numeric)), f"fit accepted non-finite data {desc}"
    h = kde.bandwidth_
    assert math.isfinite(h) and h > 0, f"bandwidth_ = {h!r}"
    n, d = numeric.shape

    # on its own training data
    log_dens, err = call(kde.score_samples, X)
    assert err is None, f"score_samples rejected the data fit accepted: {err!r}"
    assert_unchanged(X, snap)
    assert log_dens.shape == (n,)
    assert_no_nan(log_dens, "score_samples")
    assert not np.any(log_dens == np.inf), "score_samples is +inf"
    _compare_log_density(log_dens, lambda: kde_reference(numeric, None, numeric, h, kernel), numeric, h)

    # on queries
    Q, qnum, qdesc = query
    if isinstance(X, pd.DataFrame):
        # a DataFrame-fitted estimator is queried with DataFrames only
        if not (qnum is not None and qnum.ndim == 2 and qnum.shape[1] == d):
            return
        Q = pd.DataFrame(qnum, columns=X.columns)
    qsnap = snapshot(Q)
    out, err = call(kde.score_samples, Q)
    assert_unchanged(Q, qsnap)
    if err is None:
        assert qnum is not None and qnum.ndim == 2 and qnum.shape[1] == d, qdesc
        assert np.all(np.isfinite(qnum)), f"score_samples accepted non-finite {qdesc}"
        assert_no_nan(out, "score_samples")
        assert not np.any(out == np.inf)
        _compare_log_density(out, lambda: kde_reference(numeric, None, qnum, h, kernel), np.vstack([numeric, qnum]), h)

    # sampling
    S = kde.sample(5, random_state=0)
    assert S.shape == (5, d)
    if np.max(np.abs(numeric), initial=0) < 1e300 and h < 1e300:
        assert_finite(S, "sample")
    else:
        assert_no_nan(S, "sample")


def _compare_log_density(got, ref, points, h):
    """Agreement with the brute-force reference where it is meaningful."""
    spread = float(np.max(np.abs(points), initial=0.0))
    if not (spread < 1e6 and 1e-150 < h < 1e150):
        return
    ref = ref()
    assert np.array_equal(np.isneginf(got), np.isneginf(ref)), f"log-density {got!r} vs reference {ref!r}"
    m = np.isfinite(ref)
    np.testing.assert_allclose(got[m], ref[m], rtol=1e-7, atol=1e-7 * max(1.0, spread / h) ** 2)


@given(
    train=awkward(kinds=["normal", "blobs", "duplicates", "integers"], dtypes=["f8", "f4", "i8", "bool"],
                  containers=["ndarray", "list", "dataframe"], rows=(1, 10), cols=(1, 3)),
    kernel=st.sampled_from(KERNELS),
    bandwidth=st.floats(0.05, 5.0),
    data=st.data(),
)
@_settings(200)
def test_kernel_density_weighted_matches_reference(train, kernel, bandwidth, data):
    CASES["test_kernel_density_weighted_matches_reference"] += 1
    X, numeric, desc = train
    w, kind = data.draw(weights(numeric.shape[0]))
    w_snap = snapshot(w)
    kde = KernelDensity(bandwidth=bandwidth, kernel=kernel)
    _, err = call(kde.fit, X, sample_weight=w)
    assert_unchanged(w, w_snap)
    if err is not None:
        return
    wa = np.broadcast_to(np.asarray(w, dtype=np.float64), (numeric.shape[0],)) if np.isscalar(w) else np.asarray(w)
    assert wa.dtype.kind in "biuf", f"accepted weights of dtype {wa.dtype}"
    assert np.all(np.isfinite(wa)) and np.all(wa >= 0) and np.any(wa > 0), f"accepted {kind} weights"
    rng = np.random.default_rng(1)
    Q = np.vstack([numeric, rng.normal(size=(4, numeric.shape[1]))])
    got = kde.score_samples(pd.DataFrame(Q, columns=X.columns) if isinstance(X, pd.DataFrame) else Q)
    ref = kde_reference(numeric, wa.astype(np.float64) / np.max(wa), Q, bandwidth, kernel)
    assert_no_nan(got, "score_samples")
    assert np.array_equal(np.isneginf(got), np.isneginf(ref)), f"{got!r} vs {ref!r}"
    m = np.isfinite(ref)
    np.testing.assert_allclose(got[m], ref[m], rtol=1e-8, atol=1e-8)
    S = kde.sample(6, random_state=0)
    assert S.shape == (6, numeric.shape[1])
    assert_finite(S, "sample")
    if kind in ("zeros_some",) and kernel in ("tophat", "epanechnikov", "linear", "cosine"):
        # every draw lies within h of a point with positive weight
        pos = numeric[np.asarray(wa) > 0]
        dist = np.min(np.linalg.norm(S[:, None, :] - pos[None], axis=2), axis=1)
        assert np.all(dist <= bandwidth * (1 + 1e-9))


@given(
    kernel=st.sampled_from(KERNELS),
    d=st.integers(1, 4),
    bandwidth=st.floats(0.1, 3.0),
)
@_settings(60)
def test_kernel_density_compact_sample_within_support_and_sklearn_agreement(kernel, d, bandwidth):
    CASES["test_kernel_density_compact_sample_within_support_and_sklearn_agreement"] += 1
    rng = np.random.default_rng(d)
    X = rng.normal(size=(15, d))
    Q = rng.normal(size=(10, d)) * 2
    kde = KernelDensity(bandwidth=bandwidth, kernel=kernel).fit(X)
    got = kde.score_samples(Q)
    if not (kernel == "cosine" and d % 2 == 0):
        sk = SkKernelDensity(bandwidth=bandwidth, kernel=kernel).fit(X).score_samples(Q)
        m = np.isfinite(sk)
        assert np.array_equal(np.isneginf(got), np.isneginf(sk))
        np.testing.assert_allclose(got[m], sk[m], rtol=1e-7, atol=1e-9)
    S = kde.sample(200, random_state=0)
    assert_finite(S, "sample")
    if kernel not in ("gaussian", "exponential"):
        dist = np.min(np.linalg.norm(S[:, None, :] - X[None], axis=2), axis=1)
        assert np.all(dist <= bandwidth * (1 + 1e-9))


@given(
    data=awkward(rows=(0, 10), cols=(0, 3)),
    method=st.sampled_from(["cv_ml", "scott", "silverman"]),
    kernel=st.sampled_from(KERNELS),
)
@_settings(200)
def test_select_bandwidth(data, method, kernel):
    CASES["test_select_bandwidth"] += 1
    X, numeric, desc = data
    snap = snapshot(X)
    h, err = call(select_bandwidth, X, method, kernel=kernel)
    assert_unchanged(X, snap)
    if err is not None:
        return
    assert numeric is not None and numeric.ndim == 2 and np.all(np.isfinite(numeric)), f"accepted {desc}"
    assert isinstance(h, float) and math.isfinite(h) and h > 0, f"bandwidth {h!r} for {desc}"


@given(
    data=awkward(kinds=["normal", "blobs", "duplicates", "offset", "denormal"], rows=(1, 40), cols=(1, 3)),
    query=awkward(kinds=["normal", "blobs", "duplicates", "offset", "denormal"], containers=["ndarray"],
                  rows=(0, 8), cols=(1, 3)),
    kernel=st.sampled_from(KERNELS),
    bandwidth=st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-30, 1e30])),
    tolerance=st.sampled_from([(0.0, 1e-3), (0.0, 1e-9), (1e-5, 0.0), (1e-3, 0.1)]),
    leaf_size=st.integers(1, 5),
    method=st.sampled_from(["tree", "grid"]),
)
@_settings(300)
def test_kde_tree_within_bound_on_awkward_data(data, query, kernel, bandwidth, tolerance, leaf_size, method):
    """The engine's tree (small leaves, so nodes are bounded and pruned) and
    its grid (Gaussian sums in one and two dimensions; the rest on the tree)
    keep every value within atol + rtol * exact of the exact sum."""
    from gaussmix._kde_core import index_log_sums

    CASES["test_kde_tree_within_bound_on_awkward_data"] += 1
    _, X, _ = data
    _, Q, _ = query
    if X is None or Q is None or X.ndim != 2 or Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        return
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Q))):
        return
    atol, rtol = tolerance
    d = X.shape[1]
    index = _core.KdeIndex(np.ascontiguousarray(X, dtype=np.float64), None, np.eye(d), leaf_size, 2)
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    log_norm = -math.log(X.shape[0]) - d * math.log(bandwidth) + log_kernel_norm(kernel, d)
    exact = index_log_sums(index, Q, kernel, 2, scale=1 / bandwidth, method="exact")
    approx = index_log_sums(index, Q, kernel, 2, scale=1 / bandwidth, log_norm=log_norm, atol=atol, rtol=rtol,
                            method=method)
    a, e = approx + log_norm, exact + log_norm
    assert not np.any(np.isnan(a))
    with np.errstate(invalid="ignore", over="ignore"):
        zero = np.isneginf(a) & np.isneginf(e)
        slack = 1e-12 + 4e-16 * np.abs(e)
        if atol == 0:
            ok = zero | ((a - e <= math.log1p(rtol) + slack) & (a - e >= math.log1p(-rtol) - slack))
        else:
            fa, fe = np.exp(a), np.exp(e)
            ok = zero | (np.abs(fa - fe) <= atol + rtol * fe + 1e-12 * fe)
    assert ok.all(), (X, Q, approx, exact)


# ----------------------------------------------------------- gaussian_kde


def gaussian_kde_reference(dataset, w, factor, points):
    d, n = dataset.shape
    w = np.full(n, 1.0 / n) if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)
    cov = np.atleast_2d(np.cov(dataset, aweights=w, bias=False)) * factor**2
    L = np.linalg.cholesky(cov)
    diff = points.T[:, None, :] - dataset.T[None, :, :]  # (m, n, d)
    z = np.linalg.solve(L, diff.reshape(-1, d).T).T.reshape(diff.shape)
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    log_k = -0.5 * np.sum(z * z, axis=2) - np.sum(np.log(np.diag(L))) - 0.5 * d * math.log(2 * math.pi)
    return logsumexp(log_k + logw[None, :], axis=1)


@given(
    data=awkward(rows=(0, 10), cols=(0, 4)),
    orientation=st.sampled_from(["as_is", "transposed"]),
    bw_method=st.one_of(st.none(), st.sampled_from(["scott", "silverman", "cv_ml", 0.3, 1e-300, 1e300])),
    use_weights=st.booleans(),
    query_kind=st.sampled_from(["data", "random", "far", "huge", "nan", "row"]),
)
@_settings(400)
def test_gaussian_kde_on_awkward_data(data, orientation, bw_method, use_weights, query_kind):
    CASES["test_gaussian_kde_on_awkward_data"] += 1
    X, numeric, desc = data
    if orientation == "transposed" and isinstance(X, np.ndarray) and X.ndim == 2:
        X = X.T
        numeric = None if numeric is None else numeric.T
    elif orientation == "transposed" and isinstance(X, pd.DataFrame):
        X = X.T
        numeric = None if numeric is None else numeric.T
    snap = snapshot(X)
    n_points = numeric.shape[1] if numeric is not None and numeric.ndim == 2 else None
    w = None
    if use_weights and n_points:
        w = np.random.default_rng(n_points).uniform(0.5, 2.0, size=n_points)
    w_snap = snapshot(w)
    kde, err = call(gaussian_kde, X, bw_method=bw_method, weights=w)
    assert_unchanged(X, snap)
    assert_unchanged(w, w_snap)
    if err is not None:
        return
    ds = kde.dataset
    assert np.all(np.isfinite(ds)), f"accepted non-finite {desc}"
    d, n = ds.shape
    assert math.isfinite(kde.factor) and kde.factor > 0
    assert_finite(kde.covariance, "covariance")
    assert_spd(kde.covariance, "covariance")
    assert math.isfinite(kde.log_det)
    np.testing.assert_allclose(np.sum(kde.weights), 1.0, rtol=1e-12)

    rng = np.random.default_rng(0)
    if query_kind == "data":
        P = ds.copy()
    elif query_kind == "random":
        P = ds[:, :1] + rng.normal(size=(d, 4)) * np.sqrt(np.diag(kde.covariance))[:, None]
    elif query_kind == "far":
        P = ds[:, :1] + 1e3 * np.sqrt(np.diag(kde.covariance))[:, None]
    elif query_kind == "huge":
        P = np.full((d, 2), 1e300)
    elif query_kind == "nan":
        P = ds[:, :2].copy()
        P[0, 0] = np.nan
    else:
        P = ds[:, 0]  # a single point as a (d,) vector
    p_snap = snapshot(P)
    logp, err = call(kde.logpdf, P)
    assert_unchanged(P, p_snap)
    if query_kind == "nan":
        assert err is not None, "logpdf accepted NaN points"
        return
    assert err is None, f"logpdf raised {err!r}"
    P2 = np.atleast_2d(P) if P.ndim == 2 else P.reshape(d, 1)
    assert logp.shape == (P2.shape[1],)
    assert_no_nan(logp, "logpdf")
    assert not np.any(logp == np.inf)
    pdf = kde.evaluate(P)
    assert_no_nan(pdf, "evaluate")
    assert np.all(pdf >= 0) and np.all(np.isfinite(pdf))
    cond = np.linalg.cond(kde.covariance)
    if query_kind != "huge" and cond < 1e8 and np.max(np.abs(ds)) < 1e6:
        assert_finite(logp, "logpdf")
        ref = gaussian_kde_reference(ds, w, kde.factor, P2)
        np.testing.assert_allclose(logp, ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(pdf, np.exp(ref), rtol=1e-5, atol=1e-300)

    S = kde.resample(5, seed=0)
    assert S.shape == (d, 5)
    assert_finite(S, "resample")


def test_gaussian_kde_does_not_alias_the_dataset():
    data = np.random.default_rng(0).normal(size=(2, 30))
    kde = gaussian_kde(data)
    before = kde.logpdf(data[:, :3])
    data[:] = 0.0
    np.testing.assert_array_equal(kde.logpdf(np.random.default_rng(0).normal(size=(2, 30))[:, :3]), before)


# ----------------------------------------- risky inputs in a subprocess

_RISKY_SCRIPT = textwrap.dedent(
    """
    import warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("error")
    warnings.simplefilter("ignore", ConvergenceWarning)
    from gaussmix import GaussianMixture, KernelDensity, gaussian_kde, select_bandwidth

    big = np.finfo(np.float64).max
    arrays = [
        np.empty((0, 0)), np.empty((0, 3)), np.empty((5, 0)), np.ones((1, 1)),
        np.full((4, 2), big), np.full((4, 2), -big), np.array([[big], [-big]]),
        np.full((4, 2), 5e-324), np.array([[np.nan, 1.0], [1.0, 2.0]]),
        np.array([[np.inf, 1.0], [1.0, 2.0]]), np.zeros((3, 2)),
        1e8 + 1e-3 * np.arange(12.0).reshape(6, 2),
        np.random.default_rng(0).normal(size=(3, 2)).astype(">f8"),
        np.random.default_rng(0).normal(size=(6, 2))[:, ::-1],
    ]
    bad = []
    for X in arrays:
        for ct in ["full", "tied", "diag", "spherical"]:
            for k in [1, 2, 3, 6, 10**6]:
                try:
                    gm = GaussianMixture(k, covariance_type=ct, random_state=0, max_iter=5).fit(X)
                    gm.predict_proba(X); gm.score_samples(X); gm.sample(3)
                except (ValueError, TypeError):
                    pass
                except Exception as e:
                    bad.append(("gmm", X.shape, ct, k, repr(e)))
        for kernel in ["gaussian", "tophat", "cosine"]:
            for bw in [1.0, "cv_ml", 1e-300, 1e300]:
                try:
                    kd = KernelDensity(bandwidth=bw, kernel=kernel).fit(X)
                    kd.score_samples(X); kd.sample(3, random_state=0)
                except (ValueError, TypeError):
                    pass
                except Exception as e:
                    bad.append(("kde", X.shape, kernel, bw, repr(e)))
        try:
            g = gaussian_kde(X.T)
            g.logpdf(X.T); g.resample(3, seed=0)
        except (ValueError, TypeError):
            pass
        except Exception as e:
            bad.append(("gaussian_kde", X.shape, repr(e)))
        try:
            select_bandwidth(X)
        except (ValueError, TypeError):
            pass
        except Exception as e:
            bad.append(("select_bandwidth", X.shape, repr(e)))
    for n_jobs in [1, 2, -1, 4096, 10**9]:
        try:
            GaussianMixture(2, n_jobs=n_jobs, random_state=0).fit(np.random.default_rng(0).normal(size=(20, 2)))
        except (ValueError, TypeError):
            pass
        except Exception as e:
            bad.append(("n_jobs", n_jobs, repr(e)))
    print(bad)
    """
)


def test_risky_inputs_in_a_subprocess():
    CASES["test_risky_inputs_in_a_subprocess"] += 1
    proc = subprocess.run(
        [sys.executable, "-c", _RISKY_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"subprocess died with {proc.returncode}: {proc.stderr[-3000:]}"
    assert proc.stdout.strip() == "[]", proc.stdout
