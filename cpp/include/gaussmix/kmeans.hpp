// kmeans.hpp -- the data passes of weighted k-means++ seeding and of Lloyd's
// k-means, the hard-assignment limit of EM, used to initialise mixtures.
//
// The algorithms are scikit-learn's (sklearn.cluster.kmeans_plusplus and
// KMeans with algorithm="lloyd"), with its random numbers, drawn by the
// caller from its numpy RandomState and passed in:
//
// * k-means++ (Arthur & Vassilvitskii 2007, greedy variant with
//   n_trials = 2 + floor(ln K) candidates per centre): the first centre is
//   numpy's RandomState.choice(N, p = w / sum w) for the first uniform u_0
//   (choice_index); then for each centre c the candidates are the rows where
//   the running sum of w_i D_i^2 first reaches u * sum_i w_i D_i^2 for the
//   next n_trials uniforms u (numpy's searchsorted on the cumulative sum,
//   cumsum_search), and the one leaving the smallest potential
//   sum_i w_i min(D_i^2, ||x_i - c||^2) is kept (the first on ties). Either
//   all of it in one call (kmeans_plusplus, sums in double), or the distance
//   passes only (kmeans_candidate_sq_dists, D^2 stored in the data's type)
//   for a caller that forms the potentials with numpy as scikit-learn does.
// * Lloyd: label_i = argmin_j ||x_i - mu_j||^2 (first minimum on ties) and
//   the per-cluster sums sum_{i in j} w_i x_i and sum_{i in j} w_i.
// * The per-feature mean and variance that KMeans centres the data with and
//   scales its tolerance by, summed in the data's type in numpy's order.
//
// Data may be shifted by a vector s before use: the coordinates are then
// fl(x - s) in the data's type, exactly the values of numpy's X - s.
// Distances are (x - c)^2 summed in double.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "data.hpp"
#include "parallel.hpp"
#include "simd.hpp"

// Floating-point contraction (a * b + c fused into one rounding) would make a
// sum differ from numpy's, which rounds the product and the sum separately.
#if defined(__clang__)
#define GAUSSMIX_NO_CONTRACT
#define GAUSSMIX_NO_CONTRACT_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define GAUSSMIX_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define GAUSSMIX_NO_CONTRACT_BODY
#else
#define GAUSSMIX_NO_CONTRACT
#define GAUSSMIX_NO_CONTRACT_BODY
#endif

namespace gaussmix {

namespace detail {

constexpr index_t kBlock = 256;

// out[c * kBlock + i] = ||x_{b0+i} - s - centre_c||^2 for i < nb (nb <= kBlock)
// on the block transposed into xt (D x kBlock, double): vectorised over rows.
// shift: s (D values in T), or nullptr for none.
template <class T>
GAUSSMIX_MULTIVERSION void block_sq_dists(const DataView<T>& X, const T* shift, index_t b0, index_t nb,
                                          const double* centers, index_t ncent, double* __restrict out,
                                          double* __restrict xt) {
    const index_t D = X.d;
    for (index_t i = 0; i < nb; ++i) {
        const T* xr = X.row(b0 + i);
        if (shift) {
            for (index_t l = 0; l < D; ++l) {
                const T v = xr[l] - shift[l];  // rounded to T, as numpy's X - s
                xt[l * kBlock + i] = static_cast<double>(v);
            }
        } else {
            for (index_t l = 0; l < D; ++l) xt[l * kBlock + i] = static_cast<double>(xr[l]);
        }
    }
    for (index_t c = 0; c < ncent; ++c) {
        double* __restrict o = out + c * kBlock;
        const double* cc = centers + c * D;
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) o[i] = 0.0;
        for (index_t l = 0; l < D; ++l) {
            const double m = cc[l];
            const double* __restrict xl = xt + l * kBlock;
#pragma omp simd
            for (index_t i = 0; i < nb; ++i) {
                const double v = xl[i] - m;
                o[i] += v * v;
            }
        }
    }
}

// best[i], lab[i] = min_j dd[j * kBlock + i] and its first argmin, j < ncent.
GAUSSMIX_MULTIVERSION inline void block_argmin(const double* __restrict dd, index_t nb, index_t ncent,
                                               double* __restrict best, std::int64_t* __restrict lab) {
#pragma omp simd
    for (index_t i = 0; i < nb; ++i) {
        best[i] = dd[i];
        lab[i] = 0;
    }
    for (index_t j = 1; j < ncent; ++j) {
        const double* __restrict dj = dd + j * kBlock;
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) {
            const bool lt = dj[i] < best[i];
            best[i] = lt ? dj[i] : best[i];
            lab[i] = lt ? j : lab[i];
        }
    }
}

// Calls f(b0, nb, dists) for the blocks of rows [r0, r1), dists being the
// squared distances to the ncent centres (centre-major, stride kBlock).
// (f may also take the block's shifted rows, transposed: D x kBlock.)
template <class T, class F>
void for_each_block_dists(const DataView<T>& X, const T* shift, index_t r0, index_t r1, const double* centers,
                          index_t ncent, F&& f) {
    simd::aligned_vector<double> dists(ncent * kBlock), xt(X.d * kBlock);
    for (index_t b0 = r0; b0 < r1; b0 += kBlock) {
        const index_t nb = std::min(kBlock, r1 - b0);
        block_sq_dists(X, shift, b0, nb, centers, ncent, dists.data(), xt.data());
        if constexpr (std::is_invocable_v<F, index_t, index_t, const double*, const double*>)
            f(b0, nb, static_cast<const double*>(dists.data()), static_cast<const double*>(xt.data()));
        else
            f(b0, nb, static_cast<const double*>(dists.data()));
    }
}

// Row i of X, shifted, as double.
template <class T>
void shifted_row(const DataView<T>& X, const T* shift, index_t i, double* out) {
    const T* xr = X.row(i);
    for (index_t l = 0; l < X.d; ++l) {
        const T v = shift ? static_cast<T>(xr[l] - shift[l]) : xr[l];
        out[l] = static_cast<double>(v);
    }
}

}  // namespace detail

// numpy's X.mean(axis=0) and X.var(axis=0) for a C-ordered X with at least
// two columns: numpy then reduces axis 0 row after row into one accumulator
// per column, in the data's type, and divides by the count in double
// (true_divide by an intp count, cast back). With one column numpy sums
// pairwise instead; callers use numpy there. Single-threaded: the order is
// the point.
template <class T>
GAUSSMIX_NO_CONTRACT void column_mean_var(const DataView<T>& X, T* mean, T* var) {
    GAUSSMIX_NO_CONTRACT_BODY
    const index_t N = X.n, D = X.d;
    const double count = static_cast<double>(N);
    std::vector<T> acc(D, T(0));
    for (index_t i = 0; i < N; ++i) {
        const T* xr = X.row(i);
        for (index_t l = 0; l < D; ++l) acc[l] += xr[l];
    }
    for (index_t l = 0; l < D; ++l) mean[l] = static_cast<T>(static_cast<double>(acc[l]) / count);
    std::fill(acc.begin(), acc.end(), T(0));
    for (index_t i = 0; i < N; ++i) {
        const T* xr = X.row(i);
        for (index_t l = 0; l < D; ++l) {
            const T e = xr[l] - mean[l];
            const T sq = e * e;
            acc[l] += sq;
        }
    }
    for (index_t l = 0; l < D; ++l) var[l] = static_cast<T>(static_cast<double>(acc[l]) / count);
}

// numpy's legacy RandomState.choice(n, p=p) with p_i = fl_W(w_i / w_sum) for
// its one uniform draw u: cdf = cumsum(p) (in double, in order), cdf /= cdf[-1],
// and the first i with cdf_i > u. w nullptr: unit weights.
template <class W>
GAUSSMIX_NO_CONTRACT index_t choice_index(index_t n, const W* w, W w_sum, double u) {
    GAUSSMIX_NO_CONTRACT_BODY
    auto p = [&](index_t i) { return static_cast<double>(static_cast<W>((w ? w[i] : W(1)) / w_sum)); };
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) total += p(i);
    double acc = 0.0;
    for (index_t i = 0; i < n; ++i) {
        acc += p(i);
        if (acc / total > u) return i;
    }
    return n - 1;
}

// numpy's searchsorted(cumsum(w * d), v) for each of the m values v (the
// first i with cumsum_i >= v, clipped to n - 1), the products and the running
// sum rounded in T as numpy rounds them, in one pass without storing the
// cumulative sum. w nullptr: unit weights. A zero weight adds nothing even
// where d is infinite (numpy's 0 * inf would poison the sum with a NaN).
template <class T>
GAUSSMIX_NO_CONTRACT void cumsum_search(index_t n, const T* d, const T* w, const double* v, index_t m,
                                        std::int64_t* out) {
    GAUSSMIX_NO_CONTRACT_BODY
    std::vector<index_t> order(m);
    for (index_t q = 0; q < m; ++q) order[q] = q;
    std::sort(order.begin(), order.end(), [&](index_t a, index_t b) { return v[a] < v[b]; });
    auto term = [&](index_t i) -> T {
        if (!w) return d[i];
        const T wi = w[i];
        return wi > T(0) ? static_cast<T>(wi * d[i]) : T(0);
    };
    index_t i = 0;
    T acc = term(0);
    for (index_t q : order) {
        while (i < n - 1 && !(static_cast<double>(acc) >= v[q])) {
            ++i;
            const T t = term(i);
            acc = static_cast<T>(acc + t);
        }
        out[q] = i;
    }
}

// k-means++ distances to candidate rows: out[t * N + i] =
// fl_T(min(closest_i, ||x_i - x_{cand_t}||^2)) for t < n_cand, with x shifted
// by `shift` (nullptr: none) and closest nullptr for no minimum.
template <class T>
void kmeans_candidate_sq_dists(const DataView<T>& X, const T* shift, const std::int64_t* cand, index_t n_cand,
                               const T* closest, T* out, int n_threads) {
    const index_t N = X.n, D = X.d;
    n_threads = threads_for(3.0 * static_cast<double>(N * D * n_cand), n_threads);
    std::vector<double> centers(n_cand * D);
    for (index_t t = 0; t < n_cand; ++t) detail::shifted_row(X, shift, cand[t], centers.data() + t * D);
    const Partition part = make_partition(N, 4096, 64, detail::kBlock);
    parallel_for(part.n_chunks, n_threads, [&](index_t c) {
        detail::for_each_block_dists(X, shift, part.begin(c), part.end(c), centers.data(), n_cand,
                                     [&](index_t b0, index_t nb, const double* dd) {
                                         for (index_t t = 0; t < n_cand; ++t) {
                                             const double* dt = dd + t * detail::kBlock;
                                             T* o = out + t * N + b0;
                                             for (index_t i = 0; i < nb; ++i) {
                                                 const T v = static_cast<T>(dt[i]);
                                                 o[i] = closest ? std::min(closest[b0 + i], v) : v;
                                             }
                                         }
                                     });
    });
}

// Greedy k-means++ seeding, all passes in the engine: indices of K seeds of
// X (shifted by `shift`, nullptr: none) weighted by X.weights with sum w_sum
// (as numpy sums them; N for unit weights), from the uniform draws
// u[0 .. 1 + (K - 1) * n_trials). The potentials are summed in double over
// fixed chunks (thread-count independent) where scikit-learn sums with BLAS:
// the same to rounding, so only a tie to the last bits may go another way.
template <class T>
std::vector<index_t> kmeans_plusplus(const DataView<T>& X, const T* shift, double w_sum, index_t K,
                                     index_t n_trials, const double* u, int n_threads) {
    const index_t N = X.n, D = X.d;
    const int team = threads_for(3.0 * static_cast<double>(N * D * n_trials), n_threads);
    const Partition part = make_partition(N, 4096, 64, detail::kBlock);
    std::vector<index_t> seeds;
    seeds.reserve(K);
    seeds.push_back(choice_index<double>(N, X.weights, w_sum, u[0]));

    std::vector<double> closest(N), centers(n_trials * D), chunk_pot(part.n_chunks * n_trials);
    auto weighted = [&](index_t i, double v) {
        const double wi = X.weight(i);
        return wi > 0.0 ? wi * v : 0.0;  // 0 * inf adds nothing
    };
    // closest_i = min(closest_i, ||x_i - c||^2) for the centre in `centers`
    // (first: closest_i = that distance); returns the new potential.
    auto update_closest = [&](bool first) {
        parallel_for(part.n_chunks, team, [&](index_t c) {
            double p = 0.0;
            detail::for_each_block_dists(X, shift, part.begin(c), part.end(c), centers.data(), 1,
                                         [&](index_t b0, index_t nb, const double* dd) {
                                             for (index_t i = 0; i < nb; ++i) {
                                                 double& cl = closest[b0 + i];
                                                 cl = first ? dd[i] : std::min(cl, dd[i]);
                                                 p += weighted(b0 + i, cl);
                                             }
                                         });
            chunk_pot[c * n_trials] = p;
        });
        double pot = 0.0;
        for (index_t c = 0; c < part.n_chunks; ++c) pot += chunk_pot[c * n_trials];
        return pot;
    };
    detail::shifted_row(X, shift, seeds[0], centers.data());
    double pot = update_closest(true);

    std::vector<double> v(n_trials);
    std::vector<std::int64_t> cand(n_trials);
    for (index_t c = 1; c < K; ++c) {
        for (index_t t = 0; t < n_trials; ++t) v[t] = u[1 + (c - 1) * n_trials + t] * pot;
        cumsum_search<double>(N, closest.data(), X.weights, v.data(), n_trials, cand.data());
        for (index_t t = 0; t < n_trials; ++t) detail::shifted_row(X, shift, cand[t], centers.data() + t * D);
        parallel_for(part.n_chunks, team, [&](index_t ch) {
            double* p = chunk_pot.data() + ch * n_trials;
            std::fill(p, p + n_trials, 0.0);
            detail::for_each_block_dists(X, shift, part.begin(ch), part.end(ch), centers.data(), n_trials,
                                         [&](index_t b0, index_t nb, const double* dd) {
                                             for (index_t t = 0; t < n_trials; ++t) {
                                                 const double* dt = dd + t * detail::kBlock;
                                                 for (index_t i = 0; i < nb; ++i)
                                                     p[t] += weighted(b0 + i, std::min(closest[b0 + i], dt[i]));
                                             }
                                         });
        });
        index_t best = 0;
        double best_pot = 0.0;
        for (index_t t = 0; t < n_trials; ++t) {
            double p = 0.0;
            for (index_t ch = 0; ch < part.n_chunks; ++ch) p += chunk_pot[ch * n_trials + t];
            if (t == 0 || p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        seeds.push_back(cand[best]);
        std::copy(centers.begin() + best * D, centers.begin() + (best + 1) * D, centers.begin());
        pot = update_closest(false);
    }
    return seeds;
}

// One Lloyd assignment: labels[i] = argmin_j ||x_i - s - mu_j||^2 (the first
// j on ties); returns how many labels differ from the ones passed in. With
// sums and weight_sums given, also the per-cluster sums of w_i (x_i - s) and
// of w_i (w: N weights in the data's type, as scikit-learn holds them, or
// nullptr for unit weights), reduced over fixed chunks in chunk order
// (thread-count independent).
template <class T>
index_t kmeans_assign(const DataView<T>& X, const T* shift, const T* w, const double* centers, index_t K,
                      std::int64_t* labels, double* sums, double* weight_sums, int n_threads) {
    const index_t N = X.n, D = X.d;
    const bool accumulate = sums != nullptr && weight_sums != nullptr;
    n_threads = threads_for(2.0 * static_cast<double>(N * D * K), n_threads);
    const Partition part =
        make_partition(N, 2048, sizeof(double) * (accumulate ? K * D + K + 1 : 1), detail::kBlock);
    std::vector<double> part_sums(accumulate ? part.n_chunks * K * D : 0);
    std::vector<double> part_w(accumulate ? part.n_chunks * K : 0);
    std::vector<index_t> changed(part.n_chunks, 0);
    parallel_for(part.n_chunks, n_threads, [&](index_t c) {
        double* s = accumulate ? part_sums.data() + c * K * D : nullptr;
        double* ws = accumulate ? part_w.data() + c * K : nullptr;
        simd::aligned_vector<double> best_d(detail::kBlock);
        simd::aligned_vector<std::int64_t> lab(detail::kBlock);
        index_t ch = 0;
        detail::for_each_block_dists(X, shift, part.begin(c), part.end(c), centers, K,
                                     [&](index_t b0, index_t nb, const double* dd, const double* xt) {
            detail::block_argmin(dd, nb, K, best_d.data(), lab.data());
            for (index_t i = 0; i < nb; ++i) {
                const std::int64_t best = lab[i];
                ch += labels[b0 + i] != best;
                labels[b0 + i] = best;
                if (accumulate) {
                    const double wi = w ? static_cast<double>(w[b0 + i]) : 1.0;
                    ws[best] += wi;
                    double* sb = s + best * D;
                    for (index_t l = 0; l < D; ++l) sb[l] += wi * xt[l * detail::kBlock + i];
                }
            }
        });
        changed[c] = ch;
    });
    index_t n_changed = 0;
    for (index_t c = 0; c < part.n_chunks; ++c) n_changed += changed[c];
    if (accumulate) {
        std::fill(sums, sums + K * D, 0.0);
        std::fill(weight_sums, weight_sums + K, 0.0);
        for (index_t c = 0; c < part.n_chunks; ++c) {
            for (index_t q = 0; q < K * D; ++q) sums[q] += part_sums[c * K * D + q];
            for (index_t j = 0; j < K; ++j) weight_sums[j] += part_w[c * K + j];
        }
    }
    return n_changed;
}

}  // namespace gaussmix
