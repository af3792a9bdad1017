"""The raw binding gaussmix._core: strict array handling and exact E-step values.

X and the output arrays are taken without conversion: a wrong dtype or memory
order raises TypeError (pybind11's "incompatible function arguments") instead
of a silent copy; wrong shapes raise ValueError naming the argument.
"""

import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gmm_data import make_blobs_data
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import _core

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FUNCTIONS = [
    "e_step", "em_fit", "kmeans_sq_dists", "kmeans_assign", "stats_from_labels", "stats_from_resp",
]
# kmeans_sq_dists takes no sample weights
WEIGHTED_FUNCTIONS = [f for f in FUNCTIONS if f != "kmeans_sq_dists"]
N, D, K = 40, 3, 2
INCOMPATIBLE = r"incompatible function arguments"


def _precision_cholesky(cov):
    """Upper U with U U^T = inv(cov), as scikit-learn computes it."""
    lower = np.linalg.cholesky(cov)
    return solve_triangular(lower, np.eye(len(cov)), lower=True).T


def random_params(covariance_type, k, d, seed=0):
    """weights, means, precisions_cholesky, and the (k, d, d) covariances they encode."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 3.0))
    means = rng.normal(size=(k, d)) * 2.0

    def spd():
        a = rng.normal(size=(d, d))
        return a @ a.T / d + np.eye(d) * 0.6

    if covariance_type == "full":
        covs = np.array([spd() for _ in range(k)])
        prec_chol = np.array([_precision_cholesky(c) for c in covs])
    elif covariance_type == "tied":
        cov = spd()
        covs = np.array([cov] * k)
        prec_chol = _precision_cholesky(cov)
    elif covariance_type == "diag":
        var = rng.uniform(0.6, 2.0, size=(k, d))
        covs = np.array([np.diag(v) for v in var])
        prec_chol = 1.0 / np.sqrt(var)
    else:
        var = rng.uniform(0.6, 2.0, size=k)
        covs = np.array([np.eye(d) * v for v in var])
        prec_chol = 1.0 / np.sqrt(var)
    return weights, means, prec_chol, covs


def reference_log_prob(X, weights, means, covs):
    """log w_k + log N(x | mu_k, Sigma_k) for every sample and component, and their log-sum-exp."""
    X = np.asarray(X, dtype=np.float64)
    weighted = np.column_stack(
        [
            np.log(w) + np.atleast_1d(multivariate_normal(mean=m, cov=c).logpdf(X))
            for w, m, c in zip(weights, means, covs)
        ]
    )
    return weighted, logsumexp(weighted, axis=1)


def _data(n=N, d=D, dtype=np.float64):
    X, _ = make_blobs_data(n=n, d=d, k=K, seed=2, dtype=dtype)
    return np.ascontiguousarray(X)


def call(name, X, cov="full", **overrides):
    """Call one binding function with valid arguments for X (as ``cov``), with overrides."""
    shape = np.shape(X)
    n = shape[0] if len(shape) >= 1 else 1
    d = shape[1] if len(shape) >= 2 else D
    weights, means, prec_chol, _ = random_params(cov, K, d)
    labels = np.arange(n, dtype=np.int64) % K
    dtype = getattr(X, "dtype", np.float64)
    resp_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    resp = np.full((n, K), 1.0 / K, dtype=resp_dtype)
    args = {
        "e_step": dict(
            X=X, sample_weight=None, covariance_type=cov,
            weights=weights, means=means, precisions_cholesky=prec_chol,
        ),
        "em_fit": dict(
            X=X, sample_weight=None, covariance_type=cov,
            weights=weights, means=means, precisions_cholesky=prec_chol,
            tol=1e-3, max_iter=3, reg_covar=1e-6, prev_lower_bound=-np.inf,
        ),
        "kmeans_sq_dists": dict(
            X=X, shift=None, candidates=np.arange(K, dtype=np.int64), closest=None,
            out=np.zeros((K, n), dtype=resp_dtype),
        ),
        "kmeans_assign": dict(
            X=X, sample_weight=None, shift=None, centers=means,
            labels=np.full(n, -1, dtype=np.int64), sums=np.zeros((K, d)), weight_sums=np.zeros(K),
        ),
        "stats_from_labels": dict(
            X=X, sample_weight=None, labels=labels, shifts=means, covariance_type=cov,
        ),
        "stats_from_resp": dict(X=X, sample_weight=None, resp=resp, covariance_type=cov),
    }[name]
    args.update(overrides)
    result = getattr(_core, name)(**args)
    if name == "kmeans_sq_dists":  # outputs filled in place
        return args["out"]
    if name == "kmeans_assign":
        return result, args["labels"], args["sums"], args["weight_sums"]
    return result


def _same(a, b):
    if isinstance(a, _core.SuffStats):
        for key in ("nk", "a", "s", "shift", "sum_w", "loglik"):
            assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert_array_equal(a, b)


# ------------------------------------------------------------ module info


def test_openmp_enabled_is_bool():
    assert type(_core.openmp_enabled()) is bool


def test_default_threads_and_cores_are_positive_ints():
    assert type(_core.default_threads()) is int
    assert _core.default_threads() >= 1
    assert type(_core.available_cores()) is int
    assert _core.available_cores() >= 1


# ------------------------------------------------------- X memory layouts


PARAM_KEYS = {"weights", "means", "covariances", "precisions_cholesky"}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_c_contiguous_x_is_accepted(name, dtype):
    out = call(name, _data(dtype=dtype))
    if name == "e_step":
        assert isinstance(out, float)
    elif name == "em_fit":
        assert PARAM_KEYS | {"lower_bounds", "n_iter", "converged"} <= set(out)
    elif name == "kmeans_sq_dists":
        assert out.shape == (K, N) and np.all(out >= 0)
    elif name == "kmeans_assign":
        n_changed, labels, sums, weight_sums = out
        assert n_changed == N and np.all((labels >= 0) & (labels < K))
        assert_allclose(weight_sums.sum(), N) and sums.shape == (K, D)
    else:
        assert isinstance(out, _core.SuffStats)
        assert out.nk.shape == (K,) and out.a.shape == (K, D) and out.shift.shape == (K, D)
        assert out.sum_w == N


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_only_x_works_and_gives_the_same_result(name, dtype):
    X = _data(dtype=dtype)
    expected = call(name, X.copy())
    X.setflags(write=False)
    got = call(name, X)
    _same(got, expected)
    assert not X.flags.writeable


@pytest.mark.parametrize("name", WEIGHTED_FUNCTIONS)
def test_read_only_sample_weight_works(name):
    X = _data()
    sample_weight = np.linspace(0.5, 1.5, N)
    expected = call(name, X, sample_weight=sample_weight.copy())
    sample_weight.setflags(write=False)
    _same(call(name, X, sample_weight=sample_weight), expected)


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_read_only_model_parameters_work(name, covariance_type):
    X = _data()
    weights, means, prec_chol, _ = random_params(covariance_type, K, D)
    params = dict(weights=weights, means=means, precisions_cholesky=prec_chol)
    expected = call(name, X, covariance_type, **{key: a.copy() for key, a in params.items()})
    for a in params.values():
        a.setflags(write=False)
    _same(call(name, X, covariance_type, **params), expected)


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
def test_parameters_are_converted_from_lists_and_other_dtypes(name):
    X = _data()
    weights, means, prec_chol, _ = random_params("diag", K, D)
    expected = call(name, X, "diag", weights=weights, means=means, precisions_cholesky=prec_chol)
    got = call(
        name, X, "diag",
        weights=weights.tolist(),
        means=np.asfortranarray(means),
        precisions_cholesky=prec_chol[::-1].copy()[::-1],
    )
    _same(got, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fortran_ordered_x_is_rejected(name, dtype):
    X = np.asfortranarray(_data(dtype=dtype))
    assert not X.flags.c_contiguous
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call(name, X)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("view", ["every other row", "every other column", "reversed rows"])
def test_non_contiguous_x_is_rejected(name, view):
    if view == "every other row":
        X = _data(n=2 * N)[::2]
    elif view == "every other column":
        X = np.repeat(_data(), 2, axis=1)[:, ::2]
    else:
        X = _data()[::-1]
    assert X.shape == (N, D)
    assert not X.flags.c_contiguous
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call(name, X)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.complex128, np.bool_, object])
def test_wrong_dtype_x_is_rejected(name, dtype):
    X = _data().astype(dtype)
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call(name, X)


@pytest.mark.parametrize("name", ["e_step", "em_fit", "kmeans_assign", "stats_from_labels", "stats_from_resp"])
def test_python_list_x_is_rejected(name):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call(name, _data().tolist())


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", [(N,), (N, D, 1), (1, N, D)])
def test_wrong_ndim_x_raises_value_error(name, shape):
    X = np.ones(shape)
    with pytest.raises(ValueError, match=r"X must be a 2-D array, got \d-D"):
        call(name, X)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_x_without_features_raises_value_error(name):
    with pytest.raises(ValueError, match=r"X must have at least one feature"):
        call(name, np.empty((N, 0)))


# ----------------------------------------------------------- sample_weight


@pytest.mark.parametrize("name", WEIGHTED_FUNCTIONS)
@pytest.mark.parametrize("shape", [(N - 1,), (N + 1,), (N, 1), (1, N)])
def test_wrong_sample_weight_shape_raises_value_error(name, shape):
    with pytest.raises(ValueError, match=rf"sample_weight must have shape \({N},\), got"):
        call(name, _data(), sample_weight=np.ones(shape))


# ------------------------------------------------------ model parameters


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_wrong_weights_shape(name, covariance_type):
    with pytest.raises(ValueError, match=rf"weights must have shape \({K},\), got \({K + 1},\)"):
        call(name, _data(), covariance_type, weights=np.full(K + 1, 1.0 / (K + 1)))
    with pytest.raises(ValueError, match=rf"weights must have shape \({K},\), got \(1, {K}\)"):
        call(name, _data(), covariance_type, weights=np.full((1, K), 1.0 / K))


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize("means_shape", [(K * D,), (K, D, 1)])
def test_means_not_2d(name, means_shape):
    with pytest.raises(ValueError, match=r"means must be a 2-D array"):
        call(name, _data(), means=np.zeros(means_shape))


@pytest.mark.parametrize(("name", "match"), [("e_step", r"X has 3 features, but the model has 2"), ("em_fit", r"means and X disagree on the number of features")])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_means_with_other_feature_count(name, match, covariance_type):
    weights, means, prec_chol, _ = random_params(covariance_type, K, D - 1)
    with pytest.raises(ValueError, match=match):
        call(name, _data(), covariance_type, weights=weights, means=means, precisions_cholesky=prec_chol)


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize(
    ("covariance_type", "expected", "bad"),
    [
        ("full", (K, D, D), (D, D)),
        ("full", (K, D, D), (K, D, D + 1)),
        ("tied", (D, D), (K, D, D)),
        ("tied", (D, D), (D, D + 1)),
        ("diag", (K, D), (K,)),
        ("diag", (K, D), (K + 1, D)),
        ("spherical", (K,), (K, D)),
        ("spherical", (K,), (K + 1,)),
    ],
)
def test_wrong_precisions_cholesky_shape(name, covariance_type, expected, bad):
    want = "(" + ", ".join(map(str, expected)) + ("," if len(expected) == 1 else "") + ")"
    with pytest.raises(ValueError, match=r"precisions_cholesky must have shape " + re.escape(want)):
        call(name, _data(), covariance_type, precisions_cholesky=np.ones(bad))


@pytest.mark.parametrize("name", ["e_step", "em_fit", "stats_from_labels", "stats_from_resp"])
def test_unknown_covariance_type(name):
    with pytest.raises(ValueError, match=r"covariance_type must be one of 'full', 'tied', 'diag', 'spherical', got 'bogus'"):
        call(name, _data(), covariance_type="bogus")


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
def test_zero_components_raises_instead_of_crashing(name):
    code = textwrap.dedent(
        f"""
        import numpy as np
        from gaussmix import _core
        X = np.ones((10, 3))
        kwargs = dict(tol=1e-3, max_iter=2, reg_covar=1e-6, prev_lower_bound=-np.inf) if {name!r} == "em_fit" else {{}}
        try:
            _core.{name}(X, None, "full", np.empty(0), np.empty((0, 3)), np.empty((0, 3, 3)), **kwargs)
        except ValueError as exc:
            print("ValueError:", exc)
        else:
            print("no error")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"process died with return code {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("ValueError:"), proc.stdout


# ------------------------------------------------- the finiteness check

# Rows chosen to land in the first block, inside a later chunk, and in the
# zero-padded tail of the last, partial block (5000 rows: blocks of at most
# 256 rows and several chunks).
CHECK_N = 5000


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 2600, CHECK_N - 1])
def test_check_finite_raises_for_any_non_finite_value(name, covariance_type, dtype, value, row):
    X = _data(n=CHECK_N, d=5, dtype=dtype)
    X[row, 4 if row else 0] = value
    with pytest.raises(_core.NonFiniteInput, match="infinity or NaN") as info:
        call(name, X, covariance_type, check_finite=True, n_threads=2)
    assert issubclass(info.type, ValueError)


@pytest.mark.parametrize("name", ["e_step", "em_fit"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check_finite_passes_finite_data_and_changes_nothing(name, covariance_type, dtype):
    X = _data(n=CHECK_N, d=5, dtype=dtype)
    if name == "e_step":  # huge finite values (the distances overflow) are not "non-finite"
        X[17] = np.finfo(dtype).max / 4
        X[18] = -np.finfo(dtype).max / 4
    _same(call(name, X, covariance_type, check_finite=True), call(name, X, covariance_type))


def test_check_finite_is_off_by_default():
    X = _data(n=CHECK_N, d=3)
    X[5, 1] = np.nan
    assert np.isnan(call("e_step", X))


# ---------------------------------------------------------- e_step outputs


def _outputs(n=N, k=K, dtype=np.float64):
    return {
        "log_prob_norm": np.empty(n, dtype=dtype),
        "resp": np.empty((n, k), dtype=dtype),
        "labels": np.empty(n, dtype=np.int64),
    }


@pytest.mark.parametrize(
    ("output", "shape"),
    [
        ("log_prob_norm", (N + 1,)),
        ("log_prob_norm", (N - 1,)),
        ("log_prob_norm", (N, 1)),
        ("resp", (N, K + 1)),
        ("resp", (N + 1, K)),
        ("resp", (N * K,)),
        ("labels", (N - 1,)),
        ("labels", (N, 1)),
    ],
)
def test_wrong_output_shape_raises_value_error_naming_it(output, shape):
    dtype = np.int64 if output == "labels" else np.float64
    with pytest.raises(ValueError, match=rf"{output} must have shape"):
        call("e_step", _data(), **{output: np.empty(shape, dtype=dtype)})


@pytest.mark.parametrize(
    ("output", "dtype"),
    [
        ("log_prob_norm", np.float32),
        ("log_prob_norm", np.int64),
        ("resp", np.float32),
        ("labels", np.int32),
        ("labels", np.float64),
        ("labels", np.uint64),
    ],
)
def test_wrong_output_dtype_raises_type_error(output, dtype):
    shape = (N, K) if output == "resp" else (N,)
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("e_step", _data(), **{output: np.empty(shape, dtype=dtype)})


@pytest.mark.parametrize("output", ["log_prob_norm", "resp"])
def test_float32_x_needs_float32_outputs(output):
    X = _data(dtype=np.float32)
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("e_step", X, **{output: _outputs(dtype=np.float64)[output]})
    out = _outputs(dtype=np.float32)[output]
    out[...] = np.nan
    call("e_step", X, **{output: out})
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("output", ["log_prob_norm", "resp", "labels"])
def test_non_contiguous_output_raises_type_error(output):
    full = _outputs(n=2 * N)[output]
    view = full[::2]
    assert not view.flags.c_contiguous
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("e_step", _data(), **{output: view})


def test_fortran_ordered_resp_raises_type_error():
    resp = np.empty((N, K), order="F")
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("e_step", _data(), resp=resp)


@pytest.mark.parametrize("output", ["log_prob_norm", "resp", "labels"])
def test_read_only_output_raises_value_error(output):
    out = _outputs()[output]
    out.setflags(write=False)
    with pytest.raises(ValueError, match=r"writeable"):
        call("e_step", _data(), **{output: out})


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_outputs_are_filled_in_place(covariance_type):
    X = _data()
    outs = {
        "log_prob_norm": np.full(N, np.nan),
        "resp": np.full((N, K), np.nan),
        "labels": np.full(N, -7, dtype=np.int64),
    }
    ret = call("e_step", X, covariance_type, **outs)
    assert isinstance(ret, float)
    assert np.all(np.isfinite(outs["log_prob_norm"]))
    assert_allclose(outs["resp"].sum(axis=1), 1.0, rtol=1e-12)
    assert set(np.unique(outs["labels"])) <= set(range(K))


# ----------------------------------------- labels, resp, centres, shifts


@pytest.mark.parametrize("bad_label", [K, K + 5, -2, np.iinfo(np.int64).min])
def test_labels_out_of_range(bad_label):
    labels = np.arange(N, dtype=np.int64) % K
    labels[N // 2] = bad_label
    with pytest.raises(ValueError, match=r"labels must be in \[-1, n_components\)"):
        call("stats_from_labels", _data(), labels=labels)


@pytest.mark.parametrize("shape", [(N - 1,), (N + 1,), (N, 1)])
def test_labels_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"labels must have shape \({N},\)"):
        call("stats_from_labels", _data(), labels=np.zeros(shape, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.int32, np.uint64, np.float64])
def test_labels_wrong_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("stats_from_labels", _data(), labels=(np.arange(N) % K).astype(dtype))


@pytest.mark.parametrize("shape", [(K, D + 1), (0, D), (K * D,)])
def test_shifts_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"shifts must have shape \(n_components, {D}\)"):
        call("stats_from_labels", _data(), shifts=np.zeros(shape))


@pytest.mark.parametrize("shape", [(K, D + 1), (0, D), (K * D,)])
def test_centers_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"centers must have shape \(n_clusters, {D}\)"):
        call("kmeans_assign", _data(), centers=np.zeros(shape))


@pytest.mark.parametrize("shape", [(N - 1, K), (N, 0), (N,), (N, K, 1)])
def test_resp_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"resp must have shape \(n_samples, n_components\)"):
        call("stats_from_resp", _data(), resp=np.full(shape, 0.5))


@pytest.mark.parametrize(("x_dtype", "resp_dtype"), [(np.float64, np.float32), (np.float32, np.float64)])
def test_resp_dtype_must_match_x(x_dtype, resp_dtype):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("stats_from_resp", _data(dtype=x_dtype), resp=np.full((N, K), 0.5, dtype=resp_dtype))


def test_fortran_ordered_resp_input_raises_type_error():
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("stats_from_resp", _data(), resp=np.asfortranarray(np.full((N, K), 0.5)))


@pytest.mark.parametrize("candidate", [-1, N])
def test_kmeans_candidates_out_of_range(candidate):
    with pytest.raises(ValueError, match=r"candidates must be in \[0, n_samples\)"):
        call("kmeans_sq_dists", _data(), candidates=np.array([0, candidate], dtype=np.int64))


def test_negative_max_iter():
    with pytest.raises(ValueError, match=r"max_iter must be >= 0"):
        call("em_fit", _data(), max_iter=-1)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("n_threads", [0, -1])
def test_non_positive_n_threads(name, n_threads):
    with pytest.raises(ValueError, match=rf"n_threads must be >= 1, got {n_threads}"):
        call(name, _data(), n_threads=n_threads)


# --------------------------------------------------- e_step against numpy


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 2, 5, 8, 11, 16, 19, 26, 40])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_e_step_float64_matches_scipy_reference(covariance_type, d, weighted):
    k, n = 3, 1100
    rng = np.random.default_rng(d)
    weights, means, prec_chol, covs = random_params(covariance_type, k, d, seed=d)
    X = means[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * 1.5
    sample_weight = rng.uniform(0.0, 3.0, n) if weighted else None
    outs = _outputs(n, k)
    ret = _core.e_step(X, sample_weight, covariance_type, weights, means, prec_chol, n_threads=2, **outs)

    weighted_log_prob, log_prob = reference_log_prob(X, weights, means, covs)
    assert np.max(log_prob) < -0.1
    assert_allclose(outs["log_prob_norm"], log_prob, rtol=1e-12)
    # r = exp(l - log p) turns the absolute rounding of l - log p, which grows
    # with the D(D+1)/2 terms of a log-density, into relative error (1.05e-12
    # at D = 40, where l - log p reaches -300 here); 1e-12 up to D = 26
    rtol_resp = 1e-12 * max(1.0, d / 26)
    assert_allclose(outs["resp"], np.exp(weighted_log_prob - log_prob[:, None]), rtol=rtol_resp, atol=1e-300)
    assert_array_equal(outs["labels"], np.argmax(weighted_log_prob, axis=1))
    assert_allclose(ret, np.average(log_prob, weights=sample_weight), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 2, 5, 8, 11, 16, 19, 26, 40])
def test_e_step_float32_matches_scipy_reference(covariance_type, d):
    k, n = 3, 1100
    rng = np.random.default_rng(10 + d)
    weights, means, prec_chol, covs = random_params(covariance_type, k, d, seed=d)
    X = (means[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * 1.5).astype(np.float32)
    outs = _outputs(n, k, dtype=np.float32)
    ret = _core.e_step(X, None, covariance_type, weights, means, prec_chol, n_threads=2, **outs)

    weighted_log_prob, log_prob = reference_log_prob(X, weights, means, covs)
    assert outs["log_prob_norm"].dtype == np.float32
    assert_allclose(outs["log_prob_norm"], log_prob, rtol=1e-4)
    assert_allclose(outs["resp"], np.exp(weighted_log_prob - log_prob[:, None]), rtol=1e-4, atol=1e-5)
    chosen = weighted_log_prob[np.arange(n), outs["labels"]]
    assert np.all(chosen >= weighted_log_prob.max(axis=1) - 1e-4 * np.abs(weighted_log_prob.max(axis=1)))
    assert_allclose(ret, log_prob.mean(), rtol=1e-4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "requested",
    [(), ("labels",), ("log_prob_norm",), ("resp",), ("log_prob_norm", "resp", "labels")],
    ids=["none", "labels", "log_prob_norm", "resp", "all"],
)
@pytest.mark.parametrize("n", [N, 1003], ids=["40 rows", "1003 rows"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_e_step_returns_mean_log_likelihood_whatever_outputs_are_requested(covariance_type, requested, n, weighted):
    # unweighted with no log_prob_norm output, the engine sums log p(x_i) by
    # a product of the sums of exponentials (no log per sample): checked here
    # over a partial last vector and several blocks
    weights, means, prec_chol, covs = random_params(covariance_type, K, D)
    X = _data(n=n)
    sample_weight = np.linspace(0.0, 2.0, n) if weighted else None
    _, log_prob = reference_log_prob(X, weights, means, covs)
    outs = {key: a for key, a in _outputs(n=n).items() if key in requested}
    ret = _core.e_step(X, sample_weight, covariance_type, weights, means, prec_chol, **outs)
    assert_allclose(ret, np.average(log_prob, weights=sample_weight), rtol=1e-12)
    if "log_prob_norm" in outs:
        assert_allclose(outs["log_prob_norm"], log_prob, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("outputs", [True, False], ids=["outputs", "no outputs"])
def test_e_step_is_bitwise_identical_for_any_thread_count(covariance_type, dtype, outputs):
    weights, means, prec_chol, _ = random_params(covariance_type, 3, 4)
    X = np.random.default_rng(1).normal(size=(30000, 4)).astype(dtype) * 2
    results = []
    for n_threads in (1, 2, 3):
        outs = _outputs(30000, 3, dtype) if outputs else {}
        ret = _core.e_step(X, None, covariance_type, weights, means, prec_chol, n_threads=n_threads, **outs)
        results.append((ret, outs))
    for ret, outs in results[1:]:
        assert ret == results[0][0]
        for key in outs:
            assert_array_equal(outs[key], results[0][1][key])


# ------------------------------------------- e_step with given log-constants


def _default_log_constants(covariance_type, weights, prec_chol, d):
    """c_k = log w_k + log det U_k - 0.5 D log 2pi, summed in the engine's order."""
    constants = []
    for j, w in enumerate(weights):
        if covariance_type == "full":
            log_det = 0.0
            for i in range(d):
                log_det += math.log(prec_chol[j, i, i])
        elif covariance_type == "tied":
            log_det = 0.0
            for i in range(d):
                log_det += math.log(prec_chol[i, i])
        elif covariance_type == "diag":
            log_det = 0.0
            for i in range(d):
                log_det += math.log(prec_chol[j, i])
        else:
            log_det = d * math.log(prec_chol[j])
        constants.append(math.log(w) + log_det - 0.5 * d * 1.8378770664093454836)
    return np.array(constants)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_e_step_with_the_default_log_constants_given_is_bitwise_identical(covariance_type, dtype, weighted):
    n, k, d = 2000, 5, 6
    rng = np.random.default_rng(3)
    weights, means, prec_chol, _ = random_params(covariance_type, k, d, seed=3)
    X = (means[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * 1.5).astype(dtype)
    sample_weight = rng.uniform(0.0, 3.0, n) if weighted else None
    constants = _default_log_constants(covariance_type, weights, prec_chol, d)
    args = (X, sample_weight, covariance_type, weights, means, prec_chol)
    for extra in ({}, {"log_constants": None}, {"log_constants": constants}):
        outs = _outputs(n, k, dtype)
        ret = _core.e_step(*args, n_threads=2, **outs, **extra)
        bare = _core.e_step(*args, n_threads=2, **extra)
        stats = _core.em_stats(*args, n_threads=2, **extra)
        if not extra:
            expected = (ret, bare, outs, stats)
            continue
        assert ret == expected[0] and bare == expected[1]
        _same(outs, expected[2])
        _same(stats, expected[3])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_e_step_with_other_log_constants_matches_numpy(covariance_type, weighted):
    # l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2 with the given c_k: the
    # log-densities of maximum likelihood shifted by c_k - (log w_k + log det U_k
    # - 0.5 D log 2pi), and everything downstream follows
    n, k, d = 1003, 4, 5
    rng = np.random.default_rng(4)
    weights, means, prec_chol, covs = random_params(covariance_type, k, d, seed=4)
    X = means[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * 1.5
    sample_weight = rng.uniform(0.0, 3.0, n) if weighted else None
    shift = rng.uniform(-3.0, 3.0, k)
    constants = _default_log_constants(covariance_type, weights, prec_chol, d) + shift
    args = (X, sample_weight, covariance_type, weights, means, prec_chol)

    outs = _outputs(n, k)
    ret = _core.e_step(*args, n_threads=2, log_constants=constants, **outs)
    weighted_log_prob, _ = reference_log_prob(X, weights, means, covs)
    weighted_log_prob += shift
    log_prob = logsumexp(weighted_log_prob, axis=1)
    resp = np.exp(weighted_log_prob - log_prob[:, None])
    assert_allclose(outs["log_prob_norm"], log_prob, rtol=1e-12)
    assert_allclose(outs["resp"], resp, rtol=1e-11, atol=1e-300)
    assert_array_equal(outs["labels"], np.argmax(weighted_log_prob, axis=1))
    assert_allclose(ret, np.average(log_prob, weights=sample_weight), rtol=1e-12)
    default = _outputs(n, k)
    _core.e_step(*args, n_threads=2, **default)
    assert np.max(np.abs(default["log_prob_norm"] - outs["log_prob_norm"])) > 0.1

    stats = _core.em_stats(*args, n_threads=2, log_constants=constants)
    w = np.ones(n) if sample_weight is None else sample_weight
    assert_allclose(stats.nk, (resp * w[:, None]).sum(axis=0), rtol=1e-12)
    assert_allclose(stats.loglik, np.dot(w, log_prob), rtol=1e-12)


@pytest.mark.parametrize("name", ["e_step", "em_stats"])
@pytest.mark.parametrize("shape", [(K + 1,), (K, 1), ()])
def test_log_constants_of_the_wrong_shape_raise_value_error(name, shape):
    weights, means, prec_chol, _ = random_params("full", K, D)
    with pytest.raises(ValueError, match="log_constants"):
        getattr(_core, name)(_data(), None, "full", weights, means, prec_chol, log_constants=np.zeros(shape))


# ---------------------------------------------------- other entry points


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_e_step_without_outputs_is_minus_inf_with_a_point_beyond_range(covariance_type, dtype):
    # a row so far that its log-densities all underflow: log p = -inf, and so
    # the mean, by the product of sums as by the per-sample logs
    weights, means, prec_chol, _ = random_params(covariance_type, K, D)
    X = _data(n=1003, dtype=dtype)
    X[500] = np.finfo(dtype).max / 8
    assert _core.e_step(X, None, covariance_type, weights, means, prec_chol) == -np.inf
    out = np.empty(1003, dtype=dtype)
    assert _core.e_step(X, None, covariance_type, weights, means, prec_chol, log_prob_norm=out) == -np.inf
    assert out[500] == -np.inf and np.all(np.isfinite(np.delete(out, 500)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_fit_first_lower_bound_is_the_e_step_value(covariance_type):
    X = _data(n=300)
    weights, means, prec_chol, _ = random_params(covariance_type, K, D)
    expected = _core.e_step(X, None, covariance_type, weights, means, prec_chol, log_prob_norm=np.empty(300))
    result = _core.em_fit(
        X, None, covariance_type, weights, means, prec_chol,
        tol=0.0, max_iter=15, reg_covar=1e-6, prev_lower_bound=-np.inf,
    )
    assert {"weights", "means", "covariances", "precisions_cholesky", "lower_bounds", "n_iter", "converged"} <= set(result)
    assert result["n_iter"] == 15
    assert result["converged"] is False
    assert len(result["lower_bounds"]) == 15
    assert_allclose(result["lower_bounds"][0], expected, rtol=1e-12)
    assert np.all(np.diff(result["lower_bounds"]) >= -1e-10)
    assert_allclose(result["weights"].sum(), 1.0, rtol=1e-12)


def test_em_fit_max_iter_zero_returns_start():
    X = _data()
    weights, means, prec_chol, _ = random_params("full", K, D)
    result = _core.em_fit(
        X, None, "full", weights, means, prec_chol,
        tol=1e-3, max_iter=0, reg_covar=1e-6, prev_lower_bound=-np.inf,
    )
    assert result["n_iter"] == 0
    assert list(result["lower_bounds"]) == []
    assert_array_equal(result["means"], means)
    assert_array_equal(result["precisions_cholesky"], prec_chol)


@pytest.mark.parametrize("d", [2, 4, 5, 8, 16, 24])  # D of one and two vectors take other kernels
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_em_stats_match_numpy(covariance_type, d, weighted):
    # the sufficient statistics of the fused E-step, around the means, from
    # responsibilities computed by numpy
    n, k = 1003, 11  # tiles of 8 or 4 components, and single ones
    rng = np.random.default_rng(d)
    weights, means, prec_chol, covs = random_params(covariance_type, k, d, seed=d)
    X = means[rng.integers(0, k, n)] + rng.normal(size=(n, d)) * 1.5
    sample_weight = rng.uniform(0.0, 3.0, n) if weighted else None
    st = _core.em_stats(X, sample_weight, covariance_type, weights, means, prec_chol, n_threads=2)
    _assert_stats_match_numpy(st, X, sample_weight, covariance_type, weights, means, covs)


def _assert_stats_match_numpy(st, X, sample_weight, covariance_type, weights, means, covs):
    """em_stats' result against responsibilities and sums computed by numpy."""
    n = len(X)
    weighted_log_prob, log_prob = reference_log_prob(X, weights, means, covs)
    w = np.ones(n) if sample_weight is None else sample_weight
    rw = np.exp(weighted_log_prob - log_prob[:, None]) * w[:, None]  # n x k
    diff = X[:, None, :] - means[None]  # n x k x d
    assert_allclose(getattr(st, "nk"), rw.sum(axis=0), rtol=1e-12)
    assert_allclose(getattr(st, "a"), np.einsum("ik,ikd->kd", rw, diff), rtol=1e-10, atol=1e-10 * n)
    expected = _reference_scatter(rw, diff, covariance_type)
    assert_allclose(np.reshape(getattr(st, "s"), expected.shape), expected, rtol=1e-10)
    assert_allclose(getattr(st, "sum_w"), w.sum(), rtol=1e-14)
    assert_allclose(getattr(st, "loglik"), np.dot(w, log_prob), rtol=1e-12)
    return rw


def _separated(n, d, k, covariance_type, seed, separation, dtype=np.float64):
    """Data around random_params' components with their means spread ``separation``
    times further apart: far apart, most responsibilities are exactly zero."""
    rng = np.random.default_rng(seed)
    weights, means, prec_chol, covs = random_params(covariance_type, k, d, seed=seed)
    means = means * separation
    labels = rng.integers(0, k, n)
    X = means[labels] + rng.normal(size=(n, d))
    return X.astype(dtype), (weights, means, prec_chol, covs)


# The E-step skips a component's exps and statistics on the groups of rows
# where all its e_ik are exactly zero: the results must be the same bits as
# with every term computed. Shapes: the diag row kernels (D = 8, 16), the
# small full kernels (D <= 4), the fused and stored tiles (D = 16, 40), K
# across several groups of 16 flags; n leaves a partial last block; half the
# rows of "mixed" overlap, so that blocks with and without skipping meet;
# "sorted" has the rows in cluster order, one or two live components to a
# group of rows, so that every shape skips (in random order small K leaves
# most groups with several live components, and blocks run without skipping).
SKIP_CASES = [(2, 8), (3, 5), (8, 16), (16, 12), (5, 40), (40, 6), (1, 70)]


@pytest.mark.parametrize(("d", "k"), SKIP_CASES, ids=[f"d{d}k{k}" for d, k in SKIP_CASES])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["separated", "sorted", "mixed", "weighted"])
def test_skipping_zero_responsibilities_keeps_every_bit(covariance_type, d, k, dtype, layout):
    n = 3001
    X, params = _separated(n, d, k, covariance_type, seed=d + k, separation=40.0, dtype=dtype)
    weights, means, prec_chol, _ = params
    if layout == "mixed":
        X[: n // 2] = means[np.arange(n // 2) % k] * 0.02 + np.random.default_rng(1).normal(size=(n // 2, d))
    if layout == "sorted":
        nearest = np.argmin(((X[:, None, :].astype(np.float64) - means[None]) ** 2).sum(axis=2), axis=1)
        X = np.ascontiguousarray(X[np.argsort(nearest, kind="stable")])
    sample_weight = np.random.default_rng(2).uniform(0.0, 2.0, n) if layout == "weighted" else None
    args = (X, sample_weight, covariance_type, weights, means, prec_chol)
    for threads in (1, 2):
        skipped = _core.em_stats(*args, n_threads=threads)
        computed = _core.em_stats(*args, n_threads=threads, skip_zero=False)
        _same(skipped, computed)
        outputs = []
        for skip in (True, False):
            resp = np.full((n, k), np.nan, dtype=dtype)
            log_prob = np.full(n, np.nan, dtype=dtype)
            labels = np.full(n, -1, dtype=np.int64)
            mean = _core.e_step(
                *args, resp=resp, log_prob_norm=log_prob, labels=labels, n_threads=threads, skip_zero=skip
            )
            outputs.append((mean, resp, log_prob, labels))
        _same(outputs[0], outputs[1])
    # the case is one that skips: most responsibilities are exactly zero
    zero = np.mean(outputs[0][1] == 0)
    assert zero > (0.3 if layout == "mixed" else 0.6) * (k - 1) / k


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [2, 8, 16])
def test_em_stats_of_separated_clusters_match_numpy(covariance_type, d):
    # the statistics where most pairs are skipped, against numpy's dense ones
    n, k = 2000, 9
    X, (weights, means, prec_chol, covs) = _separated(n, d, k, covariance_type, seed=d, separation=30.0)
    st = _core.em_stats(X, None, covariance_type, weights, means, prec_chol, n_threads=2)
    rw = _assert_stats_match_numpy(st, X, None, covariance_type, weights, means, covs)
    assert np.mean(rw < 1e-300) > 0.6  # the case is one that skips


@pytest.mark.parametrize("d", [3, 6, 16, 19, 26, 40])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_from_labels_matches_numpy(covariance_type, d):
    X, truth = make_blobs_data(n=403, d=d, k=3, seed=11)
    labels = truth.astype(np.int64)
    labels[:20] = -1
    reg = 1e-4
    stats = _core.stats_from_labels(X, None, labels, np.zeros((3, d)), covariance_type)
    params = stats.m_step(reg, initial=True)
    counts = np.array([(labels == j).sum() for j in range(3)])
    means = np.array([X[labels == j].mean(axis=0) for j in range(3)])
    assert_allclose(params["weights"], counts / len(X), rtol=1e-12)
    assert_allclose(params["means"], means, rtol=1e-10)
    covs = np.array([np.cov(X[labels == j].T, bias=True) for j in range(3)])
    expected = {
        "full": covs + reg * np.eye(d),
        "tied": (covs * counts[:, None, None]).sum(axis=0) / counts.sum() + reg * np.eye(d),
        "diag": np.array([np.diag(c) for c in covs]) + reg,
        "spherical": np.array([np.diag(c).mean() for c in covs]) + reg,
    }[covariance_type]
    assert_allclose(params["covariances"], expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_from_one_hot_resp_equals_m_step_from_labels(covariance_type):
    # the initial M-steps from the statistics of labels and of one-hot responsibilities
    X, truth = make_blobs_data(n=400, d=3, k=3, seed=12)
    labels = truth.astype(np.int64)
    resp = np.eye(3)[labels]
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    from_labels = _core.stats_from_labels(
        X, sample_weight, labels, np.zeros((3, 3)), covariance_type
    ).m_step(1e-6, initial=True)
    from_resp = _core.stats_from_resp(X, sample_weight, resp, covariance_type).m_step(1e-6, initial=True)
    for key in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(from_resp[key], from_labels[key], rtol=1e-10, err_msg=key)


# --------------------------------------------- sufficient statistics algebra


def _reference_scatter(rw, diff, covariance_type):
    """sum_i rw_ik diff_ik diff_ik^T per component (n x k weights, n x k x d
    differences), summed over k for 'tied', its diagonal for 'diag'/'spherical'."""
    if covariance_type in ("diag", "spherical"):
        return np.einsum("ik,ikd->kd", rw, diff**2)
    expected = np.einsum("ik,ikd,ike->kde", rw, diff, diff)
    return expected.sum(axis=0) if covariance_type == "tied" else expected


def _stats_of(X, w, covariance_type, seed=0, means=None):
    """One E-step's statistics of X around the means of a fixed 3-component
    model (means: three random rows of X unless given)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    if means is None:
        means = X[rng.choice(len(X), 3, replace=False)].astype(np.float64)
    cov = {"full": np.tile(np.eye(d), (3, 1, 1)), "tied": np.eye(d),
           "diag": np.ones((3, d)), "spherical": np.ones(3)}[covariance_type]
    return _core.em_stats(X, w, covariance_type, np.full(3, 1 / 3), means, cov, n_threads=2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stats_centred_is_the_scatter_around_each_mean(covariance_type):
    X, _ = make_blobs_data(n=500, d=4, k=3, seed=21)
    X = X + 1e6  # far from the origin: the centred form must not lose digits
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    st = _stats_of(X, w, covariance_type)
    c = st.centred()
    assert_array_equal(c.a, 0.0)
    assert_array_equal(c.nk, st.nk)
    means = st.shift + st.a / st.nk[:, None]
    assert_allclose(c.shift, means, rtol=1e-15)
    # responsibilities of the same model, from numpy, for the reference scatter
    out = np.empty((len(X), 3))
    _core.e_step(X, w, covariance_type, np.full(3, 1 / 3), st.shift,
                 {"full": np.tile(np.eye(4), (3, 1, 1)), "tied": np.eye(4),
                  "diag": np.ones((3, 4)), "spherical": np.ones(3)}[covariance_type],
                 resp=out, n_threads=1)
    expected = _reference_scatter(out * w[:, None], X[:, None, :] - means[None], covariance_type)
    scale = np.abs(expected).max()
    assert_allclose(c.s, expected, rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stats_blend_is_the_pairwise_merge_of_two_blocks(covariance_type):
    # Statistics of two blocks around the same shifts add; their centred,
    # normalised forms blended with eta = the second block's share of the
    # weight give the centred, normalised statistics of the union.
    X, _ = make_blobs_data(n=700, d=3, k=3, seed=22)
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(X))
    means = X[[0, 350, 699]]
    a = _stats_of(X[:300], w[:300], covariance_type, means=means)
    b = _stats_of(X[300:], w[300:], covariance_type, means=means)
    union = (a + b).centred().normalised()
    eta = b.sum_w / (a.sum_w + b.sum_w)
    blended = a.centred().normalised().blend(b.centred().normalised(), eta)
    assert_allclose(blended.nk, union.nk, rtol=1e-13)
    assert_allclose(blended.shift, union.shift, rtol=1e-12, atol=1e-12)
    assert_allclose(blended.s, union.s, rtol=1e-11, atol=1e-13)
    assert blended.sum_w == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stats_of_parameters_give_them_back(covariance_type):
    X, _ = make_blobs_data(n=600, d=3, k=3, seed=23)
    params = _stats_of(X, None, covariance_type).m_step(1e-3)
    st = _core.SuffStats.of_parameters(params["weights"], params["means"], params["covariances"],
                                       covariance_type, 1e-3)
    again = st.m_step(1e-3)
    for key in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(again[key], params[key], rtol=1e-12, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stats_pickle_and_sum_keep_every_bit(covariance_type):
    import pickle

    X, _ = make_blobs_data(n=400, d=5, k=3, seed=24)
    st = _stats_of(X, None, covariance_type)
    _same(pickle.loads(pickle.dumps(st)), st)
    total = st + st
    st2 = pickle.loads(pickle.dumps(st))
    st2 += st
    _same(st2, total)
    assert_array_equal(total.nk, 2 * st.nk)
    assert total.loglik == 2 * st.loglik


def test_stats_around_different_shifts_do_not_add():
    X, _ = make_blobs_data(n=400, d=2, k=3, seed=25)
    a = _stats_of(X, None, "full", seed=0)
    b = _stats_of(X, None, "full", seed=1)
    with pytest.raises(ValueError, match="different shapes or shifts"):
        a + b
    with pytest.raises(ValueError, match="blending statistics of different shapes"):
        a.centred().blend(_stats_of(X, None, "diag").centred(), 0.5)


@pytest.mark.parametrize("field", ["nk", "a", "s"])
def test_stats_constructor_checks_shapes(field):
    k, d = 2, 3
    arrays = dict(nk=np.ones(k), a=np.zeros((k, d)), s=np.zeros((k, d, d)), shift=np.zeros((k, d)))
    arrays[field] = np.zeros(7)
    with pytest.raises(ValueError, match=f"{field} must have shape"):
        _core.SuffStats("full", **arrays)


# ------------------------------------------------------ variational Bayes


def _variational(cov="full", prior_type="dirichlet_process", d=3, **kw):
    prior = {"full": np.eye(d).ravel(), "tied": np.eye(d).ravel(), "diag": np.ones(d),
             "spherical": np.ones(1)}[cov]
    args = dict(weight_concentration=0.5, mean_precision=1.0, mean=np.zeros(d), dof=float(d),
                covariance=prior)
    args.update(kw)
    return _core.VariationalBayes(cov, prior_type, args["weight_concentration"],
                                  args["mean_precision"], args["mean"], args["dof"],
                                  args["covariance"], reg_covar=1e-6)


@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_variational_log_constants_match_scipy(covariance_type, prior_type):
    from scipy.special import digamma

    X, _ = make_blobs_data(n=300, d=3, k=3, seed=31)
    vb = _variational(covariance_type, prior_type)
    params = vb.posterior(_stats_of(X, None, covariance_type))
    conc, dof, beta = params["weight_concentration"], params["degrees_of_freedom"], params["mean_precision"]
    if prior_type == "dirichlet_process":
        dsum = digamma(conc[0] + conc[1])
        elog = digamma(conc[0]) - dsum + np.hstack((0, np.cumsum(digamma(conc[1]) - dsum)[:-1]))
    else:
        elog = digamma(conc) - digamma(np.sum(conc))
    u = params["precisions_cholesky"]
    log_det = {"full": lambda: np.sum(np.log(np.diagonal(u, axis1=1, axis2=2)), axis=1),
               "tied": lambda: np.sum(np.log(np.diag(u))),
               "diag": lambda: np.sum(np.log(u), axis=1),
               "spherical": lambda: 3 * np.log(u)}[covariance_type]()
    log_lambda = 3 * np.log(2.0) + np.sum(digamma(0.5 * (dof - np.arange(3)[:, None])), 0)
    expected = (elog + log_det - 1.5 * np.log(2 * np.pi) - 1.5 * np.log(dof)
                + 0.5 * (log_lambda - 3 / beta))
    assert_allclose(vb.log_constants(params), expected, rtol=1e-13, atol=1e-13)


def test_variational_rejects_bad_priors_and_shapes():
    with pytest.raises(ValueError, match="weight_concentration_prior_type must be"):
        _variational(prior_type="dirichlet")
    with pytest.raises(ValueError, match="dof must be greater than n_features - 1"):
        _variational(dof=1.5)
    with pytest.raises(ValueError, match="must be > 0"):
        _variational(weight_concentration=0.0)
    with pytest.raises(ValueError, match="covariance must have 9 values"):
        _variational(covariance=np.ones(3))
    X, _ = make_blobs_data(n=100, d=3, k=3, seed=32)
    with pytest.raises(ValueError, match="another covariance type"):
        _variational("full").posterior(_stats_of(X, None, "diag"))
    vb = _variational("full")
    params = vb.posterior(_stats_of(X, None, "full"))
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        vb.fit(X.astype(np.int64), None, params, tol=0.0, max_iter=1, prev_lower_bound=-np.inf)
    with pytest.raises(ValueError, match="max_iter must be >= 0"):
        vb.fit(X, None, params, tol=0.0, max_iter=-1, prev_lower_bound=-np.inf)
    with pytest.raises(ValueError, match="disagree on the number of features"):
        vb.fit(X[:, :2].copy(), None, params, tol=0.0, max_iter=1, prev_lower_bound=-np.inf)


def test_variational_fit_equals_its_steps():
    # The engine's loop and one step at a time through the statistics give
    # the same numbers (the out-of-core path against the in-memory one).
    X, _ = make_blobs_data(n=2000, d=3, k=3, seed=33)
    vb = _variational("full")
    start = vb.posterior(_stats_of(X, None, "full"))
    loop = vb.fit(X, None, start, tol=0.0, max_iter=4, prev_lower_bound=-np.inf, n_threads=2)
    params, bounds = start, []
    for _ in range(4):
        st = _core.em_stats(X, None, "full", params["weights"], params["means"],
                            params["precisions_cholesky"], n_threads=2,
                            log_constants=vb.log_constants(params))
        lb, params = vb.step(st, params)
        bounds.append(lb)
    assert_allclose(loop["lower_bounds"], bounds, rtol=1e-14)
    for key in ("means", "covariances", "precisions_cholesky", "mean_precision", "degrees_of_freedom"):
        assert_allclose(loop[key], params[key], rtol=1e-13, err_msg=key)


def test_variational_rejects_parameters_of_another_feature_count():
    X, _ = make_blobs_data(n=100, d=3, k=3, seed=34)
    params = _variational("full").posterior(_stats_of(X, None, "full"))
    narrow = _variational("full", d=2)
    with pytest.raises(ValueError, match="means have 3 features, the priors 2"):
        narrow.fit(X, None, params, tol=0.0, max_iter=1, prev_lower_bound=-np.inf)
    with pytest.raises(ValueError, match="means have 3 features, the priors 2"):
        narrow.log_constants(params)


# --------------------------------------------------------------- machine probes


@pytest.mark.parametrize("probe", [_core._probe_fma, _core._probe_fma32, _core._probe_exp, _core._probe_exp32])
def test_probes_count_the_work_they_time(probe):
    # The units returned are the work asked for: per thread times threads
    # (the exp probes round n up to whole groups of four vectors).
    seconds, units = probe(2, 1000)
    assert seconds > 0.0
    one_seconds, one_units = probe(1, 1000)
    assert one_seconds > 0.0
    assert units == 2 * one_units
    assert units >= 2 * 1000
    with pytest.raises(ValueError, match="positive"):
        probe(0, 1000)
    with pytest.raises(ValueError, match="positive"):
        probe(1, 0)


def test_read_probe_reads_its_whole_buffer():
    probe = _core._ReadProbe(1 << 20, 2)
    assert probe.bytes == 1 << 20
    assert probe.read() > 0.0
    with pytest.raises(ValueError, match="bytes"):
        _core._ReadProbe(100, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _core._ReadProbe(1 << 20, 0)
