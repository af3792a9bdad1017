"""Input validation shared by the estimators (never loops over samples)."""

from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from . import _core


def validate(estimator, X, **kwargs):
    """scikit-learn's ``validate_data`` without its floating-point warnings.

    Its finiteness check sums the array first; +inf and -inf in one array make
    that sum NaN with a RuntimeWarning before the clear ValueError is raised.
    The error is kept, the warning is not.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        out = validate_data(estimator, X, **kwargs)
    if isinstance(out, tuple):
        return tuple(aligned(a) for a in out)
    return aligned(out)


def check_float_array(X, **kwargs):
    """``check_array`` without its floating-point warnings (see ``validate``)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return aligned(check_array(X, **kwargs))


def aligned(a, dtype=None):
    """`a` as a C-ordered array of `dtype` whose elements are aligned.

    ``np.ascontiguousarray`` keeps a misaligned buffer as it is (arrays made
    from a byte buffer at an odd offset, or unpickled from a network frame, as
    Dask's workers receive them); the engine reads whole elements, so such an
    array is copied. Anything that is not an array passes through.
    """
    if dtype is not None:
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


def check_sample_weight(sample_weight, n_samples):
    """Validate sample weights: finite, non-negative, not all zero, shape (n_samples,).

    Returns a new float64 C-contiguous array (never the caller's array), or
    None when ``sample_weight`` is None.
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
    # The estimators depend on the weights only up to a common factor; scale
    # them to mean 1 (the unweighted scale), so that neither their sum
    # overflows nor the fixed 10 eps that EM adds to each component's weight
    # becomes comparable to tiny weights.
    sample_weight /= np.max(sample_weight)
    sample_weight *= n_samples / np.sum(sample_weight)
    return sample_weight
