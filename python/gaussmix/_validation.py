"""Input validation shared by the estimators (never loops over samples)."""

import functools
import math
from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils._param_validation import make_constraint
from sklearn.utils.validation import validate_data

from . import _core


def validate(estimator, X, **kwargs):
    """scikit-learn's ``validate_data`` without its floating-point warnings.

    Its finiteness check sums the array first; +inf and -inf in one array make
    that sum NaN with a RuntimeWarning before the clear ValueError is raised.
    The error is kept, the warning is not.

    An ndarray that every check passes unchanged (see ``_passes_as_is``)
    skips scikit-learn's machinery, whose fixed cost dominates small fits;
    the estimator's ``n_features_in_`` / ``feature_names_in_`` are kept as
    ``validate_data`` keeps them. Anything else, and every input that fails a
    check, goes through ``validate_data`` and gets its errors and warnings.
    """
    return _validate(estimator, X, True, kwargs)[0]


def validate_deferred(estimator, X, **kwargs):
    """``validate``, with the finiteness check of an array that passes as it
    is left to the engine's first pass over it.

    That check is a pass over X of its own, reading all of X from memory
    once more; the engine's E-step makes it for free on each block it has in
    cache. Returns ``(X, check)``: ``check`` is None when
    X was checked here (it went through ``validate_data``), else a
    `DeferredFiniteCheck` that the caller must settle, before anything but
    the engine reads X.
    """
    return _validate(estimator, X, False, kwargs)


def _validate(estimator, X, check_finite, kwargs):
    reset = kwargs.get("reset", True)
    checks = {k: v for k, v in kwargs.items() if k != "reset"}
    # deferred only where the engine reads X as it is, row after row
    check_finite = check_finite or not (isinstance(X, np.ndarray) and X.flags.c_contiguous)
    if _passes_as_is(X, check_finite=check_finite, **checks):
        n_features = X.shape[1]
        check = None if check_finite else DeferredFiniteCheck(estimator, X, kwargs)
        if reset:
            estimator.n_features_in_ = n_features
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
            return X, check
        if getattr(estimator, "n_features_in_", None) == n_features and not hasattr(
            estimator, "feature_names_in_"
        ):
            return X, check
    with np.errstate(invalid="ignore", over="ignore"):
        out = validate_data(estimator, X, **kwargs)
    if isinstance(out, tuple):
        return tuple(aligned(a) for a in out), None
    return aligned(out), None


_MISSING = object()


class DeferredFiniteCheck:
    """The finiteness check of an array that `validate_deferred` passed.

    ``pending`` until settled: by `passed` (an engine call with
    ``check_finite=True`` returned), or by `settle`, which checks X now and,
    when it is not finite, raises scikit-learn's error for it, the error
    ``validate`` would have raised (with the estimator's attributes as
    ``validate_data`` leaves them when it fails).
    """

    __slots__ = ("estimator", "X", "kwargs", "pending", "_n_features_in")

    def __init__(self, estimator, X, kwargs):
        self.estimator = estimator
        self.X = X
        self.kwargs = kwargs
        self.pending = True
        self._n_features_in = estimator.__dict__.get("n_features_in_", _MISSING)

    def passed(self):
        self.pending = False

    def settle(self):
        """Checks X if it still is pending; raises its error if not finite."""
        if not self.pending:
            return
        self.pending = False
        if _all_finite(self.X):
            return
        if self.kwargs.get("reset", True):
            if self._n_features_in is _MISSING:
                self.estimator.__dict__.pop("n_features_in_", None)
            else:
                self.estimator.n_features_in_ = self._n_features_in
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                validate_data(self.estimator, self.X, **self.kwargs)
        except ValueError as err:
            raise err from None
        raise ValueError("Input X contains infinity or NaN.")  # pragma: no cover

    def run(self, call):
        """``call(check_finite)``, the engine's pass over X, checking X if pending.

        On the engine's NonFiniteInput, raises X's error (`settle`).
        """
        check = self.pending
        try:
            result = call(check)
        except _core.NonFiniteInput:
            self.settle()
            raise
        if check:
            self.passed()
        return result

    def first(self, work):
        """``work()``, with X's error raised in place of any error it raises
        while X is still unchecked: scikit-learn checks X before all else."""
        try:
            return work()
        except Exception as exc:
            if not self.pending:
                raise
            error = exc
        self.settle()
        raise error


def engine_pass(check, call):
    """``call(check_finite)`` through `check` (a DeferredFiniteCheck or None)."""
    if check is None:
        return call(False)
    return check.run(call)


# Each estimator class's _parameter_constraints as constraint objects, made once.
_COMPILED_CONSTRAINTS = {}


def validate_params(estimator):
    """scikit-learn's ``_validate_params``, with its cost paid only on failure.

    Every parameter that has constraints is checked against them with
    scikit-learn's own constraint objects (built once per class, where
    ``_validate_params`` builds them, and reads the parameters through
    ``inspect``, on every call). If one fails, ``_validate_params`` runs and
    raises its error.
    """
    cls = type(estimator)
    entry = _COMPILED_CONSTRAINTS.get(cls)
    if entry is None:
        compiled = {
            name: [make_constraint(c) for c in constraints]
            for name, constraints in cls._parameter_constraints.items()
            if constraints != "no_validation"
        }
        entry = _COMPILED_CONSTRAINTS[cls] = (compiled, set())
    compiled, seen = entry
    for name, constraints in compiled.items():
        value = getattr(estimator, name)
        key = _value_key(name, value)
        if key is not None and key in seen:
            continue
        if not any(c.is_satisfied_by(value) for c in constraints):
            estimator._validate_params()
            return
        if key is not None:
            if len(seen) >= _MAX_SEEN:
                seen.clear()
            seen.add(key)


# Values already found valid, per class: immutable scalars by type and value;
# arrays and random generators by type alone, which is all that their
# constraints ("array-like", "random_state") look at.
_MAX_SEEN = 4096
_SCALARS = (bool, int, float, str, type(None), np.integer, np.floating, np.bool_)


def _value_key(name, value):
    kind = type(value)
    if kind in _EXACT:
        return (name, kind, value)
    if kind in _BY_TYPE:
        return (name, kind)
    if isinstance(value, _SCALARS) and value == value:  # NaN is never cached
        return (name, kind, value)
    return None


# The commonest kinds, found without isinstance: hashable values that are
# never NaN, and kinds whose constraints look at the type alone.
_EXACT = frozenset({bool, int, str, type(None)})
_BY_TYPE = frozenset({np.ndarray, np.random.RandomState})


def check_float_array(X, **kwargs):
    """``check_array`` without its floating-point warnings (see ``validate``)."""
    if _passes_as_is(X, **{k: v for k, v in kwargs.items() if k != "input_name"}):
        return X
    with np.errstate(invalid="ignore", over="ignore"):
        return aligned(check_array(X, **kwargs))


def _passes_as_is(
    X,
    *,
    dtype=None,
    order=None,
    ensure_2d=True,
    allow_nd=False,
    ensure_min_samples=1,
    copy=False,
    check_finite=True,
    **other,
):
    """True when ``check_array(X, ...)`` would return X itself, with no error
    or warning: a plain aligned ndarray of an accepted float dtype, in the
    requested order, of an accepted shape, all finite (checked as
    scikit-learn does, by its sum, with the detailed check left to it when
    the sum is not finite; not checked when ``check_finite`` is false).
    False for anything else, including options this check does not know.
    """
    if other or copy or dtype is None:
        return False
    accepted = tuple(dtype) if isinstance(dtype, (list, tuple)) else (dtype,)
    if not _float_types_only(accepted) or not is_plain_float(X, accepted, c_order=order == "C"):
        return False
    if order not in (None, "C"):
        return False
    if X.ndim == 0 or (ensure_2d and X.ndim != 2) or (X.ndim >= 3 and not allow_nd):
        return False
    if X.shape[0] < max(ensure_min_samples, 1) or (X.ndim == 2 and X.shape[1] < 1) or X.size == 0:
        return False
    return not check_finite or _all_finite(X)


def _all_finite(X):
    if X.size <= _SMALL:
        # one pass and no floating-point state to set: cheaper for small arrays
        return bool(np.isfinite(X).all())
    if X.flags.c_contiguous:
        # one pass on every core (scikit-learn sums on one thread)
        return _core.all_finite(X, _core.default_threads())
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(X.sum()))


# Arrays up to this size are checked element by element rather than by their sum.
_SMALL = 4096


def is_plain_float(X, accepted=(np.float64, np.float32), c_order=True):
    """True for an ndarray (no subclass) of native byte order, aligned, of a
    dtype in ``accepted`` (scalar types), C-contiguous when ``c_order``: an
    array the engine reads as it is."""
    return (
        type(X) is np.ndarray
        and X.dtype.type in accepted
        and X.dtype.isnative
        and X.flags.aligned
        and (not c_order or X.flags.c_contiguous)
    )


@functools.lru_cache(maxsize=64)
def _float_types_only(accepted):
    return all(d in (np.float64, np.float32) for d in accepted)


def aligned(a, dtype=None):
    """`a` as a C-ordered array of `dtype` whose elements are aligned.

    ``np.ascontiguousarray`` keeps a misaligned buffer as it is (arrays made
    from a byte buffer at an odd offset, or unpickled from a network frame, as
    Dask's workers receive them); the engine reads whole elements, so such an
    array is copied. Anything that is not an array passes through.
    """
    if dtype is not None:
        if (
            type(a) is np.ndarray
            and a.dtype == dtype
            and a.flags.c_contiguous
            and a.flags.aligned
        ):
            return a
        return np.require(a, dtype=dtype, requirements=["C", "A"])
    if not isinstance(a, np.ndarray) or a.flags.aligned:
        return a
    return np.require(a, requirements=["A"])


def is_dask_collection(X):
    """True for dask arrays (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "__dask_graph__")


def effective_n_threads(n_jobs):
    """Thread count for the engine, with scikit-learn's ``n_jobs`` rules.

    ``None`` means OpenMP's default team size (which honours
    ``OMP_NUM_THREADS`` and threadpoolctl); ``-1`` all cores; ``-2`` all but
    one, and so on; a positive integer is taken as is.
    """
    if n_jobs is None:
        return max(1, int(_core.default_threads()))
    if not isinstance(n_jobs, Integral) or isinstance(n_jobs, bool):
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}.")
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive integer.")
    if n_jobs < 0:
        return max(1, int(_core.available_cores()) + 1 + int(n_jobs))
    return min(int(n_jobs), _MAX_THREADS)


# More threads than this only oversubscribes; it also keeps the count in a C int.
_MAX_THREADS = 4096


def check_sample_weight(sample_weight, n_samples, normalise=True):
    """Validate sample weights: finite, non-negative, not all zero, shape (n_samples,).

    Returns a new float64 C-contiguous array (never the caller's array), or
    None when ``sample_weight`` is None; scaled to mean 1 when ``normalise``.
    """
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    sample_weight = check_float_array(
        sample_weight,
        ensure_2d=False,
        dtype=np.float64,
        order="C",
        copy=True,
        input_name="sample_weight",
        ensure_min_samples=0,
    )
    if sample_weight.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D, got an array of shape {sample_weight.shape}."
        )
    if sample_weight.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == {sample_weight.shape}, expected ({n_samples},)!"
        )
    if np.any(sample_weight < 0):
        raise ValueError("Negative values in data passed to sample_weight.")
    if not np.any(sample_weight > 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    if not normalise:  # the weights are counts (e.g. a Bayesian fit's)
        return sample_weight
    # The estimators depend on the weights only up to a common factor; scale
    # them to about mean 1 (the unweighted scale), so that neither their sum
    # overflows nor the fixed 10 eps that EM adds to each component's weight
    # becomes comparable to tiny weights.
    w_max = np.max(sample_weight)
    sample_weight *= weight_scale_factor(n_samples, np.sum(sample_weight / w_max), w_max)
    return sample_weight


def weight_scale_factor(n_samples, w_sum_scaled, w_max):
    """The power of two 2**k that brings the weights' mean into [2**-0.5, 2**0.5).

    ``w_sum_scaled`` is sum(w / w_max). A power of two scales every weight
    exactly (barring underflow), in float64 and after a cast to float32, so
    that every sum of products with the weights, however rounded on the way,
    is the unscaled sum times 2**k: the k-means initialisation then makes
    the very decisions scikit-learn makes with the caller's weights.
    """
    log2_mean = math.log2(w_sum_scaled) + math.log2(w_max) - math.log2(n_samples)
    # a normal power of two: subnormal weights end up below mean 1, not at inf
    return math.ldexp(1.0, min(max(-round(log2_mean), -1022), 1023))
