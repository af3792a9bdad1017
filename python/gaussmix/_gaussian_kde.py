"""gaussian_kde: SciPy's Gaussian kernel density estimate on the C++ engine.

The kernel sums run in the engine, in log space, so ``logpdf`` stays finite and
exact far from the data; everything else follows ``scipy.stats.gaussian_kde``
attribute for attribute.
"""

import math
import numbers

import numpy as np
from scipy import linalg, special
from scipy.stats import multivariate_normal

from . import _isj, _patch
from ._kde_core import (
    build_index,
    check_tolerance,
    cv_rtol,
    index_log_sums,
    leave_one_out_log_likelihood,
    log_kernel_sums,
    maximize_over_log_scale,
    prepare_index,
)
from ._validation import aligned, effective_n_threads

__all__ = ["gaussian_kde"]

_LOG_2PI = math.log(2.0 * math.pi)

_BW_METHOD_MSG = "`bw_method` should be 'scott', 'silverman', 'cv_ml', 'isj', a scalar or a callable."

# Exact evaluations of at most this many kernel terms are summed in extended
# precision (see _extended_log_sums).
_EXTENDED_MAX_TERMS = 100_000

# cv_ml searches factors within this ratio of Scott's, both ways
_CV_RANGE = 1e-8

_SINGULAR_MSG = (
    "The data appears to lie in a lower-dimensional subspace "
    "of the space in which it is expressed. This has resulted "
    "in a singular data covariance matrix, which cannot be "
    "treated using the algorithms implemented in "
    "`gaussian_kde`. Consider performing principal component "
    "analysis / dimensionality reduction and using "
    "`gaussian_kde` with the transformed data."
)

_D_GT_N_MSG = (
    "Number of dimensions is greater than number of samples. "
    "This results in a singular data covariance matrix, which "
    "cannot be treated using the algorithms implemented in "
    "`gaussian_kde`. Note that `gaussian_kde` interprets each "
    "*column* of `dataset` to be a point; consider transposing "
    "the input to `dataset`."
)


def _vecdot(x1, x2, axis=-1):
    # The dot product SciPy uses, so that weights-derived values match bit for bit.
    if hasattr(np, "vecdot"):
        return np.vecdot(x1, x2, axis=axis)
    return np.sum(x1 * x2, axis=axis)


def _check_random_state(seed):
    """SciPy's seed handling for ``resample`` (RandomState for None and ints)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral | np.integer):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState | np.random.Generator):
        return seed
    raise ValueError(f"'{seed}' cannot be used to seed a numpy.random.RandomState instance")


class _ConstantFactor:
    """A fixed bandwidth factor, as a picklable zero-argument callable."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


class _BwMethodFactor:
    """``kde._bw_method(kde)``, read at call time, as a picklable callable."""

    def __init__(self, kde):
        self.kde = kde

    def __call__(self):
        return self.kde._bw_method(self.kde)


def _whitening(cho):
    """Upper-triangular U = inv(L).T, so that ||x U||^2 = x^T (L L^T)^-1 x.

    Forward substitution in numpy (a loop over dimensions): a LAPACK call here
    would wake BLAS threads on every evaluation, which then compete with the
    engine's threads.
    """
    d = cho.shape[0]
    inv_l = np.zeros((d, d))
    for i in range(d):
        row = np.zeros(i + 1)
        row[i] = 1.0
        if i:
            row -= np.einsum("k,kj->j", cho[i, :i], inv_l[:i, : i + 1])
        inv_l[i, : i + 1] = row / cho[i, i]
    return np.ascontiguousarray(inv_l.T)


def _extended_log_sums(dataset, weights, points, cho):
    """log sum_i w_i N(q_j; x_i, L L^T) for the columns q_j of ``points``, L =
    ``cho`` (lower triangular), in long double; None where the platform's long
    double is no wider than float64.

    The engine's exact sums whiten in float64; far from the data, where the
    exponent is large, that costs up to about 1e-13 relative. A small
    evaluation is summed here instead, with 64-bit significands (differences,
    triangular solve, log-sum-exp), so its density is within a few units of
    float64's last digit of the exact one for the kernel covariance L L^T.
    """
    ld = np.longdouble
    if np.finfo(ld).eps >= np.finfo(np.float64).eps:
        return None
    d = dataset.shape[0]
    chol = np.asarray(cho, dtype=ld)
    keep = weights > 0
    x = np.asarray(dataset[:, keep], dtype=ld)
    log_w = np.log(np.asarray(weights[keep], dtype=ld))
    z = np.asarray(points, dtype=ld)[:, :, None] - x[:, None, :]  # (d, m, n)
    for i in range(d):  # forward substitution, in place
        for k in range(i):
            z[i] -= chol[i, k] * z[k]
        z[i] /= chol[i, i]
    with np.errstate(over="ignore", invalid="ignore"):
        terms = log_w - ld(0.5) * np.sum(z * z, axis=0)  # -inf where the square overflows
        top = np.max(terms, axis=1)
        sums = top + np.log(np.sum(np.exp(terms - top[:, None]), axis=1))
    sums[np.isneginf(top)] = -np.inf
    log_2pi = np.log(ld(2) * ld("3.14159265358979323846264338327950288"))
    return sums - ld(0.5) * d * log_2pi - np.sum(np.log(np.diag(chol)))


def _positive_part(dataset, weights):
    """Columns with positive weight (zero-weight points add nothing to any sum)."""
    keep = weights > 0
    if keep.all():
        return dataset, weights
    return dataset[:, keep], weights[keep]


def _log_gaussian_sums(train, train_weight, queries, cho):
    """log sum_i w_i N(q_j - x_i; 0, L L^T) for each column q_j of ``queries``,
    exact, for a one-off covariance (the integrals).

    ``train`` (d, n) and ``queries`` (d, m) are float64; ``cho`` is the lower
    Cholesky factor L. The engine centres both point sets before whitening
    (and subtracts raw coordinates in 1-D), and leaves zero weights out of
    its running maximum, so neither is redone here.
    """
    d = train.shape[0]
    x = np.ascontiguousarray(train.T)
    q = np.ascontiguousarray(queries.T)
    w = np.ascontiguousarray(train_weight, dtype=np.float64)
    sums = log_kernel_sums(x, w, q, _whitening(cho), "gaussian", effective_n_threads(None))
    return sums - 0.5 * d * _LOG_2PI - np.sum(np.log(np.diag(cho)))


class gaussian_kde:
    """Representation of a kernel-density estimate using Gaussian kernels.

    A drop-in replacement for :class:`scipy.stats.gaussian_kde`: the same
    constructor, methods and attributes, with the kernel sums computed by
    gaussmix's multithreaded engine in log space (so ``logpdf`` is finite and
    exact far from the data). Computation is in float64 whatever the input
    dtype.

    Parameters
    ----------
    dataset : array_like
        Datapoints to estimate from. In case of univariate data this is a 1-D
        array, otherwise a 2-D array with shape (# of dims, # of data).
    bw_method : str, scalar or callable, optional
        The method used to calculate the bandwidth factor: ``'scott'``,
        ``'silverman'``, ``'cv_ml'``, a scalar constant or a callable. A
        scalar is used directly as `factor`; a callable takes the
        `gaussian_kde` instance as only parameter and returns a scalar.
        ``'cv_ml'`` maximises the (weighted) leave-one-out log-likelihood over
        the factor, starting from Scott's factor. If None (default), 'scott'
        is used.
    weights : array_like, optional
        Weights of datapoints, one per point: finite, non-negative, with a
        positive sum. If None (default), the samples are equally weighted.
    atol, rtol : float, keyword-only, default 0
        Tolerances of the evaluations (beyond SciPy, which has none). With
        both 0 every density is the exact sum, as in SciPy. Otherwise each
        value may be approximate, within a bound certified per point by the
        engine's grid (one and two dimensions) or k-d tree:
        ``|pdf - exact pdf| <= atol + rtol * exact pdf`` (with ``atol = 0``,
        ``logpdf`` is within ``-log(1 - rtol)`` of the exact log-density).
        The engine sums exactly where that is cheaper.

    Attributes
    ----------
    dataset : ndarray
        The dataset, as a float64 array of shape (d, n) (a copy).
    d : int
        Number of dimensions.
    n : int
        Number of datapoints.
    weights : ndarray
        Weights of the datapoints, normalised to sum to 1.
    neff : float
        Effective number of datapoints, ``1 / sum(weights**2)``.
    factor : float
        The bandwidth factor obtained from `covariance_factor`.
    covariance : ndarray
        The kernel covariance matrix, ``np.cov(dataset, aweights=weights) *
        factor**2``.
    inv_cov : ndarray
        The inverse of `covariance`.
    cho_cov : ndarray
        Lower Cholesky factor of `covariance`.
    log_det : float
        ``log(det(2 * pi * covariance))``.

    See Also
    --------
    scipy.stats.gaussian_kde : The reference implementation.

    Notes
    -----
    The density is ``sum_i weights[i] * N(x; dataset[:, i], covariance)``.
    Scott's factor is ``neff**(-1/(d+4))`` and Silverman's
    ``(neff * (d+2) / 4)**(-1/(d+4))``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import gaussian_kde
    >>> rng = np.random.default_rng(0)
    >>> values = rng.normal(size=(2, 500))
    >>> kde = gaussian_kde(values)
    >>> kde.pdf([[0.0, 1.0], [0.0, 1.0]]).shape
    (2,)
    >>> float(kde.logpdf([1e4, 0.0])[0]) < -1e7
    True
    """

    def __init__(self, dataset, bw_method=None, weights=None, *, atol=0.0, rtol=0.0):
        _patch.note_call(self, "__init__")
        self.atol = check_tolerance(atol, "atol")
        self.rtol = check_tolerance(rtol, "rtol")
        data = np.atleast_2d(np.asarray(dataset))
        if not data.size > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        if data.ndim != 2:
            raise ValueError(
                "`dataset` should be a 1-D array or a 2-D array of shape "
                f"(# of dims, # of data), got shape {data.shape}."
            )
        if np.iscomplexobj(data):
            raise TypeError("`dataset` must be real; complex values are not supported.")
        data = np.array(data, dtype=np.float64, copy=True)
        if not np.all(np.isfinite(data)):
            raise ValueError("`dataset` must not contain infs or NaNs.")
        self.dataset = data
        self.d, self.n = self.dataset.shape

        if weights is not None:
            w = np.atleast_1d(weights).astype(float)
            if w.ndim != 1:
                raise ValueError("`weights` input should be one-dimensional.")
            if len(w) != self.n:
                raise ValueError("`weights` input should be of length n")
            if not np.all(np.isfinite(w)):
                raise ValueError("`weights` must not contain infs or NaNs.")
            if np.any(w < 0):
                raise ValueError("`weights` must be non-negative.")
            with np.errstate(over="ignore"):
                total = np.sum(w)
            if not total > 0:
                raise ValueError("`weights` must contain at least one positive value.")
            if not np.isfinite(total):
                w /= np.max(w)
            w /= np.sum(w)
            self._weights = w
            self._neff = 1 / _vecdot(self._weights, self._weights)

        if self.d > self.n:
            raise ValueError(_D_GT_N_MSG)
        if self.d > 1 and self.n == self.d:
            # n points span at most n - 1 dimensions: the covariance is singular
            # (rounding can still let its Cholesky factorisation through).
            raise linalg.LinAlgError(_SINGULAR_MSG)

        try:
            self.set_bandwidth(bw_method=bw_method)
        except linalg.LinAlgError as e:
            raise linalg.LinAlgError(_SINGULAR_MSG) from e

    # ------------------------------------------------------------------
    # evaluation

    def _points(self, points):
        points = np.atleast_2d(np.asarray(points))
        d, m = points.shape
        if d != self.d:
            if d == 1 and m == self.d:
                # points was passed in as a row vector
                points = np.reshape(points, (self.d, 1))
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        points = np.asarray(points, dtype=np.float64)
        if not np.all(np.isfinite(points)):
            raise ValueError("`points` must not contain infs or NaNs.")
        return points

    def _index_for(self, cho):
        """The engine's index of the dataset whitened by ``cho``: built once
        per dataset, weights and bandwidth (the arrays are held, not copied,
        and compared by identity; a dataset changed in place is not seen)."""
        dataset, weights = self.dataset, self.weights
        key = self.__dict__.get("_index")
        if key is not None and key[0] is dataset and key[1] is weights and key[2] == cho.tobytes():
            return key[3]
        x = aligned(np.asarray(dataset, dtype=np.float64).T, np.float64)
        # zero weights are left out of the engine's sums and running maximum
        index = build_index(x, np.asarray(weights, dtype=np.float64), _whitening(cho), effective_n_threads(None))
        if getattr(self, "atol", 0.0) > 0 or getattr(self, "rtol", 0.0) > 0:
            prepare_index(index, "gaussian")
        self.__dict__["_index"] = (dataset, weights, cho.tobytes(), index)
        return index

    def _logpdf(self, points, extended=False):
        """log density at the columns of ``points``: exact, or within the
        tolerances (``atol`` + ``rtol`` * density) when they are set. With
        ``extended``, a small exact evaluation may come back in long double."""
        if points.shape[1] == 0:
            return np.empty(0)
        atol, rtol = getattr(self, "atol", 0.0), getattr(self, "rtol", 0.0)
        if atol == 0 and rtol == 0 and points.shape[1] * self.n <= _EXTENDED_MAX_TERMS:
            sums = _extended_log_sums(self.dataset, np.asarray(self.weights, dtype=np.float64), points,
                                      self.cho_cov)
            if sums is not None:
                if extended:
                    return sums
                with np.errstate(over="ignore"):  # below float64's range: -inf, as the engine gives
                    return sums.astype(np.float64)
        cho = np.asarray(self.cho_cov, dtype=np.float64)
        log_det = np.sum(np.log(np.diag(cho)))
        log_norm = -0.5 * self.d * _LOG_2PI - float(log_det)
        sums = index_log_sums(
            self._index_for(cho),
            aligned(points.T, np.float64),
            "gaussian",
            effective_n_threads(None),
            log_norm=log_norm,
            atol=atol,
            rtol=rtol,
        )
        return sums - 0.5 * self.d * _LOG_2PI - log_det

    def evaluate(self, points):
        """Evaluate the estimated pdf on a set of points.

        Parameters
        ----------
        points : (# of dimensions, # of points)-array
            Alternatively, a (# of dimensions,) vector can be passed in and
            treated as a single point.

        Returns
        -------
        values : (# of points,)-array
            The values at each point.

        Raises
        ------
        ValueError
            If the dimensionality of the input points is different than the
            dimensionality of the KDE, or the points are not finite.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-1.0, 0.0, 2.0]), bw_method=0.5)
        >>> kde.evaluate([0.0, 5.0]).shape
        (2,)
        """
        return self._as_output(np.exp(self._logpdf(self._points(points), extended=True)), points)

    __call__ = evaluate

    def _as_output(self, values, points):
        """values in SciPy's output type: that of the data, the points, float64
        and the bandwidth factor (long double stays long double)."""
        dtype = np.result_type(self.dataset, np.asarray(points), np.float64, self.factor)
        return values if values.dtype == dtype else values.astype(dtype)

    def pdf(self, x):
        """Evaluate the estimated pdf on a provided set of points.

        This is an alias for `evaluate`; see its docstring for details.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-1.0, 0.0, 2.0]))
        >>> bool(np.all(kde.pdf([0.0, 1.0]) == kde.evaluate([0.0, 1.0])))
        True
        """
        return self.evaluate(x)

    def logpdf(self, x):
        """Evaluate the log of the estimated pdf on a provided set of points.

        The kernel sums are taken in log space, so the result is finite and
        accurate even where the density underflows to zero.

        Parameters
        ----------
        x : (# of dimensions, # of points)-array
            Alternatively, a (# of dimensions,) vector is treated as a single
            point.

        Returns
        -------
        values : (# of points,)-array
            The log-density at each point.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-1.0, 0.0, 2.0]), bw_method=0.5)
        >>> bool(np.isfinite(kde.logpdf([1e6])[0]))
        True
        """
        return self._logpdf(self._points(x))

    # ------------------------------------------------------------------
    # integrals

    def integrate_gaussian(self, mean, cov):
        """Multiply the estimated density by a Gaussian and integrate over space.

        Parameters
        ----------
        mean : array_like
            A 1-D array, specifying the mean of the Gaussian.
        cov : array_like
            A 2-D array, specifying the covariance matrix of the Gaussian.

        Returns
        -------
        result : scalar
            The value of the integral.

        Raises
        ------
        ValueError
            If the mean or covariance of the input Gaussian differs from the
            KDE's dimensionality.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-1.0, 0.0, 2.0]))
        >>> bool(kde.integrate_gaussian(0.0, 1.0) > 0)
        True
        """
        mean = np.atleast_1d(np.squeeze(mean))
        cov = np.atleast_2d(cov)
        if mean.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        sum_cov = self.covariance + cov
        # raises LinAlgError if sum_cov is not symmetric positive definite
        cho = linalg.cholesky(sum_cov, lower=True)
        query = np.asarray(mean, dtype=np.float64)[:, np.newaxis]
        dataset = np.asarray(self.dataset, dtype=np.float64)
        log_value = _log_gaussian_sums(dataset, self.weights, query, cho)[0]
        return np.exp(log_value)

    def integrate_box_1d(self, low, high):
        """Compute the integral of a 1-D pdf between two bounds.

        Parameters
        ----------
        low : scalar
            Lower bound of integration.
        high : scalar
            Upper bound of integration.

        Returns
        -------
        value : scalar
            The result of the integral.

        Raises
        ------
        ValueError
            If the KDE is over more than one dimension.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-1.0, 0.0, 2.0]))
        >>> round(float(kde.integrate_box_1d(-np.inf, np.inf)), 12)
        1.0
        """
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        stdev = np.ravel(np.sqrt(self.covariance))[0]
        normalized_low = np.ravel((low - self.dataset) / stdev)
        normalized_high = np.ravel((high - self.dataset) / stdev)
        delta = special.ndtr(normalized_high) - special.ndtr(normalized_low)
        return _vecdot(self.weights, delta)

    def integrate_box(self, low_bounds, high_bounds, maxpts=None, *, rng=None):
        """Compute the integral of the pdf over a rectangular interval.

        Parameters
        ----------
        low_bounds : array_like
            A 1-D array containing the lower bounds of integration.
        high_bounds : array_like
            A 1-D array containing the upper bounds of integration.
        maxpts : int, optional
            The maximum number of points to use for integration.
        rng : `numpy.random.Generator`, optional
            Pseudorandom number generator state, passed to
            :func:`scipy.stats.multivariate_normal.cdf`.

        Returns
        -------
        value : scalar
            The result of the integral.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> rng = np.random.default_rng(0)
        >>> kde = gaussian_kde(rng.normal(size=(2, 50)))
        >>> p = kde.integrate_box([-1, -1], [1, 1], rng=np.random.default_rng(1))
        >>> bool(0 < p < 1)
        True
        """
        low, high = low_bounds - self.dataset.T, high_bounds - self.dataset.T
        # rng is passed only when given: SciPy before 1.15 has no such keyword
        extra = {} if rng is None else {"rng": rng}
        values = multivariate_normal.cdf(
            high, lower_limit=low, cov=self.covariance, maxpts=maxpts, **extra
        )
        return _vecdot(values, self.weights, axis=-1)

    def integrate_kde(self, other):
        """Compute the integral of the product of this KDE with another.

        Parameters
        ----------
        other : gaussian_kde instance
            The other KDE (gaussmix's or SciPy's).

        Returns
        -------
        value : scalar
            The result of the integral.

        Raises
        ------
        ValueError
            If the KDEs have different dimensionality.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> a = gaussian_kde(np.array([-1.0, 0.0, 2.0]))
        >>> b = gaussian_kde(np.array([0.5, 1.0, 3.0]))
        >>> bool(np.isclose(a.integrate_kde(b), b.integrate_kde(a)))
        True
        """
        if other.d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        # the engine runs over the larger set; the smaller one gives the queries
        if other.n < self.n:
            small, large = other, self
        else:
            small, large = self, other
        sum_cov = small.covariance + large.covariance
        cho = linalg.cholesky(sum_cov, lower=True)
        queries, q_weights = _positive_part(
            np.asarray(small.dataset, dtype=np.float64), np.asarray(small.weights, dtype=np.float64)
        )
        log_sums = _log_gaussian_sums(
            np.asarray(large.dataset, dtype=np.float64),
            np.asarray(large.weights, dtype=np.float64),
            queries,
            cho,
        )
        return np.exp(special.logsumexp(log_sums, b=q_weights))

    # ------------------------------------------------------------------
    # sampling

    def resample(self, size=None, seed=None):
        """Randomly sample a dataset from the estimated pdf.

        Draws the same numbers as :meth:`scipy.stats.gaussian_kde.resample`
        for the same seed.

        Parameters
        ----------
        size : int, optional
            The number of samples to draw. If not provided, then the size is
            the same as the effective number of samples in the underlying
            dataset.
        seed : {None, int, `numpy.random.Generator`, `numpy.random.RandomState`}, optional
            If `seed` is None (or `np.random`), the `numpy.random.RandomState`
            singleton is used. If `seed` is an int, a new ``RandomState``
            instance is used, seeded with `seed`. If `seed` is already a
            ``Generator`` or ``RandomState`` instance then that instance is
            used.

        Returns
        -------
        resample : (self.d, `size`) ndarray
            The sampled dataset.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.random.default_rng(0).normal(size=(2, 40)))
        >>> kde.resample(5, seed=1).shape
        (2, 5)
        """
        if size is None:
            size = int(self.neff)
        random_state = _check_random_state(seed)
        norm = np.transpose(
            random_state.multivariate_normal(np.zeros((self.d,), float), self.covariance, size=size)
        )
        indices = random_state.choice(self.n, size=size, p=self.weights)
        means = self.dataset[:, indices]
        return means + norm

    # ------------------------------------------------------------------
    # bandwidth

    def scotts_factor(self):
        """Compute Scott's factor, ``neff**(-1/(d+4))``.

        Returns
        -------
        s : float
            Scott's factor.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.arange(32.0))
        >>> float(kde.scotts_factor()) == 32 ** (-1 / 5)
        True
        """
        return np.power(self.neff, -1.0 / (self.d + 4))

    def silverman_factor(self):
        """Compute Silverman's factor, ``(neff*(d+2)/4)**(-1/(d+4))``.

        Returns
        -------
        s : float
            Silverman's factor.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.arange(32.0))
        >>> bool(np.isclose(kde.silverman_factor(), (32 * 3 / 4) ** (-1 / 5)))
        True
        """
        return np.power(self.neff * (self.d + 2.0) / 4.0, -1.0 / (self.d + 4))

    def isj_factor(self):
        """The improved Sheather-Jones factor (1-D data): the ISJ bandwidth of
        Botev, Grotowski & Kroese (2010) over the data's standard deviation
        (see ``gaussmix._isj``).

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.random.default_rng(0).normal(size=500), bw_method="isj")
        >>> bool(0.1 < kde.factor < 1.0)
        True
        """
        if self.d != 1:
            raise ValueError(f"bw_method='isj' is defined for 1-D data; the data have {self.d} dimensions.")
        data_cho = self._data_cho_cov_cached()
        h = _isj.isj_bandwidth(np.asarray(self.dataset[0], dtype=np.float64),
                               np.asarray(self.weights, dtype=np.float64))
        return h / float(data_cho[0, 0])

    def cv_ml_factor(self):
        """Compute the maximum-likelihood cross-validated factor.

        The factor ``h`` maximising the weighted leave-one-out log-likelihood
        ``sum_i w_i log(sum_{j != i} w_j N(x_i; x_j, h**2 C) / sum_{j != i} w_j)``
        with ``C`` the data covariance, found by a search in ``log h``
        started from Scott's factor (relative tolerance about 1e-4).

        Returns
        -------
        h : float
            The cross-validated factor.

        Raises
        ------
        ValueError
            If the likelihood has no maximum for factors within a factor 1e8
            of Scott's (it grows without bound as the factor shrinks when
            every point is repeated).

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.random.default_rng(0).normal(size=200))
        >>> bool(0 < kde.cv_ml_factor() < 2)
        True
        """
        data_cho = self._data_cho_cov_cached()
        dataset, weights = _positive_part(
            np.asarray(self.dataset, dtype=np.float64), np.asarray(self.weights, dtype=np.float64)
        )
        if dataset.shape[1] < 2:
            raise ValueError("bw_method='cv_ml' needs at least two points with positive weight.")
        x = aligned((dataset - np.mean(dataset, axis=1, keepdims=True)).T, np.float64)
        w = np.ascontiguousarray(weights)
        n_threads = effective_n_threads(None)
        index = build_index(x, w, _whitening(data_cho), n_threads)
        rtol = cv_rtol(x.shape[0])
        h0 = float(self.scotts_factor())
        h_min, h_max = h0 * _CV_RANGE, h0 / _CV_RANGE
        outside = []

        def objective(h):
            if not h_min <= h <= h_max:
                outside.append(h)
                return -np.inf
            return leave_one_out_log_likelihood(x, w, index, 1.0 / h, "gaussian", n_threads, rtol)

        h, value, at_edge = maximize_over_log_scale(objective, h0)
        if outside or at_edge or not np.isfinite(value):
            raise ValueError(
                "bw_method='cv_ml': the leave-one-out log-likelihood has no maximum "
                f"for factors between {h_min:.3g} and {h_max:.3g} (it grows without "
                "bound as the factor shrinks when points are repeated). Remove the "
                "repeated points, or use 'scott', 'silverman' or a scalar factor."
            )
        return np.float64(h)

    def covariance_factor(self):
        """Compute the bandwidth factor `factor`.

        The default is `scotts_factor`. A subclass can overwrite this method
        to provide a different method, or set it through a call to
        `set_bandwidth`.

        Returns
        -------
        s : float
            The bandwidth factor.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.arange(32.0))
        >>> bool(kde.covariance_factor() == kde.scotts_factor())
        True
        """
        return self.scotts_factor()

    def set_bandwidth(self, bw_method=None):
        """Compute the bandwidth factor with given method.

        The new bandwidth is used for subsequent evaluations of the estimated
        density. If the method fails (for example a factor that is not a
        positive finite number), the previous bandwidth is kept.

        Parameters
        ----------
        bw_method : str, scalar or callable, optional
            ``'scott'``, ``'silverman'``, ``'cv_ml'``, a scalar constant or a
            callable. If a scalar, this will be used directly as `factor`. If
            a callable, it should take a `gaussian_kde` instance as only
            parameter and return a scalar. ``'cv_ml'`` computes
            `cv_ml_factor` once and keeps it. If None (default), the current
            `covariance_factor` method is kept and re-evaluated.

        Raises
        ------
        ValueError
            If `bw_method` is not one of the above, or the factor is not a
            positive finite number.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.array([-7, -5, 1, 4, 5.0]))
        >>> kde.set_bandwidth(bw_method=0.3)
        >>> float(kde.factor)
        0.3
        """
        state = ("covariance_factor", "_bw_method")
        saved = {k: self.__dict__[k] for k in state if k in self.__dict__}
        try:
            if bw_method is None:
                pass
            elif isinstance(bw_method, str):
                if bw_method == "scott":
                    self.covariance_factor = self.scotts_factor
                elif bw_method == "silverman":
                    self.covariance_factor = self.silverman_factor
                elif bw_method == "cv_ml":
                    factor = self.cv_ml_factor()
                    self._bw_method = "cv_ml"
                    self.covariance_factor = _ConstantFactor(factor)
                elif bw_method == "isj":
                    factor = self.isj_factor()
                    self._bw_method = "isj"
                    self.covariance_factor = _ConstantFactor(factor)
                else:
                    raise ValueError(_BW_METHOD_MSG)
            elif np.isscalar(bw_method):
                self._bw_method = "use constant"
                self.covariance_factor = _ConstantFactor(bw_method)
            elif callable(bw_method):
                self._bw_method = bw_method
                self.covariance_factor = _BwMethodFactor(self)
            else:
                raise ValueError(_BW_METHOD_MSG)
            self._compute_covariance()
        except BaseException:
            for k in state:
                self.__dict__.pop(k, None)
            self.__dict__.update(saved)
            raise

    def _data_cho_cov_cached(self):
        """Data covariance and its Cholesky factor, computed once (as SciPy caches them)."""
        if not hasattr(self, "_data_cho_cov"):
            with np.errstate(over="ignore", invalid="ignore"):
                data_covariance = np.atleast_2d(
                    np.cov(self.dataset, rowvar=1, bias=False, aweights=self.weights)
                )
            if not np.all(np.isfinite(data_covariance)):
                raise ValueError(
                    "`dataset`'s covariance overflows the floating-point range; "
                    "rescale the data."
                )
            self._data_cho_cov = linalg.cholesky(data_covariance, lower=True)
            self._data_covariance = data_covariance
        return self._data_cho_cov

    def _compute_covariance(self):
        """Compute the kernel covariance from `covariance_factor`."""
        factor = self.covariance_factor()
        value = np.asarray(factor)
        if not (
            value.ndim == 0
            and np.issubdtype(value.dtype, np.number)
            and not np.iscomplexobj(value)
            and np.isfinite(value)
            and value > 0
        ):
            raise ValueError(
                f"The bandwidth factor must be a positive finite number, got {factor!r}."
            )
        data_cho = self._data_cho_cov_cached()
        with np.errstate(over="ignore"):
            factor_sq = float(value) ** 2 if value < 1e154 else math.inf
        if not math.isfinite(factor_sq * float(np.max(np.abs(self._data_covariance)))):
            raise ValueError(
                f"The bandwidth factor {factor!r} makes the kernel covariance overflow."
            )
        if not factor_sq * float(np.min(np.diag(self._data_covariance))) > 0:
            raise ValueError(
                f"The bandwidth factor {factor!r} makes the kernel covariance underflow to 0."
            )
        self.factor = factor
        self.covariance = self._data_covariance * self.factor**2
        self.cho_cov = (data_cho * self.factor).astype(np.float64)
        self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()

    @property
    def inv_cov(self):
        """The inverse of `covariance`, recomputed from the data on each access."""
        self.factor = self.covariance_factor()
        self._data_covariance = np.atleast_2d(
            np.cov(self.dataset, rowvar=1, bias=False, aweights=self.weights)
        )
        return linalg.inv(self._data_covariance) / self.factor**2

    # ------------------------------------------------------------------
    # marginals and weights

    def marginal(self, dimensions):
        """Return a marginal KDE distribution.

        Parameters
        ----------
        dimensions : int or 1-d array_like
            The dimensions of the multivariate distribution corresponding
            with the marginal variables, that is, the indices of the
            dimensions that are being retained. The other dimensions are
            marginalized out.

        Returns
        -------
        marginal_kde : gaussian_kde
            An object representing the marginal distribution, with the same
            factor and weights.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import gaussian_kde
        >>> kde = gaussian_kde(np.random.default_rng(0).normal(size=(3, 40)))
        >>> kde.marginal([0, 2]).d
        2
        """
        dims = np.atleast_1d(dimensions)
        if not np.issubdtype(dims.dtype, np.integer):
            raise ValueError(
                "Elements of `dimensions` must be integers - the indices "
                "of the marginal variables being retained."
            )
        n = len(self.dataset)  # number of dimensions
        original_dims = dims.copy()
        dims = dims.copy()
        dims[dims < 0] = n + dims[dims < 0]
        if len(np.unique(dims)) != len(dims):
            raise ValueError("All elements of `dimensions` must be unique.")
        i_invalid = (dims < 0) | (dims >= n)
        if np.any(i_invalid):
            raise ValueError(
                f"Dimensions {original_dims[i_invalid]} are invalid "
                f"for a distribution in {n} dimensions."
            )
        return gaussian_kde(
            self.dataset[dims],
            bw_method=self.covariance_factor(),
            weights=self.weights,
            atol=getattr(self, "atol", 0.0),
            rtol=getattr(self, "rtol", 0.0),
        )

    @property
    def weights(self):
        """Weights of the datapoints, normalised to sum to 1."""
        try:
            return self._weights
        except AttributeError:
            self._weights = np.ones(self.n) / self.n
            return self._weights

    @property
    def neff(self):
        """Effective number of datapoints, ``1 / sum(weights**2)``."""
        try:
            return self._neff
        except AttributeError:
            self._neff = 1 / _vecdot(self.weights, self.weights)
            return self._neff
