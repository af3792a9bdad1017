// estep.hpp -- the fused E-step: one pass over the data per EM iteration.
//
// For each block of rows (block.hpp):
//   1. the K log-densities  l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2
//      (gaussian.hpp; c_k = log pi_k + log det U_k - 0.5 D log 2pi unless the
//      caller gives other constants)
//   2. log-sum-exp over k:  log p(x_i) = m_i + log sum_k exp(l_ik - m_i),
//      m_i = max_k l_ik, and r_ik = exp(l_ik - log p(x_i))
//   3. the sufficient statistics of suffstats.hpp, around the current means
//      (stats_kernels.hpp),
// while the block is in cache. N x K responsibilities are written only when
// the caller gives an output for them. The rows are cut into chunks that depend
// on the problem size only, each reduced into its own partial, merged in chunk
// order: the result does not depend on the number of threads. The statistics
// of given responsibilities or labels, by the same kernels, are in
// given_stats.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "block.hpp"
#include "data.hpp"
#include "gaussian.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "stats_kernels.hpp"
#include "suffstats.hpp"
#include "vmath.hpp"

namespace gaussmix {

// Optional per-sample outputs of an E-step.
template <class T>
struct EStepOutputs {
    T* log_prob_norm = nullptr;   // n: log p(x_i)
    T* resp = nullptr;            // n x K: responsibilities
    std::int64_t* labels = nullptr;  // n: argmax_k of the weighted log-density
    // Check that X is finite on the way (e_step then throws NonFiniteInput
    // when it is not): the check a caller would otherwise make in a pass of
    // its own over X, here on each block while it is in the L1 cache.
    bool check_finite = false;
    // Skip the work of a component on the groups of rows where all of its
    // e_ik = exp(l_ik - m_i) are zero (in the floating range; see
    // live_components): the results are the same bits either way, for finite
    // weights and finite differences x - mu (which the estimators ensure;
    // where one overflows, computing every term adds 0 * inf = NaN).
    bool skip_zero = true;
};

namespace detail {

// Rough multiply-add count of a pass, for threads_for.
inline double pass_work(index_t n, index_t d, index_t k, CovType cov, bool stats) {
    const double dd = static_cast<double>(d);
    const double per = (cov == CovType::full || cov == CovType::tied) ? dd * (dd + 1) / 2 + dd : 2 * dd;
    return static_cast<double>(n) * static_cast<double>(k) * (per * (stats ? 2 : 1) + 20.0);
}

// Rows per chunk at least: 512, or as many as make one thread's worth of
// work (threads_for), so that a pass too small to share runs as one chunk
// (every further chunk brings a partial to clear and merge, which a small
// pass has too little work to amortise).
//
// A chunk's partial (partial_bytes) is cleared, written and merged once per
// pass, so chunks are also made long enough to do kWorkPerPartialDouble
// multiply-adds per double of it, as long as that leaves 128 chunks or more
// to share out: with large partials (full covariances at large K and D),
// many short chunks would make the merge a sizeable part of the pass.
constexpr double kWorkPerPartialDouble = 1000.0;

inline index_t chunk_rows(index_t n, double work, std::size_t partial_bytes = 0) {
    const double per_row = std::max(work / static_cast<double>(std::max<index_t>(n, 1)), 1.0);
    double rows = std::ceil(kWorkPerThread / per_row);
    const double by_partial = kWorkPerPartialDouble * static_cast<double>(partial_bytes / sizeof(double)) / per_row;
    rows = std::max(rows, std::min(by_partial, static_cast<double>(n) / 128.0));
    return std::max<index_t>(512, static_cast<index_t>(std::min(rows, 1e9)));
}

constexpr double kLn2 = 0.69314718055994530942;

// p = 2^e m with m in [1, 2) for positive normal p: p becomes m, e is added
// to expo (from the bits, as vmath's log takes them apart).
template <int W>
inline void split_exponent(simd::vec<double, W>& p, simd::vec<double, W>& expo) {
    using vu = simd::vec<std::uint64_t, W>;
    vu b;
    std::memcpy(&b, &p, sizeof b);
    const vu e_bits = (b >> 52) | 0x4330000000000000ULL;  // 2^52 + biased exponent
    simd::vec<double, W> e;
    std::memcpy(&e, &e_bits, sizeof e);
    expo += e - (4503599627370496.0 + 1023.0);
    const vu m_bits = (b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    std::memcpy(&p, &m_bits, sizeof p);
}

// True when the n values at xt (a D x ld block, n a multiple of 64) are
// finite: the lanes of sum x * 0 are 0 for finite x and NaN for an infinity
// or a NaN (the padding past a block's rows is zero). Four independent sums:
// one chain of dependent multiply-adds would advance a vector per latency of
// a multiply-add, not at the pipes' throughput, and show in a pass that does
// little else per value (small D and K).
template <class T, int VB>
inline bool block_finite(const T* __restrict xt, index_t n) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    V acc[4] = {};
    const V zero = {};
    for (index_t i = 0; i < n; i += 4 * W)
        for (int u = 0; u < 4; ++u) acc[u] += simd::load<T, W>(xt + i + u * W) * zero;
    const V a = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    T s = T(0);
    for (int l = 0; l < W; ++l) s += a[l];
    return s == T(0);
}

// The live components of a block. exp_vec gives exactly 0 below
// exp_zero_below, so where all x_ik = l_ik - m_i of component k on a group
// of GR rows (one exp vector) are below it, its e_ik and its terms in every
// sum are 0 there. Well-separated clusters leave most (group, component)
// pairs so, the more so the more components there are (and the fewer rows a
// group has, as with narrower vectors); skipping their exps and statistics
// then leaves, of the work after the log-densities, only the live pairs'.
// Lists per group its live components (Workspace::group_live) and, with
// by_component, per component its live groups (comp_live), in ascending
// order. Returns the number of live pairs. Two sweeps: a byte per pair (a
// compare into a mask and a store), then the lists from 16 bytes at a time,
// once the bytes have reached the cache (read back at once, they would wait
// on the stores).
template <class T, int VB>
inline index_t live_components(const T* lp, const T* mx, index_t ld, index_t K, index_t ngb, bool by_component,
                               Workspace<T>& ws) {
    constexpr int GR = simd::lanes<T, VB>;
    using V = simd::vec<T, GR>;
    constexpr T lo = vmath::exp_zero_below<T>();
    const index_t KP = ws.k_padded, LS = ws.live_stride;
    unsigned char* flags = ws.pair_flags.data();
    for (index_t g = 0; g < ngb; ++g) {
        const V m = simd::load<T, GR>(mx + g * GR);
        unsigned char* f = flags + g * KP;
        for (index_t j = 0; j < K; ++j) {
            const unsigned bits = simd::lanes_not_below<T, GR>(simd::load<T, GR>(lp + j * ld + g * GR) - m, lo);
            f[j] = static_cast<unsigned char>(GR > 8 ? bits | (bits >> 8) : bits);
        }
    }
    std::int32_t* n_comp = ws.n_comp_live.data();
    std::int32_t* comp = ws.comp_live.data();
    const index_t mg = ws.max_groups;
    if (by_component) std::fill(n_comp, n_comp + K, 0);
    index_t total = 0;
    for (index_t g = 0; g < ngb; ++g) {
        const unsigned char* f = flags + g * KP;
        std::int32_t* live = ws.group_live.data() + g * LS;
        int n = 0;
        for (index_t j0 = 0; j0 < K; j0 += 16)  // flags past K are zero
            n += simd::compress_indices16<VB>(simd::nonzero_bytes16(f + j0),
                                              static_cast<int>(std::min<index_t>(16, K - j0)),
                                              static_cast<int>(j0), live + n);
        ws.n_group_live[g] = n;
        total += n;
        if (by_component)
            for (int c = 0; c < n; ++c) {
                const std::int32_t j = live[c];
                comp[j * mg + n_comp[j]++] = static_cast<std::int32_t>(g);
            }
    }
    return total;
}

// Above a share of live pairs in a block (dense_live_share), the block and
// the next kProbeEvery blocks the thread takes run without skipping: finding
// the live pairs costs about live_cost vector operations per pair (more
// without AVX-512's compression of the lists), and each dead one saves its
// exp (about kExpCost) and its statistics. Skipping pays where most pairs
// are dead (well-separated clusters, many components) and loses where most
// are live (few or overlapping components), the more so the cheaper each
// pair's statistics. After a dense block the lists are not even built for
// kProbeEvery blocks, so that such data pay for them on one block in
// kProbeEvery + 1.
constexpr double kExpCost = 25.0;
constexpr int kProbeEvery = 64;

// That share, for statistics of `stats_madds` multiply-adds per vector of
// rows and component (0: no statistics): skipping pays while what the dead
// pairs save, (1 - share) (kExpCost + stats_madds) per pair, exceeds the
// live_cost per pair of finding them. live_cost is twice as high without
// AVX-512, whose vector compression builds the lists, so AVX2 and SSE2 skip
// only at a lower share of live pairs.
template <int VB>
inline double dense_live_share(double stats_madds) {
    constexpr double live_cost = VB >= 64 ? 10.0 : 20.0;
    return 1.0 - live_cost / (kExpCost + stats_madds);
}

// Step 1 of a block: l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2 into the rows
// of ws.logp, for the block's nb rows loaded in ws.xt. The next block's rows
// are fetched from memory meanwhile, a share of them with each component
// (next: next_block), so that loading it need not wait on memory.
template <class T, int VB>
inline void block_log_densities(const Model<T>& model, index_t nb, const PrefetchRange& next, Workspace<T>& ws) {
    const index_t ld = ws.ld;
    isa_kernel<VB>([&] {
        for (index_t j = 0; j < model.k; ++j) {
            next.fetch(j);
            kernel::component_log_prob<T, VB>(model, j, ws.xt.data(), ws.diff.data(), ws.logp.data() + j * ld, ld,
                                              nb);
        }
    });
}

// The rows whose prefetch overlaps the block [b0, b0 + nb) of the chunk
// ending at r1: the next block of the chunk, or, during its last block, the
// first of next_r0's (the chunk this thread is likely to take next), which
// would otherwise start cold.
template <class T>
inline PrefetchRange prefetch_after(const DataView<T>& X, index_t b0, index_t nb, index_t r1, index_t next_r0,
                                    index_t ld, index_t parts) {
    const bool last = b0 + nb >= r1;
    const index_t nr0 = last ? next_r0 : b0 + nb;
    const index_t nrows = last ? (next_r0 >= 0 ? std::min(ld, X.n - next_r0) : 0) : std::min(ld, r1 - b0 - nb);
    return next_block(X, nr0, nrows, parts);
}

// Step 2: m_i = max_k l_ik, and its argmax into lab when it is not null.
template <class T, int VB>
inline void block_max(const T* __restrict lp, T* __restrict mx, index_t K, index_t ld, index_t nb,
                      std::int64_t* lab) {
    if (lab) {
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) mx[i] = lp[i];
        for (index_t i = 0; i < nb; ++i) lab[i] = 0;
        for (index_t j = 1; j < K; ++j) {
            const T* lj = lp + j * ld;
            for (index_t i = 0; i < nb; ++i)
                if (lj[i] > mx[i]) {
                    mx[i] = lj[i];
                    lab[i] = j;
                }
        }
        return;
    }
    // one vector of samples at a time, the maximum in a register
    constexpr int VW = simd::lanes<T, VB>;
    using V = simd::vec<T, VW>;
    for (index_t i0 = 0; i0 < nb; i0 += VW) {
        V m = simd::load<T, VW>(lp + i0);
        for (index_t j = 1; j < K; ++j) {
            const V l = simd::load<T, VW>(lp + j * ld + i0);
            m = l > m ? l : m;
        }
        simd::store<T, VW>(mx + i0, m);
    }
}

// Step 2b: a sample whose every log-density is -inf (its squared distances
// overflow) belongs, in the limit, to one component: give it that
// component's full responsibility (l_ik = 0 there, -inf elsewhere, m_i = 0),
// marked in ws.far so that log p(x_i) = -inf after step 4. Returns whether
// the block has any. lab: as for block_max.
template <class T>
inline bool block_far_points(const DataView<T>& X, const Model<T>& model, index_t b0, index_t nb,
                             Workspace<T>& ws, std::int64_t* lab) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    const index_t K = model.k, ld = ws.ld;
    T* __restrict lp = ws.logp.data();
    T* __restrict mx = ws.mx.data();
    int n_far = 0;
#pragma omp simd reduction(+ : n_far)
    for (index_t i = 0; i < nb; ++i) n_far += mx[i] == -inf ? 1 : 0;
    if (n_far == 0) return false;
    for (index_t i = 0; i < nb; ++i) {
        ws.far[i] = mx[i] == -inf;
        if (!ws.far[i]) continue;
        const index_t kf = far_point_component(model, X.row(b0 + i));
        for (index_t j = 0; j < K; ++j) lp[j * ld + i] = j == kf ? T(0) : -inf;
        mx[i] = T(0);
        if (lab) lab[i] = kf;
    }
    return true;
}

// Whether the block runs on its live components only (live_components,
// which then fills the workspace's lists): not while a block where most
// pairs were live came less than kProbeEvery blocks before on this thread
// (ws.probe_in), nor when those lists would cost more than they save.
template <class T, int VB>
inline bool block_live_only(index_t K, index_t ngb, bool skip, bool by_component, double dense_live,
                            Workspace<T>& ws) {
    int& probe_in = ws.probe_in;
    if (probe_in > 0) {
        --probe_in;
        return false;
    }
    if (!skip) return false;
    const index_t n_live = live_components<T, VB>(ws.logp.data(), ws.mx.data(), ws.ld, K, ngb, by_component, ws);
    // mostly live: the lists would cost more than they save, here and in the
    // next blocks; look again later
    const bool live_only = static_cast<double>(n_live) <= dense_live * static_cast<double>(K * ngb);
    if (!live_only) probe_in = kProbeEvery;
    return live_only;
}

// Step 3: e_ik = exp(l_ik - m_i) in place, and s_i = sum_k e_ik into ws.sum,
// one vector of samples at a time (lanes past nb are computed and never
// used): for the live components only when live_only (the others' e_ik are
// 0, and s adds them in the same order; with zero_dead they are stored as
// 0, for the responsibilities).
template <class T, int VB>
inline void block_exp_sum(index_t K, index_t nb, index_t ngb, bool live_only, bool zero_dead, Workspace<T>& ws) {
    constexpr int GR = simd::lanes<T, VB>;
    using V = simd::vec<T, GR>;
    const index_t ld = ws.ld;
    T* __restrict lp = ws.logp.data();
    const T* __restrict mx = ws.mx.data();
    T* __restrict sum = ws.sum.data();
    if (live_only) {
        for (index_t g = 0; g < ngb; ++g) {
            const std::int32_t* live = ws.group_live.data() + g * ws.live_stride;
            const index_t n_live = ws.n_group_live[g];
            const V m = simd::load<T, GR>(mx + g * GR);
            V s = {};
            for (index_t c = 0; c < n_live; ++c) {
                T* lj = lp + live[c] * ld + g * GR;
                const V e = vmath::exp_vec<GR>(simd::load<T, GR>(lj) - m);
                simd::store<T, GR>(lj, e);
                s += e;
            }
            simd::store<T, GR>(sum + g * GR, s);
            if (zero_dead)
                for (index_t j = 0, c = 0; j < K; ++j) {
                    if (c < n_live && live[c] == j)
                        ++c;
                    else
                        simd::store<T, GR>(lp + j * ld + g * GR, V{});
                }
        }
        return;
    }
    for (index_t i0 = 0; i0 < nb; i0 += GR) {
        const V m = simd::load<T, GR>(mx + i0);
        V s = {};
        for (index_t j = 0; j < K; ++j) {
            T* lj = lp + j * ld + i0;
            const V e = vmath::exp_vec<GR>(simd::load<T, GR>(lj) - m);
            simd::store<T, GR>(lj, e);
            s += e;
        }
        simd::store<T, GR>(sum + i0, s);
    }
}

// Step 4: sum_i w_i log p(x_i) and sum_i w_i over the blocks of a chunk.
//
// With unit weights and no per-sample output (product), sum_i log p(x_i) =
// sum_i m_i + log prod_i s_i: no log per sample (at small K the logs are a
// large share of a fit's pass). The product of the sums (each in [1, K]) is kept in [1, 2)
// per lane, its exponent moved out after each factor; one log per lane ends
// the chunk (finish). Otherwise log p(x_i) = m_i + log s_i is formed per
// sample (log_prob, as the per-sample output needs it) and summed with its
// weight.
template <int VB>
struct LoglikSum {
    static constexpr int W = simd::lanes<double, VB>;
    using vd = simd::vec<double, W>;
    bool product = false;
    vd m_acc = {}, expo = {}, prod = simd::splat<double, W>(1.0);

    // mx: m_i, turned into log p(x_i) when not product (far points: -inf).
    template <class T>
    void log_prob(T* __restrict mx, const T* __restrict sum, index_t nb, bool any_far,
                  const unsigned char* far) const {
        if (!product) {
#pragma omp simd
            for (index_t i = 0; i < nb; ++i) mx[i] = mx[i] + vmath::log_scalar(sum[i]);
        }
        if (any_far)  // their log p(x_i) is below the floating range
            for (index_t i = 0; i < nb; ++i)
                if (far[i]) mx[i] = -std::numeric_limits<T>::infinity();
    }

    // Adds a block to ll and sw, from mx after log_prob, the sums s_i and
    // the weights w.
    template <class T>
    void add(const T* __restrict mx, const T* __restrict sum, const double* __restrict w, index_t nb, double& ll,
             double& sw) {
        if (product) {
            index_t i = 0;
            for (; i + W <= nb; i += W) {
                m_acc += simd::load_double<W>(mx + i);
                prod *= simd::load_double<W>(sum + i);
                split_exponent<W>(prod, expo);
            }
            double l = 0.0;
            for (; i < nb; ++i) l += static_cast<double>(mx[i]) + vmath::log_scalar(static_cast<double>(sum[i]));
            ll += l;
            sw += static_cast<double>(nb);
            return;
        }
        // a zero-weight row adds nothing, even where log p(x_i) = -inf
        const vd zero = {};
        vd lv = {}, sv = {};
        index_t i = 0;
        for (; i + W <= nb; i += W) {
            const vd wv = simd::load<double, W>(w + i);
            const vd pv = wv * simd::load_double<W>(mx + i);
            lv += wv > zero ? pv : zero;
            sv += wv;
        }
        double l = simd::hsum<W>(lv), s = simd::hsum<W>(sv);
        for (; i < nb; ++i) {
            l += w[i] > 0.0 ? w[i] * static_cast<double>(mx[i]) : 0.0;
            s += w[i];
        }
        ll += l;
        sw += s;
    }

    // Adds the product form's sums to ll, at the end of a chunk.
    void finish(double& ll) const {
        if (!product) return;
        double l = simd::hsum<W>(m_acc) + kLn2 * simd::hsum<W>(expo);
        for (int q = 0; q < W; ++q) l += std::log(prod[q]);
        ll += l;
    }
};

// Step 5: the responsibilities r_ik = e_ik / s_i into out (nb x K, row-major),
// from e_ik in lp and inv_sum = 1 / s_i; lp then holds r_ik.
template <class T>
inline void block_responsibilities(T* __restrict lp, const T* __restrict inv_sum, index_t K, index_t ld,
                                   index_t nb, T* __restrict out) {
    for (index_t j = 0; j < K; ++j) {
        T* __restrict lj = lp + j * ld;
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) lj[i] *= inv_sum[i];
    }
    for (index_t i = 0; i < nb; ++i)
        for (index_t j = 0; j < K; ++j) out[i * K + j] = lp[j * ld + i];
}

// Step 6: the block's sufficient statistics, with rw_ik = w_i r_ik: w_i times
// the responsibilities of step 5 (normalised), or, in the fit, (w_i / s_i)
// e_ik without a normalising pass, from inv_sum = 1 / s_i. Over the live
// groups of each component only when live_only.
template <class T, int VB>
inline void block_statistics(const DataView<T>& X, index_t b0, index_t nb, index_t ngb, bool normalised,
                             bool live_only, bool rows_kernel, SuffStats& st, Workspace<T>& ws) {
    constexpr int W = simd::lanes<double, VB>, GR = simd::lanes<T, VB>;
    const index_t K = st.k, ld = ws.ld;
    T* __restrict lp = ws.logp.data();
    const T* __restrict inv_sum = ws.sum.data();
    const double* __restrict w = ws.w.data();
    double* __restrict rw = ws.rw.data();
    double* __restrict ws_i = ws.winv.data();
    if (normalised) {
        std::copy(w, w + nb, ws_i);
    } else {
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) ws_i[i] = w[i] * static_cast<double>(inv_sum[i]);
    }
    // the row groups of component j the statistics visit
    const auto groups_of = [&](index_t j) {
        if (!live_only) return Groups{nullptr, ngb};
        return Groups{ws.comp_live.data() + j * ws.max_groups, ws.n_comp_live[j]};
    };
    if (in_place_kernels(st)) {
        // rw_i = ws_i e_ik formed inside the kernels; past nb (up to
        // padded_rows) ws_i is zero and e_ik finite
        for (index_t i = nb; i < padded_rows(nb); ++i) {
            ws_i[i] = 0.0;
            for (index_t j = 0; j < K; ++j) lp[j * ld + i] = T(0);
        }
        if constexpr (std::is_same<T, double>::value)
            if (rows_kernel) {
                if (live_only)
                    accumulate_diag_rows_sparse<VB>(st, X.row(b0), X.row_stride, ws_i, lp, ld, nb, ws);
                else
                    accumulate_diag_rows<VB>(st, X.row(b0), X.row_stride, ws_i, lp, ld, nb);
                return;
            }
        for (index_t j = 0; j < K; ++j)
            accumulate_in_place<T, VB>(st, j, ProductWeights<VB, T>{ws_i, lp + j * ld}, ws, groups_of(j));
        return;
    }
    for (index_t j = 0; j < K; ++j) {
        // rw over the groups the kernel reads (past nb, accumulate zeroes it)
        const Groups gs = groups_of(j);
        const ProductWeights<VB, T> rw_of{ws_i, lp + j * ld};
        for_vectors<GR, W>(gs, [&](index_t i0) { simd::store<double, W>(rw + i0, rw_of(i0)); });
        accumulate<T, VB>(st, j, rw, ws, nb, gs);
    }
}

// The fused pass over rows [r0, r1): log-densities, log-sum-exp, per-sample
// outputs and (when st is not null) sufficient statistics, block by block
// in the steps above. Adds the weighted log-likelihood and the weight seen
// to ll and sw. Returns false when out.check_finite is set and a value of X
// is not finite (the outputs are then meaningless; the pass still runs to
// its end, on any values). next_r0: the first row of the chunk the thread
// is likely to take next (-1: none), prefetched during the last block.
template <class T, int VB>
inline bool e_step_rows_impl(const DataView<T>& X, const Model<T>& model, index_t r0, index_t r1,
                             const EStepOutputs<T>& out, SuffStats* st, Workspace<T>& ws, double& ll, double& sw,
                             index_t next_r0) {
    const index_t K = model.k, ld = ws.ld;
    constexpr int GR = simd::lanes<T, VB>;
    if (st) clear_stats(*st, ws);
    bool finite = true;
    LoglikSum<VB> loglik;
    loglik.product = !out.log_prob_norm && !X.weights;
    // Skipping the components whose e_ik are all zero on a group of rows
    // (live_components). Both ways give the same bits, so the choice may
    // follow the thread from chunk to chunk and pass to pass.
    const bool skip = out.skip_zero && K > 1;
    const bool rows_kernel = st && diag_rows_kernel<T, VB>(*st);
    const bool by_component = st && !rows_kernel;
    const double dd = static_cast<double>(X.d);
    const bool matrices = model.cov == CovType::full || model.cov == CovType::tied;
    const double dense_live = dense_live_share<VB>(!st ? 0.0 : matrices ? dd * (dd + 3) / 2 : 2 * dd);
    for (index_t b0 = r0; b0 < r1; b0 += ld) {
        const index_t nb = std::min(ld, r1 - b0);
        load_block<T, VB>(X, b0, nb, ws.xt.data(), ws.w.data(), ld);
        if (out.check_finite) finite = block_finite<T, VB>(ws.xt.data(), X.d * ld) && finite;
        block_log_densities<T, VB>(model, nb, prefetch_after(X, b0, nb, r1, next_r0, ld, K), ws);
        std::int64_t* lab = out.labels ? out.labels + b0 : nullptr;
        block_max<T, VB>(ws.logp.data(), ws.mx.data(), K, ld, nb, lab);
        const bool any_far = block_far_points(X, model, b0, nb, ws, lab);
        const index_t ngb = (nb + GR - 1) / GR;
        const bool live_only = block_live_only<T, VB>(K, ngb, skip, by_component, dense_live, ws);
        isa_kernel<VB>([&] { block_exp_sum<T, VB>(K, nb, ngb, live_only, out.resp != nullptr, ws); });
        T* __restrict mx = ws.mx.data();
        T* __restrict sum = ws.sum.data();
        loglik.log_prob(mx, sum, nb, any_far, ws.far.data());
        loglik.add(mx, sum, ws.w.data(), nb, ll, sw);
        if (out.log_prob_norm) std::copy(mx, mx + nb, out.log_prob_norm + b0);
        if (!out.resp && !st) continue;
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) sum[i] = T(1) / sum[i];
        if (out.resp) block_responsibilities(ws.logp.data(), sum, K, ld, nb, out.resp + b0 * K);
        if (st)
            isa_kernel<VB>([&] {
                block_statistics<T, VB>(X, b0, nb, ngb, out.resp != nullptr, live_only, rows_kernel, *st, ws);
            });
    }
    if (st) flush_stats<T, VB>(*st, ws);
    loglik.finish(ll);
    return finite;
}

template <class T>
bool e_step_rows(const DataView<T>& X, const Model<T>& model, index_t r0, index_t r1, const EStepOutputs<T>& out,
                 SuffStats* st, Workspace<T>& ws, double& ll, double& sw, index_t next_r0 = -1) {
    bool finite = true;
    dispatch_isa([&](auto vb) {
        finite = e_step_rows_impl<T, decltype(vb)::value>(X, model, r0, r1, out, st, ws, ll, sw, next_r0);
    });
    return finite;
}

}  // namespace detail

// One E-step over X with the given parameters. Fills the requested per-sample
// outputs and, when `stats` is not null, the sufficient statistics around the
// current means (the fused EM pass). Returns the weighted mean log-likelihood.
// Throws NonFiniteInput when out.check_finite is set and X is not finite.
// `scratch` (optional) holds the per-chunk partials between calls: an EM loop
// passes the same one each iteration, so that they are allocated once per fit
// rather than mapped and zeroed afresh each pass (a cost, page faults
// included, that grows with the number and size of the partials and that a
// short pass does not amortise). `log_constants` (optional)
// holds K constants c_k of the log-densities in place of
// mixture_log_constants(params) (gaussian.hpp): the E-step of another
// estimator through the same pass.
template <class T>
double e_step(const DataView<T>& X, const MixtureParams& params, const EStepOutputs<T>& out,
              SuffStats* stats, int n_threads, std::vector<SuffStats>* scratch = nullptr,
              const double* log_constants = nullptr) {
    const index_t N = X.n, D = X.d, K = params.k;
    if (D != params.d) throw std::invalid_argument("e_step: X has a different number of features than the model");
    const Model<T> model(params, log_constants);
    const index_t ld = detail::block_rows(D, K, params.cov);
    SuffStats proto(params.cov, K, D);
    proto.shift = params.means;
    const double work = detail::pass_work(N, D, K, params.cov, stats != nullptr);
    const std::size_t partial_bytes = stats ? proto.bytes() : 64;
    const Partition part = make_partition(N, detail::chunk_rows(N, work, partial_bytes), partial_bytes, ld);
    std::vector<SuffStats> local;
    std::vector<SuffStats>& partials = scratch ? *scratch : local;
    // each chunk's partial is (re)set by its thread, in parallel
    if (stats) partials.resize(part.n_chunks);
    std::vector<double> chunk_loglik(part.n_chunks, 0.0), chunk_w(part.n_chunks, 0.0);
    std::vector<unsigned char> chunk_finite(part.n_chunks, 1);
    const int team = threads_for(work, n_threads);

    parallel_for(part.n_chunks, team, [&](index_t c) {
        detail::Workspace<T>& ws = detail::thread_workspace<T>(D, K, ld);
        SuffStats* st = nullptr;
        if (stats) {
            st = &partials[c];
            if (st->cov == proto.cov && st->k == K && st->d == D) {
                st->clear();
                st->shift = proto.shift;
            } else {
                *st = proto;
            }
        }
        double ll = 0.0, sw = 0.0;
        // with the chunks handed out in turn, this thread's next is likely c + team
        const index_t next_r0 = c + team < part.n_chunks ? part.begin(c + team) : -1;
        chunk_finite[c] = detail::e_step_rows<T>(X, model, part.begin(c), part.end(c), out, st, ws, ll, sw, next_r0);
        chunk_loglik[c] = ll;
        chunk_w[c] = sw;
        if (st) {
            st->loglik = ll;
            st->sum_w = sw;
        }
    });
    if (std::find(chunk_finite.begin(), chunk_finite.end(), 0) != chunk_finite.end()) throw NonFiniteInput();

    double ll = 0.0, sw = 0.0;
    for (index_t c = 0; c < part.n_chunks; ++c) {
        ll += chunk_loglik[c];
        sw += chunk_w[c];
    }
    if (stats) {
        if (part.n_chunks == 0) {
            *stats = proto;
        } else {
            detail::reduce_partials(partials, *stats, n_threads);
        }
    }
    return sw > 0.0 ? ll / sw : -std::numeric_limits<double>::infinity();
}

}  // namespace gaussmix
