"""What a fitted variational posterior says beyond scikit-learn's attributes:
the evidence lower bound with every constant, the posterior predictive
density, and the expected number of samples per component.

The model, for each covariance type (the priors are the estimator's fitted
``*_prior_`` attributes: beta_0, m_0, nu_0 and Psi_0 = covariance_prior_):

- full: Lambda_k ~ Wishart(Psi_0^-1, nu_0), mu_k | Lambda_k ~ N(m_0, (beta_0 Lambda_k)^-1);
- tied: one Lambda ~ Wishart(Psi_0^-1, nu_0), the K means given it as above;
- diag: each precision lambda_kd ~ Gamma(nu_0 / 2, rate Psi_0d / 2), and
  mu_kd | lambda_kd ~ N(m_0d, (beta_0 lambda_kd)^-1);
- spherical: one precision per component, lambda_k ~ Gamma(D nu_0 / 2,
  rate D Psi_0 / 2), mu_k | lambda_k ~ N(m_0, (beta_0 lambda_k)^-1 I);

with weights from a symmetric Dirichlet(gamma_0) or the stick-breaking
Dirichlet process Beta(1, gamma_0) (Blei & Jordan, Bayesian Analysis 1(1),
2006). For diag and spherical these are the models whose conjugate updates
are exactly scikit-learn's M-step (for tied, scikit-learn's update takes
nu = nu_0 + N / K where the conjugate one is nu_0 + N: the bound is that of
the posterior the estimator reports, valid but not the tightest); the fitted posterior q(theta) is the
matching Normal-Wishart or Normal-Gamma with the estimator's attributes
(W_k^-1 = nu_k covariances_k, so E[Lambda_k] = precisions_k).

**Evidence lower bound.** For any q(theta), the best q(Z) leaves
  ELBO = sum_i w_i log sum_k exp(rho_ik) - KL(q(pi) || p(pi)) - sum_k KL(q(theta_k) || p(theta_k)),
rho_ik = E[log pi_k] + E[log N(x_i | mu_k, Lambda_k)] (Bishop, PRML 10.2;
the data term is the E-step's log-normaliser, so it costs one pass). It is
a lower bound on log p(X) whatever the fit did, includes every constant, and
so compares models with different n_components and covariance types. For
K = 1 with a Dirichlet-distribution prior and reg_covar = 0 the posterior is
exact and the bound equals the log evidence. With the Dirichlet process the
components past the truncation keep their prior (no sample is assigned to
them), so the bound is one on the evidence of the infinite model.

**Posterior predictive.** p(x | X) = sum_k E[pi_k] St_k(x), each St_k the
Student-t that integrating N(x | mu_k, Lambda_k) over q(theta_k) gives
(Bishop 10.81; the diag model gives a product of one-dimensional t's). With
the Dirichlet process the mass left past the truncation,
prod_k E[1 - v_k], goes to the prior predictive.

A singular covariance prior (the default, the data's covariance, on fewer
samples than features, or with a constant feature) has no density: the
bound is then -inf, and the prior predictive, zero almost everywhere, is
left out of the predictive density.
"""

import numpy as np
from scipy.special import betaln, digamma, gammaln, logsumexp, multigammaln

_LOG_PI = np.log(np.pi)
_LOG_2PI = np.log(2.0 * np.pi)


# ---------------------------------------------------------------- weights


def expected_counts(weight_concentration, prior_type, weight_concentration_prior):
    """N_k, the expected (weighted) number of samples of each component."""
    if prior_type == "dirichlet_process":
        return np.asarray(weight_concentration[0], dtype=np.float64) - 1.0
    return np.asarray(weight_concentration, dtype=np.float64) - weight_concentration_prior


def expected_weights(weight_concentration, prior_type):
    """(E[pi_k] for the K components, the mass left past them)."""
    if prior_type == "dirichlet_process":
        a, b = (np.asarray(v, dtype=np.float64) for v in weight_concentration)
        stay = b / (a + b)  # E[1 - v_k]
        before = np.concatenate([[1.0], np.cumprod(stay)[:-1]])
        return a / (a + b) * before, float(np.prod(stay))
    a = np.asarray(weight_concentration, dtype=np.float64)
    return a / a.sum(), 0.0


def _kl_weights(weight_concentration, prior_type, gamma0):
    if prior_type == "dirichlet_process":
        a, b = (np.asarray(v, dtype=np.float64) for v in weight_concentration)
        ab = digamma(a + b)
        # KL(Beta(a, b) || Beta(1, gamma_0)) per stick
        return float(np.sum(
            betaln(1.0, gamma0) - betaln(a, b)
            + (a - 1.0) * (digamma(a) - ab) + (b - gamma0) * (digamma(b) - ab)
        ))
    a = np.asarray(weight_concentration, dtype=np.float64)
    total = a.sum()
    k = a.size
    return float(
        gammaln(total) - gammaln(a).sum() - gammaln(k * gamma0) + k * gammaln(gamma0)
        + np.sum((a - gamma0) * (digamma(a) - digamma(total)))
    )


# ------------------------------------------------------ means, precisions


def _kl_gamma(a1, b1, a0, b0):
    """KL(Gamma(a1, rate b1) || Gamma(a0, rate b0)), elementwise."""
    return (
        (a1 - a0) * digamma(a1) - gammaln(a1) + gammaln(a0)
        + a0 * (np.log(b1) - np.log(b0)) + a1 * (b0 - b1) / b1
    )


def _log_wishart_norm(log_det_w, nu, d):
    """log B(W, nu), the Wishart's log normaliser (Bishop B.79)."""
    return -0.5 * nu * log_det_w - 0.5 * nu * d * np.log(2.0) - multigammaln(0.5 * nu, d)


def _expected_log_det_wishart(log_det_w, nu, d):
    return np.sum(digamma(0.5 * (nu - np.arange(d)))) + d * np.log(2.0) + log_det_w


def _log_det_from_cholesky(prec_chol, covariance_type, d):
    """log |P_k| for each component (one value for tied) from the factors."""
    if covariance_type == "full":
        return 2.0 * np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return 2.0 * np.sum(np.log(np.diag(prec_chol)))
    if covariance_type == "diag":
        return 2.0 * np.sum(np.log(prec_chol), axis=1)
    return 2.0 * d * np.log(prec_chol)


def _kl_gaussian_means(beta, beta0, quad, d):
    """E over the precisions of KL(N(m_k, (beta_k Lambda)^-1) || N(m_0, (beta_0 Lambda)^-1)),
    quad = (m_k - m_0)^T E[Lambda_k] (m_k - m_0), d the dimension of the pair."""
    return 0.5 * (d * beta0 / beta - d + d * np.log(beta / beta0) + beta0 * quad)


def _kl_parameters(p):
    """sum_k KL(q(mu_k, Lambda_k) || p(mu_k, Lambda_k)) for the posterior ``p``
    (a dict of float64 attributes; see evidence_lower_bound)."""
    cov, d = p["covariance_type"], p["means"].shape[1]
    beta, beta0, nu, nu0 = p["mean_precision"], p["beta0"], p["dof"], p["nu0"]
    diff = p["means"] - p["mean_prior"]
    prec, psi0 = p["precisions"], p["covariance_prior"]
    if cov in ("full", "tied"):
        quad = np.einsum("ki,kij,kj->k", diff, np.broadcast_to(prec, (len(beta), d, d)), diff)
        kl = np.sum(_kl_gaussian_means(beta, beta0, quad, d))
        log_det_prec = np.atleast_1d(_log_det_from_cholesky(p["precisions_cholesky"], cov, d))
        prec = prec.reshape(-1, d, d)
        nus = np.atleast_1d(nu)
        log_det_psi0 = np.linalg.slogdet(psi0)[1]
        for j in range(prec.shape[0]):  # K Wisharts, or the one of 'tied'
            log_det_w = log_det_prec[j] - d * np.log(nus[j])
            kl += (
                _log_wishart_norm(log_det_w, nus[j], d) - _log_wishart_norm(-log_det_psi0, nu0, d)
                + 0.5 * (nus[j] - nu0) * _expected_log_det_wishart(log_det_w, nus[j], d)
                - 0.5 * nus[j] * d + 0.5 * np.sum(psi0 * prec[j])
            )
        return float(kl)
    if cov == "diag":
        kl_means = np.sum(_kl_gaussian_means(beta[:, None], beta0, diff * diff * prec, 1))
        kl_prec = _kl_gamma(0.5 * nu[:, None], 0.5 * nu[:, None] * p["covariances"],
                            0.5 * nu0, 0.5 * psi0[None, :])
        return float(kl_means + np.sum(kl_prec))
    quad = prec * np.sum(diff * diff, axis=1)
    kl_means = np.sum(_kl_gaussian_means(beta, beta0, quad, d))
    kl_prec = _kl_gamma(0.5 * d * nu, 0.5 * d * nu * p["covariances"], 0.5 * d * nu0, 0.5 * d * psi0)
    return float(kl_means + np.sum(kl_prec))


def log_constant_correction(covariance_type, dof, d):
    """What to add to the E-step's constants c_k for the model's E[log |Lambda_k|]:
    the E-step (scikit-learn's) uses the Wishart's sum_l psi((nu_k - l) / 2) for
    every covariance type; the diag and spherical models above give
    D psi(nu_k / 2) and D (psi(D nu_k / 2) - log D)."""
    nu = np.atleast_1d(np.asarray(dof, dtype=np.float64))
    wishart = np.array([np.sum(digamma(0.5 * (v - np.arange(d)))) for v in nu])
    if covariance_type == "diag":
        return 0.5 * (d * digamma(0.5 * nu) - wishart)
    if covariance_type == "spherical":
        return 0.5 * (d * (digamma(0.5 * d * nu) - np.log(d)) - wishart)
    return np.zeros_like(nu)


def evidence_lower_bound(p, data_term):
    """The ELBO of posterior ``p`` given the data term sum_i w_i log sum_k exp(rho_ik).

    ``p``: covariance_type, weight_concentration, prior_type, gamma0 and the
    float64 arrays means, covariances, precisions, precisions_cholesky,
    mean_precision, dof, with the priors beta0, mean_prior, nu0,
    covariance_prior.
    """
    kl_w = _kl_weights(p["weight_concentration"], p["prior_type"], p["gamma0"])
    with np.errstate(divide="ignore"):  # a singular prior: KL = inf, the bound -inf
        return float(data_term - kl_w - _kl_parameters(p))


# ------------------------------------------------------------- predictive


def _inverse_factor(psi):
    """U with U U^T = psi^-1 (U = L^-T for psi = L L^T), or None when psi is
    not positive definite."""
    try:
        lower = np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:
        return None
    return np.linalg.inv(lower).T


def _student_t_components(p):
    """The predictive's components: (log weights, dof, means, factors),
    the factors those of the t's inverse scale (U U^T = Sigma_t^-1), per
    component; the prior predictive appended when mass is left past K."""
    cov, d = p["covariance_type"], p["means"].shape[1]
    weights, rest = expected_weights(p["weight_concentration"], p["prior_type"])
    beta = p["mean_precision"]
    nu = np.broadcast_to(p["dof"], beta.shape)
    means, chol = p["means"], p["precisions_cholesky"]
    beta0, nu0, psi0 = p["beta0"], p["nu0"], p["covariance_prior"]
    if cov in ("full", "tied"):
        dof = nu + 1.0 - d
        scale = np.sqrt(dof * beta / ((1.0 + beta) * nu))  # Sigma_t^-1 = scale^2 P_k
        factors = (chol if cov == "full" else chol[None]) * scale[:, None, None]
        prior_factor = _inverse_factor(psi0) if rest > 0.0 else None
        if prior_factor is not None:
            dof0 = nu0 + 1.0 - d
            factors = np.concatenate([factors, prior_factor[None] * np.sqrt(dof0 * beta0 / (1.0 + beta0))])
            dof = np.append(dof, dof0)
    elif cov == "diag":
        dof = nu.astype(np.float64)
        factors = chol * np.sqrt(beta / (1.0 + beta))[:, None]
        prior_factor = np.sqrt(beta0 * nu0 / ((1.0 + beta0) * psi0)) if np.all(psi0 > 0) else None
        if rest > 0.0 and prior_factor is not None:
            factors = np.vstack([factors, prior_factor])
            dof = np.append(dof, nu0)
    else:
        dof = d * nu
        factors = chol * np.sqrt(beta / (1.0 + beta))
        prior_factor = np.sqrt(beta0 * nu0 / ((1.0 + beta0) * psi0)) if psi0 > 0 else None
        if rest > 0.0 and prior_factor is not None:
            factors = np.append(factors, prior_factor)
            dof = np.append(dof, d * nu0)
    log_weights = np.log(weights)
    if prior_factor is None:  # a singular prior: its predictive is zero almost everywhere
        rest = 0.0
    if rest > 0.0:
        means = np.vstack([means, p["mean_prior"][None, :]])
        log_weights = np.append(log_weights, np.log(rest))
    return log_weights, dof, means, factors


def predictive_block(X, *, posterior, n_threads=None, out=None, check_finite=False):
    """log p(x | training data) for each row of X (a module-level function:
    Dask pickles it), computed component by component in float64."""
    del n_threads
    X = np.asarray(X)
    if check_finite and not np.isfinite(X).all():
        from . import _core

        raise _core.NonFiniteInput("X contains NaN or infinity")
    cov = posterior["covariance_type"]
    log_weights, dof, means, factors = _student_t_components(posterior)
    n, d = X.shape
    k = len(log_weights)
    if out is None:
        out = np.empty(n, dtype=np.float64)
    rows = max(1, (1 << 20) // max(k * d, 1))
    for start in range(0, n, rows):
        xb = np.asarray(X[start:start + rows], dtype=np.float64)
        logp = np.empty((xb.shape[0], k))
        for j in range(k):
            centred = xb - means[j]
            if cov == "diag":
                z2 = (centred * factors[j]) ** 2
                logp[:, j] = np.sum(
                    gammaln(0.5 * (dof[j] + 1.0)) - gammaln(0.5 * dof[j])
                    - 0.5 * (np.log(dof[j]) + _LOG_PI) + np.log(factors[j])
                    - 0.5 * (dof[j] + 1.0) * np.log1p(z2 / dof[j]),
                    axis=1,
                )
                continue
            if cov == "spherical":
                z2 = np.sum(centred * centred, axis=1) * factors[j] ** 2
                log_det = d * np.log(factors[j])
            else:
                z2 = np.sum((centred @ factors[j]) ** 2, axis=1)
                log_det = np.sum(np.log(np.diag(factors[j])))
            logp[:, j] = (
                gammaln(0.5 * (dof[j] + d)) - gammaln(0.5 * dof[j])
                - 0.5 * d * (np.log(dof[j]) + _LOG_PI) + log_det
                - 0.5 * (dof[j] + d) * np.log1p(z2 / dof[j])
            )
        logp += log_weights
        out[start:start + xb.shape[0]] = logsumexp(logp, axis=1)
    return out
