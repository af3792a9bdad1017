"""BayesianGaussianMixture: variational inference on the C++ engine.

The variational posterior (Bishop, PRML 10.2; Blei & Jordan, Bayesian
Analysis 1(1), 2006, for the Dirichlet process) keeps the sufficient
statistics of maximum likelihood: each iteration is one fused engine pass
(the E-step with the expected log-weights and log-precisions as the
components' constants, accumulating n_k, the weighted means and scatters)
followed by updates of the Dirichlet (or stick-breaking Beta) and
Normal-Wishart posteriors, O(K D^3) work on K x D^2 numbers. The updates,
the lower bound and every attribute follow scikit-learn's
``BayesianGaussianMixture``.

The entropy of the responsibilities, -sum_i w_i sum_k r_ik log r_ik, needs
no per-sample pass: with l_ik = c_k - q_ik / 2 the E-step's log-densities
and q_ik the Mahalanobis distance to the E-step's means, sum_k r_ik l_ik
summed over i is sum_k (c_k n_k - tr(P_k S_k) / 2), S_k the scatter around
those means that the pass accumulates, and sum_i w_i log sum_k exp(l_ik) is
its log-likelihood term.
"""

import functools
import math
from numbers import Real

import numpy as np
from scipy.special import betaln, digamma, gammaln
from sklearn.utils._param_validation import Interval, StrOptions

from . import _core, _streaming
from ._base import BaseMixture, as_f64
from ._gaussian_mixture import _check_shape, _precisions_from_cholesky
from ._validation import check_float_array

_FLOAT_DTYPES = [np.float64, np.float32]
_LOG_2PI = math.log(2.0 * math.pi)


def _log_det_cholesky(prec_chol, covariance_type, n_features):
    """log det of each precision Cholesky factor (a scalar for 'tied')."""
    if covariance_type == "full":
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return float(np.sum(np.log(np.diag(prec_chol))))
    if covariance_type == "diag":
        return np.sum(np.log(prec_chol), axis=1)
    return n_features * np.log(prec_chol)


def _sum_over_features(f, dof, n_features):
    """sum_{l < D} f((dof - l) / 2) for each component's degrees of freedom."""
    return np.sum(f(0.5 * (dof - np.arange(n_features)[:, np.newaxis])), 0)


def _quadratic_terms(stats, prec_chol, covariance_type):
    """tr(P_k S_k) for each component (summed over components for 'tied'):
    sum_i w_i r_ik ||(x_i - m_k)^T U_k||^2, S_k the statistics' second moments
    around their shifts m_k and P_k = U_k U_k^T."""
    s = stats.s
    if covariance_type == "full":
        precisions = prec_chol @ np.swapaxes(prec_chol, 1, 2)
        return np.einsum("klm,klm->k", s, precisions)
    if covariance_type == "tied":
        return float(np.sum(s * (prec_chol @ prec_chol.T)))
    if covariance_type == "diag":
        return np.sum(s * prec_chol**2, axis=1)
    return prec_chol**2 * np.sum(s, axis=1)


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
        _check_parameters), in scikit-learn's order of checks."""
        n_features = source.n_features
        if self.weight_concentration_prior is None:
            self.weight_concentration_prior_ = 1.0 / self.n_components
        else:
            self.weight_concentration_prior_ = self.weight_concentration_prior
        self.mean_precision_prior_ = (
            1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        )
        moments = None
        if self.mean_prior is None or self.covariance_prior is None:
            moments = self._data_moments(source, n_threads)
        if self.mean_prior is None:
            self.mean_prior_ = moments[0]
        else:
            self.mean_prior_ = check_float_array(
                self.mean_prior, dtype=_FLOAT_DTYPES, ensure_2d=False, input_name="mean_prior"
            )
            _check_shape(self.mean_prior_, (n_features,), "means")
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f."
                % (n_features - 1, self.degrees_of_freedom_prior)
            )
        self.covariance_prior_ = self._covariance_prior(moments, n_features)

    def _data_moments(self, source, n_threads):
        """(mean, covariance with ddof=1) of the data, weighted by the sample
        weights as counts: one engine pass over the source, around its first
        row (the moments are translation equivariant, nothing cancels)."""
        first, _ = source.take(np.array([0]))
        shift = np.ascontiguousarray(first[:1], dtype=np.float64)
        cov = "full" if self.covariance_type in ("full", "tied") else "diag"
        block = functools.partial(_streaming.moment_block_stats, shift=shift, covariance_type=cov)
        stats = source.map_reduce(block).centred()
        total = stats.sum_w
        mean = stats.shift[0]
        scatter = stats.s[0]
        return mean, scatter / (total - 1.0)

    def _covariance_prior(self, moments, n_features):
        cov = self.covariance_type
        if self.covariance_prior is None:
            sample_cov = moments[1]
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
                raise ValueError(
                    "'%s covariance_prior' should be symmetric, positive-definite" % cov
                )
            return prior
        if cov == "diag":
            prior = check_float_array(
                self.covariance_prior, dtype=_FLOAT_DTYPES, ensure_2d=False,
                input_name="covariance_prior",
            )
            _check_shape(prior, (n_features,), "%s covariance_prior" % cov)
            if np.any(np.less_equal(prior, 0.0)):
                raise ValueError("'%s covariance_prior' should be positive" % cov)
            return prior
        return self.covariance_prior

    # ----------------------------------------------- the estimator's steps

    def _check_initial_parameters(self, n_features):
        return ()

    def _needs_initial_stats(self, inits):
        return True

    def _parameters_from_initial(self, stats, inits, single_precision):
        return self._posterior(stats, single_precision)

    def _posterior(self, stats, single_precision):
        """The variational posterior from statistics (scikit-learn's _m_step)."""
        nk, xk, sk = stats.gaussian_estimates(
            float(self.reg_covar), single_precision=single_precision
        )
        params = {}
        if self.weight_concentration_prior_type == "dirichlet_process":
            params["weight_concentration"] = (
                1.0 + nk,
                self.weight_concentration_prior_ + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0)),
            )
        else:
            params["weight_concentration"] = self.weight_concentration_prior_ + nk
        beta0 = self.mean_precision_prior_
        mean_precision = beta0 + nk
        params["mean_precision"] = mean_precision
        params["means"] = (beta0 * self.mean_prior_ + nk[:, np.newaxis] * xk) / mean_precision[
            :, np.newaxis
        ]
        dof, covariances = self._wishart(nk, xk, sk, mean_precision)
        params["degrees_of_freedom"] = dof
        params["covariances"] = covariances
        params["precisions_cholesky"] = _core.precisions_cholesky(
            as_f64(covariances), self.covariance_type, single_precision=single_precision
        )
        params["weights"] = self._expected_weights(params["weight_concentration"])
        return params

    def _wishart(self, nk, xk, sk, mean_precision):
        """(degrees of freedom, covariances normalised by them) of the Wishart
        posteriors (Bishop 10.62-10.63, with nu_k = nu_0 + N_k)."""
        nu0, beta0, prior = (
            self.degrees_of_freedom_prior_,
            self.mean_precision_prior_,
            self.covariance_prior_,
        )
        diff = xk - self.mean_prior_
        k = self.n_components
        cov = self.covariance_type
        if cov == "full":
            dof = nu0 + nk
            outer = diff[:, :, np.newaxis] * diff[:, np.newaxis, :]
            covariances = (
                prior
                + nk[:, np.newaxis, np.newaxis] * sk
                + (nk * beta0 / mean_precision)[:, np.newaxis, np.newaxis] * outer
            )
            return dof, covariances / dof[:, np.newaxis, np.newaxis]
        if cov == "tied":
            dof = nu0 + nk.sum() / k
            covariances = (
                prior
                + sk * nk.sum() / k
                + beta0 / k * np.dot((nk / mean_precision) * diff.T, diff)
            )
            return dof, covariances / dof
        dof = nu0 + nk
        if cov == "diag":
            covariances = prior + nk[:, np.newaxis] * (
                sk + (beta0 / mean_precision)[:, np.newaxis] * np.square(diff)
            )
            return dof, covariances / dof[:, np.newaxis]
        covariances = prior + nk * (
            sk + beta0 / mean_precision * np.mean(np.square(diff), 1)
        )
        return dof, covariances / dof

    def _expected_weights(self, concentration):
        """weights_ as scikit-learn defines them from the concentrations."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            total = concentration[0] + concentration[1]
            tmp = concentration[1] / total
            weights = concentration[0] / total * np.hstack((1, np.cumprod(tmp[:-1])))
            return weights / np.sum(weights)
        return concentration / np.sum(concentration)

    def _expected_log_weights(self, concentration):
        """E[log pi_k] under the Dirichlet or stick-breaking posterior."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            digamma_sum = digamma(concentration[0] + concentration[1])
            digamma_a = digamma(concentration[0])
            digamma_b = digamma(concentration[1])
            return (
                digamma_a
                - digamma_sum
                + np.hstack((0, np.cumsum(digamma_b - digamma_sum)[:-1]))
            )
        return digamma(concentration) - digamma(np.sum(concentration))

    def _log_constants(self, params):
        """c_k of the E-step's log-densities c_k - ||(x - m_k)^T U_k||^2 / 2:
        E[log pi_k] + E[log |Lambda_k|] / 2 - D log(2 pi) / 2 - D / (2 beta_k),
        with U_k the factor of the normalised precision (scikit-learn's
        _estimate_weighted_log_prob)."""
        d = params["means"].shape[1]
        dof = params["degrees_of_freedom"]
        log_det = _log_det_cholesky(params["precisions_cholesky"], self.covariance_type, d)
        log_lambda = d * np.log(2.0) + _sum_over_features(digamma, dof, d)
        constants = (
            self._expected_log_weights(params["weight_concentration"])
            + log_det
            - 0.5 * d * _LOG_2PI
            - 0.5 * d * np.log(dof)
            + 0.5 * (log_lambda - d / params["mean_precision"])
        )
        return np.ascontiguousarray(np.broadcast_to(constants, (self.n_components,)), dtype=np.float64)

    def _e_step_args(self, params):
        return dict(
            covariance_type=self.covariance_type,
            weights=as_f64(params["weights"]),
            means=as_f64(params["means"]),
            precisions_cholesky=as_f64(params["precisions_cholesky"]),
            log_constants=self._log_constants(params),
        )

    def _step_from_stats(self, stats, params, single_precision):
        """One VB iteration from the E-step's statistics: the new posterior,
        and scikit-learn's lower bound (the entropy of the E-step's
        responsibilities, the new posterior's normalisers)."""
        constants = self._log_constants(params)
        quadratic = _quadratic_terms(stats, as_f64(params["precisions_cholesky"]),
                                     self.covariance_type)
        # sum_i w_i sum_k r_ik log r_ik
        weighted_log_resp = float(np.sum(constants * stats.nk) - 0.5 * np.sum(quadratic)) - stats.loglik
        new = self._posterior(stats, single_precision)
        return self._lower_bound(-weighted_log_resp, new), new

    def _lower_bound(self, entropy, params):
        """scikit-learn's _compute_lower_bound (constant terms dropped)."""
        d = params["means"].shape[1]
        dof = params["degrees_of_freedom"]
        log_det = _log_det_cholesky(params["precisions_cholesky"], self.covariance_type, d)
        log_det = log_det - 0.5 * d * np.log(dof)
        log_wishart = -(
            dof * log_det + dof * d * 0.5 * math.log(2.0) + _sum_over_features(gammaln, dof, d)
        )
        # one Wishart for 'tied', counted once per component as scikit-learn does
        log_wishart = np.sum(log_wishart)
        if self.covariance_type == "tied":
            log_wishart = self.n_components * log_wishart
        concentration = params["weight_concentration"]
        if self.weight_concentration_prior_type == "dirichlet_process":
            log_norm_weight = -np.sum(betaln(concentration[0], concentration[1]))
        else:
            log_norm_weight = gammaln(np.sum(concentration)) - np.sum(gammaln(concentration))
        return float(
            entropy
            - log_wishart
            - log_norm_weight
            - 0.5 * d * np.sum(np.log(params["mean_precision"]))
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
