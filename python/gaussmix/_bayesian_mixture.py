"""BayesianGaussianMixture: variational inference on the C++ engine.

The variational posterior (Bishop, PRML 10.2; Blei & Jordan, Bayesian
Analysis 1(1), 2006, for the Dirichlet process) keeps the sufficient
statistics of maximum likelihood: each iteration is one fused engine pass
(the E-step with the expected log-weights and log-precisions as the
components' constants, accumulating n_k, the weighted means and scatters)
followed by updates of the Dirichlet (or stick-breaking Beta) and
Normal-Wishart posteriors, O(K D^3) work on K x D^2 numbers. The engine runs
both (``_core.VariationalBayes``, an M-step policy of the EM loop); this
module holds the priors, their checks and the attributes, which follow
scikit-learn's ``BayesianGaussianMixture``.
"""

import functools
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from . import _core, _streaming
from ._base import BaseMixture, as_f64
from ._gaussian_mixture import _check_shape, _precisions_from_cholesky
from ._validation import check_float_array, engine_pass

_FLOAT_DTYPES = [np.float64, np.float32]


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`:
    same constructor, attributes, methods, errors and warnings, with each
    iteration one fused pass of the multithreaded C++ engine. The weights
    have a Dirichlet-distribution prior (a finite mixture) or a
    Dirichlet-process prior in its truncated stick-breaking form, so the
    model can leave components unused; the means and precisions a
    Normal-Wishart prior. Beyond scikit-learn it accepts ``sample_weight``
    in :meth:`fit` (weights are counts: integer weights give the fit of
    repeated rows), keeps float32 data in float32 (accumulating in float64),
    fits memory maps, chunks (:meth:`fit_chunks`) and Dask arrays, and takes
    ``n_jobs``.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components (an upper bound on those used).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        The covariance structure of the components.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariances.
    max_iter : int, default=100
        The number of iterations to perform.
    n_init : int, default=1
        The number of initializations; the result with the highest lower
        bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the responsibilities that start the iterations are chosen.
    weight_concentration_prior_type : {'dirichlet_process', \
            'dirichlet_distribution'}, default='dirichlet_process'
        The type of the prior on the weights.
    weight_concentration_prior : float or None, default=None
        The Dirichlet concentration of each component (gamma); None:
        ``1 / n_components``.
    mean_precision_prior : float or None, default=None
        The precision prior on the means (beta_0); None: 1.
    mean_prior : array-like of shape (n_features,), default=None
        The prior mean of the means; None: the (weighted) mean of X.
    degrees_of_freedom_prior : float or None, default=None
        The Wishart prior's degrees of freedom (nu_0); None: n_features.
    covariance_prior : float or array-like, default=None
        The Wishart prior's covariance; None: the (weighted) covariance of X
        (its diagonal for 'diag', the mean variance for 'spherical').
    random_state : int, RandomState instance or None, default=None
        Controls the initialization and :meth:`sample`.
    warm_start : bool, default=False
        If True, each call to fit starts from the previous solution.
    verbose : int, default=0
        Enable verbose output.
    verbose_interval : int, default=10
        Number of iterations between two prints.
    n_jobs : int, default=None
        Threads used by the engine. None: OpenMP's default; -1: all cores.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        The expected weights, the posterior means of the means, and the
        covariances (the inverse of the expected precisions), as scikit-learn
        defines them.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The lower bound of the best initialization (scikit-learn's, without
        the terms that do not depend on the fit).
    lower_bounds_ : list of float
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray or tuple of two ndarrays
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,) (a float for 'tied')
    covariance_prior_ : float or ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (300, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=6, random_state=0).fit(X)
    >>> int(np.sum(bgm.weights_ > 0.01))  # components that carry weight
    2
    """

    _normalise_weights = False
    _engine_loop = True

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "weight_concentration_prior_type": [
            StrOptions({"dirichlet_process", "dirichlet_distribution"})
        ],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior

    # ------------------------------------------------------------ priors

    def _prepare_fit(self, source, n_threads):
        """The priors, the defaults taken from the data (scikit-learn's
        _check_parameters), in scikit-learn's order of checks. The fitted
        prior attributes change only once every check has passed."""
        n_features = source.n_features
        if self.weight_concentration_prior is None:
            weight_concentration = 1.0 / self.n_components
        else:
            weight_concentration = self.weight_concentration_prior
        mean_precision = 1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        moments = None
        if self.mean_prior is None or self.covariance_prior is None:
            moments = self._data_moments(source, n_threads)
        if self.mean_prior is None:
            mean = moments[0]
        else:
            mean = check_float_array(
                self.mean_prior, dtype=_FLOAT_DTYPES, ensure_2d=False, input_name="mean_prior"
            )
            _check_shape(mean, (n_features,), "means")
        if self.degrees_of_freedom_prior is None:
            dof = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            dof = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f."
                % (n_features - 1, self.degrees_of_freedom_prior)
            )
        covariance = self._covariance_prior(moments, n_features)
        self.weight_concentration_prior_ = weight_concentration
        self.mean_precision_prior_ = mean_precision
        self.mean_prior_ = mean
        self.degrees_of_freedom_prior_ = dof
        self.covariance_prior_ = covariance

    def _data_moments(self, source, n_threads):
        """(mean, scatter, total weight) of the data, weighted by the sample
        weights as counts: one engine pass over the source, around its first
        row (the moments are translation equivariant, nothing cancels)."""
        first, _ = source.take(np.array([0]))
        shift = np.ascontiguousarray(first[:1], dtype=np.float64)
        cov = "full" if self.covariance_type in ("full", "tied") else "diag"
        block = functools.partial(_streaming.moment_block_stats, shift=shift, covariance_type=cov)
        stats = source.map_reduce(block).centred()
        return stats.shift[0], stats.s[0], stats.sum_w

    def _covariance_prior(self, moments, n_features):
        cov = self.covariance_type
        if self.covariance_prior is None:
            # the sample covariance, ddof=1 over the total weight (as np.cov
            # of the repeated rows)
            _, scatter, total = moments
            if not total > 1.0:
                raise ValueError(
                    "covariance_prior=None takes the covariance of the data, which needs "
                    f"sample weights summing to more than 1 (they sum to {total:.6g}): "
                    "pass covariance_prior, or weights that count samples."
                )
            sample_cov = scatter / (total - 1.0)
            if cov in ("full", "tied"):
                return np.atleast_2d(sample_cov)
            if cov == "diag":
                return sample_cov
            return float(sample_cov.mean())
        if cov in ("full", "tied"):
            prior = check_float_array(
                self.covariance_prior, dtype=_FLOAT_DTYPES, ensure_2d=False,
                input_name="covariance_prior",
            )
            _check_shape(prior, (n_features, n_features), "%s covariance_prior" % cov)
            symmetric = np.allclose(prior, prior.T)
            if not symmetric or np.any(np.linalg.eigvalsh(prior) <= 0.0):
                raise ValueError("'%s precision' should be symmetric, positive-definite" % cov)
            return prior
        if cov == "diag":
            prior = check_float_array(
                self.covariance_prior, dtype=_FLOAT_DTYPES, ensure_2d=False,
                input_name="covariance_prior",
            )
            _check_shape(prior, (n_features,), "%s covariance_prior" % cov)
            if np.any(np.less_equal(prior, 0.0)):
                raise ValueError("'%s precision' should be positive" % cov)
            return prior
        return self.covariance_prior

    # ----------------------------------------------- the estimator's steps

    def _engine(self, single_precision=False):
        """The engine's variational Bayes with the fitted priors."""
        cov = self.covariance_type
        prior = np.atleast_1d(np.asarray(self.covariance_prior_, dtype=np.float64))
        return _core.VariationalBayes(
            cov,
            self.weight_concentration_prior_type,
            float(self.weight_concentration_prior_),
            float(self.mean_precision_prior_),
            as_f64(self.mean_prior_),
            float(self.degrees_of_freedom_prior_),
            as_f64(prior.ravel()),
            reg_covar=float(self.reg_covar),
            single_precision=single_precision,
        )

    def _check_initial_parameters(self, n_features):
        return ()

    def _needs_initial_stats(self, inits):
        return True

    def _parameters_from_initial(self, stats, inits, single_precision):
        return self._engine(single_precision).posterior(stats)

    def _step_from_stats(self, stats, params, single_precision):
        return self._engine(single_precision).step(stats, params)

    def _engine_fit(self, X, sample_weight, params, lower_bound, max_iter, n_threads, check):
        engine = self._engine(X.dtype == np.float32)
        return engine_pass(
            check,
            lambda check_finite: engine.fit(
                X,
                sample_weight,
                params,
                tol=float(self.tol),
                max_iter=int(max_iter),
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
            log_constants=self._engine().log_constants(params),
        )

    def _current_parameters(self):
        return {
            "weight_concentration": self.weight_concentration_,
            "mean_precision": self.mean_precision_,
            "means": self.means_,
            "degrees_of_freedom": self.degrees_of_freedom_,
            "covariances": self.covariances_,
            "precisions_cholesky": self.precisions_cholesky_,
            "weights": self.weights_,
        }

    def _set_parameters(self, params, dtype):
        self.weight_concentration_ = params["weight_concentration"]
        self.mean_precision_ = params["mean_precision"]
        self.means_ = np.asarray(params["means"], dtype=dtype)
        self.degrees_of_freedom_ = params["degrees_of_freedom"]
        self.covariances_ = np.asarray(params["covariances"], dtype=dtype)
        self.precisions_cholesky_ = np.asarray(params["precisions_cholesky"], dtype=dtype)
        self.weights_ = np.asarray(params["weights"], dtype=dtype)
        self.precisions_ = _precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        )
