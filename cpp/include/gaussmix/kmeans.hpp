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
//   the per-cluster sums sum_{i in j} w_i x_i and sum_{i in j} w_i, one pass
//   (kmeans_assign) or the whole loop with scikit-learn's convergence tests
//   (kmeans_lloyd).
// * The per-feature mean and variance that KMeans centres the data with and
//   scales its tolerance by, summed in the data's type in numpy's order.
//
// Data may be shifted by a vector s before use: the coordinates are then
// fl(x - s) in the data's type, exactly the values of numpy's X - s.
// Distances (kmeans_tiles.hpp) are (x - c)^2 summed in double over the features in order, by
// register tiles of rows x centres on blocks of rows transposed so that a
// vector holds one feature of several rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "data.hpp"
#include "kmeans_tiles.hpp"
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

// One Lloyd assignment of rows [r0, r1) (see kmeans_assign), into the
// chunk's partial sums s (K x D) and ws (K), or none (s nullptr). Returns how
// many labels changed.
template <class T, int VB>
index_t assign_rows(const DataView<T>& X, const T* shift, const T* w, const double* centers, index_t K, index_t r0,
                    index_t r1, std::int64_t* labels, double* __restrict s, double* __restrict ws,
                    BlockScratch& scratch) {
    const index_t D = X.d;
    constexpr index_t G = tile_rows<VB>;
    double* xt = scratch.xt.data();
    std::int64_t* lab = scratch.lab.data();
    index_t changed = 0;
    for (index_t b0 = r0; b0 < r1; b0 += kBlock) {
        const index_t nb = std::min(kBlock, r1 - b0), nb_pad = (nb + G - 1) / G * G;
        load_rows<VB>(X, shift, b0, nb, nb_pad, xt);
        block_nearest<VB>(xt, nb_pad, D, centers, K, lab);
        for (index_t i = 0; i < nb; ++i) {
            changed += labels[b0 + i] != lab[i];
            labels[b0 + i] = lab[i];
        }
        if (!s) continue;
        // rows in order into their cluster's sums: w_i fl_T(x_i - s), in double
        for (index_t i = 0; i < nb; ++i) {
            const std::int64_t j = lab[i];
            double* __restrict sj = s + j * D;
            const T* __restrict xr = X.row(b0 + i);
            const double wi = w ? static_cast<double>(w[b0 + i]) : 1.0;
            ws[j] += wi;
            if (shift) {
                if (w) {
#pragma omp simd
                    for (index_t l = 0; l < D; ++l) sj[l] += wi * static_cast<double>(static_cast<T>(xr[l] - shift[l]));
                } else {
#pragma omp simd
                    for (index_t l = 0; l < D; ++l) sj[l] += static_cast<double>(static_cast<T>(xr[l] - shift[l]));
                }
            } else {
                if (w) {
#pragma omp simd
                    for (index_t l = 0; l < D; ++l) sj[l] += wi * static_cast<double>(xr[l]);
                } else {
#pragma omp simd
                    for (index_t l = 0; l < D; ++l) sj[l] += static_cast<double>(xr[l]);
                }
            }
        }
    }
    return changed;
}

// numpy's np.sum of n contiguous values in their own type, bit for bit:
// pairwise, with eight interleaved partial sums up to 128 values, halves
// (the first a multiple of eight) beyond.
template <class T>
GAUSSMIX_NO_CONTRACT T numpy_sum(const T* a, index_t n) {
    GAUSSMIX_NO_CONTRACT_BODY
    if (n < 8) {
        T res = T(0);
        for (index_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        T r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        index_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    index_t n2 = n / 2;
    n2 -= n2 % 8;
    return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
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
        detail::BlockScratch scratch(D, n_cand);
        dispatch_isa([&](auto vb) {
            constexpr int VB = decltype(vb)::value;
            constexpr index_t G = detail::tile_rows<VB>;
            for (index_t b0 = part.begin(c); b0 < part.end(c); b0 += detail::kBlock) {
                const index_t nb = std::min(detail::kBlock, part.end(c) - b0), nb_pad = (nb + G - 1) / G * G;
                detail::load_rows<VB>(X, shift, b0, nb, nb_pad, scratch.xt.data());
                detail::block_sq_dists<VB>(scratch.xt.data(), nb_pad, D, centers.data(), n_cand, scratch.dd.data());
                for (index_t t = 0; t < n_cand; ++t) {
                    const double* dt = scratch.dd.data() + t * detail::kBlock;
                    T* o = out + t * N + b0;
                    for (index_t i = 0; i < nb; ++i) {
                        const T v = static_cast<T>(dt[i]);
                        o[i] = closest ? std::min(closest[b0 + i], v) : v;
                    }
                }
            }
        });
    });
}

namespace detail {

// One k-means++ distance pass over the rows [r0, r1): d_t[i] =
// min(closest_i, ||x_i - c_t||^2) (closest nullptr: the distance) for the m
// centres at cen, stored in out[t] (out nullptr: not stored; out[t] may be
// closest itself), and pot[t] += sum_i w_i d_t[i] (a zero weight adds
// nothing, also where the distance is infinite), summed in W lanes per block
// and the blocks in order: the same sums whichever m centres share the pass.
template <class T, int VB>
void plusplus_rows(const DataView<T>& X, const T* shift, const double* cen, index_t m, index_t r0, index_t r1,
                   const double* closest, double* const* out, double* pot, BlockScratch& scratch) {
    constexpr int W = VB / static_cast<int>(sizeof(double));
    constexpr index_t G = tile_rows<VB>;
    using V = simd::vec<double, W>;
    const double* w = X.weights;
    for (index_t b0 = r0; b0 < r1; b0 += kBlock) {
        const index_t nb = std::min(kBlock, r1 - b0), nb_pad = (nb + G - 1) / G * G;
        load_rows<VB>(X, shift, b0, nb, nb_pad, scratch.xt.data());
        block_sq_dists<VB>(scratch.xt.data(), nb_pad, X.d, cen, m, scratch.dd.data());
        for (index_t t = 0; t < m; ++t) {
            const double* __restrict dt = scratch.dd.data() + t * kBlock;
            double* o = out ? out[t] + b0 : nullptr;
            const double* cl = closest ? closest + b0 : nullptr;
            const double* wb = w ? w + b0 : nullptr;
            V acc = V{};
            index_t i = 0;
            for (; i + W <= nb; i += W) {
                V d = simd::load<double, W>(dt + i);
                if (cl) {
                    const V c = simd::load<double, W>(cl + i);
                    d = d < c ? d : c;  // std::min(c, d)
                }
                if (o) simd::store<double, W>(o + i, d);
                if (wb) {
                    const V wi = simd::load<double, W>(wb + i);
                    d = wi > V{} ? wi * d : V{};
                }
                acc += d;
            }
            double tail = 0.0;
            for (; i < nb; ++i) {
                const double d = cl ? std::min(cl[i], dt[i]) : dt[i];
                if (o) o[i] = d;
                const double wi = wb ? wb[i] : 1.0;
                tail += wi > 0.0 ? wi * d : 0.0;
            }
            pot[t] += simd::hsum<W>(acc) + tail;
        }
    }
}

}  // namespace detail

// Greedy k-means++ seeding, all passes in the engine: indices of K seeds of
// X (shifted by `shift`, nullptr: none) weighted by X.weights with sum w_sum
// (as numpy sums them; N for unit weights), from the uniform draws
// u[0 .. 1 + (K - 1) * n_trials). Per centre, one pass over X gives the
// candidates' potentials; the winner's distances then become the closest
// ones, either kept from that pass (when storing n_trials rows of distances
// takes at most half the memory of X) or computed by a second pass. Both
// give the same bits, the distances and sums being formed alike. The
// potentials are summed in double over fixed chunks (thread-count
// independent) where scikit-learn sums with BLAS: the same to rounding, so
// only a tie to the last bits may go another way.
template <class T>
std::vector<index_t> kmeans_plusplus(const DataView<T>& X, const T* shift, double w_sum, index_t K,
                                     index_t n_trials, const double* u, int n_threads) {
    const index_t N = X.n, D = X.d;
    const int team = threads_for(3.0 * static_cast<double>(N * D * n_trials), n_threads);
    const Partition part = make_partition(N, 4096, 64, detail::kBlock);
    std::vector<index_t> seeds;
    seeds.reserve(K);
    seeds.push_back(choice_index<double>(N, X.weights, w_sum, u[0]));
    if (K == 1) return seeds;

    // Keeping the candidates' distances saves reading X a second time, and
    // costs n_trials + 1 doubles per row of memory: kept only when that is at
    // most half of a row of X (wide rows), so the seeding never holds more
    // than half of X's size beside it.
    const bool keep = 16 * (n_trials + 1) <= D * static_cast<index_t>(sizeof(T));
    const index_t n_rows = keep ? n_trials + 1 : 1;
    std::unique_ptr<double[]> store(new double[n_rows * N]);  // written before read
    std::vector<double*> rows(n_rows);
    for (index_t t = 0; t < n_rows; ++t) rows[t] = store.get() + t * N;
    std::vector<double> centers(n_trials * D), chunk_pot(part.n_chunks * n_trials), pots(n_trials);
    // the m centres in `centers` against closest (nullptr: none), the
    // distances into out[0 .. m) (nullptr: not kept); potentials into pots
    auto pass = [&](index_t m, const double* closest, double* const* out) {
        std::fill(chunk_pot.begin(), chunk_pot.end(), 0.0);
        parallel_for(part.n_chunks, team, [&](index_t c) {
            detail::BlockScratch scratch(D, m);
            dispatch_isa([&](auto vb) {
                detail::plusplus_rows<T, decltype(vb)::value>(X, shift, centers.data(), m, part.begin(c),
                                                              part.end(c), closest, out,
                                                              chunk_pot.data() + c * n_trials, scratch);
            });
        });
        for (index_t t = 0; t < m; ++t) {
            double p = 0.0;
            for (index_t c = 0; c < part.n_chunks; ++c) p += chunk_pot[c * n_trials + t];
            pots[t] = p;
        }
    };
    detail::shifted_row(X, shift, seeds[0], centers.data());
    pass(1, nullptr, rows.data());
    double pot = pots[0];

    std::vector<double> v(n_trials);
    std::vector<std::int64_t> cand(n_trials);
    for (index_t c = 1; c < K; ++c) {
        for (index_t t = 0; t < n_trials; ++t) v[t] = u[1 + (c - 1) * n_trials + t] * pot;
        cumsum_search<double>(N, rows[0], X.weights, v.data(), n_trials, cand.data());
        for (index_t t = 0; t < n_trials; ++t) detail::shifted_row(X, shift, cand[t], centers.data() + t * D);
        pass(n_trials, rows[0], keep ? rows.data() + 1 : nullptr);
        index_t best = 0;
        for (index_t t = 1; t < n_trials; ++t)
            if (pots[t] < pots[best]) best = t;
        seeds.push_back(cand[best]);
        pot = pots[best];
        if (c + 1 == K) break;
        if (keep) {
            std::swap(rows[0], rows[1 + best]);
        } else {
            std::copy(centers.begin() + best * D, centers.begin() + (best + 1) * D, centers.begin());
            pass(1, rows[0], rows.data());  // in place: closest_i = min(closest_i, winner's distance)
        }
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
class KMeansAssigner {
   public:
    KMeansAssigner(const DataView<T>& X, const T* shift, const T* w, index_t K, bool accumulate, int n_threads)
        : X_(X), shift_(shift), w_(w), K_(K), accumulate_(accumulate),
          part_(make_partition(X.n, 2048, sizeof(double) * (accumulate ? K * X.d + K + 1 : 1), detail::kBlock)),
          n_threads_(threads_for(2.0 * static_cast<double>(X.n * X.d * K), n_threads)),
          part_sums_(accumulate ? part_.n_chunks * K * X.d : 0),
          part_w_(accumulate ? part_.n_chunks * K : 0),
          changed_(part_.n_chunks, 0) {}

    index_t operator()(const double* centers, std::int64_t* labels, double* sums, double* weight_sums) {
        const index_t K = K_, D = X_.d;
        const bool acc = accumulate_ && sums != nullptr && weight_sums != nullptr;
        parallel_for(part_.n_chunks, n_threads_, [&](index_t c) {
            double* s = acc ? part_sums_.data() + c * K * D : nullptr;
            double* ws = acc ? part_w_.data() + c * K : nullptr;
            if (acc) {
                std::fill(s, s + K * D, 0.0);
                std::fill(ws, ws + K, 0.0);
            }
            detail::BlockScratch scratch(D, 0);
            dispatch_isa([&](auto vb) {
                changed_[c] = detail::assign_rows<T, decltype(vb)::value>(X_, shift_, w_, centers, K, part_.begin(c),
                                                                          part_.end(c), labels, s, ws, scratch);
            });
        });
        index_t n_changed = 0;
        for (index_t c = 0; c < part_.n_chunks; ++c) n_changed += changed_[c];
        if (acc) {
            std::fill(sums, sums + K * D, 0.0);
            std::fill(weight_sums, weight_sums + K, 0.0);
            for (index_t c = 0; c < part_.n_chunks; ++c) {
                for (index_t q = 0; q < K * D; ++q) sums[q] += part_sums_[c * K * D + q];
                for (index_t j = 0; j < K; ++j) weight_sums[j] += part_w_[c * K + j];
            }
        }
        return n_changed;
    }

   private:
    DataView<T> X_;
    const T* shift_;
    const T* w_;
    index_t K_;
    bool accumulate_;
    Partition part_;
    int n_threads_;
    std::vector<double> part_sums_, part_w_;
    std::vector<index_t> changed_;
};

template <class T>
index_t kmeans_assign(const DataView<T>& X, const T* shift, const T* w, const double* centers, index_t K,
                      std::int64_t* labels, double* sums, double* weight_sums, int n_threads) {
    const bool accumulate = sums != nullptr && weight_sums != nullptr;
    KMeansAssigner<T> assign(X, shift, w, K, accumulate, n_threads);
    return assign(centers, labels, sums, weight_sums);
}

// Why kmeans_lloyd returned.
enum class LloydStop : int {
    max_iter = 0,   // max_iter iterations ran
    strict = 1,     // an assignment changed no label
    tol = 2,        // the centres moved by at most tol
    empty = 3,      // an assignment left a cluster without weight
};

struct LloydResult {
    index_t n_iter = 0;     // iterations run (the last included)
    index_t n_changed = 0;  // labels the last assignment changed
    LloydStop stop = LloydStop::max_iter;
};

// Lloyd iterations as scikit-learn's KMeans runs them (algorithm="lloyd"),
// at most max_iter: assign (kmeans_assign, with the sums), the new centres
// mu_j = sums_j * (1 / weight_j) (numpy's in-place multiply by the
// reciprocal), the shift sum_jl (mu_new - mu_old)^2 as numpy's np.sum adds
// it; stop when no label changed, or else when the shift is at most tol.
// centers (K x D, in and out) and labels (in and out) carry the state.
//
// An assignment that leaves a cluster with zero weight ends the call before
// the centres are updated (stop = empty): scikit-learn relocates such
// clusters by an argpartition of distances in the data's type, which the
// caller does with numpy before it finishes that iteration and calls again.
// sums and weight_sums (K x D, K) then hold that assignment's sums; centers
// are still those it assigned to.
template <class T>
GAUSSMIX_NO_CONTRACT LloydResult kmeans_lloyd(const DataView<T>& X, const T* shift, const T* w, double* centers,
                                              index_t K, std::int64_t* labels, double* sums, double* weight_sums,
                                              index_t max_iter, double tol, int n_threads) {
    GAUSSMIX_NO_CONTRACT_BODY
    const index_t D = X.d;
    KMeansAssigner<T> assign(X, shift, w, K, true, n_threads);
    std::vector<double> sq(K * D);
    LloydResult r;
    for (index_t it = 0; it < max_iter; ++it) {
        r.n_iter = it + 1;
        r.n_changed = assign(centers, labels, sums, weight_sums);
        for (index_t j = 0; j < K; ++j)
            if (!(weight_sums[j] > 0.0)) {
                r.stop = LloydStop::empty;
                return r;
            }
        for (index_t j = 0; j < K; ++j) {
            const double inv = 1.0 / weight_sums[j];
            for (index_t l = 0; l < D; ++l) {
                const double mu = sums[j * D + l] * inv;
                const double e = mu - centers[j * D + l];
                sq[j * D + l] = e * e;
                centers[j * D + l] = mu;
            }
        }
        const double shift_tot = detail::numpy_sum(sq.data(), K * D);
        if (r.n_changed == 0) {
            r.stop = LloydStop::strict;
            return r;
        }
        if (shift_tot <= tol) {
            r.stop = LloydStop::tol;
            return r;
        }
    }
    r.stop = LloydStop::max_iter;
    return r;
}

}  // namespace gaussmix
