"""The raw binding gaussmix._core: strict array handling and exact E-step values.

X and the output arrays are taken without conversion: a wrong dtype or memory
order raises TypeError (pybind11's "incompatible function arguments") instead
of a silent copy; wrong shapes raise ValueError naming the argument.
"""

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
    "e_step", "em_fit", "kmeans_sq_dists", "kmeans_assign", "m_step_from_labels", "m_step_from_resp",
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
        "m_step_from_labels": dict(
            X=X, sample_weight=None, labels=labels, shifts=means,
            covariance_type=cov, reg_covar=1e-6,
        ),
        "m_step_from_resp": dict(
            X=X, sample_weight=None, resp=resp, covariance_type=cov, reg_covar=1e-6,
        ),
    }[name]
    args.update(overrides)
    result = getattr(_core, name)(**args)
    if name == "kmeans_sq_dists":  # outputs filled in place
        return args["out"]
    if name == "kmeans_assign":
        return result, args["labels"], args["sums"], args["weight_sums"]
    return result


def _same(a, b):
    if isinstance(a, dict):
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
        assert PARAM_KEYS <= set(out)
        assert out["means"].shape == (K, D)


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


@pytest.mark.parametrize("name", ["e_step", "em_fit", "kmeans_assign", "m_step_from_labels", "m_step_from_resp"])
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


@pytest.mark.parametrize("name", ["e_step", "em_fit", "m_step_from_labels", "m_step_from_resp"])
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
        call("m_step_from_labels", _data(), labels=labels)


@pytest.mark.parametrize("shape", [(N - 1,), (N + 1,), (N, 1)])
def test_labels_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"labels must have shape \({N},\)"):
        call("m_step_from_labels", _data(), labels=np.zeros(shape, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.int32, np.uint64, np.float64])
def test_labels_wrong_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("m_step_from_labels", _data(), labels=(np.arange(N) % K).astype(dtype))


@pytest.mark.parametrize("shape", [(K, D + 1), (0, D), (K * D,)])
def test_shifts_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"shifts must have shape \(n_components, {D}\)"):
        call("m_step_from_labels", _data(), shifts=np.zeros(shape))


@pytest.mark.parametrize("shape", [(K, D + 1), (0, D), (K * D,)])
def test_centers_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"centers must have shape \(n_clusters, {D}\)"):
        call("kmeans_assign", _data(), centers=np.zeros(shape))


@pytest.mark.parametrize("shape", [(N - 1, K), (N, 0), (N,), (N, K, 1)])
def test_resp_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"resp must have shape \(n_samples, n_components\)"):
        call("m_step_from_resp", _data(), resp=np.full(shape, 0.5))


@pytest.mark.parametrize(("x_dtype", "resp_dtype"), [(np.float64, np.float32), (np.float32, np.float64)])
def test_resp_dtype_must_match_x(x_dtype, resp_dtype):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("m_step_from_resp", _data(dtype=x_dtype), resp=np.full((N, K), 0.5, dtype=resp_dtype))


def test_fortran_ordered_resp_input_raises_type_error():
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        call("m_step_from_resp", _data(), resp=np.asfortranarray(np.full((N, K), 0.5)))


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
    assert_allclose(st["nk"], rw.sum(axis=0), rtol=1e-12)
    assert_allclose(st["a"], np.einsum("ik,ikd->kd", rw, diff), rtol=1e-10, atol=1e-10 * n)
    if covariance_type in ("diag", "spherical"):
        expected = np.einsum("ik,ikd->kd", rw, diff**2)
    else:
        expected = np.einsum("ik,ikd,ike->kde", rw, diff, diff)
        if covariance_type == "tied":
            expected = expected.sum(axis=0)
    assert_allclose(np.reshape(st["s"], expected.shape), expected, rtol=1e-10)
    assert_allclose(st["sum_w"], w.sum(), rtol=1e-14)
    assert_allclose(st["loglik"], np.dot(w, log_prob), rtol=1e-12)
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
    params = _core.m_step_from_labels(X, None, labels, np.zeros((3, d)), covariance_type, reg)
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
    X, truth = make_blobs_data(n=400, d=3, k=3, seed=12)
    labels = truth.astype(np.int64)
    resp = np.eye(3)[labels]
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    from_labels = _core.m_step_from_labels(X, sample_weight, labels, np.zeros((3, 3)), covariance_type, 1e-6)
    from_resp = _core.m_step_from_resp(X, sample_weight, resp, covariance_type, 1e-6)
    for key in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(from_resp[key], from_labels[key], rtol=1e-10, err_msg=key)
