"""BaseMixture: the fit flow every mixture estimator of gaussmix shares.

As in scikit-learn's ``sklearn.mixture._base``, the base owns everything that
does not depend on how the parameters are estimated from the sufficient
statistics: the parameter checks common to all mixtures, the ``n_init`` loop
and the choice of the best run, the initial responsibilities (``kmeans``,
``k-means++``, ``random``, ``random_from_data``), the iterations and their
stopping rule, warm start, verbose output, the data (in memory, memory maps,
chunks and Dask, all reached through ``_sources``), and the per-sample
outputs (``predict``, ``predict_proba``, ``score_samples``, ``score``) and
``sample``.

An estimator supplies only its own steps:

``_check_initial_parameters(n_features)``
    Validated copies of its user-given starting values (never written back).
``_parameters_from_initial(stats, inits, single_precision)``
    Parameters from the statistics of the initial responsibilities (None when
    ``_needs_initial_stats(inits)`` is false) and its starting values.
``_prepare_fit(source, n_threads)``
    Whatever the estimator derives from the data before initialising (e.g.
    data-dependent priors); nothing by default.
``_engine_fit(X, sample_weight, params, lower_bound, max_iter, n_threads, check)``
    Iterations on an in-memory array in one engine call (where the engine
    has the estimator's loop: ``_engine_loop``).
``_step_from_stats(stats, params, single_precision)``
    ``(lower_bound, new parameters)`` from one E-step's summed statistics.
``_e_step_args(params)``
    The keyword arguments of an E-step with these parameters.
``_current_parameters()`` / ``_set_parameters(params, dtype)``
    Its fitted state, to and from the dict the engine speaks.
"""

import contextlib
import copy
import functools
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _core, _hierarchical, _kmeans, _monitor, _patch, _sources, _streaming
from ._validation import (
    aligned,
    check_float_array,
    effective_n_threads,
    is_dask_collection,
    validate_params,
)


def as_f64(a):
    """`a` as an aligned, C-ordered float64 array (what the engine takes)."""
    return aligned(a, np.float64)


class BaseMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class for mixture models: the shared fit flow and outputs."""

    # Whether the engine runs this estimator's whole loop on an in-memory
    # array (_engine_fit); otherwise each iteration is one engine pass.
    _engine_loop = False
    # Whether sample weights are scaled to mean one (estimators whose fit
    # depends on the weights only up to a common factor); otherwise they are
    # taken as counts.
    _normalise_weights = True

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "random", "random_from_data", "k-means++", "hierarchical"})
        ],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        n_components,
        tol,
        reg_covar,
        max_iter,
        n_init,
        init_params,
        random_state,
        warm_start,
        verbose,
        verbose_interval,
        n_jobs,
    ):
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs

    # ------------------------------------------------ what an estimator supplies

    @abstractmethod
    def _check_initial_parameters(self, n_features):
        """Validated copies of the user's starting values."""

    @abstractmethod
    def _needs_initial_stats(self, inits):
        """False when the user's starting values leave nothing to initialise."""

    @abstractmethod
    def _parameters_from_initial(self, stats, inits, single_precision):
        """Starting parameters from the initial statistics and starting values."""

    def _engine_fit(self, X, sample_weight, params, lower_bound, max_iter, n_threads, check):
        """Iterations on an in-memory array: a dict of parameters, lower_bounds,
        n_iter and converged (estimators with _engine_loop)."""
        raise NotImplementedError

    def _prepare_fit(self, source, n_threads):
        """What the estimator derives from the data before initialising."""

    @abstractmethod
    def _step_from_stats(self, stats, params, single_precision):
        """(lower bound, new parameters) from one E-step's summed statistics."""

    @abstractmethod
    def _e_step_args(self, params):
        """Keyword arguments of an E-step with the parameters ``params``."""

    @abstractmethod
    def _current_parameters(self):
        """The fitted parameters as the engine's dict."""

    @abstractmethod
    def _set_parameters(self, params, dtype):
        """Sets the fitted attributes from the engine's dict."""

    def _reset_fitted_extras(self):
        """Drops fitted state beyond the parameters (a new fit discards it)."""

    def _finish_fit(self, source, n_threads):
        """Fitted attributes that need the data once more, after the fit."""

    # ---------------------------------------------------------------- fit

    def fit(self, X, y=None, sample_weight=None, *, init_size=None, callback=None, progress=False):
        """Estimate the model parameters.

        The model is fitted ``n_init`` times and the parameters with the
        largest lower bound are kept. Each run alternates E- and M-steps until
        the change of the lower bound is below ``tol`` or ``max_iter`` is
        reached (then a ``ConvergenceWarning`` is raised).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, one row per sample: an array, a ``np.memmap``
            (read in blocks) or a Dask array (fitted where it lives).
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples. Integer weights give the fit
            of the data with each row repeated that many times, and a zero
            weight leaves the row out of every iteration (the ``kmeans``
            initialisation, as scikit-learn's KMeans with weights, centres
            and scales its tolerance on all rows).
        init_size : int, default=None
            Rows the initialisation runs on: a uniform random sample drawn
            with ``random_state``. None: every row of an in-memory array; for
            data read in blocks, all rows up to 64 MiB of them.
        callback : callable, default=None
            Called after every iteration with a dict (``init``, ``n_iter``,
            ``lower_bound``, ``change``); returning True stops the fit
            cleanly, leaving the last complete parameters (``converged_``
            False). See ``gaussmix._monitor``.
        progress : bool, default=False
            Show a progress bar over the iterations (needs tqdm).

        Returns
        -------
        self : object
            The fitted mixture.
        """
        _patch.note_call(self, "fit")
        with self._watched(callback, progress):
            self._fit(X, sample_weight, init_size)
        return self

    @contextlib.contextmanager
    def _watched(self, callback, progress):
        """The fit's monitor (progress bar, callback) while it runs."""
        n_runs = 1 if (self.warm_start and hasattr(self, "converged_")) else self.n_init
        self._monitor = _monitor.Monitor(
            callback, progress, total=self.max_iter * n_runs, description=type(self).__name__
        )
        try:
            yield self._monitor
        finally:
            self._monitor.close()
            del self._monitor

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
        source = self._fit(X, sample_weight, None)
        if not source.in_memory:  # label the data the same way, block by block
            return self.predict(X)
        return source.per_sample(self._e_step_fn("labels"), None, np.int64)

    def fit_chunks(self, chunks, *, init_size=None, callback=None, progress=False):
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
        rows, the default for data under 64 MiB), and with the same starting
        values given by the user always.

        Parameters
        ----------
        chunks : callable or re-iterable
            The data, as described above. A one-shot iterator (a generator
            object) is rejected: it cannot be read a second time.
        init_size : int, default=None
            Rows that the initialisation (``init_params``) runs on: a uniform
            random sample of the data, drawn with ``random_state``. None: all
            rows, up to 64 MiB of them.
        callback, progress :
            As ``fit`` takes them.

        Returns
        -------
        self : object
            The fitted mixture.
        """
        validate_params(self)
        source = _sources.chunk_source(
            chunks, effective_n_threads(self.n_jobs), self._normalise_weights
        )
        with self._watched(callback, progress):
            self._fit_source(source, init_size)
        return self

    def _fit(self, X, sample_weight, init_size):
        """Fit on X; returns the source it was read through."""
        validate_params(self)
        source = _sources.fit_source(
            self, X, sample_weight, effective_n_threads(self.n_jobs), self._normalise_weights
        )
        check = getattr(source, "check", None)
        if check is None:
            self._fit_source(source, init_size)
        elif not self._em_reads_X_first():
            check.settle()
            self._fit_source(source, init_size)
        else:
            # X's finiteness is checked by the first E-step; an error before
            # that is preceded by X's own, as scikit-learn checks X first
            check.first(lambda: self._fit_source(source, init_size))
        return source

    def _em_reads_X_first(self):
        """True when the first E-step is the first thing of fit to read X or to
        show anything: a warm start, or starting values that leave nothing to
        initialise; max_iter > 0 and no verbose output (which would print
        before X's error)."""
        if self.max_iter == 0 or self.verbose:
            return False
        if self.warm_start and hasattr(self, "converged_"):
            return True
        return not self._needs_initial_stats(self._given_initial_parameters())

    def _given_initial_parameters(self):
        """The user's starting values as given (unchecked), for _needs_initial_stats."""
        return ()

    def _check_n_samples(self, n_samples):
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )

    def _fit_source(self, source, init_size):
        """The whole fit, on any source (see _sources)."""
        init_size = _streaming.check_init_size(init_size)
        if source.in_memory:
            self._check_n_samples(source.n_samples)
        source.scan()
        n_samples, n_features = source.n_samples, source.n_features
        if not source.in_memory:
            if n_samples < 2:
                raise ValueError(
                    f"Found array with {n_samples} sample(s) (shape=({n_samples}, "
                    f"{n_features})) while a minimum of 2 is required by "
                    f"{type(self).__name__}."
                )
            self._check_n_samples(n_samples)
            self.n_features_in_ = n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        n_threads = effective_n_threads(self.n_jobs)
        self._prepare_fit(source, n_threads)
        if init_size is None:
            init_size = (
                n_samples
                if source.in_memory
                else _streaming.default_init_size(n_samples, n_features, self.n_components)
            )
        init_size = max(min(init_size, n_samples), self.n_components)

        def initialize(random_state, inits):
            if not self._needs_initial_stats(inits):
                sample, sw = np.empty((0, n_features), dtype=source.dtype), None
            elif init_size >= n_samples:
                sample, sw = source.take(None)
            else:
                indices = _streaming.sample_indices(random_state, n_samples, init_size)
                sample, sw = source.take(indices)
            return self._initial_parameters(sample, sw, random_state, inits, n_threads)

        if source.in_memory and self._engine_loop:
            X, sw = source.take(None)

            def run(params, lower_bound):
                return self._run_engine(X, sw, params, lower_bound, n_threads, source.check)
        else:
            single = source.dtype == np.float32

            def step(params):
                block_stats = functools.partial(
                    _streaming.em_block_stats, **self._e_step_args(params)
                )
                return self._step_from_stats(source.map_reduce(block_stats), params, single)

            def run(params, lower_bound):
                return self._iterate(step, params, lower_bound)

        self._fit_loop(n_features, source.dtype, initialize, run)
        self._finish_fit(source, n_threads)

    def _fit_loop(self, n_features, dtype, initialize, run):
        """scikit-learn's n_init loop around `initialize` and `run`.

        ``initialize(random_state, inits)`` returns starting parameters;
        ``run(params, lower_bound)`` returns the result dict (parameters,
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
        monitor = self._current_monitor()
        for init in range(n_init):
            if monitor.stopped:
                break
            monitor.init = init
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
            result = run(params, lower_bound)
            lower_bound = result["lower_bounds"][-1]
            self._print_verbose_msg_init_end(lower_bound, result["converged"])
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best = result
                best_n_iter = result["n_iter"]
                best_lower_bounds = list(result["lower_bounds"])
                converged_best = result["converged"]

        if not converged_best and self.max_iter > 0 and not monitor.stopped:
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
        self._reset_fitted_extras()

    def _initial_parameters(self, X, sw, random_state, inits, n_threads):
        """Starting parameters from the rows X (weights sw) and the user's values."""
        stats = None
        if self._needs_initial_stats(inits):
            stats = self._initial_stats(X, sw, random_state, n_threads)
        return self._parameters_from_initial(stats, inits, X.dtype == np.float32)

    def _initial_stats(self, X, sw, random_state, n_threads):
        """Statistics of the initial responsibilities that ``init_params`` chooses.

        The random draws are scikit-learn's, in its order: ``kmeans`` is its
        KMeans(n_init=1) (k-means++ seeding, Lloyd iterations, its stopping
        rule), ``k-means++`` its seeds, ``random`` the same uniform
        responsibilities, ``random_from_data`` the same rows.
        """
        n_samples = X.shape[0]
        k = self.n_components
        common = dict(covariance_type=self.covariance_type, n_threads=n_threads)
        if self.init_params == "kmeans":  # scikit-learn's KMeans(n_init=1), its draws
            labels, centers, _ = _kmeans.kmeans(X, sw, k, random_state, n_threads)
            return _core.stats_from_labels(X, sw, labels, centers, **common)
        if self.init_params == "k-means++":  # scikit-learn's kmeans_plusplus
            seeds = _kmeans.kmeans_plusplus_indices(X, sw, k, random_state, n_threads)
            labels = np.full(n_samples, -1, dtype=np.int64)
            labels[seeds] = np.arange(k)
            return _core.stats_from_labels(X, sw, labels, X[seeds].astype(np.float64), **common)
        if self.init_params == "hierarchical":  # a cut of Ward's tree (_hierarchical)
            labels, shifts = _hierarchical.partitions(X, sw, [k], random_state)
            return _core.stats_from_labels(X, sw, labels[0], shifts[0], **common)
        if self.init_params == "random":
            resp = np.asarray(random_state.uniform(size=(n_samples, k)), dtype=X.dtype)
            resp /= resp.sum(axis=1)[:, np.newaxis]
            return _core.stats_from_resp(X, sw, resp, **common)
        indices = random_state.choice(n_samples, size=k, replace=False)  # random_from_data
        labels = np.full(n_samples, -1, dtype=np.int64)
        labels[indices] = np.arange(k)
        return _core.stats_from_labels(X, sw, labels, X[indices].astype(np.float64), **common)

    def _iterate(self, step, params, lower_bound):
        """Iterations in Python, one ``step(params) -> (lower_bound, params)`` each.

        The same stopping rule as the engine's loop (|change| < tol).
        """
        lower_bounds = []
        converged = False
        n_iter = 0
        monitor = self._current_monitor()
        for n_iter in range(1, self.max_iter + 1):
            prev = lower_bound
            lower_bound, params = step(params)
            lower_bounds.append(lower_bound)
            self._print_verbose_msg_iter_end(n_iter, lower_bound - prev)
            if abs(lower_bound - prev) < self.tol:
                converged = True
                monitor.step(n_iter, lower_bound, lower_bound - prev)
                break
            if monitor.step(n_iter, lower_bound, lower_bound - prev):
                break
        result = dict(params)
        result.update(lower_bounds=lower_bounds, n_iter=n_iter, converged=converged)
        return result

    def _run_engine(self, X, sw, params, lower_bound, n_threads, check):
        """Iterations on an in-memory array: one engine call, or one per
        iteration when verbose output is printed between them."""
        if not self.verbose and not self._current_monitor().active:
            return self._engine_fit(X, sw, params, lower_bound, self.max_iter, n_threads, check)

        def step(p):
            result = self._engine_fit(X, sw, p, -np.inf, 1, n_threads, check)
            return result["lower_bounds"][0], result

        return self._iterate(step, params, lower_bound)

    def _current_monitor(self):
        return getattr(self, "_monitor", _monitor.QUIET)

    # ------------------------------ scikit-learn's private steps, by name

    def _check_parameters(self, X):
        """What the estimator derives from X before initialising
        (scikit-learn's step of that name, for code written against it)."""
        n_threads = effective_n_threads(self.n_jobs)
        X = check_float_array(X, dtype=_sources.FLOAT_DTYPES, order="C")
        source = _sources.MemorySource(X, None, n_threads).scan()
        self._prepare_fit(source, n_threads)

    def _initialize_parameters(self, X, random_state):
        """Sets the starting parameters that ``init_params`` gives on X
        (scikit-learn's step of that name, for code written against it)."""
        n_threads = effective_n_threads(self.n_jobs)
        X = check_float_array(X, dtype=_sources.FLOAT_DTYPES, order="C")
        inits = self._check_initial_parameters(X.shape[1])
        params = self._initial_parameters(X, None, random_state, inits, n_threads)
        self._set_parameters(params, X.dtype)

    def _initialize(self, X, resp):
        """Sets the starting parameters from the responsibilities resp (and the
        user's starting values), scikit-learn's step of that name."""
        n_threads = effective_n_threads(self.n_jobs)
        X = check_float_array(X, dtype=_sources.FLOAT_DTYPES, order="C")
        resp = np.ascontiguousarray(resp, dtype=X.dtype)
        # as scikit-learn's, the number of components is resp's
        sized = copy.copy(self)
        sized.n_components = resp.shape[1]
        inits = sized._check_initial_parameters(X.shape[1])
        stats = _core.stats_from_resp(
            X, None, resp, covariance_type=self.covariance_type, n_threads=n_threads
        )
        self._set_parameters(self._parameters_from_initial(stats, inits, X.dtype == np.float32), X.dtype)

    # ------------------------------------------------------- after fitting

    def _e_step_fn(self, output):
        """The block function computing one per-sample output of the fitted model."""
        return functools.partial(
            _streaming.e_step_block, output=output, **self._e_step_args(self._current_parameters())
        )

    def _per_sample(self, X, output):
        """One per-sample output ('log_prob_norm', 'resp' or 'labels') for X.

        Memory-mapped X is read block by block (converted per block, pages
        released as it goes); a dask array gives a dask array.
        """
        check_is_fitted(self)
        source = _sources.query_source(
            self, X, self.means_.dtype, effective_n_threads(self.n_jobs)
        )
        dtype = np.result_type(source.dtype, self.means_.dtype)
        width = self.n_components if output == "resp" else None
        return source.per_sample(
            self._e_step_fn(output), width, np.int64 if output == "labels" else dtype
        )

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
            Mean log-likelihood of `X` under the mixture model.
        """
        log_prob = self.score_samples(X)
        if is_dask_collection(log_prob):
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
        """Generate random samples from the fitted mixture.

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
