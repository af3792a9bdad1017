// suffstats.hpp -- sufficient statistics of a weighted mixture, and the M-step.
//
// With responsibilities r_ik, sample weights w_i and a shift s_k per component
// (the current means), a pass accumulates, in double,
//   n_k  = sum_i w_i r_ik
//   a_k  = sum_i w_i r_ik (x_i - s_k)
//   S_k  = sum_i w_i r_ik (x_i - s_k)(x_i - s_k)^T   (full; summed over k for
//          tied; its diagonal only for diag and spherical)
// and the weighted log-likelihood sum_i w_i log p(x_i). Statistics over
// disjoint data add up (operator+=), so one type serves a whole-array fit, a
// chunked fit and a distributed fit.
//
// The M-step follows scikit-learn (n_k gets 10 eps added; reg_covar is added
// to the diagonal after division by n_k) but centres everything on s_k
// instead of the origin, so data far from the origin (offset 1e6, spread 1)
// loses no digits:
//   d = a_k / (n_k + 10 eps),  mu_k = s_k + d,
//   Sigma_k = (S_k - a_k d^T - d a_k^T + n_k d d^T) / (n_k + 10 eps) + reg I.
// scikit-learn's mu_k = sum r x / (n_k + 10 eps) shrinks the mean towards the
// origin by 10 eps / n_k relative (60 units at 1e8 in float32 with n_k = 2,
// which then shows up in the covariance); mu_k = s_k + d is translation
// equivariant, and an empty component keeps its mean instead of jumping to 0.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "cholesky.hpp"
#include "gaussian.hpp"

namespace gaussmix {

// Raised when a component's covariance is not positive definite.
class IllDefinedCovariance : public std::domain_error {
   public:
    IllDefinedCovariance(index_t component, bool single_precision)
        : std::domain_error(message(component, single_precision)), component_(component) {}
    index_t component() const noexcept { return component_; }

   private:
    static std::string message(index_t component, bool single_precision) {
        std::string m =
            "Fitting the mixture model failed because some components have "
            "ill-defined empirical covariance (for instance caused by singleton "
            "or collapsed samples). Try to decrease the number of components, "
            "increase reg_covar, or scale the input data.";
        if (single_precision)
            m += " The numerical accuracy can also be improved by passing float64 data instead of float32.";
        m += " (The first such component is component " + std::to_string(component) + ".)";
        return m;
    }
    index_t component_;
};

struct SuffStats {
    CovType cov = CovType::full;
    index_t k = 0, d = 0;
    std::vector<double> shift;  // K x D
    std::vector<double> nk;     // K
    std::vector<double> a;      // K x D
    std::vector<double> s;      // full: K x D x D; tied: D x D; diag/spherical: K x D
    double sum_w = 0.0;         // sum of sample weights seen
    double loglik = 0.0;        // sum_i w_i log p(x_i)

    SuffStats() = default;
    SuffStats(CovType c, index_t k_, index_t d_) : cov(c), k(k_), d(d_), shift(k_ * d_), nk(k_), a(k_ * d_) {
        s.resize(second_moment_size(c, k_, d_));
    }

    static index_t second_moment_size(CovType c, index_t k, index_t d) {
        switch (c) {
            case CovType::full: return k * d * d;
            case CovType::tied: return d * d;
            default: return k * d;
        }
    }

    std::size_t bytes() const { return sizeof(double) * (nk.size() + a.size() + s.size() + shift.size()); }

    void clear() {
        std::fill(nk.begin(), nk.end(), 0.0);
        std::fill(a.begin(), a.end(), 0.0);
        std::fill(s.begin(), s.end(), 0.0);
        sum_w = 0.0;
        loglik = 0.0;
    }

    // Merge statistics of other data taken around the same shifts.
    SuffStats& operator+=(const SuffStats& o) {
        if (o.k != k || o.d != d || o.cov != cov || o.shift != shift)
            throw std::invalid_argument("SuffStats: merging statistics of different shapes or shifts");
        for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
        for (std::size_t i = 0; i < a.size(); ++i) a[i] += o.a[i];
        for (std::size_t i = 0; i < s.size(); ++i) s[i] += o.s[i];
        sum_w += o.sum_w;
        loglik += o.loglik;
        return *this;
    }
};

// ---------------------------------------------------------------- algebra
//
// Statistics of disjoint data around the same shifts add (operator+=). To
// combine statistics taken around different shifts (successive EM steps, an
// online fit's running statistics), both are first put in centred form:
// shift_k = the component's own mean m_k = s_k + a_k / n_k, a_k = 0 and
// S_k = sum_i w_i r_ik (x_i - m_k)(x_i - m_k)^T, so no raw second moment is
// formed and nothing cancels. Two centred statistics then merge by Chan,
// Golub and LeVeque's pairwise formula (The American Statistician 37(3), 1983):
//   n = n1 + n2,  m = (n1 m1 + n2 m2) / n,
//   S = S1 + S2 + (n1 n2 / n) (m1 - m2)(m1 - m2)^T.

// `st` around its own means (a component with n_k = 0 keeps its shift).
inline SuffStats centred(const SuffStats& st) {
    const index_t K = st.k, D = st.d;
    SuffStats out = st;
    std::vector<double> delta(K * D, 0.0);
    for (index_t j = 0; j < K; ++j) {
        const double n = st.nk[j] > 0.0 ? st.nk[j] : 1.0;
        for (index_t l = 0; l < D; ++l) {
            delta[j * D + l] = st.a[j * D + l] / n;
            out.shift[j * D + l] = st.shift[j * D + l] + delta[j * D + l];
            out.a[j * D + l] = 0.0;
        }
    }
    // S_k - a_k d_k^T, which equals the scatter around m_k (a_k = n_k d_k)
    switch (st.cov) {
        case CovType::full:
            for (index_t j = 0; j < K; ++j)
                for (index_t l = 0; l < D; ++l)
                    for (index_t m = 0; m < D; ++m)
                        out.s[(j * D + l) * D + m] -= st.a[j * D + l] * delta[j * D + m];
            break;
        case CovType::tied:
            for (index_t l = 0; l < D; ++l)
                for (index_t m = 0; m < D; ++m) {
                    double v = 0.0;
                    for (index_t j = 0; j < K; ++j) v += st.a[j * D + l] * delta[j * D + m];
                    out.s[l * D + m] -= v;
                }
            break;
        default:
            for (index_t i = 0; i < K * D; ++i) out.s[i] -= st.a[i] * delta[i];
            break;
    }
    return out;
}

// Every sum of `st` divided by its total weight sum_w (counts, sums,
// scatters, log-likelihood; sum_w becomes one); the means are unchanged.
// Statistics of no weight are returned as they are.
inline SuffStats normalised(const SuffStats& st) {
    SuffStats out = st;
    const double t = st.sum_w;
    if (!(t > 0.0)) return out;
    for (auto& v : out.nk) v /= t;
    for (auto& v : out.a) v /= t;
    for (auto& v : out.s) v /= t;
    out.sum_w = 1.0;
    out.loglik /= t;
    return out;
}

// (1 - eta) old + eta new for centred statistics: the pairwise merge of the
// two, weighted (stepwise EM's update of its running statistics).
inline SuffStats blend(const SuffStats& old, const SuffStats& nu, double eta) {
    if (old.k != nu.k || old.d != nu.d || old.cov != nu.cov)
        throw std::invalid_argument("SuffStats: blending statistics of different shapes");
    const index_t K = old.k, D = old.d;
    SuffStats out(old.cov, K, D);
    std::vector<double> c(K), diff(K * D);
    for (index_t j = 0; j < K; ++j) {
        const double n1 = (1.0 - eta) * old.nk[j], n2 = eta * nu.nk[j], n = n1 + n2;
        const double safe = n > 0.0 ? n : 1.0;
        const double f1 = n > 0.0 ? n1 / safe : 1.0;
        out.nk[j] = n;
        c[j] = n1 * n2 / safe;
        for (index_t l = 0; l < D; ++l) {
            const double m1 = old.shift[j * D + l], m2 = nu.shift[j * D + l];
            out.shift[j * D + l] = f1 * m1 + (1.0 - f1) * m2;
            diff[j * D + l] = m1 - m2;
        }
    }
    for (std::size_t i = 0; i < out.s.size(); ++i) out.s[i] = (1.0 - eta) * old.s[i] + eta * nu.s[i];
    switch (old.cov) {
        case CovType::full:
            for (index_t j = 0; j < K; ++j)
                for (index_t l = 0; l < D; ++l)
                    for (index_t m = 0; m < D; ++m)
                        out.s[(j * D + l) * D + m] += c[j] * diff[j * D + l] * diff[j * D + m];
            break;
        case CovType::tied:
            for (index_t l = 0; l < D; ++l)
                for (index_t m = 0; m < D; ++m) {
                    double v = 0.0;
                    for (index_t j = 0; j < K; ++j) v += diff[j * D + l] * c[j] * diff[j * D + m];
                    out.s[l * D + m] += v;
                }
            break;
        default:
            for (index_t i = 0; i < K * D; ++i) out.s[i] += c[i / D] * diff[i] * diff[i];
            break;
    }
    out.sum_w = (1.0 - eta) * old.sum_w + eta * nu.sum_w;
    out.loglik = (1.0 - eta) * old.loglik + eta * nu.loglik;
    return out;
}

// Centred statistics, normalised to a total weight of one, whose M-step gives
// back the parameters (weights, means, covariances) of `p` fitted with
// `reg_covar`: n_k = pi_k, shift_k = mu_k, S_k = pi_k (Sigma_k - reg I)
// (tied: Sigma - reg I; spherical: the variance on every diagonal entry).
inline SuffStats of_parameters(const MixtureParams& p, double reg_covar) {
    const index_t K = p.k, D = p.d;
    SuffStats out(p.cov, K, D);
    out.shift = p.means;
    out.nk = p.weights;
    out.sum_w = 1.0;
    for (index_t j = 0; j < K; ++j) {
        const double w = p.weights[j];
        switch (p.cov) {
            case CovType::full:
                for (index_t l = 0; l < D; ++l)
                    for (index_t m = 0; m < D; ++m)
                        out.s[(j * D + l) * D + m] =
                            (p.covariances[(j * D + l) * D + m] - (l == m ? reg_covar : 0.0)) * w;
                break;
            case CovType::tied:
                break;
            case CovType::diag:
                for (index_t l = 0; l < D; ++l) out.s[j * D + l] = (p.covariances[j * D + l] - reg_covar) * w;
                break;
            case CovType::spherical:
                for (index_t l = 0; l < D; ++l) out.s[j * D + l] = (p.covariances[j] - reg_covar) * w;
                break;
        }
    }
    if (p.cov == CovType::tied)
        for (index_t l = 0; l < D; ++l)
            for (index_t m = 0; m < D; ++m) out.s[l * D + m] = p.covariances[l * D + m] - (l == m ? reg_covar : 0.0);
    return out;
}

// The weighted Gaussian estimates of each component, as scikit-learn's
// _estimate_gaussian_parameters computes them (the M-step of maximum
// likelihood, and the statistics variational Bayes updates its posteriors
// from): n_k + 10 eps, the means s_k + d and the covariances
// (S_k - a_k d^T - d a_k^T + n_k d d^T) / (n_k + 10 eps) + reg I (tied: summed
// over k and divided by the total; spherical: the mean of the diagonal).
// `eps` is the machine epsilon of the data type. Nothing is factored: the
// covariances may be singular.
struct GaussianEstimates {
    std::vector<double> nk;           // K, with 10 eps added
    std::vector<double> means;        // K x D
    std::vector<double> covariances;  // cov_size(cov, K, D)
    double total = 0.0;               // sum of nk
};

inline GaussianEstimates gaussian_estimates(const SuffStats& st, double reg_covar, double eps) {
    const index_t K = st.k, D = st.d;
    GaussianEstimates g;
    g.nk.resize(K);
    g.means.resize(K * D);
    g.covariances.resize(cov_size(st.cov, K, D));
    for (index_t j = 0; j < K; ++j) {
        g.nk[j] = st.nk[j] + 10.0 * eps;
        g.total += g.nk[j];
    }
    std::vector<double> delta(K * D);
    for (index_t j = 0; j < K; ++j) {
        for (index_t l = 0; l < D; ++l) {
            const double sh = st.shift[j * D + l];
            const double dl = st.a[j * D + l] / g.nk[j];
            g.means[j * D + l] = sh + dl;
            delta[j * D + l] = dl;
        }
    }

    // Centred second moment of component j around its new mean, entry (l, m).
    auto centred = [&](index_t j, double s_lm, index_t l, index_t m) {
        const double* aj = st.a.data() + j * D;
        const double* dj = delta.data() + j * D;
        return s_lm - aj[l] * dj[m] - dj[l] * aj[m] + st.nk[j] * dj[l] * dj[m];
    };

    switch (st.cov) {
        case CovType::full: {
            for (index_t j = 0; j < K; ++j) {
                double* c = g.covariances.data() + j * D * D;
                const double* s = st.s.data() + j * D * D;
                for (index_t l = 0; l < D; ++l) {
                    for (index_t m = l; m < D; ++m) {
                        double v = centred(j, s[l * D + m], l, m) / g.nk[j];
                        c[l * D + m] = v;
                        c[m * D + l] = v;
                    }
                    c[l * D + l] += reg_covar;
                }
            }
            break;
        }
        case CovType::tied: {
            double* c = g.covariances.data();
            for (index_t l = 0; l < D; ++l) {
                for (index_t m = l; m < D; ++m) {
                    double v = st.s[l * D + m];
                    for (index_t j = 0; j < K; ++j) v += centred(j, 0.0, l, m);
                    v /= g.total;
                    c[l * D + m] = v;
                    c[m * D + l] = v;
                }
                c[l * D + l] += reg_covar;
            }
            break;
        }
        case CovType::diag:
        case CovType::spherical: {
            for (index_t j = 0; j < K; ++j) {
                double mean_var = 0.0;
                for (index_t l = 0; l < D; ++l) {
                    const double v = centred(j, st.s[j * D + l], l, l) / g.nk[j] + reg_covar;
                    if (st.cov == CovType::diag) g.covariances[j * D + l] = v;
                    mean_var += v;
                }
                if (st.cov == CovType::spherical) g.covariances[j] = mean_var / static_cast<double>(D);
            }
            break;
        }
    }
    return g;
}

// Precision Cholesky factors of covariances (cov_size(cov, K, D) values) into
// u. Throws IllDefinedCovariance naming the first component whose covariance
// is not positive definite (or not finite).
inline void factor_covariances(CovType cov, index_t K, index_t D, const double* covariances, double* u,
                               bool single_precision) {
    switch (cov) {
        case CovType::full:
            for (index_t j = 0; j < K; ++j)
                if (!precision_cholesky(covariances + j * D * D, u + j * D * D, D))
                    throw IllDefinedCovariance(j, single_precision);
            break;
        case CovType::tied:
            if (!precision_cholesky(covariances, u, D)) throw IllDefinedCovariance(0, single_precision);
            break;
        case CovType::diag:
        case CovType::spherical: {
            const index_t per = cov == CovType::diag ? D : 1;
            for (index_t i = 0; i < K * per; ++i) {
                const double v = covariances[i];
                if (!(v > 0.0) || !std::isfinite(v)) throw IllDefinedCovariance(i / per, single_precision);
                u[i] = 1.0 / std::sqrt(v);
            }
            break;
        }
    }
}

// The M-step of maximum likelihood: gaussian_estimates, the weights n_k / the
// total (the total sample weight at initialisation, as scikit-learn divides
// by n_samples there), and the precision factors. Throws IllDefinedCovariance.
inline void m_step(const SuffStats& st, double reg_covar, double eps, bool initial, MixtureParams& out) {
    const index_t K = st.k, D = st.d;
    GaussianEstimates g = gaussian_estimates(st, reg_covar, eps);
    out = MixtureParams(st.cov, K, D);
    const double denom = initial ? st.sum_w : g.total;
    for (index_t j = 0; j < K; ++j) out.weights[j] = g.nk[j] / denom;
    out.means = std::move(g.means);
    out.covariances = std::move(g.covariances);
    factor_covariances(st.cov, K, D, out.covariances.data(), out.prec_chol.data(), eps > 1e-10);
}

}  // namespace gaussmix
