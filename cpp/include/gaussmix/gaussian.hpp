// gaussian.hpp -- mixture parameters and the blocked log-density kernels.
//
// For component k with mean mu_k and precision Cholesky factor U_k (upper):
//   log pi_k + log N(x | mu_k, Sigma_k)
//     = c_k - 0.5 * ||(x - mu_k)^T U_k||^2,
//   c_k = log pi_k + log det U_k - 0.5 D log(2 pi)
// by default (maximum likelihood). A caller may give other constants: with
// variational Bayes, U_k the Cholesky factor of nu_k W_k and
//   c_k = E[log pi_k] + 0.5 E[log |Lambda_k|] - 0.5 D log(2 pi)
//         - 0.5 D / beta_k - 0.5 D log nu_k.
// full: U_k is D x D;  tied: one U for all k;  diag: U_k = diag(p_k);
// spherical: U_k = p_k I.
//
// Kernels work on a block of B rows stored transposed (D x B, "feature-major"),
// so every inner loop runs over samples with unit stride and vectorises, for
// D = 2 as well as D = 64, with no N x K x D temporary.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "simd.hpp"

namespace gaussmix {

enum class CovType { full = 0, tied = 1, diag = 2, spherical = 3 };

inline CovType cov_type_from_string(const std::string& s) {
    if (s == "full") return CovType::full;
    if (s == "tied") return CovType::tied;
    if (s == "diag") return CovType::diag;
    if (s == "spherical") return CovType::spherical;
    throw std::invalid_argument("covariance_type must be one of 'full', 'tied', 'diag', 'spherical', got '" + s + "'");
}

// Number of stored precision / covariance values.
inline index_t cov_size(CovType c, index_t k, index_t d) {
    switch (c) {
        case CovType::full: return k * d * d;
        case CovType::tied: return d * d;
        case CovType::diag: return k * d;
        case CovType::spherical: return k;
    }
    return 0;
}

// Mixture parameters in double, owned. Layouts are scikit-learn's, row-major.
struct MixtureParams {
    CovType cov = CovType::full;
    index_t k = 0, d = 0;
    std::vector<double> weights;      // K
    std::vector<double> means;        // K x D
    std::vector<double> prec_chol;    // cov_size(cov, K, D)
    std::vector<double> covariances;  // cov_size(cov, K, D); filled by the M-step

    MixtureParams() = default;
    MixtureParams(CovType c, index_t k_, index_t d_)
        : cov(c), k(k_), d(d_), weights(k_), means(k_ * d_),
          prec_chol(cov_size(c, k_, d_)), covariances(cov_size(c, k_, d_)) {}
};

constexpr double kLog2Pi = 1.8378770664093454836;

// log det U_k for each component.
inline std::vector<double> log_det_precision_chol(const MixtureParams& p) {
    std::vector<double> out(p.k, 0.0);
    const index_t d = p.d;
    for (index_t c = 0; c < p.k; ++c) {
        double s = 0.0;
        switch (p.cov) {
            case CovType::full:
                for (index_t j = 0; j < d; ++j) s += std::log(p.prec_chol[c * d * d + j * d + j]);
                break;
            case CovType::tied:
                for (index_t j = 0; j < d; ++j) s += std::log(p.prec_chol[j * d + j]);
                break;
            case CovType::diag:
                for (index_t j = 0; j < d; ++j) s += std::log(p.prec_chol[c * d + j]);
                break;
            case CovType::spherical:
                s = static_cast<double>(d) * std::log(p.prec_chol[c]);
                break;
        }
        out[c] = s;
    }
    return out;
}

// The per-component constants of maximum likelihood,
// c_k = log pi_k + log det U_k - 0.5 D log(2 pi).
inline std::vector<double> mixture_log_constants(const MixtureParams& p) {
    const auto logdet = log_det_precision_chol(p);
    std::vector<double> c(p.k);
    for (index_t j = 0; j < p.k; ++j)
        c[j] = std::log(p.weights[j]) + logdet[j] - 0.5 * static_cast<double>(p.d) * kLog2Pi;
    return c;
}

// The parameters cast to the compute type T, with the per-component constant
// c_k: mixture_log_constants, or the K values the caller gives.
template <class T>
struct Model {
    CovType cov;
    index_t k, d;
    std::vector<T> mean;  // K x D
    std::vector<T> prec;  // full: K x D x D (upper, zeros below); tied: D x D;
                          // diag: K x D; spherical: K (holds p_k^2)
    std::vector<T> c;     // K

    explicit Model(const MixtureParams& p) : Model(p, nullptr) {}
    Model(const MixtureParams& p, const std::vector<double>& log_constants) : Model(p, log_constants.data()) {}

    // log_constants: K values of c_k, or null for mixture_log_constants(p).
    Model(const MixtureParams& p, const double* log_constants) : cov(p.cov), k(p.k), d(p.d) {
        mean.assign(p.means.begin(), p.means.end());
        prec.resize(p.prec_chol.size());
        for (std::size_t i = 0; i < prec.size(); ++i) {
            double v = p.prec_chol[i];
            prec[i] = static_cast<T>(cov == CovType::spherical ? v * v : v);
        }
        if (cov == CovType::full || cov == CovType::tied) {
            // Only the upper triangle is meaningful; zero the rest so kernels
            // may run over full rows.
            const index_t nmat = cov == CovType::full ? k : 1;
            for (index_t m = 0; m < nmat; ++m)
                for (index_t i = 0; i < d; ++i)
                    for (index_t j = 0; j < i; ++j) prec[m * d * d + i * d + j] = T(0);
        }
        std::vector<double> own;
        if (!log_constants) {
            own = mixture_log_constants(p);
            log_constants = own.data();
        }
        c.resize(k);
        for (index_t j = 0; j < k; ++j) c[j] = static_cast<T>(log_constants[j]);
    }

    const T* prec_of(index_t j) const {
        switch (cov) {
            case CovType::full: return prec.data() + j * d * d;
            case CovType::tied: return prec.data();
            case CovType::diag: return prec.data() + j * d;
            case CovType::spherical: return prec.data() + j;
        }
        return prec.data();
    }
};

// For a point so far from every component that all its log-densities
// underflow to -inf (its squared distances overflow): the component it
// belongs to in the limit, argmin_k ||(x - mu_k) U_k||^2 computed with x and
// mu scaled by a common factor, ties broken by the larger c_k.
template <class T>
index_t far_point_component(const Model<T>& m, const T* x) {
    const index_t d = m.d;
    double s = 0.0;
    for (index_t l = 0; l < d; ++l) s = std::max(s, std::abs(static_cast<double>(x[l])));
    if (!(s > 0.0) || !std::isfinite(s)) s = 1.0;
    std::vector<double> diff(d);
    index_t best = 0;
    double best_m = std::numeric_limits<double>::infinity(), best_c = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < m.k; ++j) {
        const T* mu = m.mean.data() + j * d;
        for (index_t l = 0; l < d; ++l) diff[l] = static_cast<double>(x[l]) / s - static_cast<double>(mu[l]) / s;
        const T* u = m.prec_of(j);
        double q = 0.0;
        switch (m.cov) {
            case CovType::full:
            case CovType::tied:
                for (index_t c = 0; c < d; ++c) {
                    double y = 0.0;
                    for (index_t l = 0; l <= c; ++l) y += diff[l] * static_cast<double>(u[l * d + c]);
                    q += y * y;
                }
                break;
            case CovType::diag:
                for (index_t l = 0; l < d; ++l) {
                    const double y = diff[l] * static_cast<double>(u[l]);
                    q += y * y;
                }
                break;
            case CovType::spherical:
                for (index_t l = 0; l < d; ++l) q += diff[l] * diff[l];
                q *= static_cast<double>(*u);
                break;
        }
        const double cj = static_cast<double>(m.c[j]);
        if (q < best_m || (q == best_m && cj > best_c)) {
            best_m = q;
            best_c = cj;
            best = j;
        }
    }
    return best;
}

namespace kernel {

// The kernels write c - q_i / 2 for the squared Mahalanobis distances q_i
// (the log-density up to its constant c), so no pass over them follows.
//
// q_i = ||(x_i - mu)^T U||^2 for an upper-triangular U (row-major, zeros
// below the diagonal), compile-time D, from the transposed block xt. One
// vector of W samples at a time: their D differences stay in
// registers and feed the D(D+1)/2 multiply-adds of the triangle. Reads up to
// nb rounded up to W (ld is a multiple of 16; lanes past nb are never used).
template <class T, int DC, int VB>
inline void maha_full_fixed(const T* __restrict xt, const T* __restrict mu, const T* __restrict u,
                            T* __restrict maha, index_t ld, index_t nb, T c) {
    constexpr index_t W = VB / sizeof(T);
    for (index_t i0 = 0; i0 < nb; i0 += W) {
        T dv[DC][W];
#pragma GCC unroll 8
        for (int l = 0; l < DC; ++l) {
            const T ml = mu[l];
            const T* __restrict xl = xt + l * ld + i0;
#pragma omp simd
            for (index_t t = 0; t < W; ++t) dv[l][t] = xl[t] - ml;
        }
        T acc[W] = {};
#pragma GCC unroll 8
        for (int j = 0; j < DC; ++j) {
            T a[W] = {};
#pragma GCC unroll 8
            for (int l = 0; l <= j; ++l) {
                const T ulj = u[l * DC + j];
#pragma omp simd
                for (index_t t = 0; t < W; ++t) a[t] += dv[l][t] * ulj;
            }
#pragma omp simd
            for (index_t t = 0; t < W; ++t) acc[t] += a[t] * a[t];
        }
        T* __restrict mo = maha + i0;
#pragma omp simd
        for (index_t t = 0; t < W; ++t) mo[t] = c - T(0.5) * acc[t];
    }
}

// The same for run-time D, in register tiles of Q output columns x 2 vectors
// of W samples. For each group of 2W samples, their D centred values are
// first packed into pk (D x 2W, contiguous: 4 kB at D = 64 with AVX2), then
// every tile reads them from there: for each row l of U, two vectors of pk
// feed up to 2Q fused multiply-adds, each entry of U read once for both (the
// rows above a tile's columns densely, the triangle beside its diagonal
// without its zeros). Q = 8 with AVX-512's 32 vector registers (16 sums), 6
// with the 16 of AVX2 and SSE2 (12 sums, the two rows and a broadcast entry
// of U: 15 registers): each load of U feeds two multiply-adds, and 2Q
// independent sums cover the latency of two FMA pipes. Packing matters as
// much as the tile: read in place, a group's values lie ld apart (2 kB at
// ld = 256), in the few cache sets that stride maps to, and come from the L2
// cache at every tile; centring the whole block first also wrote a D x ld
// copy per component. On one AVX2 core at D = 64 (32 components, one block)
// the kernel does 18 G multiply-adds a second of the 22.5 the core can do;
// centred block and 8 x 1 tiles did 10-12.
// Every tile has a compile-time width, the last, partial one too (with a
// run-time width the compiler keeps its sums in memory, not in registers).
// Reads up to nb rounded up to 2W (ld is a multiple of 64, and lanes past nb
// are never used).
template <class T, int VB>
inline void maha_full_dyn(const T* __restrict xt, const T* __restrict mu, T* __restrict pk,
                          const T* __restrict u, T* __restrict maha, index_t d, index_t ld, index_t nb, T c) {
    constexpr int W = VB / sizeof(T);
    constexpr int NV = 2;
    using V = simd::vec<T, W>;
    constexpr int Q = VB >= 64 ? 8 : 6;
    // the tile of columns [j0, j0 + NQ): its squared sums added to out
    const auto tile = [&](auto nq, index_t j0, V (&out)[NV]) {
        constexpr int NQ = decltype(nq)::value;
        V a[NV][NQ] = {};
        V dl[NV];
        const auto rows = [&](index_t l) {
            for (int v = 0; v < NV; ++v) dl[v] = simd::load<T, W>(pk + (l * NV + v) * W);
        };
        for (index_t l = 0; l < j0; ++l) {
            rows(l);
            const T* __restrict ur = u + l * d + j0;
#pragma GCC unroll 8
            for (int q = 0; q < NQ; ++q) {
                const T uq = ur[q];
                for (int v = 0; v < NV; ++v) a[v][q] += dl[v] * uq;
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < NQ; ++r) {
            rows(j0 + r);
            const T* __restrict ur = u + (j0 + r) * d + j0;
#pragma GCC unroll 8
            for (int q = r; q < NQ; ++q) {
                const T uq = ur[q];
                for (int v = 0; v < NV; ++v) a[v][q] += dl[v] * uq;
            }
        }
#pragma GCC unroll 8
        for (int q = 0; q < NQ; ++q)
            for (int v = 0; v < NV; ++v) out[v] += a[v][q] * a[v][q];
    };
    for (index_t i0 = 0; i0 < nb; i0 += NV * W) {
        for (index_t l = 0; l < d; ++l)
            for (int v = 0; v < NV; ++v)
                simd::store<T, W>(pk + (l * NV + v) * W, simd::load<T, W>(xt + l * ld + i0 + v * W) - mu[l]);
        V out[NV] = {};
        index_t j0 = 0;
        for (; j0 + Q <= d; j0 += Q) tile(std::integral_constant<int, Q>{}, j0, out);
        switch (d - j0) {
            case 1: tile(std::integral_constant<int, 1>{}, j0, out); break;
            case 2: tile(std::integral_constant<int, 2>{}, j0, out); break;
            case 3: tile(std::integral_constant<int, 3>{}, j0, out); break;
            case 4: tile(std::integral_constant<int, 4>{}, j0, out); break;
            case 5: tile(std::integral_constant<int, 5>{}, j0, out); break;
            case 6: tile(std::integral_constant<int, 6>{}, j0, out); break;
            case 7: tile(std::integral_constant<int, 7>{}, j0, out); break;
            default: break;
        }
        for (int v = 0; v < NV; ++v) simd::store<T, W>(maha + i0 + v * W, c - T(0.5) * out[v]);
    }
}

// diag and spherical read the block directly: q_i = sum_l ((x_il - mu_l) p_l)^2
// (p_l = p for spherical), one fused pass per feature, no diff written.
// Four vectors of W samples at a time, even and odd features in separate
// sums: eight independent multiply-add chains, enough to cover the latency
// of two FMA pipes, their sums in registers across features. Reads up to nb
// rounded up to 4W (ld is a multiple of 64; lanes past nb are never used).
template <class T, int VB>
inline void maha_diag(const T* __restrict xt, const T* __restrict mu, const T* __restrict p, bool spherical,
                      T* __restrict maha, index_t d, index_t ld, index_t nb, T c) {
    constexpr int W = VB / sizeof(T);
    using Vec = simd::vec<T, W>;
    const T scale = spherical ? *p : T(1);
    for (index_t i0 = 0; i0 < nb; i0 += 4 * W) {
        Vec e[4] = {}, o[4] = {};
        index_t l = 0;
        for (; l + 2 <= d; l += 2) {
            const T m0 = mu[l], m1 = mu[l + 1];
            const T p0 = spherical ? T(1) : p[l], p1 = spherical ? T(1) : p[l + 1];
            const T* __restrict x0 = xt + l * ld + i0;
            const T* __restrict x1 = x0 + ld;
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const Vec y0 = (simd::load<T, W>(x0 + k * W) - m0) * p0;
                const Vec y1 = (simd::load<T, W>(x1 + k * W) - m1) * p1;
                e[k] += y0 * y0;
                o[k] += y1 * y1;
            }
        }
        if (l < d) {
            const T m0 = mu[l];
            const T p0 = spherical ? T(1) : p[l];
            const T* __restrict x0 = xt + l * ld + i0;
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const Vec y0 = (simd::load<T, W>(x0 + k * W) - m0) * p0;
                e[k] += y0 * y0;
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) simd::store<T, W>(maha + i0 + k * W, c - T(0.5) * ((e[k] + o[k]) * scale));
    }
}

// Fixed-D kernels read xt and mu; the run-time-D kernel packs centred groups into diff.
template <class T, int VB>
inline void maha_full(const T* xt, const T* mu, T* diff, const T* u, T* maha, index_t d, index_t ld,
                      index_t nb, T c) {
    switch (d) {
        case 1: return maha_full_fixed<T, 1, VB>(xt, mu, u, maha, ld, nb, c);
        case 2: return maha_full_fixed<T, 2, VB>(xt, mu, u, maha, ld, nb, c);
        case 3: return maha_full_fixed<T, 3, VB>(xt, mu, u, maha, ld, nb, c);
        case 4: return maha_full_fixed<T, 4, VB>(xt, mu, u, maha, ld, nb, c);
        case 5: return maha_full_fixed<T, 5, VB>(xt, mu, u, maha, ld, nb, c);
        case 6: return maha_full_fixed<T, 6, VB>(xt, mu, u, maha, ld, nb, c);
        case 7: return maha_full_fixed<T, 7, VB>(xt, mu, u, maha, ld, nb, c);
        case 8: return maha_full_fixed<T, 8, VB>(xt, mu, u, maha, ld, nb, c);
        default:
            return maha_full_dyn<T, VB>(xt, mu, diff, u, maha, d, ld, nb, c);
    }
}

// logp[i] = c - 0.5 * ||(x_i - mu)^T U||^2 for one component on a block.
// diff is scratch (at least D x 2 vectors) for full and tied with D > 8.
template <class T, int VB>
inline void component_log_prob(const Model<T>& m, index_t j, const T* xt, T* diff, T* logp,
                               index_t ld, index_t nb) {
    const index_t d = m.d;
    const T* mu = m.mean.data() + j * d;
    const T cj = m.c[j];
    switch (m.cov) {
        case CovType::full:
        case CovType::tied:
            maha_full<T, VB>(xt, mu, diff, m.prec_of(j), logp, d, ld, nb, cj);
            break;
        case CovType::diag: maha_diag<T, VB>(xt, mu, m.prec_of(j), false, logp, d, ld, nb, cj); break;
        case CovType::spherical: maha_diag<T, VB>(xt, mu, m.prec_of(j), true, logp, d, ld, nb, cj); break;
    }
}

}  // namespace kernel
}  // namespace gaussmix
