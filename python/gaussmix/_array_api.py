"""Array-API input for GaussianMixture, converted at the boundary.

With ``sklearn.set_config(array_api_dispatch=True)`` (which needs the
``array-api-compat`` package and, for SciPy, ``SCIPY_ARRAY_API=1``), a fit on
an array of another array-API namespace (array_api_strict, a PyTorch CPU
tensor, ...) converts it, and any starting values of that namespace, to numpy
once at the call; the engine fits; the fitted arrays are handed back in the
caller's namespace and on its device, as scikit-learn does. Every per-sample
method converts its input the same way and returns its result in the input's
namespace; ``sample`` returns the fitted arrays' namespace. Scalars
(``score``, ``bic``, ``aic``) are Python floats.

The engine computes on host memory, so an array on another device makes the
round trip through the host.
"""

import contextlib
import functools

import numpy as np

# scikit-learn's initialisations under array-API dispatch (its own rule and message)
ALLOWED_INIT_PARAMS = ["random", "random_from_data"]

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
STARTS = ("weights_init", "means_init", "precisions_init")


def foreign(*values):
    """(xp, device) of the first value of a non-numpy array-API namespace,
    when array-API dispatch is on; else None."""
    import sklearn

    if not sklearn.get_config().get("array_api_dispatch", False):
        return None
    from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device

    for value in values:
        if value is None or isinstance(value, (np.ndarray, np.generic, list, tuple, int, float, str)):
            continue
        try:
            xp, is_array_api, device = get_namespace_and_device(value)
        except TypeError:
            continue
        if is_array_api and not _is_numpy_namespace(xp):
            return xp, device
    return None


def to_numpy(value, xp):
    from sklearn.utils._array_api import _convert_to_numpy

    if value is None or isinstance(value, (np.ndarray, list, tuple, int, float)):
        return value
    return _convert_to_numpy(value, xp)


def to_namespace(value, xp, device):
    if isinstance(value, np.ndarray):
        return xp.asarray(value, device=device)
    if isinstance(value, tuple):
        return tuple(to_namespace(v, xp, device) for v in value)
    return value


@contextlib.contextmanager
def as_numpy(estimator, names, xp):
    """The estimator's attributes ``names`` as numpy arrays while the block
    runs; what they were is put back after, unless the block set them anew."""
    saved = {}
    for name in names:
        value = getattr(estimator, name, None)
        if value is not None and not isinstance(value, np.ndarray):
            converted = to_numpy(value, xp)
            if converted is not value:
                saved[name] = (value, converted)
                setattr(estimator, name, converted)
    try:
        yield
    finally:
        for name, (value, converted) in saved.items():
            if getattr(estimator, name, None) is converted:
                setattr(estimator, name, value)


def fit_boundary(method):
    """fit(X, y, sample_weight, ...) on array-API input: numpy inside, the
    fitted arrays in X's namespace after."""

    @functools.wraps(method)
    def wrapper(self, X, y=None, sample_weight=None, **kwargs):
        found = foreign(X, sample_weight, *(getattr(self, n, None) for n in STARTS))
        if found is None:
            return method(self, X, y, sample_weight, **kwargs)
        xp, device = found
        with as_numpy(self, STARTS + FITTED, xp):  # starting values; fitted ones for warm starts
            result = method(self, to_numpy(X, xp), y, to_numpy(sample_weight, xp), **kwargs)
        for name in FITTED:
            setattr(self, name, to_namespace(getattr(self, name), xp, device))
        return result if result is self else to_namespace(result, xp, device)

    return wrapper


def output_boundary(method):
    """A method of X (or of nothing, as sample) whose result goes back to the
    caller's namespace."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        X = args[0] if args else kwargs.get("X")
        found = foreign(X) if X is not None and not isinstance(X, int) else None
        found = found or foreign(*(getattr(self, n, None) for n in FITTED))
        if found is None:
            return method(self, *args, **kwargs)
        xp, device = found
        if X is not None and not isinstance(X, int):
            args = (to_numpy(X, xp), *args[1:]) if args else args
            kwargs = {k: to_numpy(v, xp) if k == "X" else v for k, v in kwargs.items()}
        with as_numpy(self, FITTED, xp):
            result = method(self, *args, **kwargs)
        return to_namespace(result, xp, device)

    return wrapper


def check_init_params(init_params):
    """scikit-learn's NotImplementedError for the initialisations it does not
    run with array-API dispatch on."""
    import sklearn

    if sklearn.get_config().get("array_api_dispatch", False) and init_params not in ALLOWED_INIT_PARAMS:
        raise NotImplementedError(
            f"Allowed `init_params` are {ALLOWED_INIT_PARAMS} if "
            f"'array_api_dispatch' is enabled. You passed "
            f"init_params={init_params!r}, which are not implemented to work "
            "with 'array_api_dispatch' enabled. Please disable "
            f"'array_api_dispatch' to use init_params={init_params!r}."
        )
