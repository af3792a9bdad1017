"""BayesianGaussianMixture beyond scikit-learn: elbo_, the posterior
predictive density and n_active_components_.

The checks come from outside the code under test: the closed-form marginal
likelihood of a conjugate Normal-Wishart / Normal-Gamma model (Murphy,
"Conjugate Bayesian analysis of the Gaussian distribution", 2007), the exact
evidence of a small mixture summed over every assignment of its samples,
and SciPy's Student-t densities.
"""

import copy
import itertools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats
from scipy.special import betaln, gammaln, logsumexp, multigammaln
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from gaussmix import BayesianGaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def fit(X, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianGaussianMixture(**params).fit(X, sample_weight=sample_weight)


def blobs(n=300, d=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [9.0, -3.0, 2.0]])[:, :d]
    scales = [1.0, 0.5, 1.5]
    return np.concatenate([rng.normal(c, s, (n // 3, d)) for c, s in zip(centres, scales)])


def log_evidence(X, est):
    """log p(X) of one Gaussian under the estimator's fitted prior, in closed form."""
    cov = est.covariance_type
    n, d = X.shape
    beta0, m0, nu0 = est.mean_precision_prior_, est.mean_prior_, est.degrees_of_freedom_prior_
    psi0 = est.covariance_prior_
    if n == 0:
        return 0.0
    xbar = X.mean(axis=0)
    centred = X - xbar
    betan = beta0 + n
    shrink = beta0 * n / betan
    if cov in ("full", "tied"):
        psin = psi0 + centred.T @ centred + shrink * np.outer(xbar - m0, xbar - m0)
        nun = nu0 + n
        return (
            -0.5 * n * d * np.log(np.pi) + multigammaln(nun / 2, d) - multigammaln(nu0 / 2, d)
            + nu0 / 2 * np.linalg.slogdet(psi0)[1] - nun / 2 * np.linalg.slogdet(psin)[1]
            + d / 2 * np.log(beta0 / betan)
        )
    if cov == "diag":  # an independent Normal-Gamma per feature
        a0, b0 = nu0 / 2, np.asarray(psi0) / 2
        an = a0 + n / 2
        bn = b0 + 0.5 * np.sum(centred**2, axis=0) + 0.5 * shrink * (xbar - m0) ** 2
        return float(np.sum(
            gammaln(an) - gammaln(a0) + a0 * np.log(b0) - an * np.log(bn)
            + 0.5 * np.log(beta0 / betan) - 0.5 * n * np.log(2 * np.pi)
        ))
    # spherical: one precision for all features
    a0, b0 = d * nu0 / 2, d * psi0 / 2
    an = a0 + n * d / 2
    bn = b0 + 0.5 * np.sum(centred**2) + 0.5 * shrink * np.sum((xbar - m0) ** 2)
    return (
        gammaln(an) - gammaln(a0) + a0 * np.log(b0) - an * np.log(bn)
        + 0.5 * d * np.log(beta0 / betan) - 0.5 * n * d * np.log(2 * np.pi)
    )


# ------------------------------------------------------------------ elbo_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("given_priors", [False, True])
def test_one_component_elbo_is_the_exact_log_evidence(covariance_type, given_priors):
    # One component, a Dirichlet-distribution prior and no regularisation:
    # the variational posterior is the exact one, the bound the evidence.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3)) @ np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.6]]) + 3
    params = dict(
        n_components=1, covariance_type=covariance_type, reg_covar=0.0, tol=1e-12,
        weight_concentration_prior_type="dirichlet_distribution",
    )
    if given_priors:
        prior = {"full": np.diag([2.0, 1.0, 0.5]) + 0.1, "tied": np.eye(3) * 0.3,
                 "diag": np.array([0.5, 2.0, 1.0]), "spherical": 0.7}[covariance_type]
        params.update(mean_prior=[1.0, -1.0, 0.0], mean_precision_prior=0.05,
                      degrees_of_freedom_prior=7.5, covariance_prior=prior)
    est = fit(X, **params)
    assert_allclose(est.elbo_, log_evidence(X, est), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_elbo_bounds_the_exact_evidence_of_a_small_mixture(covariance_type, prior_type):
    # Ten samples, two components: the evidence is a sum over all 2^10
    # assignments z of p(z) p(X | z), each group's evidence in closed form.
    # The bound is below it, and above the term of the fit's own labels
    # (the bound of q(Z) fixed on them, with the exact posterior given Z).
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 1, (5, 2)), rng.normal(6, 1, (5, 2))])
    est = fit(X, n_components=2, covariance_type=covariance_type, tol=1e-10, max_iter=500,
              weight_concentration_prior_type=prior_type, weight_concentration_prior=0.8)
    gamma = est.weight_concentration_prior_

    def log_joint(z):
        n1, n2 = np.sum(z == 0), np.sum(z == 1)
        if prior_type == "dirichlet_process":  # two sticks of Beta(1, gamma)
            log_pz = betaln(1 + n1, gamma + n2) + betaln(1 + n2, gamma) - 2 * betaln(1, gamma)
        else:
            log_pz = (gammaln(2 * gamma) - gammaln(len(X) + 2 * gamma)
                      + gammaln(n1 + gamma) + gammaln(n2 + gamma) - 2 * gammaln(gamma))
        return log_pz + log_evidence(X[z == 0], est) + log_evidence(X[z == 1], est)

    exact = logsumexp([log_joint(np.array(z)) for z in itertools.product([0, 1], repeat=len(X))])
    assert log_joint(est.predict(X)) - 1e-9 <= est.elbo_ <= exact + 1e-9
    assert exact - est.elbo_ < 3.0


def test_elbo_compares_numbers_of_components():
    X = blobs(d=3)
    elbo = {k: fit(X, n_components=k, random_state=0,
                   weight_concentration_prior_type="dirichlet_distribution").elbo_
            for k in (1, 2, 3)}
    assert elbo[3] > elbo[2] + 50 > elbo[1] + 100


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weighted_elbo_and_predictive_equal_repeated_rows(covariance_type):
    X = blobs(n=90)
    w = np.random.default_rng(3).integers(0, 4, len(X))
    # both from the same start (on the repeated rows), then iterated
    start = fit(np.repeat(X, w, axis=0), n_components=3, covariance_type=covariance_type,
                random_state=0, init_params="random_from_data", max_iter=0)
    repeated = copy.deepcopy(start).set_params(warm_start=True, max_iter=20)
    weighted = copy.deepcopy(start).set_params(warm_start=True, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        repeated.fit(np.repeat(X, w, axis=0))
        weighted.fit(X, sample_weight=w.astype(float))
    queries = X[:7] + 0.3
    assert_allclose(weighted.elbo_, repeated.elbo_, rtol=1e-10)
    assert_allclose(weighted.score_samples_predictive(queries),
                    repeated.score_samples_predictive(queries), rtol=1e-10)
    assert weighted.n_active_components_ == repeated.n_active_components_


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_memmap_and_chunks_give_the_in_memory_elbo(covariance_type, tmp_path):
    X = blobs(n=600, d=3)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    params = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=30)
    ref = fit(X, **params)
    from_mm = fit(np.memmap(path, dtype=np.float64, mode="r", shape=X.shape), **params)
    est = BayesianGaussianMixture(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit_chunks([X[:250], X[250:]])
    for got in (from_mm, est):
        assert_allclose(got.elbo_, ref.elbo_, rtol=1e-10)
    assert_allclose(from_mm.score_samples_predictive(np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)),
                    ref.score_samples_predictive(X), rtol=1e-12)


def test_float32_elbo_agrees_with_float64():
    X = blobs(d=3)
    params = dict(n_components=3, random_state=0)
    assert_allclose(fit(X.astype(np.float32), **params).elbo_, fit(X, **params).elbo_, rtol=1e-5)


# ---------------------------------------------------------- predictive


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_component_predictive_is_the_evidence_ratio(covariance_type):
    # p(x | X) = p(X, x) / p(X) for the exact posterior of one component.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2)) * [1.0, 2.0] - 1
    est = fit(X, n_components=1, covariance_type=covariance_type, reg_covar=0.0,
              weight_concentration_prior_type="dirichlet_distribution")
    queries = np.array([[0.0, 0.0], [-1.0, -1.0], [4.0, -6.0], [30.0, 40.0]])
    expected = [log_evidence(np.vstack([X, q]), est) - log_evidence(X, est) for q in queries]
    assert_allclose(est.score_samples_predictive(queries), expected, rtol=1e-10)


def student_t_mixture(est, queries):
    """The predictive from SciPy's t densities and the posterior's attributes."""
    cov, d = est.covariance_type, est.means_.shape[1]
    beta = est.mean_precision_
    nu = np.broadcast_to(est.degrees_of_freedom_, beta.shape)
    if est.weight_concentration_prior_type == "dirichlet_process":
        a, b = est.weight_concentration_
        weights = [a[k] / (a[k] + b[k]) * np.prod(b[:k] / (a[:k] + b[:k])) for k in range(len(a))]
        rest = np.prod(b / (a + b))
    else:
        weights = est.weight_concentration_ / est.weight_concentration_.sum()
        rest = 0.0
    components = []
    for k in range(len(beta)):
        scale = (1 + beta[k]) / beta[k]
        if cov in ("full", "tied"):
            c = est.covariances_[k] if cov == "full" else est.covariances_
            dof = nu[k] + 1 - d
            components.append(stats.multivariate_t(est.means_[k], scale * nu[k] / dof * c, df=dof).logpdf)
        elif cov == "diag":
            components.append(lambda x, k=k, s=scale: np.sum(stats.t.logpdf(
                x, df=nu[k], loc=est.means_[k], scale=np.sqrt(s * est.covariances_[k])), axis=-1))
        else:
            components.append(stats.multivariate_t(
                est.means_[k], scale * est.covariances_[k] * np.eye(d), df=d * nu[k]).logpdf)
    logs = [np.log(w) + f(queries) for w, f in zip(weights, components)]
    if rest > 0:  # the prior predictive takes the mass past the last stick
        beta0, m0, nu0, psi0 = (est.mean_precision_prior_, est.mean_prior_,
                                est.degrees_of_freedom_prior_, est.covariance_prior_)
        s0 = (1 + beta0) / beta0
        if cov in ("full", "tied"):
            prior = stats.multivariate_t(m0, s0 / (nu0 + 1 - d) * psi0, df=nu0 + 1 - d).logpdf(queries)
        elif cov == "diag":
            prior = np.sum(stats.t.logpdf(queries, df=nu0, loc=m0, scale=np.sqrt(s0 * psi0 / nu0)), axis=-1)
        else:
            prior = stats.multivariate_t(m0, s0 * psi0 / nu0 * np.eye(d), df=d * nu0).logpdf(queries)
        logs.append(np.log(rest) + prior)
    return logsumexp(logs, axis=0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_predictive_is_the_student_t_mixture(covariance_type, prior_type):
    X = blobs(n=150, d=3)
    est = fit(X, n_components=4, covariance_type=covariance_type, random_state=0,
              weight_concentration_prior_type=prior_type)
    queries = np.concatenate([X[::10], X[:5] * 3.0, [[100.0, -100.0, 0.0]]])
    assert_allclose(est.score_samples_predictive(queries), student_t_mixture(est, queries), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predictive_integrates_to_one(covariance_type):
    # One feature, so the integral over the line is a quadrature; the
    # Dirichlet process leaves mass to the heavy-tailed prior predictive.
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(-3, 0.5, (40, 1)), rng.normal(2, 1.0, (25, 1))])
    est = fit(X, n_components=3, covariance_type=covariance_type, random_state=0)

    def density(x):
        return float(np.exp(est.score_samples_predictive(np.array([[x]]))[0]))

    total = sum(integrate.quad(density, lo, hi, limit=200, epsabs=1e-12)[0]
                for lo, hi in [(-np.inf, -10), (-10, 10), (10, np.inf)])
    assert_allclose(total, 1.0, rtol=1e-6)


def test_predictive_rejects_bad_input():
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture().score_samples_predictive(np.zeros((2, 2)))
    est = fit(blobs(n=60), n_components=2, random_state=0)
    with pytest.raises(ValueError, match="features"):
        est.score_samples_predictive(np.zeros((2, 3)))
    bad = np.zeros((3, 2))
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.score_samples_predictive(bad)
    before = bad.copy()
    with pytest.raises(ValueError):
        est.score_samples_predictive(bad)
    assert_allclose(bad, before, equal_nan=True)


# ------------------------------------------------- n_active_components_


def test_active_components_are_those_with_a_sample_or_more():
    X = blobs(n=300, d=2)
    est = fit(X, n_components=8, random_state=0, weight_concentration_prior=1e-3)
    counts = est.weight_concentration_[0] - 1.0  # N_k under the stick-breaking posterior
    assert est.n_active_components_ == np.sum(counts >= 1.0) == 3
    finite = fit(X, n_components=8, random_state=0, weight_concentration_prior=1e-3,
                 weight_concentration_prior_type="dirichlet_distribution")
    counts = finite.weight_concentration_ - finite.weight_concentration_prior_
    assert finite.n_active_components_ == np.sum(counts >= 1.0)
