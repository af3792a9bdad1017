"""KernelDensity: kernel density estimation with scikit-learn's interface,
exact or within a certified tolerance."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.neighbors import KernelDensity as _SkKernelDensity
from sklearn.neighbors import BallTree, KDTree
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _isj, _patch
from ._kde_core import (
    KERNELS,
    build_index,
    cv_rtol,
    index_log_sums,
    leave_one_out_log_likelihood,
    log_kernel_norm,
    maximize_over_log_grid,
    maximize_over_log_scale,
    prepare_index,
)
from ._validation import (
    check_float_array,
    check_sample_weight,
    effective_n_threads,
    is_dask_collection as _is_dask_collection,
    validate,
    validate_params,
)

_TREES = {"kd_tree": KDTree, "ball_tree": BallTree}
_METRICS = set(KDTree.valid_metrics) | set(BallTree.valid_metrics)
_RULES = ("scott", "silverman")


def _rule_bandwidth(rule, n, d):
    """scikit-learn's rules of thumb: they ignore the data's scale."""
    if rule == "scott":
        return n ** (-1 / (d + 4))
    return (n * (d + 2) / 4) ** (-1 / (d + 4))


def _is_euclidean(metric, metric_params):
    params = metric_params or {}
    if metric in ("euclidean", "l2"):
        return not params
    if metric in ("minkowski", "p"):
        return set(params) <= {"p"} and params.get("p", 2) == 2
    return False


def _cv_ml_bandwidth(X, sample_weight, kernel, n_threads):
    n, d = X.shape
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.average(X, axis=0, weights=sample_weight)
        var = np.average((X - mean) ** 2, axis=0, weights=sample_weight)
        spread = math.sqrt(float(np.mean(var)))
    if not (spread > 0 and math.isfinite(spread)):
        raise ValueError(
            "bandwidth='cv_ml' needs data with a finite, non-zero variance "
            f"(got a mean feature variance of {spread**2!r})."
        )
    h0 = spread * n ** (-1 / (d + 4))
    index = build_index(X, sample_weight, np.eye(d), n_threads)
    rtol = cv_rtol(n)

    def objective(h):
        return leave_one_out_log_likelihood(X, sample_weight, index, 1.0 / h, kernel, n_threads, rtol)

    if kernel in ("gaussian", "exponential"):  # smooth in h: Brent
        h, value, at_edge = maximize_over_log_scale(objective, h0)
    else:  # compact kernels: many local maxima, nested grids
        h, value, at_edge = maximize_over_log_grid(objective, h0)
    if not np.isfinite(value) or at_edge:
        raise ValueError(
            f"bandwidth='cv_ml': the leave-one-out likelihood of kernel={kernel!r} has "
            f"no maximum within a factor 1e8 of Scott's bandwidth {h0:.3g} (best "
            f"{h:.3g}); this happens when samples are repeated (the likelihood grows "
            f"without bound as h -> 0). Pass a numeric bandwidth or remove duplicates."
        )
    return h


def _isj_bandwidth(X, sw, kernel):
    if X.shape[1] != 1:
        raise ValueError(
            f"bandwidth 'isj' is defined for 1-D data; X has {X.shape[1]} features "
            "(use 'cv_ml' or a rule)."
        )
    return float(_isj.isj_bandwidth(X[:, 0], sw, kernel))


def select_bandwidth(X, method="cv_ml", *, kernel="gaussian", sample_weight=None, n_jobs=None):
    """Bandwidth of an isotropic kernel density estimate, by rule or by likelihood.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data.
    method : {'cv_ml', 'isj', 'scott', 'silverman'}, default='cv_ml'
        'isj' (1-D data only) is the improved Sheather-Jones bandwidth of
        Botev, Grotowski & Kroese (2010), see ``gaussmix._isj``.
        'cv_ml' maximises the leave-one-out log-likelihood
        ``sum_i w_i log(sum_{j != i} w_j K_h(x_i - x_j) / sum_{j != i} w_j)``
        over h by a search in log h started from Scott's rule scaled by the
        data's spread; each evaluation is one exact parallel pass over all
        pairs (no N x N matrix). 'scott' and 'silverman' are scikit-learn's
        KernelDensity rules, ``n**(-1/(d+4))`` and ``(n(d+2)/4)**(-1/(d+4))``,
        which ignore the data's scale.
    kernel : str, default='gaussian'
        One of 'gaussian', 'tophat', 'epanechnikov', 'exponential', 'linear',
        'cosine'.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.
    n_jobs : int, default=None
        Threads (None: OpenMP's default).

    Returns
    -------
    bandwidth : float

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import select_bandwidth
    >>> X = np.random.default_rng(0).normal(size=(500, 1))
    >>> h = select_bandwidth(X)
    >>> 0.1 < h < 1.0
    True
    """
    X = check_float_array(X, dtype=np.float64, order="C", input_name="X")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    sw = check_sample_weight(sample_weight, X.shape[0])
    if method in _RULES:
        n = X.shape[0]
        return float(_rule_bandwidth(method, n, X.shape[1]))
    if method == "isj":
        return _isj_bandwidth(X, sw, kernel)
    if method != "cv_ml":
        raise ValueError(f"method must be 'cv_ml', 'isj', 'scott' or 'silverman', got {method!r}.")
    if X.shape[0] < 2:
        raise ValueError("method='cv_ml' needs at least 2 samples.")
    return float(_cv_ml_bandwidth(X, sw, kernel, effective_n_threads(n_jobs)))


class KernelDensity(BaseEstimator):
    """Kernel density estimation on a multithreaded engine, exact or within a
    certified tolerance.

    A drop-in replacement for :class:`sklearn.neighbors.KernelDensity`: same
    constructor, attributes, methods and errors. With the Euclidean metric
    (the default) every kernel is computed by gaussmix's engine, in log
    space: with ``atol = rtol = 0`` (the default) as the exact sum over all
    training points; with a tolerance, by sums whose error bound is
    certified for every query,

        |density - exact density| <= atol + rtol * exact density,

    so with ``atol = 0`` the log-density returned by ``score_samples`` is
    within ``-log(1 - rtol)`` of the exact one. Gaussian kernels in one and
    two dimensions run on a grid (a fast Gauss transform with a bound per
    query); other cases, and queries the grid cannot certify, on a k-d tree
    whose node bounds certify the sum. The engine measures the work the tree
    takes on a sample of the queries and sums the rest exactly when that is
    cheaper (high dimensions, bandwidths wide against the data).
    ``algorithm``, ``leaf_size`` and ``breadth_first`` are accepted and have
    no effect there (the engine's tree has its own leaf size). Other metrics
    are delegated to scikit-learn's tree implementation, transparently.

    Beyond scikit-learn: ``bandwidth="cv_ml"`` (the bandwidth maximising the
    leave-one-out likelihood, see :func:`select_bandwidth`), ``sample()`` for
    every kernel, and ``n_jobs``.

    Parameters
    ----------
    bandwidth : float or {'scott', 'silverman', 'cv_ml', 'isj'}, default=1.0
        The bandwidth h. 'scott' and 'silverman' are scikit-learn's rules,
        which ignore the data's scale (``n**(-1/(d+4))`` and
        ``(n(d+2)/4)**(-1/(d+4))``); 'cv_ml' is chosen by likelihood; 'isj'
        (1-D data) is the improved Sheather-Jones bandwidth.
    algorithm : {'kd_tree', 'ball_tree', 'auto'}, default='auto'
        Tree used by the delegated (non-Euclidean) path.
    kernel : {'gaussian', 'tophat', 'epanechnikov', 'exponential', 'linear', \
            'cosine'}, default='gaussian'
    metric : str, default='euclidean'
    atol : float, default=0
        Absolute tolerance on the density (see above).
    rtol : float, default=0
        Relative tolerance on the density (see above).
    breadth_first : bool, default=True
    leaf_size : int, default=40
    metric_params : dict, default=None
    n_jobs : int, default=None
        Threads used by the engine (None: OpenMP's default).

    Attributes
    ----------
    bandwidth_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import KernelDensity
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> kde = KernelDensity(bandwidth=0.5).fit(X)
    >>> kde.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "bandwidth": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"scott", "silverman", "cv_ml", "isj"}),
        ],
        "algorithm": [StrOptions(set(_TREES) | {"auto"})],
        "kernel": [StrOptions(set(KERNELS))],
        "metric": [StrOptions(_METRICS)],
        "atol": [Interval(Real, 0, None, closed="left")],
        "rtol": [Interval(Real, 0, None, closed="left")],
        "breadth_first": ["boolean"],
        "leaf_size": [Interval(Integral, 1, None, closed="left")],
        "metric_params": [None, dict],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        *,
        bandwidth=1.0,
        algorithm="auto",
        kernel="gaussian",
        metric="euclidean",
        atol=0,
        rtol=0,
        breadth_first=True,
        leaf_size=40,
        metric_params=None,
        n_jobs=None,
    ):
        self.bandwidth = bandwidth
        self.algorithm = algorithm
        self.kernel = kernel
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def _check_algorithm(self):
        # The same errors as scikit-learn for an algorithm/metric mismatch.
        if self.algorithm == "auto":
            return
        if self.metric not in _TREES[self.algorithm].valid_metrics:
            raise ValueError(
                "invalid metric for {0}: '{1}'".format(_TREES[self.algorithm], self.metric)
            )

    def fit(self, X, y=None, sample_weight=None):
        """Fit the kernel density model on the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, one row per point.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the points.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        self._check_algorithm()
        X = validate(self, X, order="C", dtype=np.float64)
        n, d = X.shape
        sw = check_sample_weight(sample_weight, n)
        self._native = _is_euclidean(self.metric, self.metric_params)
        if self._native:  # other metrics run on scikit-learn's trees
            _patch.note_call(self, "fit")
        if self.bandwidth in _RULES:
            self.bandwidth_ = _rule_bandwidth(self.bandwidth, n, d)
        elif self.bandwidth == "cv_ml":
            if n < 2:
                raise ValueError("bandwidth='cv_ml' needs at least 2 samples.")
            if not self._native:
                raise ValueError("bandwidth='cv_ml' needs the Euclidean metric.")
            self.bandwidth_ = _cv_ml_bandwidth(X, sw, self.kernel, effective_n_threads(self.n_jobs))
        elif self.bandwidth == "isj":
            self.bandwidth_ = _isj_bandwidth(X, sw, self.kernel)
        else:
            self.bandwidth_ = self.bandwidth
        if not (math.isfinite(1.0 / self.bandwidth_) and math.isfinite(d * math.log(self.bandwidth_))):
            raise ValueError(
                f"bandwidth={self.bandwidth_!r} is too small to represent 1/bandwidth."
            )
        self._fit_X = X
        self._fit_weight = sw
        self._sum_weight = float(n if sw is None else np.sum(sw))
        if self._native:
            # the training set prepared once for every evaluation, and the
            # grid or the tree when there is a tolerance
            self._index = build_index(X, sw, np.eye(d), effective_n_threads(self.n_jobs))
            if self.atol > 0 or self.rtol > 0:
                prepare_index(self._index, self.kernel)
        if not self._native:
            params = self.get_params()
            params.pop("n_jobs")
            params["bandwidth"] = self.bandwidth_
            # the caller's weights, unscaled: the delegate then matches scikit-learn bit for bit
            self._delegate = _SkKernelDensity(**params).fit(X, sample_weight=sample_weight)
        return self

    def score_samples(self, X):
        """Compute the log-density of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to evaluate.

        Returns
        -------
        density : ndarray of shape (n_samples,)
            Log-density of each point, normalised to a probability density.
        """
        if _is_dask_collection(X):
            from .dask import kde_score_samples_dask

            return kde_score_samples_dask(self, X)
        check_is_fitted(self)
        X = validate(self, X, order="C", dtype=np.float64, reset=False)
        if not self._native:
            return self._delegate.score_samples(X)
        h = float(self.bandwidth_)
        d = X.shape[1]
        log_norm = log_kernel_norm(self.kernel, d) - d * math.log(h) - math.log(self._sum_weight)
        sums = index_log_sums(
            self._index,
            X,
            self.kernel,
            effective_n_threads(self.n_jobs),
            scale=1.0 / h,
            log_norm=log_norm,
            atol=float(self.atol),
            rtol=float(self.rtol),
        )
        sums += log_norm
        return sums  # normalised in place: the output is the only N-sized array

    def score(self, X, y=None):
        """Total log-likelihood of the data in X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to evaluate.
        y : None
            Ignored.

        Returns
        -------
        logprob : float
            Sum of the log-densities.
        """
        return np.sum(self.score_samples(X))

    def sample(self, n_samples=1, random_state=None):
        """Generate random samples from the model, for every kernel.

        For the gaussian and tophat kernels the draws are scikit-learn's, number
        for number, for the same ``random_state``. For the others a point is a
        training point (picked with probability proportional to its weight)
        plus h * R * u, u uniform on the unit sphere and R the kernel's radial
        law: epanechnikov R^2 ~ Beta(d/2, 2), linear R ~ Beta(d, 2),
        exponential R ~ Gamma(d, 1), cosine by rejection from Beta(d, 1).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.
        random_state : int, RandomState instance or None, default=None
            Seed or generator.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)

        With a non-Euclidean metric, scikit-learn's own ``sample`` is used (as
        scikit-learn does, it draws the Euclidean kernel, gaussian and tophat
        only).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}.")
        if n_samples < 0:
            raise ValueError(f"n_samples must be non-negative, got {n_samples}.")
        if not self._native:
            # scikit-learn's behaviour: it draws Euclidean kernels whatever the metric.
            return self._delegate.sample(n_samples, random_state)
        data = self._fit_X
        h = float(self.bandwidth_)
        rng = check_random_state(random_state)
        u = rng.uniform(0, 1, size=n_samples)
        if self._fit_weight is None:
            i = (u * data.shape[0]).astype(np.int64)
        else:
            cumsum_weight = np.cumsum(self._fit_weight)
            i = np.searchsorted(cumsum_weight, u * cumsum_weight[-1])
            i = np.minimum(i, data.shape[0] - 1)
        d = data.shape[1]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.kernel == "gaussian":
                out = np.atleast_2d(rng.normal(data[i], h))
            elif self.kernel == "tophat":
                from scipy.special import gammainc

                Z = rng.normal(size=(n_samples, d))
                s_sq = np.einsum("ij,ij->i", Z, Z)
                correction = gammainc(0.5 * d, 0.5 * s_sq) ** (1.0 / d) * h / np.sqrt(s_sq)
                out = data[i] + Z * correction[:, np.newaxis]
            else:
                direction = rng.normal(size=(n_samples, d))
                direction /= np.linalg.norm(direction, axis=1)[:, np.newaxis]
                radius = _radial_draws(self.kernel, d, n_samples, rng)
                out = data[i] + (h * radius)[:, np.newaxis] * direction
        if not np.all(np.isfinite(out)):
            raise ValueError(
                "sample(): samples fall outside the floating-point range "
                "(training data near the largest float with a bandwidth too wide)."
            )
        return out


def _radial_draws(kernel, d, n, rng):
    """Radii of a unit-bandwidth kernel in R^d: density ~ r^(d-1) k(r)."""
    if kernel == "epanechnikov":
        return np.sqrt(rng.beta(0.5 * d, 2.0, size=n))
    if kernel == "linear":
        return rng.beta(float(d), 2.0, size=n)
    if kernel == "exponential":
        return rng.gamma(float(d), 1.0, size=n)
    # cosine: propose from r^(d-1) on [0, 1], accept with cos(pi r / 2)
    out = np.empty(n)
    filled = 0
    while filled < n:
        m = 2 * (n - filled) + 16
        r = rng.beta(float(d), 1.0, size=m)
        keep = r[rng.uniform(size=m) < np.cos(0.5 * np.pi * r)]
        take = min(len(keep), n - filled)
        out[filled:filled + take] = keep[:take]
        filled += take
    return out
