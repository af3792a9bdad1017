// block.hpp -- a block of rows as the fused passes hold it, and its scratch.
//
// A pass works on blocks of B rows (block_rows) loaded feature-major:
//   xt[l * ld + i] = x_{r0 + i, l},  0 <= i < B <= ld,  lanes past B zero,
// so that every inner loop of the kernels runs over samples with unit
// stride. Here: the block size, the per-thread workspace kept between
// passes, the loading (transposition) of a block and the prefetch of the
// next, and the groups of rows (one exp vector each) a kernel visits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "data.hpp"
#include "gaussian.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace gaussmix {

namespace detail {

// Rows per block: 256, fewer for wide data so a block's working set (four
// D x B arrays) stays within the L2 cache. diag and spherical, whose kernels
// stream the block once per component, keep the block and its K
// log-densities ((D + K) x B values) within 48 KB, a typical L1 data cache:
// up to that size, longer blocks spread the fixed costs of a block and
// component (setup, lane sums) over more rows; past it, each component's
// stream over the block reads it from the L2 cache instead. Always a
// multiple of 64, so that kernels working on four vectors at a time stay
// inside a block.
inline index_t block_rows(index_t d, index_t k, CovType cov) {
    index_t b = 16384 / std::max<index_t>(d, 1);
    if (cov == CovType::diag || cov == CovType::spherical) b = std::min<index_t>(b, 6144 / (d + k));
    b = std::max<index_t>(64, std::min<index_t>(256, b));
    return (b / 64) * 64;
}

template <class T>
struct Workspace {
    index_t d = 0, k = 0, ld = 0;
    simd::aligned_vector<T> xt, diff, logp, mx, sum;
    simd::aligned_vector<double> z, rw, w, winv;
    std::vector<unsigned char> far;
    // Vector accumulators of accumulate_small (full and tied, D <= 4), kept
    // across the blocks of a chunk and summed over lanes once at its end
    // (flush_stats): per component, vacc_stride vectors of kMaxLanes doubles,
    // n, a_1..a_D and the packed triangle of S. (diag and spherical sum their
    // lanes per block: K x (2D + 1) vectors held between blocks would crowd
    // their block out of the L1 cache, which costs more than the lane sums
    // it saves.)
    static constexpr index_t kMaxLanes = 8;
    index_t vacc_stride = 0;
    simd::aligned_vector<double> vacc;
    // The live components of a block (see live_components): per (group of
    // rows, component) a byte of lane flags, K rounded up to 16 of them per
    // group; per group, the components with an e_ik that is not zero
    // (live_stride slots each, and their count); per component, its groups
    // (max_groups slots each, and their count). row_acc: the sums of
    // accumulate_diag_rows_sparse.
    index_t max_groups = 0, k_padded = 0, live_stride = 0;
    int probe_in = 0;  // blocks to run before live_components is tried again
    std::vector<unsigned char> pair_flags;
    std::vector<std::int32_t> group_live, n_group_live, comp_live, n_comp_live;
    simd::aligned_vector<double> row_acc;

    Workspace() = default;
    Workspace(index_t d_, index_t k_, index_t ld_) : d(d_), k(k_), ld(ld_) {
        vacc_stride = d <= 4 ? 1 + d + d * (d + 1) / 2 : 0;
        vacc.resize(k * vacc_stride * kMaxLanes);
        max_groups = ld / 2;  // groups of 2 doubles at the least (SSE2)
        k_padded = (k + 15) / 16 * 16;
        live_stride = k_padded + 16;
        pair_flags.assign(max_groups * k_padded, 0);
        group_live.resize(max_groups * live_stride);
        n_group_live.resize(max_groups);
        comp_live.resize(k * max_groups);
        n_comp_live.resize(k);
        row_acc.resize(k * (2 * d + kMaxLanes));
        xt.resize(d * ld);
        diff.resize(d * ld);
        logp.resize(k * ld);
        mx.resize(ld);
        sum.resize(ld);
        z.resize(d * ld);
        rw.resize(ld);
        w.resize(ld);
        winv.resize(ld);
        far.resize(ld);
    }
};

// The calling thread's workspace for (d, k, ld), kept between passes: its
// size depends on D, K and the block, not on the number of rows, so an EM
// iteration on a small data set would otherwise spend much of its time
// allocating and zeroing it. What an earlier block left in it reaches no
// result: lanes past a block's rows that feed the statistics (xt, rw, the
// weights and e_ik) are set for each block, and the others only fill lanes
// that are never used.
template <class T>
inline Workspace<T>& thread_workspace(index_t d, index_t k, index_t ld) {
    thread_local Workspace<T> ws;
    if (ws.d != d || ws.k != k || ws.ld != ld) ws = Workspace<T>(d, k, ld);
    return ws;
}

// Rows [0, nb) of a row-major block with compile-time D (row stride DC)
// into xt (D x ld): unrolled over features so the compiler can transpose
// whole vectors of rows.
template <int DC, class T>
inline void transpose_fixed(const T* __restrict src, index_t nb, T* __restrict xt, index_t ld) {
    for (index_t i = 0; i < nb; ++i)
#pragma GCC unroll 8
        for (int l = 0; l < DC; ++l) xt[l * ld + i] = src[i * DC + l];
}

// Transpose rows [r0, r0 + nb) of X into xt (D x ld); their weights into w.
// Lanes from nb to ld are zeroed, so kernels that run over whole vectors
// read finite values there.
template <class T, int VB>
inline void load_block(const DataView<T>& X, index_t r0, index_t nb, T* __restrict xt, double* __restrict w,
                       index_t ld) {
    const index_t d = X.d;
    const T* src = X.row(r0);
    if (X.row_stride == d && d <= 8) {
        switch (d) {
            case 1: std::copy(src, src + nb, xt); break;
            case 2: transpose_fixed<2>(src, nb, xt, ld); break;
            case 3: transpose_fixed<3>(src, nb, xt, ld); break;
            case 4: transpose_fixed<4>(src, nb, xt, ld); break;
            case 5: transpose_fixed<5>(src, nb, xt, ld); break;
            case 6: transpose_fixed<6>(src, nb, xt, ld); break;
            case 7: transpose_fixed<7>(src, nb, xt, ld); break;
            default: {
                index_t i = 0;
                if constexpr (8 * sizeof(T) <= VB)
                    for (; i + 8 <= nb; i += 8) simd::transpose8(src + i * 8, 8, xt + i, ld);
                transpose_fixed<8>(src + i * 8, nb - i, xt + i, ld);
                break;
            }
        }
    } else {
        // groups of eight rows and eight features by shuffles, the rest one by one
        const index_t stride = X.row_stride;
        index_t i = 0;
        if constexpr (8 * sizeof(T) <= VB)
            for (; i + 8 <= nb; i += 8) {
                index_t l = 0;
                for (; l + 8 <= d; l += 8) simd::transpose8(src + i * stride + l, stride, xt + l * ld + i, ld);
                for (; l < d; ++l)
                    for (index_t r = i; r < i + 8; ++r) xt[l * ld + r] = src[r * stride + l];
            }
        for (; i < nb; ++i) {
            const T* __restrict xr = X.row(r0 + i);
            for (index_t l = 0; l < d; ++l) xt[l * ld + i] = xr[l];
        }
    }
    if (nb < ld)
        for (index_t l = 0; l < d; ++l) std::fill(xt + l * ld + nb, xt + (l + 1) * ld, T(0));
    if (X.weights) {
        for (index_t i = 0; i < nb; ++i) w[i] = X.weights[r0 + i];
    } else {
        for (index_t i = 0; i < nb; ++i) w[i] = 1.0;
    }
}

// Cache lines [begin, end) split into `parts` equal shares, prefetched one
// share at a time: rows of the next block, read while this one is computed
// so that the hardware need not wait on memory when it is loaded.
struct PrefetchRange {
    const char* begin = nullptr;
    index_t lines = 0, parts = 1;
    void fetch(index_t part) const {
        const index_t l0 = lines * part / parts, l1 = lines * (part + 1) / parts;
        for (index_t l = l0; l < l1; ++l) __builtin_prefetch(begin + l * 64, 0, 3);
    }
};

// The rows [r0, r0 + nb) of X when they are contiguous (nothing otherwise).
template <class T>
inline PrefetchRange next_block(const DataView<T>& X, index_t r0, index_t nb, index_t parts) {
    PrefetchRange p;
    if (nb <= 0 || X.row_stride != X.d) return p;
    p.begin = reinterpret_cast<const char*>(X.row(r0));
    p.lines = (nb * X.d * static_cast<index_t>(sizeof(T)) + 63) / 64;
    p.parts = std::max<index_t>(parts, 1);
    return p;
}

// The rows of a block a component's statistics visit, as groups of GR rows
// (GR: the lanes of one exp vector of the block's type): all of them, or
// those where one of its e_ik is not zero (the others add exactly nothing).
// Group numbers ascend, so sums skip zero terms but keep their order.
struct Groups {
    const std::int32_t* idx = nullptr;  // null: groups 0, 1, ..., n - 1
    index_t n = 0;
};

// f(i0) for the first row i0 of each vector of W doubles in the groups gs of
// GR rows, in order.
template <int GR, int W, class F>
inline void for_vectors(const Groups& gs, F&& f) {
    static_assert(GR % W == 0, "a group is whole vectors of doubles");
    const std::int32_t* idx = gs.idx;  // copies: the stores of f may alias gs
    const index_t n = gs.n;
    if (!idx) {
        for (index_t i0 = 0; i0 < n * GR; i0 += W) f(i0);
        return;
    }
    for (index_t c = 0; c < n; ++c) {
        const index_t r0 = static_cast<index_t>(idx[c]) * GR;
        for (index_t u = 0; u < GR; u += W) f(r0 + u);
    }
}

}  // namespace detail
}  // namespace gaussmix
