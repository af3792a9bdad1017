// kde.hpp -- exact kernel density sums, in log space.
//
// A Gaussian KDE is a mixture of N equal-covariance components:
//   p(q) = sum_i w_i K_H(q - x_i) / sum_i w_i,
// with bandwidth matrix H = L L^T. Data and queries are whitened once by
// U = L^-T (the same precision Cholesky factor as the mixture engine), so the
// inner loop is an isotropic kernel of the whitened distance d = ||(q - x) U||.
// This header returns the unnormalised log-sum
//   S(q) = log sum_i w_i k(d_i)
// for the kernels of scikit-learn's KernelDensity, with unit bandwidth:
//   gaussian     k = exp(-d^2 / 2)          exponential  k = exp(-d)
//   tophat       k = [d < 1]                epanechnikov k = (1 - d^2) [d < 1]
//   linear       k = (1 - d) [d < 1]        cosine       k = cos(pi d / 2) [d < 1]
// The two log-domain kernels are summed with a running maximum (online
// log-sum-exp, per tile of training points), so S(q) is finite and exact far
// from the data where exp(-d^2/2) underflows. The normalisation (which depends
// on the kernel, H and sum w) is the caller's.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "em.hpp"
#include "parallel.hpp"
#include "vmath.hpp"

namespace gaussmix {

enum class Kernel { gaussian = 0, tophat, epanechnikov, exponential, linear, cosine };

inline Kernel kernel_from_string(const std::string& s) {
    if (s == "gaussian") return Kernel::gaussian;
    if (s == "tophat") return Kernel::tophat;
    if (s == "epanechnikov") return Kernel::epanechnikov;
    if (s == "exponential") return Kernel::exponential;
    if (s == "linear") return Kernel::linear;
    if (s == "cosine") return Kernel::cosine;
    throw std::invalid_argument("kernel must be one of gaussian, tophat, epanechnikov, exponential, linear, cosine; got '" + s + "'");
}

namespace detail {

constexpr index_t kKdeTile = 1024;  // training points per tile

// Whitened training set, feature-major (D x n_pad), and weights cast to T.
// Points are centred on the training mean before whitening, so that data far
// from the origin lose no digits when whitened query and training points are
// subtracted.
//
// A diagonal U (an isotropic or per-feature bandwidth: KernelDensity, and
// gaussian_kde in 1-D) is applied after subtracting raw coordinates instead,
// d^2 = sum_l ((x_l - q_l) s_l)^2, so clusters far apart relative to the
// bandwidth lose no digits either. (With a full U, whitened points of
// clusters far from the training mean keep about 16 - log10(distance / h)
// digits of their differences.)
template <class T>
struct WhitenedSet {
    index_t n = 0, d = 0, ld = 0;
    bool diagonal = false;
    std::vector<double> center;  // d
    std::vector<double> qu;      // d x d: what queries are multiplied by (U, or I when diagonal)
    std::vector<T> scale;        // d: the diagonal of U (diagonal case)
    std::vector<T> x;            // d x ld: centred (diagonal) or whitened points
    std::vector<T> w;            // ld (zero past n), or empty for unit weights
};

inline bool is_diagonal(const double* u, index_t d) {
    for (index_t i = 0; i < d; ++i)
        for (index_t j = 0; j < d; ++j)
            if (i != j && u[i * d + j] != 0.0) return false;
    return true;
}

// y = (x - c) U for one row x (U upper triangular, row-major D x D).
template <class T>
inline void whiten_row(const T* x, const double* c, const double* u, index_t d, double* y) {
    for (index_t j = 0; j < d; ++j) {
        double s = 0.0;
        for (index_t l = 0; l <= j; ++l) s += (static_cast<double>(x[l]) - c[l]) * u[l * d + j];
        y[j] = s;
    }
}

template <class T>
WhitenedSet<T> whiten_set(const DataView<T>& X, const double* u, int n_threads) {
    WhitenedSet<T> ws;
    ws.n = X.n;
    ws.d = X.d;
    ws.ld = (X.n + 15) / 16 * 16;
    DataView<T> unweighted = X;
    unweighted.weights = nullptr;
    ws.diagonal = is_diagonal(u, X.d);
    // The diagonal path subtracts raw coordinates (exact for nearby points
    // wherever they are); the general path centres before whitening.
    ws.center = ws.diagonal ? std::vector<double>(X.d, 0.0) : weighted_mean(unweighted, n_threads);
    ws.qu.assign(u, u + X.d * X.d);
    if (ws.diagonal) {  // centre only; the scale is applied per pair
        ws.scale.resize(X.d);
        std::fill(ws.qu.begin(), ws.qu.end(), 0.0);
        for (index_t l = 0; l < X.d; ++l) {
            ws.scale[l] = static_cast<T>(u[l * X.d + l]);
            ws.qu[l * X.d + l] = 1.0;
        }
    }
    u = ws.qu.data();
    ws.x.assign(ws.d * ws.ld, T(0));
    if (X.weights) {
        ws.w.assign(ws.ld, T(0));
        for (index_t i = 0; i < X.n; ++i) ws.w[i] = static_cast<T>(X.weights[i]);
    }
    const Partition part = make_partition(X.n, 4096, 64);
    parallel_for(part.n_chunks, threads_for(static_cast<double>(X.n * X.d * X.d), n_threads), [&](index_t c) {
        std::vector<double> y(X.d);
        for (index_t i = part.begin(c); i < part.end(c); ++i) {
            whiten_row(X.row(i), ws.center.data(), u, X.d, y.data());
            for (index_t l = 0; l < X.d; ++l) ws.x[l * ws.ld + i] = static_cast<T>(y[l]);
        }
    });
    return ws;
}

// Kernel value (compact kernels) from the squared whitened distance.
template <class T>
inline T compact_kernel(Kernel k, T d2) {
    const bool in = d2 < T(1);
    switch (k) {
        case Kernel::tophat: return in ? T(1) : T(0);
        case Kernel::epanechnikov: return in ? T(1) - d2 : T(0);
        case Kernel::linear: return in ? T(1) - std::sqrt(d2) : T(0);
        case Kernel::cosine: return in ? static_cast<T>(std::cos(1.5707963267948966 * std::sqrt(static_cast<double>(d2)))) : T(0);
        default: return T(0);
    }
}

// S(q) for queries [q0, q1) (rows of Q, not yet whitened). self_offset >= 0
// marks the queries as training points q0 + self_offset.. whose own term is
// left out (leave-one-out); -1 for none.
template <class T>
GAUSSMIX_MULTIVERSION void kde_rows(const WhitenedSet<T>& tr, const DataView<T>& Q, Kernel kernel,
                                    index_t q0, index_t q1, bool exclude_self, T* out) {
    // Queries are taken QB at a time: each training vector loaded feeds QB
    // independent squared-distance accumulators held in registers.
    constexpr index_t QB = 4;
    constexpr index_t W = 64 / sizeof(T);  // lanes of a 512-bit vector; ld is a multiple of 16
    const index_t D = tr.d, N = tr.n, ld = tr.ld;
    std::vector<double> qd(D);
    std::vector<T> qw(QB * D);
    std::vector<T> v(QB * kKdeTile);
    const bool log_domain = kernel == Kernel::gaussian || kernel == Kernel::exponential;
    const bool weighted = !tr.w.empty();
    constexpr T neg_inf = -std::numeric_limits<T>::infinity();
    for (index_t j0 = q0; j0 < q1; j0 += QB) {
        const index_t nq = std::min(QB, q1 - j0);
        for (index_t q = 0; q < QB; ++q) {
            // missing queries of a short group repeat the first (their sums are not stored)
            whiten_row(Q.row(j0 + (q < nq ? q : 0)), tr.center.data(), tr.qu.data(), D, qd.data());
            for (index_t l = 0; l < D; ++l) qw[q * D + l] = static_cast<T>(qd[l]);
        }
        double m[QB], s[QB];
        for (index_t q = 0; q < QB; ++q) {
            m[q] = -std::numeric_limits<double>::infinity();  // running max (log domain)
            s[q] = 0.0;                                       // running sum
        }
        for (index_t t0 = 0; t0 < N; t0 += kKdeTile) {
            const index_t nt = std::min(kKdeTile, N - t0);
            // squared whitened distances of the QB queries to the tile
            for (index_t i0 = 0; i0 < nt; i0 += W) {
                T acc[QB][W] = {};
                for (index_t l = 0; l < D; ++l) {
                    const T* __restrict xl = tr.x.data() + l * ld + t0 + i0;
                    const T sl = tr.diagonal ? tr.scale[l] : T(1);
                    T xv[W];
#pragma omp simd
                    for (index_t t = 0; t < W; ++t) xv[t] = xl[t];
                    for (index_t q = 0; q < QB; ++q) {
                        const T ql = qw[q * D + l];
#pragma omp simd
                        for (index_t t = 0; t < W; ++t) {
                            const T e = (xv[t] - ql) * sl;
                            acc[q][t] += e * e;
                        }
                    }
                }
                for (index_t q = 0; q < QB; ++q) {
                    T* __restrict vq = v.data() + q * kKdeTile + i0;
#pragma omp simd
                    for (index_t t = 0; t < W; ++t) vq[t] = acc[q][t];
                }
            }
            const T* __restrict wt = weighted ? tr.w.data() + t0 : nullptr;
            for (index_t q = 0; q < nq; ++q) {
                const index_t j = j0 + q;
                T* __restrict vb = v.data() + q * kKdeTile;
                const bool has_self = exclude_self && j >= t0 && j < t0 + nt;
                if (log_domain) {
                    if (kernel == Kernel::gaussian) {
#pragma omp simd
                        for (index_t i = 0; i < nt; ++i) vb[i] = T(-0.5) * vb[i];
                    } else {
#pragma omp simd
                        for (index_t i = 0; i < nt; ++i) vb[i] = -std::sqrt(vb[i]);
                    }
                    if (has_self) vb[j - t0] = neg_inf;
                    if (wt) {
                        // points of zero weight must not set the running maximum
#pragma omp simd
                        for (index_t i = 0; i < nt; ++i) vb[i] = wt[i] > T(0) ? vb[i] : neg_inf;
                    }
                    T tmax = neg_inf;
#pragma omp simd reduction(max : tmax)
                    for (index_t i = 0; i < nt; ++i) tmax = vb[i] > tmax ? vb[i] : tmax;
                    if (tmax == neg_inf) continue;
                    if (static_cast<double>(tmax) > m[q]) {
                        s[q] *= std::exp(m[q] - static_cast<double>(tmax));
                        m[q] = static_cast<double>(tmax);
                    }
                    const T mt = static_cast<T>(m[q]);
                    T ts = T(0);
                    if (wt) {
#pragma omp simd reduction(+ : ts)
                        for (index_t i = 0; i < nt; ++i) ts += wt[i] * vmath::exp_scalar(static_cast<T>(vb[i] - mt));
                    } else {
#pragma omp simd reduction(+ : ts)
                        for (index_t i = 0; i < nt; ++i) ts += vmath::exp_scalar(static_cast<T>(vb[i] - mt));
                    }
                    s[q] += static_cast<double>(ts);
                } else {
                    if (has_self) vb[j - t0] = T(2);  // outside the support
                    T ts = T(0);
                    if (kernel == Kernel::tophat || kernel == Kernel::epanechnikov) {
                        const bool epa = kernel == Kernel::epanechnikov;
#pragma omp simd reduction(+ : ts)
                        for (index_t i = 0; i < nt; ++i) {
                            const T k = vb[i] < T(1) ? (epa ? T(1) - vb[i] : T(1)) : T(0);
                            ts += (wt ? wt[i] : T(1)) * k;
                        }
                    } else {
                        for (index_t i = 0; i < nt; ++i) ts += (wt ? wt[i] : T(1)) * compact_kernel(kernel, vb[i]);
                    }
                    s[q] += static_cast<double>(ts);
                }
            }
        }
        for (index_t q = 0; q < nq; ++q)
            out[j0 + q] = static_cast<T>(log_domain ? m[q] + std::log(s[q]) : std::log(s[q]));
    }
}

}  // namespace detail

// out[j] = log sum_i w_i k(||(q_j - x_i) U||) for every row q_j of Q.
// With exclude_self, Q must be the training set and the i == j terms are left
// out (the leave-one-out sums).
template <class T>
void kde_log_sum(const DataView<T>& train, const DataView<T>& Q, const double* u, Kernel kernel, bool exclude_self,
                 T* out, int n_threads) {
    if (train.d != Q.d) throw std::invalid_argument("queries and training data differ in the number of features");
    if (exclude_self && Q.n != train.n)
        throw std::invalid_argument("leave-one-out sums need the training set as queries");
    const detail::WhitenedSet<T> tr = detail::whiten_set(train, u, n_threads);
    const index_t M = Q.n;
    const index_t per = 16;
    const index_t n_blocks = (M + per - 1) / per;
    const double work = static_cast<double>(M) * static_cast<double>(train.n) * static_cast<double>(train.d + 10);
    parallel_for(n_blocks, threads_for(work, n_threads), [&](index_t b) {
        detail::kde_rows<T>(tr, Q, kernel, b * per, std::min(M, (b + 1) * per), exclude_self, out);
    });
}

}  // namespace gaussmix
