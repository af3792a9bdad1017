"""GaussianMixture: EM on the C++ engine, with scikit-learn's interface."""

import functools
import math
import warnings
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _core, _kmeans, _streaming
from ._validation import (
    check_float_array,
    check_sample_weight,
    effective_n_threads,
    aligned,
    is_plain_float,
    validate_params,
    is_dask_collection as _is_dask_collection,
    engine_pass,
    validate,
    validate_deferred,
)

_FLOAT_DTYPES = [np.float64, np.float32]


def _precision_shape(covariance_type, n_components, n_features):
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def _check_shape(param, param_shape, name):
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, param_shape, param.shape)
        )


def _is_plain(a, shape, accepted=(np.float64, np.float32)):
    """A plain float ndarray of this shape: what ``check_float_array``
    returns unchanged when it is finite."""
    return is_plain_float(a, accepted) and a.shape == shape


def _check_weights(weights, n_components):
    if n_components <= 64 and _is_plain(weights, (n_components,)):
        # Few weights: clearly valid ones (finite, then) pass with scalar
        # checks; anything else is decided by scikit-learn's checks below.
        # float64: the sum exact, with half the tolerance as a margin for
        # numpy's rounding of it (<= 64 ulp); float32: numpy's own sum.
        if weights.dtype == np.float64:
            values = weights.tolist()
            total, atol = math.fsum(values), 0.5e-8
        else:
            values, total, atol = weights.tolist(), float(np.sum(weights)), 1e-6
        if all(0.0 <= v <= 1.0 for v in values) and abs(1.0 - total) <= atol:
            return weights
    weights = check_float_array(
        weights, dtype=_FLOAT_DTYPES, ensure_2d=False, input_name="weights_init"
    )
    _check_shape(weights, (n_components,), "weights")
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range "
            "[0, 1], but got max value %.5f, min value %.5f"
            % (np.max(weights), np.min(weights))
        )
    if not np.abs(1.0 - np.sum(weights)) <= atol:  # np.allclose(|1 - sum|, 0, atol)
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = %.5f"
            % np.sum(weights)
        )
    return weights


def _check_means(means, n_components, n_features):
    means = check_float_array(
        means, dtype=_FLOAT_DTYPES, ensure_2d=False, input_name="means_init"
    )
    _check_shape(means, (n_components, n_features), "means")
    return means


class _InitialPrecisions:
    """Validated ``precisions_init`` with its Cholesky factor and inverse."""

    __slots__ = ("values", "cholesky", "covariances")

    def __init__(self, values, cholesky, covariances):
        self.values = values
        self.cholesky = cholesky
        self.covariances = covariances


def _check_precisions(precisions, covariance_type, n_components, n_features):
    """scikit-learn's checks of ``precisions_init``, with its factor and inverse.

    The engine factors precisions that are clearly valid (symmetric, and
    positive definite with a margin no eigenvalue routine could miss) in one
    call; any other is decided by scikit-learn's own tests (isclose to the
    transpose, eigvalsh > 0), which raise its errors.
    """
    shape = _precision_shape(covariance_type, n_components, n_features)
    tried = _is_plain(precisions, shape, (np.float64,))
    if tried:  # no check_array: the factorisation rejects non-finite values
        factored = _core.precisions_init_factor(precisions, covariance_type)
        if factored is not None:
            return _InitialPrecisions(precisions, *factored)
    precisions = check_float_array(
        precisions,
        dtype=_FLOAT_DTYPES,
        ensure_2d=False,
        allow_nd=covariance_type == "full",
        input_name="precisions_init",
    )
    _check_shape(
        precisions,
        _precision_shape(covariance_type, n_components, n_features),
        "%s precision" % covariance_type,
    )
    values = _as_f64(precisions)
    factored = None if tried else _core.precisions_init_factor(values, covariance_type)
    if factored is not None:
        return _InitialPrecisions(precisions, *factored)
    if covariance_type in ("full", "tied"):
        mats = precisions.reshape(-1, n_features, n_features)
        transposed = np.swapaxes(mats, 1, 2)  # np.isclose's test, default tolerances
        symmetric = np.all(np.abs(mats - transposed) <= 1e-8 + 1e-5 * np.abs(transposed))
        if not symmetric or np.any(np.linalg.eigvalsh(mats) <= 0.0):
            raise ValueError(
                "'%s precision' should be symmetric, positive-definite"
                % covariance_type
            )
        covariances = np.linalg.inv(values)
    elif np.any(precisions <= 0.0):
        raise ValueError("'%s precision' should be positive" % covariance_type)
    else:
        covariances = 1.0 / values
    return _InitialPrecisions(
        precisions,
        _precision_cholesky_from_precisions(values, covariance_type),
        covariances,
    )


def _precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper factor U with U U^T = precision (scikit-learn's convention)."""
    if covariance_type in ("full", "tied"):
        flipped = precisions[..., ::-1, ::-1]
        return np.ascontiguousarray(np.linalg.cholesky(flipped)[..., ::-1, ::-1])
    return np.sqrt(precisions)


def _precisions_from_cholesky(prec_chol, covariance_type):
    if covariance_type in ("full", "tied"):
        return prec_chol @ np.swapaxes(prec_chol, -1, -2)
    return prec_chol**2


def _as_f64(a):
    return aligned(a, np.float64)


def _is_out_of_core(X):
    return isinstance(X, np.memmap) or _is_dask_collection(X)


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by expectation-maximization.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: same
    constructor, attributes, methods, errors and warnings, computed by a
    multithreaded C++ engine in one fused pass over the data per EM iteration.
    Beyond scikit-learn it accepts ``sample_weight`` in :meth:`fit`, keeps
    float32 data in float32 (accumulating in float64), and takes ``n_jobs``.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own general covariance matrix;
        'tied': all components share one general covariance matrix;
        'diag': each component has its own diagonal covariance matrix;
        'spherical': each component has its own single variance.
    tol : float, default=1e-3
        Convergence threshold: EM stops when the change of the lower bound
        (the mean log-likelihood) is below it.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariances.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initializations to perform; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the responsibilities that start EM are chosen: k-means labels
        (k-means++ seeding, then Lloyd iterations), k-means++ seeds only,
        uniformly random responsibilities, or random data points.
    weights_init : array-like of shape (n_components,), default=None
        User-provided initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        User-provided initial means.
    precisions_init : array-like, default=None
        User-provided initial precisions (inverse covariances), shaped as
        ``precisions_`` for the covariance type.
    random_state : int, RandomState instance or None, default=None
        Controls the random seed given to the initialization.
    warm_start : bool, default=False
        If True, each call to fit starts from the previous solution
        (``n_init`` is then ignored).
    verbose : int, default=0
        Enable verbose output (1: current initialization and iteration;
        >1: also the log-likelihood change and time per step).
    verbose_interval : int, default=10
        Number of iterations between two prints.
    n_jobs : int, default=None
        Threads used by the engine. None: OpenMP's default (honours
        ``OMP_NUM_THREADS`` and threadpoolctl); -1: all cores.
    learning_decay : float, default=0.7
        Online EM (:meth:`partial_fit`) only: the exponent kappa of the step
        size eta_t = (t + learning_offset) ** -kappa. Values in (0.5, 1]
        guarantee convergence on a stationary stream; 0 replaces the running
        statistics by each batch's.
    learning_offset : float, default=10.0
        Online EM only: the offset of the step size (larger values weigh the
        early batches less heavily).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (n_components, n_features, n_features) if 'full', (n_features,
        n_features) if 'tied', (n_components, n_features) if 'diag',
        (n_components,) if 'spherical'.
    precisions_ : ndarray
        Inverses of the covariances, same shape.
    precisions_cholesky_ : ndarray
        Upper Cholesky factors U of the precisions (precision = U U^T).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the training data at the E-step before the
        last M-step of the best initialization.
    lower_bounds_ : list of float
        The lower bound of each iteration of the best initialization.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "random", "random_from_data", "k-means++"})
        ],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "learning_decay": [Interval(Real, 0.0, 1.0, closed="both")],
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
        learning_decay=0.7,
        learning_offset=10.0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        The model is fitted ``n_init`` times and the parameters with the
        largest lower bound are kept. Each run alternates E- and M-steps until
        the change of the lower bound is below ``tol`` or ``max_iter`` is
        reached (then a ``ConvergenceWarning`` is raised).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, one row per sample.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples. Integer weights give the fit
            of the data with each row repeated that many times; a zero weight
            is the same as leaving the row out.

        Returns
        -------
        self : object
            The fitted mixture.
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Estimate model parameters using X and predict the labels for X.

        Equivalent to ``fit(X, sample_weight=sample_weight).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        X_valid = self._fit(X, sample_weight)
        if X_valid is None:  # streamed: label the data the same way, block by block
            return self.predict(X)
        return self._e_step_outputs(X_valid, labels=True)["labels"]

    def _fit(self, X, sample_weight):
        """Fit on X; returns the validated in-memory X, or None when X was streamed."""
        validate_params(self)
        if _is_dask_collection(X):
            from .dask import fit_dask

            fit_dask(self, X, sample_weight)
            return None
        if isinstance(X, np.memmap):
            self._fit_source(_streaming.ArraySource(X, sample_weight), None)
            return None
        X, check = validate_deferred(
            self, X, dtype=_FLOAT_DTYPES, ensure_min_samples=2, order="C"
        )
        if check is None:
            self._fit_array(X, sample_weight, None)
        elif not self._em_reads_X_first():
            check.settle()
            self._fit_array(X, sample_weight, None)
        else:
            # X's finiteness is checked by the first E-step; an error before
            # that is preceded by X's own, as scikit-learn checks X first
            check.first(lambda: self._fit_array(X, sample_weight, check))
        return X

    def _em_reads_X_first(self):
        """True when the first E-step is the first thing of fit to read X or to
        show anything: a warm start, or all of weights_init, means_init and
        precisions_init given; max_iter > 0 and no verbose output (which
        would print before X's error)."""
        if self.max_iter == 0 or self.verbose:
            return False
        if self.warm_start and hasattr(self, "converged_"):
            return True
        return not (self.weights_init is None or self.means_init is None or self.precisions_init is None)

    def _fit_array(self, X, sample_weight, check):
        """fit on a validated array; `check`: X's deferred finiteness check, or None."""
        n_samples, n_features = X.shape
        self._check_n_samples(n_samples)
        sw = check_sample_weight(sample_weight, n_samples)
        n_threads = effective_n_threads(self.n_jobs)
        self._fit_loop(
            n_features,
            X.dtype,
            lambda random_state, inits: self._initial_parameters(
                X, sw, random_state, inits, n_threads
            ),
            lambda params, lower_bound: self._run_em(
                X, sw, params, lower_bound, n_threads, check
            ),
        )

    def _check_n_samples(self, n_samples):
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )

    def _fit_loop(self, n_features, dtype, initialize, run_em):
        """scikit-learn's n_init loop around `initialize` and `run_em`.

        ``initialize(random_state, inits)`` returns starting parameters;
        ``run_em(params, lower_bound)`` returns the EM result dict (parameters,
        lower_bounds, n_iter, converged).
        """
        inits = self._check_initial_parameters(n_features)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)

        max_lower_bound = -np.inf
        best = None
        best_lower_bounds = []
        best_n_iter = 0
        converged_best = False
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                params = initialize(random_state, inits)
            else:
                params = self._current_parameters()
            lower_bound = -np.inf if do_init else self.lower_bound_

            if self.max_iter == 0:
                best = params
                best_n_iter = 0
                continue
            result = run_em(params, lower_bound)
            lower_bound = result["lower_bounds"][-1]
            self._print_verbose_msg_init_end(lower_bound, result["converged"])
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best = result
                best_n_iter = result["n_iter"]
                best_lower_bounds = list(result["lower_bounds"])
                converged_best = result["converged"]

        if not converged_best and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_parameters(best, dtype)
        self.converged_ = converged_best
        self.n_iter_ = best_n_iter
        self.lower_bound_ = float(max_lower_bound)
        self.lower_bounds_ = [float(v) for v in best_lower_bounds]
        for attr in ("_online_stats", "_online_steps", "_online_calls"):
            if hasattr(self, attr):
                delattr(self, attr)

    def _iterate(self, step, params, lower_bound):
        """EM iterations in Python, one ``step(params) -> (lower_bound, params)`` each.

        The same stopping rule as the engine's loop (|change| < tol).
        """
        lower_bounds = []
        converged = False
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            prev = lower_bound
            lower_bound, params = step(params)
            lower_bounds.append(lower_bound)
            self._print_verbose_msg_iter_end(n_iter, lower_bound - prev)
            if abs(lower_bound - prev) < self.tol:
                converged = True
                break
        result = dict(params)
        result.update(lower_bounds=lower_bounds, n_iter=n_iter, converged=converged)
        return result

    def _run_em(self, X, sw, params, lower_bound, n_threads, check=None):
        """EM from ``params``: one engine call, or one per iteration when verbose.

        ``check``: X's deferred finiteness check (DeferredFiniteCheck), made by
        the first E-step, or None.
        """
        args = (X, sw, self.covariance_type)

        def call(p, max_iter, prev):
            return engine_pass(
                check,
                lambda check_finite: _core.em_fit(
                    *args,
                    _as_f64(p["weights"]),
                    _as_f64(p["means"]),
                    _as_f64(p["precisions_cholesky"]),
                    tol=float(self.tol),
                    max_iter=int(max_iter),
                    reg_covar=float(self.reg_covar),
                    prev_lower_bound=float(prev),
                    n_threads=n_threads,
                    check_finite=check_finite,
                ),
            )

        if not self.verbose:
            return call(params, self.max_iter, lower_bound)

        def step(p):
            result = call(p, 1, -np.inf)
            return result["lower_bounds"][0], result

        return self._iterate(step, params, lower_bound)

    # ------------------------------------------------- data not in memory

    def fit_chunks(self, chunks, *, init_size=None):
        """Fit on data that arrives in chunks, with bounded memory.

        EM reads the data once per iteration, so ``chunks`` must be readable
        more than once: a callable that returns a fresh iterable of chunks
        each time it is called (e.g. ``lambda: read_parts(path)``), or a
        re-iterable collection such as a list. Each chunk is an array of rows,
        or a tuple ``(X_chunk, sample_weight_chunk)``.

        The result is the fit of the concatenated chunks: each iteration sums
        the chunks' sufficient statistics, taken around the current means
        (so no raw second moment is formed and nothing cancels), and takes one
        M-step. It agrees with ``fit(np.concatenate(chunks))`` to rounding
        whenever the initialisation sees all rows (``init_size`` >= number of
        rows, the default for data under 64 MiB), and with the same
        ``means_init``, ``weights_init`` and ``precisions_init`` always.

        Parameters
        ----------
        chunks : callable or re-iterable
            The data, as described above. A one-shot iterator (a generator
            object) is rejected: it cannot be read a second time.
        init_size : int, default=None
            Rows that the initialisation (``init_params``) runs on: a uniform
            random sample of the data, drawn with ``random_state``. None: all
            rows, up to 64 MiB of them.

        Returns
        -------
        self : object
            The fitted mixture.
        """
        validate_params(self)
        self._fit_source(_streaming.ChunkSource(chunks), init_size)
        return self

    def _fit_source(self, source, init_size):
        """EM over a block source (see _streaming): memory maps, chunks, Dask."""
        init_size = _streaming.check_init_size(init_size)
        source.scan()
        n_samples, n_features = source.n_samples, source.n_features
        if n_samples < 2:
            raise ValueError(
                f"Found array with {n_samples} sample(s) (shape=({n_samples}, "
                f"{n_features})) while a minimum of 2 is required by GaussianMixture."
            )
        self._check_n_samples(n_samples)
        self.n_features_in_ = n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        n_threads = effective_n_threads(self.n_jobs)
        if init_size is None:
            init_size = _streaming.default_init_size(n_samples, n_features, self.n_components)
        init_size = max(min(init_size, n_samples), self.n_components)

        def initialize(random_state, inits):
            if all(v is not None for v in inits):
                sample, sw = np.empty((0, n_features), dtype=source.dtype), None
            elif init_size >= n_samples:
                sample, sw = source.take(None)
            else:
                indices = _streaming.sample_indices(random_state, n_samples, init_size)
                sample, sw = source.take(indices)
            return self._initial_parameters(sample, sw, random_state, inits, n_threads)

        cov = self.covariance_type
        single = source.dtype == np.float32
        reg = float(self.reg_covar)

        def step(params):
            means = _as_f64(params["means"])
            block_stats = functools.partial(
                _streaming.em_block_stats,
                covariance_type=cov,
                weights=_as_f64(params["weights"]),
                means=means,
                precisions_cholesky=_as_f64(params["precisions_cholesky"]),
                n_threads=None if getattr(source, "remote", False) else n_threads,
            )
            st = source.map_reduce(block_stats)
            sum_w = float(st["sum_w"])
            lower_bound = float(st["loglik"]) / sum_w if sum_w > 0 else -np.inf
            new = _core.m_step_from_stats(
                st["nk"], st["a"], st["s"], sum_w, means, cov, reg, single_precision=single
            )
            return lower_bound, new

        self._fit_loop(
            n_features,
            source.dtype,
            initialize,
            lambda params, lower_bound: self._iterate(step, params, lower_bound),
        )

    # ------------------------------------------------------- online EM

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (stepwise) EM on a batch of samples.

        Keeps running sufficient statistics s and, for the t-th batch, blends
        in the batch's statistics under the current parameters with step size
        ``eta_t = (t + learning_offset) ** -learning_decay``:
        ``s <- (1 - eta_t) s + eta_t s_batch``, then takes the M-step from s
        (stepwise EM; Cappe & Moulines, JRSS-B 71(3), 2009; Liang & Klein,
        NAACL 2009). With 0.5 < learning_decay <= 1 the step sizes satisfy
        Robbins-Monro's conditions and, on a stationary stream, the parameters
        converge to a stationary point of the expected log-likelihood.

        The first call (on an unfitted model) initialises from its batch with
        ``init_params`` / ``*_init`` and ``random_state`` and takes s from that
        batch alone; on a model fitted by :meth:`fit`, s starts from the
        fitted parameters. Statistics are kept centred on their means and
        blended with the pairwise-update formula, so nothing cancels.
        ``lower_bound_`` is the batch's mean log-likelihood before the step,
        ``n_iter_`` the number of steps taken; ``converged_`` stays False (an
        online fit has no stopping rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's samples.

        Returns
        -------
        self : object
            The updated mixture.
        """
        validate_params(self)
        first = not hasattr(self, "converged_")
        X = validate(
            self, X, dtype=_FLOAT_DTYPES, order="C", reset=first,
            ensure_min_samples=self.n_components if first else 1,
        )
        if not first and X.dtype != self.means_.dtype:
            X = X.astype(self.means_.dtype)
        n_samples, n_features = X.shape
        sw = check_sample_weight(sample_weight, n_samples)
        n_threads = effective_n_threads(self.n_jobs)
        cov = self.covariance_type
        reg = float(self.reg_covar)
        if first:
            self._check_n_samples(n_samples)
            inits = self._check_initial_parameters(n_features)
            random_state = check_random_state(self.random_state)
            params = self._initial_parameters(X, sw, random_state, inits, n_threads)
            steps, running = 0, None
        else:
            params = self._current_parameters()
            steps = getattr(self, "_online_steps", 0)
            running = getattr(self, "_online_stats", None)
            if running is None:
                running = _streaming.stats_of_parameters(
                    self.weights_, self.means_, self.covariances_, cov, reg
                )
        means = _as_f64(params["means"])
        st = _core.em_stats(
            X,
            sw,
            cov,
            _as_f64(params["weights"]),
            means,
            _as_f64(params["precisions_cholesky"]),
            n_threads=n_threads,
        )
        sum_w = float(st["sum_w"])
        nk, batch_means, scatter = _streaming.centred_stats(st, means, cov)
        batch = (nk / sum_w, batch_means, scatter / sum_w)
        if running is None:
            running = batch
        else:
            steps += 1
            eta = _streaming.step_size(steps, self.learning_decay, self.learning_offset)
            running = _streaming.blend_stats(running, batch, eta, cov)
        w_run, mu_run, s_run = running
        new = _core.m_step_from_stats(
            w_run,
            np.zeros_like(mu_run),
            np.ascontiguousarray(s_run),
            1.0,
            np.ascontiguousarray(mu_run),
            cov,
            reg,
            single_precision=X.dtype == np.float32,
        )
        self._set_parameters(new, X.dtype)
        self._online_stats = running
        self._online_steps = steps
        self._online_calls = (0 if first else getattr(self, "_online_calls", 0)) + 1
        self.converged_ = False
        self.n_iter_ = self._online_calls
        self.lower_bound_ = float(st["loglik"]) / sum_w
        self.lower_bounds_ = [self.lower_bound_]
        return self

    def _check_initial_parameters(self, n_features):
        """Validated copies of the user's initial parameters (never written back)."""
        k = self.n_components
        weights = means = precisions = None
        if self.weights_init is not None:
            weights = _check_weights(self.weights_init, k)
        if self.means_init is not None:
            means = _check_means(self.means_init, k, n_features)
        if self.precisions_init is not None:
            precisions = _check_precisions(
                self.precisions_init, self.covariance_type, k, n_features
            )
        return weights, means, precisions

    def _initial_parameters(self, X, sw, random_state, inits, n_threads):
        weights_init, means_init, precisions_init = inits
        n_samples = X.shape[0]
        k = self.n_components
        params = None
        if weights_init is None or means_init is None or precisions_init is None:
            common = dict(
                covariance_type=self.covariance_type,
                reg_covar=float(self.reg_covar),
                n_threads=n_threads,
            )
            if self.init_params == "kmeans":  # scikit-learn's KMeans, same draws
                labels, centers, _ = _kmeans.kmeans(X, sw, k, random_state, n_threads)
                params = _core.m_step_from_labels(X, sw, labels, centers, **common)
            elif self.init_params == "k-means++":  # scikit-learn's kmeans_plusplus
                seeds = _kmeans.kmeans_plusplus_indices(X, sw, k, random_state, n_threads)
                labels = np.full(n_samples, -1, dtype=np.int64)
                labels[seeds] = np.arange(k)
                centers = X[seeds].astype(np.float64)
                params = _core.m_step_from_labels(X, sw, labels, centers, **common)
            elif self.init_params == "random":
                resp = np.asarray(
                    random_state.uniform(size=(n_samples, k)), dtype=X.dtype
                )
                resp /= resp.sum(axis=1)[:, np.newaxis]
                params = _core.m_step_from_resp(X, sw, resp, initial=True, **common)
            else:  # random_from_data
                indices = random_state.choice(n_samples, size=k, replace=False)
                labels = np.full(n_samples, -1, dtype=np.int64)
                labels[indices] = np.arange(k)
                params = _core.m_step_from_labels(
                    X, sw, labels, X[indices].astype(np.float64), **common
                )
        else:
            params = {}
        if weights_init is not None:
            params["weights"] = weights_init
        if means_init is not None:
            params["means"] = means_init
        if precisions_init is not None:
            params["precisions_cholesky"] = precisions_init.cholesky
            params["covariances"] = precisions_init.covariances
        return params

    def _current_parameters(self):
        return {
            "weights": self.weights_,
            "means": self.means_,
            "covariances": self.covariances_,
            "precisions_cholesky": self.precisions_cholesky_,
        }

    def _set_parameters(self, params, dtype):
        self.weights_ = np.asarray(params["weights"], dtype=dtype)
        self.means_ = np.asarray(params["means"], dtype=dtype)
        self.covariances_ = np.asarray(params["covariances"], dtype=dtype)
        self.precisions_cholesky_ = np.asarray(params["precisions_cholesky"], dtype=dtype)
        self.precisions_ = _precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        )

    # ------------------------------------------------------- after fitting

    def _validate_X_predict(self, X):
        """(X in the model's dtype, its deferred finiteness check or None)."""
        check_is_fitted(self)
        X, check = validate_deferred(self, X, reset=False, dtype=_FLOAT_DTYPES, order="C")
        dtype = np.result_type(X.dtype, self.means_.dtype)
        if X.dtype != dtype:
            if check is not None:  # the engine reads the copy, which may overflow
                check.settle()
                check = None
            X = X.astype(dtype)
        return X, check

    def _e_step_outputs(self, X, log_prob_norm=False, resp=False, labels=False, check=None):
        n = X.shape[0]
        out = {}
        if log_prob_norm:
            out["log_prob_norm"] = np.empty(n, dtype=X.dtype)
        if resp:
            out["resp"] = np.empty((n, self.n_components), dtype=X.dtype)
        if labels:
            out["labels"] = np.empty(n, dtype=np.int64)
        self._e_step_into(X, out, check)
        return out

    def _e_step_into(self, X, out, check=None):
        engine_pass(
            check,
            lambda check_finite: _core.e_step(
                X,
                None,
                self.covariance_type,
                _as_f64(self.weights_),
                _as_f64(self.means_),
                _as_f64(self.precisions_cholesky_),
                n_threads=effective_n_threads(self.n_jobs),
                check_finite=check_finite,
                **out,
            ),
        )

    def _per_sample(self, X, output):
        """One per-sample output ('log_prob_norm', 'resp' or 'labels') for X.

        Memory-mapped X is read block by block (converted per block, pages
        released as it goes); a dask array gives a dask array.
        """
        if _is_dask_collection(X):
            from .dask import per_sample_dask

            return per_sample_dask(self, X, output)
        if isinstance(X, np.memmap):
            return self._per_sample_blocks(X, output)
        X, check = self._validate_X_predict(X)
        return self._e_step_outputs(X, **{output: True}, check=check)[output]

    def _per_sample_blocks(self, X, output):
        check_is_fitted(self)
        source = _streaming.ArraySource(X)
        validate(self, X[:1], reset=False, dtype=_FLOAT_DTYPES)  # feature count and names
        dtype = np.result_type(source.dtype, self.means_.dtype)
        n = source.n_samples
        if output == "resp":
            result = np.empty((n, self.n_components), dtype=dtype)
        else:
            result = np.empty(n, dtype=np.int64 if output == "labels" else dtype)
        for start, xb, _ in source.blocks(validate=True):
            stop = start + xb.shape[0]
            self._e_step_into(xb.astype(dtype, copy=False), {output: result[start:stop]})
        return result

    def score_samples(self, X):
        """Compute the log-likelihood of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per sample.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Log-likelihood of each sample in `X` under the current model.
        """
        return self._per_sample(X, "log_prob_norm")

    def score(self, X, y=None):
        """Compute the per-sample average log-likelihood of the given data X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per sample.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        log_likelihood : float
            Mean log-likelihood of `X` under the Gaussian mixture model.
        """
        log_prob = self.score_samples(X)
        if _is_dask_collection(log_prob):
            return float(log_prob.mean().compute())
        return float(np.mean(log_prob))

    def predict(self, X):
        """Predict the labels for the data samples in X using the trained model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        return self._per_sample(X, "labels")

    def predict_proba(self, X):
        """Evaluate the posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Posterior probability of each component for each sample in `X`.
        """
        return self._per_sample(X, "resp")

    def sample(self, n_samples=1):
        """Generate random samples from the fitted Gaussian mixture.

        Draws the same numbers as scikit-learn for the same ``random_state``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Randomly generated sample.
        y : ndarray of shape (n_samples,)
            Component labels.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (n_samples)
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        n_samples_comp = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            X = np.vstack(
                [
                    rng.multivariate_normal(mean, covariance, int(sample), check_valid="ignore")
                    for (mean, covariance, sample) in zip(
                        self.means_, self.covariances_, n_samples_comp
                    )
                ]
            )
        elif self.covariance_type == "tied":
            X = np.vstack(
                [
                    rng.multivariate_normal(
                        mean, self.covariances_, int(sample), check_valid="ignore"
                    )
                    for (mean, sample) in zip(self.means_, n_samples_comp)
                ]
            )
        else:
            X = np.vstack(
                [
                    mean
                    + rng.standard_normal(size=(sample, n_features))
                    * np.sqrt(covariance)
                    for (mean, covariance, sample) in zip(
                        self.means_, self.covariances_, n_samples_comp
                    )
                ]
            )
        y = np.concatenate(
            [np.full(int(s), j, dtype=np.int64) for j, s in enumerate(n_samples_comp)]
        )
        return np.asarray(X, dtype=np.float64), y

    def _total_log_likelihood(self, X):
        """(sum of log p(x_i), n_samples) for any input the estimator reads."""
        if _is_out_of_core(X):
            log_prob = self.score_samples(X)
            n = int(log_prob.shape[0])
            if _is_dask_collection(log_prob):
                return float(log_prob.sum().compute()), n
            return float(np.mean(log_prob)) * n, n
        X, check = self._validate_X_predict(X)
        log_prob = self._e_step_outputs(X, log_prob_norm=True, check=check)["log_prob_norm"]
        return float(np.mean(log_prob)) * X.shape[0], X.shape[0]

    def _n_parameters(self):
        """Return the number of free parameters in the model."""
        _, n_features = self.means_.shape
        if self.covariance_type == "full":
            cov_params = self.n_components * n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "diag":
            cov_params = self.n_components * n_features
        elif self.covariance_type == "tied":
            cov_params = n_features * (n_features + 1) / 2.0
        else:
            cov_params = self.n_components
        mean_params = n_features * self.n_components
        return int(cov_params + mean_params + self.n_components - 1)

    def bic(self, X):
        """Bayesian information criterion for the current model on the input X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        bic : float
            The lower the better.
        """
        total, n = self._total_log_likelihood(X)
        return -2 * total + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion for the current model on the input X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        aic : float
            The lower the better.
        """
        total, _ = self._total_log_likelihood(X)
        return -2 * total + 2 * self._n_parameters()

    # ------------------------------------------------------------ verbose

    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose == 1:
            print("Initialization %d" % n_init)
        elif self.verbose >= 2:
            print("Initialization %d" % n_init)
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                cur_time = time()
                print(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                    % (n_iter, cur_time - self._iter_prev_time, diff_ll)
                )
                self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, init_has_converged):
        converged_msg = "converged" if init_has_converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(
                f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound"
                f" {lb:.5f}."
            )
