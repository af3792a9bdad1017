// given_stats.hpp -- sufficient statistics of given responsibilities or
// labels: the initialisation from k-means labels, k-means++ seeds or random
// rows, and statistics of dense responsibilities. The blocks, kernels and
// partition of the fused E-step (estep.hpp), with the weights given instead
// of computed; partials merged in chunk order, so the result does not depend
// on the number of threads.
#pragma once

#include <cstdint>
#include <vector>

#include "estep.hpp"

namespace gaussmix {

namespace detail {

// Statistics of given responsibilities over rows [r0, r1): hard labels
// (labels[i] in [0, K) or -1 for none) or dense resp (N x K).
template <class T, int VB>
inline void stats_rows_impl(const DataView<T>& X, const std::int64_t* labels, const T* resp, index_t r0,
                                      index_t r1, SuffStats& st, Workspace<T>& ws) {
    const index_t K = st.k, ld = ws.ld;
    constexpr int GR = simd::lanes<T, VB>;
    double* __restrict w = ws.w.data();
    double* __restrict rw = ws.rw.data();
    clear_stats(st, ws);
    for (index_t b0 = r0; b0 < r1; b0 += ld) {
        const index_t nb = std::min(ld, r1 - b0);
        load_block<T, VB>(X, b0, nb, ws.xt.data(), w, ld);
        for (index_t i = 0; i < nb; ++i) st.sum_w += w[i];
        for (index_t j = 0; j < K; ++j) {
            bool any = false;
            if (labels) {
                for (index_t i = 0; i < nb; ++i) {
                    const bool mine = labels[b0 + i] == j;
                    rw[i] = mine ? w[i] : 0.0;
                    any = any || mine;
                }
            } else {
                for (index_t i = 0; i < nb; ++i) rw[i] = w[i] * static_cast<double>(resp[(b0 + i) * K + j]);
                any = true;
            }
            if (!any) continue;
            accumulate<T, VB>(st, j, rw, ws, nb, Groups{nullptr, (nb + GR - 1) / GR});
        }
    }
    flush_stats<T, VB>(st, ws);
}

template <class T>
void stats_rows(const DataView<T>& X, const std::int64_t* labels, const T* resp, index_t r0, index_t r1,
                SuffStats& st, Workspace<T>& ws) {
    dispatch_isa([&](auto vb) { stats_rows_impl<T, decltype(vb)::value>(X, labels, resp, r0, r1, st, ws); });
}

template <class T>
void stats_pass(const DataView<T>& X, const std::int64_t* labels, const T* resp, CovType cov, index_t K,
                const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    const index_t N = X.n, D = X.d;
    const index_t ld = block_rows(D, K, cov);
    SuffStats proto(cov, K, D);
    proto.shift = shifts;
    const double work = pass_work(N, D, K, cov, true);
    const Partition part = make_partition(N, chunk_rows(N, work, proto.bytes()), proto.bytes(), ld);
    std::vector<SuffStats> partials(part.n_chunks, proto);
    const int team = threads_for(work, n_threads);
    parallel_for(part.n_chunks, team, [&](index_t c) {
        Workspace<T>& ws = thread_workspace<T>(D, K, ld);
        stats_rows<T>(X, labels, resp, part.begin(c), part.end(c), partials[c], ws);
    });
    if (part.n_chunks == 0) {
        stats = proto;
    } else {
        reduce_partials(partials, stats, n_threads);
    }
}

}  // namespace detail

// Statistics of a hard assignment (labels[i] in [0, K), or -1 for none)
// around the given shifts: the initialisation from k-means labels, k-means++
// seeds or random rows.
template <class T>
void stats_from_labels(const DataView<T>& X, const std::int64_t* labels, CovType cov, index_t K,
                       const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    detail::stats_pass<T>(X, labels, nullptr, cov, K, shifts, stats, n_threads);
}

// Statistics of dense responsibilities resp (N x K, rows summing to one).
template <class T>
void stats_from_resp(const DataView<T>& X, const T* resp, CovType cov, index_t K,
                     const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    detail::stats_pass<T>(X, nullptr, resp, cov, K, shifts, stats, n_threads);
}

}  // namespace gaussmix
