# cython: language_level=3
# The engine's entry points for compiled code (cpp/include/gaussmix/capi.hpp):
# plain pointers to C-contiguous float64 arrays, a status code (0: ok,
# 1: bad argument, 2: non-finite X, 3: failed), no GIL needed.
#
#     from gaussmix cimport capi
#     with nogil:
#         status = capi.mixture_e_step(&X[0, 0], n, d, 0, k, &w[0], &mu[0, 0],
#                                      &prec_chol[0, 0, 0], &logp[0], &resp[0, 0], 1)
#
# Build as C++17 with include_dirs=[gaussmix.get_include()] (and
# -DGAUSSMIX_OPENMP -fopenmp for threads). Covariance types: 0 full, 1 tied,
# 2 diag, 3 spherical; kernels: 0 gaussian, 1 tophat, 2 epanechnikov,
# 3 exponential, 4 linear, 5 cosine.

from libc.stdint cimport int64_t

cdef extern from "gaussmix/capi.hpp" namespace "gaussmix::capi" nogil:
    int mixture_e_step(const double* X, int64_t n, int64_t d, int covariance_type, int64_t k,
                       const double* weights, const double* means,
                       const double* precisions_cholesky, double* log_prob_norm,
                       double* resp, int n_threads)
    int kde_log_sum(const double* train, const double* train_weight, int64_t n, int64_t d,
                    const double* queries, int64_t m, const double* whiten, int kernel,
                    double* out, int n_threads)
