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

#include "data.hpp"
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
// Coordinates up to this size (and isotropic scales s with s^2 in
// [1e-30, 1e30]) take the isotropic path, d^2 = s^2 sum_l (x_l - q_l)^2:
// there e^2 <= 4e100 and e^2 s^2 <= 4e130 stay far from overflow.
constexpr double kIsoRange = 1e50;

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
    bool isotropic = false;      // diagonal with one scale: d^2 = s^2 sum_l (x_l - q_l)^2
    std::vector<double> center;  // d
    std::vector<double> qu;      // d x d: what queries are multiplied by (U, or I when diagonal)
    std::vector<T> scale;        // d: the diagonal of U (diagonal case)
    simd::aligned_vector<T> x;   // d x ld: centred (diagonal) or whitened points
    simd::aligned_vector<T> w;   // ld (zero past n), or empty for unit weights
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
        // One scale applied after summing squares: only where neither e^2 nor
        // s^2 can overflow, or lose digits, where (e s)^2 would not (points
        // and queries within kIsoRange, see kde_rows).
        const double s0 = static_cast<double>(ws.scale[0]);
        ws.isotropic = std::all_of(ws.scale.begin(), ws.scale.end(), [&](T v) { return v == ws.scale[0]; }) &&
                       s0 * s0 >= 1e-30 && s0 * s0 <= 1e30;
    }
    u = ws.qu.data();
    ws.x.assign(ws.d * ws.ld, T(0));
    if (X.weights) {
        ws.w.assign(ws.ld, T(0));
        for (index_t i = 0; i < X.n; ++i) ws.w[i] = static_cast<T>(X.weights[i]);
    }
    if (ws.isotropic)
        for (index_t i = 0; i < X.n && ws.isotropic; ++i)
            for (index_t l = 0; l < X.d; ++l)
                if (!(std::abs(static_cast<double>(X.row(i)[l])) <= kIsoRange)) ws.isotropic = false;
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

// The log-domain kernels (gaussian, exponential) over one tile of nt <= kKdeTile
// training points starting at t0, for QB whitened queries qw (QB x D): the
// log-kernel values go to v (QB x kKdeTile) and their maximum, per query, to
// tmax, in one pass over the tile; a zero-weight point and the lanes past nt
// get -inf. Distances are summed QB queries at a time so each training
// vector loaded feeds QB accumulators in registers.
template <class T, int QB, bool ISO, int VB>
inline void log_kernel_tile(const WhitenedSet<T>& tr, const T* qw, bool gaussian, index_t t0, index_t nt,
                            T* __restrict v, T* tmax) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    constexpr T neg_inf = -std::numeric_limits<T>::infinity();
    const index_t D = tr.d, ld = tr.ld;
    const T s2 = ISO ? tr.scale[0] * tr.scale[0] : T(1);
    const T half_s2 = T(-0.5) * s2;  // gaussian: log k = -s^2 sum e^2 / 2
    const bool weighted = !tr.w.empty();
    V vmax[QB];
    for (int q = 0; q < QB; ++q) vmax[q] = simd::splat<T, W>(neg_inf);
    V lane;
    for (int t = 0; t < W; ++t) lane[t] = static_cast<T>(t);
    for (index_t i0 = 0; i0 < nt; i0 += W) {
        V acc[QB] = {};
        for (index_t l = 0; l < D; ++l) {
            const V xv = simd::load<T, W>(tr.x.data() + l * ld + t0 + i0);
            const T sl = (ISO || !tr.diagonal) ? T(1) : tr.scale[l];
#pragma GCC unroll 4
            for (int q = 0; q < QB; ++q) {
                if (ISO || !tr.diagonal) {
                    const V e = xv - qw[q * D + l];
                    acc[q] += e * e;
                } else {
                    const V e = (xv - qw[q * D + l]) * sl;
                    acc[q] += e * e;
                }
            }
        }
        // -inf for the lanes past the tile and the points of zero weight, 0 elsewhere
        const V ninf = simd::splat<T, W>(neg_inf);
        V pen = lane < static_cast<T>(nt - i0) ? V{} : ninf;
        if (weighted) pen = simd::load<T, W>(tr.w.data() + t0 + i0) > T(0) ? pen : ninf;
#pragma GCC unroll 4
        for (int q = 0; q < QB; ++q) {
            V val;
            if (gaussian) {
                val = acc[q] * half_s2;
            } else {
                for (int t = 0; t < W; ++t) val[t] = -std::sqrt(ISO ? acc[q][t] * s2 : acc[q][t]);
            }
            val += pen;
            vmax[q] = vmax[q] > val ? vmax[q] : val;
            simd::store<T, W>(v + q * kKdeTile + i0, val);
        }
    }
    for (int q = 0; q < QB; ++q) {
        T m = vmax[q][0];
        for (int t = 1; t < W; ++t) m = vmax[q][t] > m ? vmax[q][t] : m;
        tmax[q] = m;
    }
}

// sum_i w_i exp(v_i - m) over [0, n) rounded up to whole vectors (v is -inf
// past n), in T, lanes summed in order.
template <class T, int VB>
inline T exp_sum(const T* __restrict v, const T* __restrict w, index_t n, T m) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    V s = {}, s2 = {};  // two chains: even and odd vectors
    index_t i = 0;
    if (w) {
        for (; i + W < n; i += 2 * W) {
            s += simd::load<T, W>(w + i) * vmath::exp_vec<W>(simd::load<T, W>(v + i) - m);
            s2 += simd::load<T, W>(w + i + W) * vmath::exp_vec<W>(simd::load<T, W>(v + i + W) - m);
        }
        if (i < n) s += simd::load<T, W>(w + i) * vmath::exp_vec<W>(simd::load<T, W>(v + i) - m);
    } else {
        for (; i + W < n; i += 2 * W) {
            s += vmath::exp_vec<W>(simd::load<T, W>(v + i) - m);
            s2 += vmath::exp_vec<W>(simd::load<T, W>(v + i + W) - m);
        }
        if (i < n) s += vmath::exp_vec<W>(simd::load<T, W>(v + i) - m);
    }
    s += s2;
    T t = s[0];
    for (int k = 1; k < W; ++k) t += s[k];
    return t;
}

// S(q) for queries [q0, q1) (rows of Q, not yet whitened). self_offset >= 0
// marks the queries as training points q0 + self_offset.. whose own term is
// left out (leave-one-out); -1 for none.
template <class T, int VB>
inline void kde_rows_impl(const WhitenedSet<T>& tr, const DataView<T>& Q, Kernel kernel,
                                    index_t q0, index_t q1, bool exclude_self, T* out) {
    // Queries are taken QB at a time: each training vector loaded feeds QB
    // independent squared-distance accumulators held in registers.
    constexpr index_t QB = 4;
    constexpr index_t W = simd::lanes<T, VB>;  // lanes of a vector; ld is a multiple of 16
    const index_t D = tr.d, N = tr.n, ld = tr.ld;
    std::vector<double> qd(D);
    simd::aligned_vector<T> qw(QB * D);
    simd::aligned_vector<T> v(QB * kKdeTile);
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
        bool iso = tr.isotropic;
        for (index_t q = 0; q < QB * D; ++q) iso = iso && std::abs(static_cast<double>(qw[q])) <= kIsoRange;
        double m[QB], s[QB];
        for (index_t q = 0; q < QB; ++q) {
            m[q] = -std::numeric_limits<double>::infinity();  // running max (log domain)
            s[q] = 0.0;                                       // running sum
        }
        for (index_t t0 = 0; t0 < N; t0 += kKdeTile) {
            const index_t nt = std::min(kKdeTile, N - t0);
            const T* __restrict wt = weighted ? tr.w.data() + t0 : nullptr;
            if (log_domain) {
                T tmax[QB];
                if (iso)
                    log_kernel_tile<T, QB, true, VB>(tr, qw.data(), kernel == Kernel::gaussian, t0, nt, v.data(), tmax);
                else
                    log_kernel_tile<T, QB, false, VB>(tr, qw.data(), kernel == Kernel::gaussian, t0, nt, v.data(), tmax);
                for (index_t q = 0; q < nq; ++q) {
                    const index_t j = j0 + q;
                    T* __restrict vb = v.data() + q * kKdeTile;
                    if (exclude_self && j >= t0 && j < t0 + nt) {
                        vb[j - t0] = neg_inf;
                        T mq = neg_inf;
                        for (index_t i = 0; i < nt; ++i) mq = vb[i] > mq ? vb[i] : mq;
                        tmax[q] = mq;
                    }
                    if (tmax[q] == neg_inf) continue;
                    if (static_cast<double>(tmax[q]) > m[q]) {
                        s[q] *= std::exp(m[q] - static_cast<double>(tmax[q]));
                        m[q] = static_cast<double>(tmax[q]);
                    }
                    s[q] += static_cast<double>(exp_sum<T, VB>(vb, wt, nt, static_cast<T>(m[q])));
                }
                continue;
            }
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
            for (index_t q = 0; q < nq; ++q) {
                const index_t j = j0 + q;
                T* __restrict vb = v.data() + q * kKdeTile;
                const bool has_self = exclude_self && j >= t0 && j < t0 + nt;
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
        for (index_t q = 0; q < nq; ++q)
            out[j0 + q] = static_cast<T>(log_domain ? m[q] + std::log(s[q]) : std::log(s[q]));
    }
}

template <class T>
void kde_rows(const WhitenedSet<T>& tr, const DataView<T>& Q, Kernel kernel, index_t q0, index_t q1,
              bool exclude_self, T* out) {
    dispatch_isa([&](auto vb) { kde_rows_impl<T, decltype(vb)::value>(tr, Q, kernel, q0, q1, exclude_self, out); });
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
