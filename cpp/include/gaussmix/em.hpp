// em.hpp -- the EM loop, with the M-step as a policy.
//
// Each iteration runs the fused E-step of the current parameters
// (estep.hpp) with the policy's constants c_k in the log-densities
//   l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2,
// which returns the statistics n_k, a_k, S_k and the mean log-likelihood
// (1 / sum_i w_i) sum_i w_i log sum_k exp(l_ik); then the policy's M-step and
// lower bound. It stops when the lower bound changes by less than tol.
// MaximumLikelihood is GaussianMixture's policy; a variational one runs
// through the same pass.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "data.hpp"
#include "estep.hpp"
#include "gaussian.hpp"
#include "parallel.hpp"
#include "suffstats.hpp"

namespace gaussmix {

// Result of an EM run from given starting parameters.
struct EMResult {
    MixtureParams params;
    std::vector<double> lower_bounds;  // the lower bound of each iteration
    index_t n_iter = 0;
    bool converged = false;
};

// em_fit takes what differs between estimators as a policy P, which supplies
//   void P::log_constants(const MixtureParams& p, std::vector<double>& c)
//       the K constants c_k of the E-step's log-densities for parameters p
//       (l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2, gaussian.hpp);
//   void P::m_step(const SuffStats& st, MixtureParams& next)
//       the parameters of the next E-step from this one's statistics (a
//       policy may keep state of its own, such as posterior parameters);
//   double P::lower_bound(const SuffStats& st, double mean_loglik)
//       the iteration's lower bound, after its M-step, from the E-step's
//       statistics and its weighted mean log-likelihood.

// Maximum likelihood (GaussianMixture): c_k = log pi_k + log det U_k
// - 0.5 D log 2pi, the M-step of suffstats.hpp, and the lower bound is the
// mean log-likelihood itself.
struct MaximumLikelihood {
    double reg_covar = 0.0;
    double eps = 0.0;  // machine epsilon of the data type (see m_step)

    void log_constants(const MixtureParams& p, std::vector<double>& c) const { c = mixture_log_constants(p); }
    void m_step(const SuffStats& st, MixtureParams& next) const {
        gaussmix::m_step(st, reg_covar, eps, false, next);
    }
    double lower_bound(const SuffStats&, double mean_loglik) const { return mean_loglik; }
};

// scikit-learn's EM loop: each iteration takes the E-step of the current
// parameters and the policy's M-step and lower bound; it stops when the lower
// bound changes by less than tol. `prev_lower_bound` is -inf for a fresh
// start, or the last lower bound for a warm start. With check_finite, the
// first E-step checks that X is finite (NonFiniteInput otherwise).
template <class T, class Policy, std::enable_if_t<std::is_class<Policy>::value, int> = 0>
EMResult em_fit(const DataView<T>& X, const MixtureParams& start, Policy& policy, double tol, index_t max_iter,
                double prev_lower_bound, int n_threads, bool check_finite = false) {
    EMResult res;
    res.params = start;
    double lb = prev_lower_bound;
    SuffStats st;
    std::vector<SuffStats> partials;
    std::vector<double> log_constants;
    detail::InterruptPoller poller;
    for (index_t it = 1; it <= max_iter; ++it) {
        check_interrupt(poller);
        const double prev = lb;
        EStepOutputs<T> out;
        out.check_finite = check_finite && it == 1;
        policy.log_constants(res.params, log_constants);
        const double mean_loglik =
            e_step<T>(X, res.params, out, &st, n_threads, &partials, log_constants.data());
        MixtureParams next;
        policy.m_step(st, next);
        res.params = std::move(next);
        lb = policy.lower_bound(st, mean_loglik);
        res.lower_bounds.push_back(lb);
        res.n_iter = it;
        const double change = lb - prev;
        if (std::abs(change) < tol) {
            res.converged = true;
            break;
        }
    }
    return res;
}

// Maximum-likelihood EM (GaussianMixture), each lower bound the mean
// log-likelihood of the iteration's E-step.
template <class T>
EMResult em_fit(const DataView<T>& X, const MixtureParams& start, double tol, index_t max_iter,
                double reg_covar, double prev_lower_bound, int n_threads, bool check_finite = false) {
    MaximumLikelihood policy{reg_covar, std::numeric_limits<T>::epsilon()};
    return em_fit<T>(X, start, policy, tol, max_iter, prev_lower_bound, n_threads, check_finite);
}

}  // namespace gaussmix
