// capi.hpp -- the engine for compiled callers: plain pointers and sizes,
// C-contiguous row-major float64 arrays, a status code instead of an
// exception, callable without the GIL (gaussmix/capi.pxd declares these for
// Cython; gaussmix.get_include() is the include directory).
//
//   mixture_e_step   log p(x_i) = log sum_k pi_k N(x_i | mu_k, Sigma_k) and
//                    the responsibilities r_ik, in log space (estep.hpp)
//   kde_log_sum      out_j = log sum_i w_i k(||(q_j - x_i) U||), the
//                    unnormalised log kernel sums (kde.hpp)
//
// Parameters are scikit-learn's: covariance types 0 full, 1 tied, 2 diag,
// 3 spherical, with precisions_cholesky_ of the shape GaussianMixture gives
// it; kernels 0 gaussian, 1 tophat, 2 epanechnikov, 3 exponential,
// 4 linear, 5 cosine. Build with -DGAUSSMIX_OPENMP -fopenmp for threads.
#pragma once

#include <cstdint>
#include <exception>

#include "estep.hpp"
#include "kde.hpp"

namespace gaussmix::capi {

enum Status : int {
    ok = 0,
    bad_argument = 1,  // a size, type code or thread count out of range
    not_finite = 2,    // X holds an infinity or a NaN
    failed = 3,        // anything else (out of memory)
};

inline int mixture_e_step(const double* X, std::int64_t n, std::int64_t d, int covariance_type, std::int64_t k,
                          const double* weights, const double* means, const double* precisions_cholesky,
                          double* log_prob_norm, double* resp, int n_threads) noexcept {
    if (!X || n < 0 || d < 1 || k < 1 || covariance_type < 0 || covariance_type > 3 || !weights || !means ||
        !precisions_cholesky || n_threads < 1)
        return bad_argument;
    try {
        const CovType cov = static_cast<CovType>(covariance_type);
        MixtureParams p(cov, k, d);
        std::copy(weights, weights + k, p.weights.begin());
        std::copy(means, means + k * d, p.means.begin());
        std::copy(precisions_cholesky, precisions_cholesky + p.prec_chol.size(), p.prec_chol.begin());
        DataView<double> v;
        v.x = X;
        v.n = n;
        v.d = d;
        v.row_stride = d;
        EStepOutputs<double> out;
        out.log_prob_norm = log_prob_norm;
        out.resp = resp;
        out.check_finite = true;
        e_step<double>(v, p, out, nullptr, n_threads);
        return ok;
    } catch (const NonFiniteInput&) {
        return not_finite;
    } catch (const std::invalid_argument&) {
        return bad_argument;
    } catch (...) {
        return failed;
    }
}

inline int kde_log_sum(const double* train, const double* train_weight, std::int64_t n, std::int64_t d,
                       const double* queries, std::int64_t m, const double* whiten, int kernel, double* out,
                       int n_threads) noexcept {
    if (!train || !queries || !whiten || !out || n < 1 || m < 0 || d < 1 || kernel < 0 || kernel > 5 ||
        n_threads < 1)
        return bad_argument;
    try {
        DataView<double> tv;
        tv.x = train;
        tv.n = n;
        tv.d = d;
        tv.row_stride = d;
        tv.weights = train_weight;
        DataView<double> qv = tv;
        qv.x = queries;
        qv.n = m;
        qv.weights = nullptr;
        gaussmix::kde_log_sum<double>(tv, qv, whiten, static_cast<Kernel>(kernel), false, out, n_threads);
        return ok;
    } catch (const std::invalid_argument&) {
        return bad_argument;
    } catch (...) {
        return failed;
    }
}

}  // namespace gaussmix::capi
