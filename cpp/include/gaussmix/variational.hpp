// variational.hpp -- variational Bayes for a Gaussian mixture, as an M-step
// policy of em_fit (em.hpp).
//
// The posterior (Bishop, PRML 10.2; Blei & Jordan, Bayesian Analysis 1(1),
// 2006, for the stick-breaking Dirichlet process) is updated from the E-step's
// statistics through their Gaussian estimates N_k, xbar_k, S_k
// (gaussian_estimates, suffstats.hpp), in scikit-learn's parametrisation:
//   weights:   Dirichlet a_k = gamma_0 + N_k, or Beta(1 + N_k, gamma_0 + sum_{j>k} N_j)
//   means:     beta_k = beta_0 + N_k, m_k = (beta_0 m_0 + N_k xbar_k) / beta_k
//   Wishart:   nu_k = nu_0 + N_k, W_k^-1 = W_0^-1 + N_k S_k
//                + (N_k beta_0 / beta_k)(xbar_k - m_0)(xbar_k - m_0)^T,
// the covariance stored as W_k^-1 / nu_k with U_k its precision factor. The
// E-step's log-densities are c_k - 0.5 ||(x - m_k)^T U_k||^2 with
//   c_k = E[log pi_k] + log det U_k - 0.5 D (log 2pi + log nu_k)
//         + 0.5 (E[log |Lambda_k|] - D / beta_k),
//   E[log |Lambda_k|] = D log 2 + sum_{l<D} psi((nu_k - l) / 2) + log |W_k|.
// The lower bound is scikit-learn's (constant terms dropped): the entropy of
// the responsibilities minus the log-normalisers of the Wishart, Dirichlet and
// Gaussian posteriors. The entropy needs no per-sample pass: with
// l_ik = c_k - q_ik / 2,
//   sum_i w_i sum_k r_ik log r_ik = sum_k (c_k N_k - tr(P_k S_k) / 2) - sum_i w_i log sum_k e^{l_ik},
// S_k the statistics' second moments around the E-step's means and
// P_k = U_k U_k^T.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "gaussian.hpp"
#include "suffstats.hpp"

namespace gaussmix {

// The digamma function psi(x) for x > 0: the recurrence psi(x) = psi(x + 1)
// - 1 / x up to x >= 10, then the asymptotic series with the Bernoulli
// numbers up to B_14 (its next term is below 1e-17 there). NaN for x <= 0
// or NaN (the posterior's arguments are positive; this keeps the recurrence
// finite whatever it is given).
inline double digamma(double x) {
    if (!(x > 0.0)) return std::numeric_limits<double>::quiet_NaN();
    double shift = 0.0;
    while (x < 10.0) {
        shift -= 1.0 / x;
        x += 1.0;
    }
    const double z = 1.0 / (x * x);
    const double series =
        z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * (1.0 / 132 - z * (691.0 / 32760 - z / 12))))));
    return shift + std::log(x) - 0.5 / x - series;
}

// log B(a, b) = log Gamma(a) + log Gamma(b) - log Gamma(a + b).
inline double log_beta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

// The priors, as scikit-learn names them (its trailing-underscore values).
struct VariationalPrior {
    bool dirichlet_process = true;
    double weight_concentration = 1.0;  // gamma_0
    double mean_precision = 1.0;        // beta_0
    std::vector<double> mean;           // m_0, D
    double dof = 1.0;                   // nu_0
    std::vector<double> covariance;     // W_0^-1: D x D (full, tied), D (diag), 1 (spherical)
};

// The posterior beyond the mixture parameters (means, covariances, factors).
struct VariationalState {
    std::vector<double> conc_a, conc_b;  // K: Dirichlet a_k, or the Beta pairs
    std::vector<double> mean_precision;  // beta_k
    std::vector<double> dof;             // nu_k (one shared value for tied, repeated K times)
};

// Variational Bayes as em_fit's policy (see em.hpp). `state` holds the
// posterior of the parameters em_fit passes to log_constants.
struct VariationalBayes {
    VariationalPrior prior;
    double reg_covar = 0.0;
    double eps = 0.0;  // machine epsilon of the data type
    VariationalState state;
    // The E-step's constants and factors, for the entropy of its
    // responsibilities; the new parameters' log det U_k - 0.5 D log nu_k.
    std::vector<double> estep_c, estep_u, new_log_det;

    // E[log pi_k] under the posterior of the weights.
    std::vector<double> expected_log_weights() const {
        const index_t K = static_cast<index_t>(state.conc_a.size());
        std::vector<double> out(K);
        if (prior.dirichlet_process) {
            double before = 0.0;  // sum_{j<k} (psi(b_j) - psi(a_j + b_j))
            for (index_t k = 0; k < K; ++k) {
                const double dsum = digamma(state.conc_a[k] + state.conc_b[k]);
                out[k] = digamma(state.conc_a[k]) - dsum + before;
                before += digamma(state.conc_b[k]) - dsum;
            }
        } else {
            double total = 0.0;
            for (double a : state.conc_a) total += a;
            const double dtotal = digamma(total);
            for (index_t k = 0; k < K; ++k) out[k] = digamma(state.conc_a[k]) - dtotal;
        }
        return out;
    }

    // log det U_k - 0.5 D log nu_k for each component.
    std::vector<double> normalised_log_det(const MixtureParams& p) const {
        std::vector<double> ld = log_det_precision_chol(p);
        for (index_t k = 0; k < p.k; ++k) ld[k] -= 0.5 * static_cast<double>(p.d) * std::log(state.dof[k]);
        return ld;
    }

    void log_constants(const MixtureParams& p, std::vector<double>& c) {
        const double D = static_cast<double>(p.d);
        const std::vector<double> elog = expected_log_weights();
        const std::vector<double> ld = normalised_log_det(p);
        c.resize(p.k);
        for (index_t k = 0; k < p.k; ++k) {
            double log_lambda = D * std::log(2.0);
            for (index_t l = 0; l < p.d; ++l) log_lambda += digamma(0.5 * (state.dof[k] - static_cast<double>(l)));
            c[k] = elog[k] + ld[k] - 0.5 * D * kLog2Pi + 0.5 * (log_lambda - D / state.mean_precision[k]);
        }
        estep_c = c;
        estep_u = p.prec_chol;
    }

    // The posterior of statistics st: next's means, covariances, factors and
    // weights (scikit-learn's weights_), and `state`. Throws
    // IllDefinedCovariance when a covariance is not positive definite.
    void m_step(const SuffStats& st, MixtureParams& next) {
        const index_t K = st.k, D = st.d;
        const GaussianEstimates g = gaussian_estimates(st, reg_covar, eps);
        const std::vector<double>& nk = g.nk;
        next = MixtureParams(st.cov, K, D);
        state.conc_a.assign(K, 0.0);
        state.conc_b.assign(K, 0.0);
        if (prior.dirichlet_process) {
            double after = 0.0;  // sum_{j>k} N_j, summed from the last component
            for (index_t k = K - 1; k >= 0; --k) {
                state.conc_a[k] = 1.0 + nk[k];
                state.conc_b[k] = prior.weight_concentration + after;
                after += nk[k];
            }
        } else {
            for (index_t k = 0; k < K; ++k) state.conc_a[k] = prior.weight_concentration + nk[k];
        }
        const double beta0 = prior.mean_precision;
        state.mean_precision.resize(K);
        std::vector<double> diff(K * D);
        for (index_t k = 0; k < K; ++k) {
            state.mean_precision[k] = beta0 + nk[k];
            for (index_t l = 0; l < D; ++l) {
                const double xk = g.means[k * D + l];
                next.means[k * D + l] = (beta0 * prior.mean[l] + nk[k] * xk) / state.mean_precision[k];
                diff[k * D + l] = xk - prior.mean[l];
            }
        }
        wishart(g, diff, next);
        factor_covariances(st.cov, K, D, next.covariances.data(),
                           next.prec_chol.data(), eps > 1e-10);
        expected_weights(next.weights);
        new_log_det = normalised_log_det(next);
    }

    // nu_k and the covariances W_k^-1 / nu_k into next.covariances.
    void wishart(const GaussianEstimates& g, const std::vector<double>& diff, MixtureParams& next) {
        const index_t K = next.k, D = next.d;
        const std::vector<double>& nk = g.nk;
        const double beta0 = prior.mean_precision;
        const std::vector<double>& w0 = prior.covariance;
        std::vector<double>& cov = next.covariances;
        state.dof.resize(K);
        switch (next.cov) {
            case CovType::full:
                for (index_t k = 0; k < K; ++k) {
                    state.dof[k] = prior.dof + nk[k];
                    const double f = nk[k] * beta0 / state.mean_precision[k];
                    for (index_t l = 0; l < D; ++l)
                        for (index_t m = 0; m < D; ++m) {
                            const index_t i = (k * D + l) * D + m;
                            cov[i] = (w0[l * D + m] + nk[k] * g.covariances[i] + f * (diff[k * D + l] * diff[k * D + m])) /
                                     state.dof[k];
                        }
                }
                break;
            case CovType::tied: {
                double total = 0.0;
                for (index_t k = 0; k < K; ++k) total += nk[k];
                const double dof = prior.dof + total / static_cast<double>(K);
                std::fill(state.dof.begin(), state.dof.end(), dof);
                for (index_t l = 0; l < D; ++l)
                    for (index_t m = 0; m < D; ++m) {
                        double outer = 0.0;
                        for (index_t k = 0; k < K; ++k)
                            outer += nk[k] / state.mean_precision[k] * diff[k * D + l] * diff[k * D + m];
                        cov[l * D + m] = (w0[l * D + m] + g.covariances[l * D + m] * total / static_cast<double>(K) +
                                          beta0 / static_cast<double>(K) * outer) /
                                         dof;
                    }
                break;
            }
            case CovType::diag:
                for (index_t k = 0; k < K; ++k) {
                    state.dof[k] = prior.dof + nk[k];
                    const double f = beta0 / state.mean_precision[k];
                    for (index_t l = 0; l < D; ++l) {
                        const double d = diff[k * D + l];
                        cov[k * D + l] = (w0[l] + nk[k] * (g.covariances[k * D + l] + f * (d * d))) / state.dof[k];
                    }
                }
                break;
            case CovType::spherical:
                for (index_t k = 0; k < K; ++k) {
                    state.dof[k] = prior.dof + nk[k];
                    double sq = 0.0;
                    for (index_t l = 0; l < D; ++l) sq += diff[k * D + l] * diff[k * D + l];
                    const double f = beta0 / state.mean_precision[k];
                    cov[k] = (w0[0] + nk[k] * (g.covariances[k] + f * (sq / static_cast<double>(D)))) / state.dof[k];
                }
                break;
        }
    }

    // scikit-learn's weights_: the posterior means of the weights, normalised.
    void expected_weights(std::vector<double>& w) const {
        const index_t K = static_cast<index_t>(state.conc_a.size());
        w.assign(K, 0.0);
        double total = 0.0;
        if (prior.dirichlet_process) {
            double stick = 1.0;  // prod_{j<k} b_j / (a_j + b_j)
            for (index_t k = 0; k < K; ++k) {
                const double s = state.conc_a[k] + state.conc_b[k];
                w[k] = state.conc_a[k] / s * stick;
                stick *= state.conc_b[k] / s;
                total += w[k];
            }
        } else {
            for (index_t k = 0; k < K; ++k) total += state.conc_a[k];
            for (index_t k = 0; k < K; ++k) w[k] = state.conc_a[k];
        }
        for (auto& v : w) v /= total;
    }

    // sum_k tr(P_k S_k) with the E-step's factors (estep_u).
    double quadratic_term(const SuffStats& st) const {
        const index_t K = st.k, D = st.d;
        const double* u = estep_u.data();
        double q = 0.0;
        switch (st.cov) {
            case CovType::full:
            case CovType::tied: {
                const index_t nmat = st.cov == CovType::full ? K : 1;
                for (index_t k = 0; k < nmat; ++k) {
                    const double* uk = u + k * D * D;
                    const double* sk = st.s.data() + k * D * D;
                    for (index_t l = 0; l < D; ++l)
                        for (index_t m = 0; m < D; ++m) {
                            double p = 0.0;
                            for (index_t j = 0; j < D; ++j) p += uk[l * D + j] * uk[m * D + j];
                            q += p * sk[l * D + m];
                        }
                }
                break;
            }
            case CovType::diag:
                for (index_t i = 0; i < K * D; ++i) q += st.s[i] * u[i] * u[i];
                break;
            case CovType::spherical:
                for (index_t k = 0; k < K; ++k)
                    for (index_t l = 0; l < D; ++l) q += u[k] * u[k] * st.s[k * D + l];
                break;
        }
        return q;
    }

    // The lower bound after m_step(st, ...): the entropy of the E-step's
    // responsibilities (from st, estep_c and estep_u) and the normalisers of
    // the new posterior (state, new_log_det).
    double lower_bound(const SuffStats& st, double /* mean_loglik */) const {
        const index_t K = st.k, D = st.d;
        double c_n = 0.0;
        for (index_t k = 0; k < K; ++k) c_n += estep_c[k] * st.nk[k];
        const double entropy = -(c_n - 0.5 * quadratic_term(st) - st.loglik);
        const std::vector<double>& ld = new_log_det;
        double log_wishart = 0.0;
        const index_t n_wishart = st.cov == CovType::tied ? 1 : K;
        for (index_t k = 0; k < n_wishart; ++k) {
            const double dof = state.dof[k];
            double lg = 0.0;
            for (index_t l = 0; l < D; ++l) lg += std::lgamma(0.5 * (dof - static_cast<double>(l)));
            log_wishart -= dof * ld[k] + dof * static_cast<double>(D) * 0.5 * std::log(2.0) + lg;
        }
        if (st.cov == CovType::tied) log_wishart *= static_cast<double>(K);  // counted once per component
        double log_norm_weight = 0.0;
        if (prior.dirichlet_process) {
            for (index_t k = 0; k < K; ++k) log_norm_weight -= log_beta(state.conc_a[k], state.conc_b[k]);
        } else {
            double total = 0.0, lg = 0.0;
            for (index_t k = 0; k < K; ++k) {
                total += state.conc_a[k];
                lg += std::lgamma(state.conc_a[k]);
            }
            log_norm_weight = std::lgamma(total) - lg;
        }
        double log_beta_k = 0.0;
        for (index_t k = 0; k < K; ++k) log_beta_k += std::log(state.mean_precision[k]);
        return entropy - log_wishart - log_norm_weight - 0.5 * static_cast<double>(D) * log_beta_k;
    }
};

}  // namespace gaussmix
