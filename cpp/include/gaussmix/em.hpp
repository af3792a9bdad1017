// em.hpp -- the EM loop.
//
// Each iteration runs the fused E-step of the current parameters
// (estep.hpp), which returns the statistics n_k, a_k, S_k and the mean
// log-likelihood (1 / sum_i w_i) sum_i w_i log p(x_i), then the M-step
// (suffstats.hpp); it stops when the lower bound changes by less than tol.
#pragma once

#include <cmath>
#include <limits>
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
    std::vector<double> lower_bounds;  // mean log-likelihood of each E-step
    index_t n_iter = 0;
    bool converged = false;
};

// scikit-learn's EM loop: each iteration takes the E-step of the current
// parameters (its mean log-likelihood is that iteration's lower bound) and the
// M-step; it stops when |change| < tol. `prev_lower_bound` is -inf for a fresh
// start, or the last lower bound for a warm start. With check_finite, the
// first E-step checks that X is finite (NonFiniteInput otherwise).
template <class T>
EMResult em_fit(const DataView<T>& X, const MixtureParams& start, double tol, index_t max_iter,
                double reg_covar, double prev_lower_bound, int n_threads, bool check_finite = false) {
    EMResult res;
    res.params = start;
    const double eps = std::numeric_limits<T>::epsilon();
    double lb = prev_lower_bound;
    SuffStats st;
    std::vector<SuffStats> partials;
    detail::InterruptPoller poller;
    for (index_t it = 1; it <= max_iter; ++it) {
        check_interrupt(poller);
        const double prev = lb;
        EStepOutputs<T> out;
        out.check_finite = check_finite && it == 1;
        lb = e_step<T>(X, res.params, out, &st, n_threads, &partials);
        MixtureParams next;
        m_step(st, reg_covar, eps, false, next);
        res.params = std::move(next);
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

}  // namespace gaussmix
