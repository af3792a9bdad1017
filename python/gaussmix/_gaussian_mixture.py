"""GaussianMixture: EM on the C++ engine, with scikit-learn's interface.

The fit flow (initialisation, iterations, data sources, per-sample outputs)
is ``BaseMixture``'s; this module holds what is particular to maximum
likelihood: the user's starting values (``weights_init``, ``means_init``,
``precisions_init``) and their checks, the M-step, the engine's EM loop,
online EM (``partial_fit``) and the information criteria.
"""

import math
from numbers import Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from . import _array_api, _core, _streaming
from ._base import BaseMixture, as_f64
from ._validation import (
    check_float_array,
    check_sample_weight,
    effective_n_threads,
    engine_pass,
    is_dask_collection,
    is_plain_float,
    validate,
    validate_params,
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
            # scikit-learn's message, word for word (its labels are swapped)
            % (np.min(weights), np.max(weights))
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
    values = as_f64(precisions)
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


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of a mixture: weights, means and covariances."""
    k, d = n_components, n_features
    cov_params = {
        "full": k * d * (d + 1) / 2.0,
        "diag": k * d,
        "tied": d * (d + 1) / 2.0,
        "spherical": k,
    }[covariance_type]
    return int(cov_params + d * k + k - 1)


class GaussianMixture(BaseMixture):
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
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', \
            'hierarchical'}, \
            default='kmeans'
        How the responsibilities that start EM are chosen: k-means labels
        (k-means++ seeding, then Lloyd iterations), k-means++ seeds only,
        uniformly random responsibilities, random data points, or a cut of
        a model-based hierarchical tree (Ward's criterion on the sphered
        data, as mclust starts; built on 2000 random rows when there are
        more). ``'hierarchical'`` is gaussmix's addition.
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


    _engine_loop = True

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
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
        super().__init__(
            n_components=n_components,
            tol=tol,
            reg_covar=reg_covar,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            verbose_interval=verbose_interval,
            n_jobs=n_jobs,
        )
        self.covariance_type = covariance_type
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # --------------------------------------------------- the estimator's steps

    def _given_initial_parameters(self):
        return (self.weights_init, self.means_init, self.precisions_init)

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
        _array_api.check_init_params(self.init_params)
        return weights, means, precisions

    def _needs_initial_stats(self, inits):
        return any(v is None for v in inits)

    def _parameters_from_initial(self, stats, inits, single_precision):
        weights_init, means_init, precisions_init = inits
        params = {}
        if stats is not None:
            params = self._m_step(stats, single_precision, initial=True)
        if weights_init is not None:
            params["weights"] = weights_init
        if means_init is not None:
            params["means"] = means_init
        if precisions_init is not None:
            params["precisions_cholesky"] = precisions_init.cholesky
            params["covariances"] = precisions_init.covariances
        return params

    def _m_step(self, stats, single_precision, initial=False):
        return stats.m_step(float(self.reg_covar), single_precision=single_precision, initial=initial)

    def _step_from_stats(self, stats, params, single_precision):
        sum_w = stats.sum_w
        lower_bound = stats.loglik / sum_w if sum_w > 0 else -np.inf
        return lower_bound, self._m_step(stats, single_precision)

    def _engine_fit(self, X, sample_weight, params, lower_bound, max_iter, n_threads, check):
        return engine_pass(
            check,
            lambda check_finite: _core.em_fit(
                X,
                sample_weight,
                self.covariance_type,
                as_f64(params["weights"]),
                as_f64(params["means"]),
                as_f64(params["precisions_cholesky"]),
                tol=float(self.tol),
                max_iter=int(max_iter),
                reg_covar=float(self.reg_covar),
                prev_lower_bound=float(lower_bound),
                n_threads=n_threads,
                check_finite=check_finite,
            ),
        )

    def _e_step_args(self, params):
        return dict(
            covariance_type=self.covariance_type,
            weights=as_f64(params["weights"]),
            means=as_f64(params["means"]),
            precisions_cholesky=as_f64(params["precisions_cholesky"]),
        )

    def _current_parameters(self):
        return {
            "weights": self.weights_,
            "means": self.means_,
            "covariances": self.covariances_,
            "precisions_cholesky": self.precisions_cholesky_,
        }

    def _set_parameters(self, params, dtype=None):
        if isinstance(params, tuple):  # scikit-learn's form, for code written against it
            params = dict(zip(("weights", "means", "covariances", "precisions_cholesky"), params))
        self.weights_ = np.asarray(params["weights"], dtype=dtype)
        self.means_ = np.asarray(params["means"], dtype=dtype)
        self.covariances_ = np.asarray(params["covariances"], dtype=dtype)
        self.precisions_cholesky_ = np.asarray(params["precisions_cholesky"], dtype=dtype)
        self.precisions_ = _precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        )

    def _reset_fitted_extras(self):
        for attr in ("_online_stats", "_online_steps", "_online_calls"):
            if hasattr(self, attr):
                delattr(self, attr)

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
                running = _core.SuffStats.of_parameters(
                    as_f64(self.weights_), as_f64(self.means_), as_f64(self.covariances_), cov, reg
                )
        means = as_f64(params["means"])
        st = _core.em_stats(
            X,
            sw,
            cov,
            as_f64(params["weights"]),
            means,
            as_f64(params["precisions_cholesky"]),
            n_threads=n_threads,
        )
        lower_bound = st.loglik / st.sum_w
        batch = st.centred().normalised()
        if running is None:
            running = batch
        else:
            steps += 1
            eta = _streaming.step_size(steps, self.learning_decay, self.learning_offset)
            running = running.blend(batch, eta)
        new = self._m_step(running, X.dtype == np.float32)
        self._set_parameters(new, X.dtype)
        self._online_stats = running
        self._online_steps = steps
        self._online_calls = (0 if first else getattr(self, "_online_calls", 0)) + 1
        self.converged_ = False
        self.n_iter_ = self._online_calls
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = [self.lower_bound_]
        return self


    # ------------------------------------------------- information criteria

    def _total_log_likelihood(self, X):
        """(sum of log p(x_i), n_samples) for any input the estimator reads."""
        log_prob = self.score_samples(X)
        n = int(log_prob.shape[0])
        if is_dask_collection(log_prob):
            return float(log_prob.sum().compute()), n
        return float(np.mean(log_prob)) * n, n

    def _n_parameters(self):
        """Return the number of free parameters in the model."""
        return n_parameters(self.covariance_type, self.n_components, self.means_.shape[1])

    # array-API input (gaussmix._array_api): numpy inside, the caller's namespace outside
    fit = _array_api.fit_boundary(BaseMixture.fit)
    fit_predict = _array_api.fit_boundary(BaseMixture.fit_predict)
    predict = _array_api.output_boundary(BaseMixture.predict)
    predict_proba = _array_api.output_boundary(BaseMixture.predict_proba)
    score_samples = _array_api.output_boundary(BaseMixture.score_samples)
    score = _array_api.output_boundary(BaseMixture.score)
    sample = _array_api.output_boundary(BaseMixture.sample)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's own rule, so that tools reading the tags decide alike
        tags.array_api_support = (
            self.init_params in ("random", "random_from_data") and not self.warm_start
        )
        return tags

    def _set_fit(self, params, *, converged, n_iter, lower_bound, lower_bounds, n_features,
                 dtype=None, feature_names=None):
        """Make this estimator the fitted model of ``params`` (weights, means,
        covariances, precisions_cholesky), for fits made elsewhere: a group of
        fit_many, a candidate of GaussianMixtureIC, a model file."""
        self._set_parameters(params, dtype)
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = [float(v) for v in lower_bounds]
        self.n_features_in_ = int(n_features)
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        return self

    def to_file(self, path):
        """Save the fitted model to ``path``: a portable .npz file with no pickle
        in it, read back by :meth:`from_file` (see ``gaussmix._persist``)."""
        from . import _persist

        _persist.save(self, path)

    @classmethod
    def from_file(cls, path):
        """The fitted model saved by :meth:`to_file`; ValueError naming the
        problem for a file of another kind or format version, or one whose
        arrays do not fit its parameters."""
        from . import _persist

        return _persist.load(path)

    @_array_api.output_boundary
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

    @_array_api.output_boundary
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

