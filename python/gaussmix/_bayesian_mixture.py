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
from sklearn.utils.validation import check_is_fitted

from . import _core, _posterior, _sources, _streaming
from ._base import BaseMixture, as_f64
from ._gaussian_mixture import _check_shape, _precisions_from_cholesky
from ._validation import check_float_array, effective_n_threads, engine_pass

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
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', \
            'hierarchical'}, \
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
    elbo_ : float
        The evidence lower bound of the fitted posterior with every constant
        kept (beyond scikit-learn): a lower bound on the log marginal
        likelihood log p(X), comparable across ``n_components``, covariance
        types and priors, where ``lower_bound_`` (scikit-learn's, without
        the terms that do not change during a fit) is not. For one component
        with a Dirichlet-distribution prior and ``reg_covar=0`` it is the
        exact log evidence. Sample weights count as repeated rows.
    n_active_components_ : int
        The number of components that carry weight (beyond scikit-learn):
        those whose expected number of samples, sum_i w_i r_ik, is at least
        one (sample weights count samples).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (300, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=6, random_state=0).fit(X)
    >>> bgm.n_active_components_  # components that carry weight
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

    # ------------------------------------------- beyond scikit-learn's API

    def _posterior(self):
        """The fitted posterior and priors as _posterior's functions take them."""
        cov = self.covariance_type
        dof = self.degrees_of_freedom_
        conc = self.weight_concentration_
        if self.weight_concentration_prior_type == "dirichlet_process":
            conc = tuple(as_f64(c) for c in conc)
        else:
            conc = as_f64(conc)
        return dict(
            covariance_type=cov,
            prior_type=self.weight_concentration_prior_type,
            weight_concentration=conc,
            gamma0=float(self.weight_concentration_prior_),
            means=as_f64(self.means_),
            covariances=as_f64(self.covariances_),
            precisions=as_f64(self.precisions_),
            precisions_cholesky=as_f64(self.precisions_cholesky_),
            mean_precision=as_f64(self.mean_precision_),
            dof=float(dof) if cov == "tied" else as_f64(dof),
            beta0=float(self.mean_precision_prior_),
            mean_prior=as_f64(self.mean_prior_),
            nu0=float(self.degrees_of_freedom_prior_),
            covariance_prior=(
                float(self.covariance_prior_) if cov == "spherical" else as_f64(self.covariance_prior_)
            ),
        )

    def _finish_fit(self, source, n_threads):
        """elbo_ (its data term is one pass over the data) and n_active_components_."""
        params = self._current_parameters()
        args = self._e_step_args(params)
        args["log_constants"] = args["log_constants"] + _posterior.log_constant_correction(
            self.covariance_type, self.degrees_of_freedom_, self.means_.shape[1]
        )
        data_term = source.map_reduce(functools.partial(_streaming.em_block_stats, **args)).loglik
        self.elbo_ = _posterior.evidence_lower_bound(self._posterior(), data_term)
        counts = _posterior.expected_counts(
            self.weight_concentration_,
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
        )
        self.n_active_components_ = int(np.sum(counts >= 1.0))

    def score_samples_predictive(self, X):
        """Log of the posterior predictive density at each sample (beyond scikit-learn).

        ``score_samples`` evaluates the mixture at the posterior's point
        estimates, as scikit-learn does; this integrates over the posterior:
        log p(x | training data) = log sum_k E[pi_k] St_k(x), each St_k the
        multivariate Student-t of the component's Normal-Wishart posterior
        (Bishop, PRML 10.81; a product of one-dimensional t's for 'diag').
        With the Dirichlet-process prior, the weight left past the
        ``n_components`` sticks goes to the prior predictive. Heavier-tailed
        than ``score_samples``, and a proper density for any amount of data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per sample (an array, a ``np.memmap`` or a Dask array).

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            float64 log-densities.
        """
        check_is_fitted(self)
        source = _sources.query_source(self, X, np.float64, effective_n_threads(self.n_jobs))
        block = functools.partial(_posterior.predictive_block, posterior=self._posterior())
        return source.per_sample(block, None, np.float64)
