// kmeans.hpp -- weighted k-means++ seeding and Lloyd's k-means, the
// hard-assignment limit of EM, used to initialise mixtures.
//
// k-means++ (Arthur & Vassilvitskii 2007) with greedy local trials as in
// scikit-learn: each new centre is the best, by the resulting potential
// sum_i w_i min_c ||x_i - c||^2, of 2 + floor(ln K) candidates drawn with
// probability proportional to w_i D(x_i)^2.
// Lloyd iterations as in scikit-learn's KMeans: assign to the nearest centre,
// move centres to the weighted means, relocate empty clusters to the points
// farthest from their centres; stop when no label changes or the total squared
// centre shift is <= tol * mean_j Var(X_j); finish with labels consistent with
// the final centres.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "data.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace gaussmix {

// Uniform doubles in [0, 1) from a 64-bit Mersenne twister (portable: the
// conversion is ours, not the standard library's distribution).
class Rng {
   public:
    explicit Rng(std::uint64_t seed) : gen_(seed) {}
    double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

   private:
    std::mt19937_64 gen_;
};

namespace detail {

constexpr index_t kBlock = 256;

// out[c * kBlock + i] = ||x_{b0+i} - centre_c||^2 for i < nb (nb <= kBlock),
// on the block transposed into xt (D x kBlock, double): vectorised over rows.
template <class T>
GAUSSMIX_MULTIVERSION void block_sq_dists(const DataView<T>& X, index_t b0, index_t nb, const double* centers,
                                          index_t ncent, double* __restrict out, double* __restrict xt) {
    const index_t D = X.d;
    for (index_t i = 0; i < nb; ++i) {
        const T* xr = X.row(b0 + i);
        for (index_t l = 0; l < D; ++l) xt[l * kBlock + i] = static_cast<double>(xr[l]);
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

// Calls f(b0, nb, dists) for the blocks of rows [r0, r1), dists being the
// squared distances to the ncent centres (centre-major, stride kBlock).
template <class T, class F>
void for_each_block_dists(const DataView<T>& X, index_t r0, index_t r1, const double* centers, index_t ncent,
                          F&& f) {
    simd::aligned_vector<double> dists(ncent * kBlock), xt(X.d * kBlock);
    for (index_t b0 = r0; b0 < r1; b0 += kBlock) {
        const index_t nb = std::min(kBlock, r1 - b0);
        block_sq_dists(X, b0, nb, centers, ncent, dists.data(), xt.data());
        f(b0, nb, static_cast<const double*>(dists.data()));
    }
}

// First index i with cumsum[i] >= v (numpy's searchsorted, side='left'),
// clipped to n - 1.
inline index_t search_cumsum(const std::vector<double>& cumsum, double v) {
    auto it = std::lower_bound(cumsum.begin(), cumsum.end(), v);
    index_t i = static_cast<index_t>(it - cumsum.begin());
    return std::min<index_t>(i, static_cast<index_t>(cumsum.size()) - 1);
}

}  // namespace detail

// Indices of K seeds chosen by greedy k-means++.
template <class T>
std::vector<index_t> kmeans_plusplus(const DataView<T>& X, index_t K, Rng& rng, int n_threads) {
    const index_t N = X.n, D = X.d;
    n_threads = threads_for(3.0 * static_cast<double>(N * D), n_threads);
    std::vector<index_t> seeds;
    seeds.reserve(K);
    std::vector<double> cumsum(N);
    double acc = 0.0;
    for (index_t i = 0; i < N; ++i) cumsum[i] = (acc += X.weight(i));
    seeds.push_back(detail::search_cumsum(cumsum, rng.uniform() * acc));

    const Partition part = make_partition(N, 4096, 64);
    std::vector<double> closest(N);
    std::vector<double> center(X.row(seeds[0]), X.row(seeds[0]) + D);
    auto update_closest = [&](bool first) {
        std::vector<double> pot(part.n_chunks, 0.0);
        parallel_for(part.n_chunks, n_threads, [&](index_t c) {
            double p = 0.0;
            detail::for_each_block_dists(X, part.begin(c), part.end(c), center.data(), 1,
                                         [&](index_t b0, index_t nb, const double* dd) {
                                             for (index_t i = 0; i < nb; ++i) {
                                                 double& cl = closest[b0 + i];
                                                 cl = first ? dd[i] : std::min(cl, dd[i]);
                                                 const double wi = X.weight(b0 + i);
                                                 p += wi > 0.0 ? wi * cl : 0.0;
                                             }
                                         });
            pot[c] = p;
        });
        double total = 0.0;
        for (double p : pot) total += p;
        return total;
    };
    double current_pot = update_closest(true);

    const index_t n_trials = 2 + static_cast<index_t>(std::log(static_cast<double>(K)));
    std::vector<index_t> cand(n_trials);
    std::vector<double> cand_centers(n_trials * D);
    std::vector<double> cand_pot_chunks(part.n_chunks * n_trials);
    for (index_t c = 1; c < K; ++c) {
        acc = 0.0;
        for (index_t i = 0; i < N; ++i) {
            const double wi = X.weight(i);
            cumsum[i] = (acc += wi > 0.0 ? wi * closest[i] : 0.0);  // 0 * inf adds nothing
        }
        for (index_t t = 0; t < n_trials; ++t) {
            cand[t] = detail::search_cumsum(cumsum, rng.uniform() * current_pot);
            std::copy(X.row(cand[t]), X.row(cand[t]) + D, cand_centers.begin() + t * D);
        }
        parallel_for(part.n_chunks, n_threads, [&](index_t ch) {
            double* p = cand_pot_chunks.data() + ch * n_trials;
            std::fill(p, p + n_trials, 0.0);
            detail::for_each_block_dists(
                X, part.begin(ch), part.end(ch), cand_centers.data(), n_trials,
                [&](index_t b0, index_t nb, const double* dd) {
                    for (index_t t = 0; t < n_trials; ++t)
                        for (index_t i = 0; i < nb; ++i) {
                            const double wi = X.weight(b0 + i);
                            if (wi > 0.0) p[t] += wi * std::min(closest[b0 + i], dd[t * detail::kBlock + i]);
                        }
                });
        });
        index_t best = 0;
        double best_pot = std::numeric_limits<double>::infinity();
        for (index_t t = 0; t < n_trials; ++t) {
            double p = 0.0;
            for (index_t ch = 0; ch < part.n_chunks; ++ch) p += cand_pot_chunks[ch * n_trials + t];
            if (p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        seeds.push_back(cand[best]);
        std::copy(cand_centers.begin() + best * D, cand_centers.begin() + (best + 1) * D, center.begin());
        current_pot = update_closest(false);
    }
    return seeds;
}

struct KMeansResult {
    std::vector<double> centers;       // K x D
    std::vector<std::int64_t> labels;  // N
    index_t n_iter = 0;
};

// Lloyd's algorithm from the given centres.
template <class T>
KMeansResult kmeans_lloyd(const DataView<T>& X, std::vector<double> centers, index_t K, index_t max_iter,
                          double rel_tol, int n_threads) {
    const index_t N = X.n, D = X.d;
    n_threads = threads_for(2.0 * static_cast<double>(N * D * K), n_threads);
    KMeansResult res;
    res.labels.assign(N, -1);
    std::vector<double> dist(N);

    // tol scaled by the mean (unweighted) feature variance, as scikit-learn does.
    double tol = 0.0;
    if (rel_tol > 0.0) {
        DataView<T> unweighted = X;
        unweighted.weights = nullptr;
        const std::vector<double> mean = weighted_mean(unweighted, n_threads);
        const Partition p = make_partition(N, 4096, 64);
        std::vector<double> var(p.n_chunks * D, 0.0);
        parallel_for(p.n_chunks, n_threads, [&](index_t c) {
            double* v = var.data() + c * D;
            for (index_t i = p.begin(c); i < p.end(c); ++i)
                for (index_t l = 0; l < D; ++l) {
                    const double e = static_cast<double>(X.row(i)[l]) - mean[l];
                    v[l] += e * e;
                }
        });
        double s = 0.0;
        for (double v : var) s += v;
        tol = rel_tol * s / static_cast<double>(N * D);
    }

    const Partition part = make_partition(N, 2048, sizeof(double) * (K * D + K + 1));
    std::vector<double> sums(part.n_chunks * K * D), wsum(part.n_chunks * K);
    std::vector<index_t> changed(part.n_chunks);

    auto assign = [&](bool accumulate) {
        parallel_for(part.n_chunks, n_threads, [&](index_t c) {
            double* s = sums.data() + c * K * D;
            double* ws = wsum.data() + c * K;
            if (accumulate) {
                std::fill(s, s + K * D, 0.0);
                std::fill(ws, ws + K, 0.0);
            }
            index_t ch = 0;
            std::vector<std::int64_t> lab(detail::kBlock);
            detail::for_each_block_dists(X, part.begin(c), part.end(c), centers.data(), K,
                                         [&](index_t b0, index_t nb, const double* dd) {
                double* bd = dist.data() + b0;
                std::copy(dd, dd + nb, bd);
                std::fill(lab.begin(), lab.begin() + nb, 0);
                for (index_t j = 1; j < K; ++j) {
                    const double* dj = dd + j * detail::kBlock;
                    for (index_t i = 0; i < nb; ++i)
                        if (dj[i] < bd[i]) {
                            bd[i] = dj[i];
                            lab[i] = j;
                        }
                }
                for (index_t i = 0; i < nb; ++i) {
                    const std::int64_t best = lab[i];
                    ch += res.labels[b0 + i] != best;
                    res.labels[b0 + i] = best;
                    if (accumulate) {
                        const double w = X.weight(b0 + i);
                        const T* xr = X.row(b0 + i);
                        ws[best] += w;
                        for (index_t l = 0; l < D; ++l) s[best * D + l] += w * static_cast<double>(xr[l]);
                    }
                }
            });
            changed[c] = ch;
        });
    };

    for (index_t it = 0; it < max_iter; ++it) {
        assign(true);
        res.n_iter = it + 1;
        std::vector<double> s(K * D, 0.0), w(K, 0.0);
        index_t n_changed = 0;
        for (index_t c = 0; c < part.n_chunks; ++c) {
            for (index_t q = 0; q < K * D; ++q) s[q] += sums[c * K * D + q];
            for (index_t j = 0; j < K; ++j) w[j] += wsum[c * K + j];
            n_changed += changed[c];
        }
        // Relocate empty clusters to the points farthest from their centres.
        std::vector<index_t> empty;
        for (index_t j = 0; j < K; ++j)
            if (!(w[j] > 0.0)) empty.push_back(j);
        if (!empty.empty()) {
            std::vector<index_t> order(N);
            std::iota(order.begin(), order.end(), index_t(0));
            std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return dist[a] > dist[b]; });
            std::size_t e = 0;
            for (index_t q = 0; q < N && e < empty.size(); ++q) {
                const index_t i = order[q];
                const double wi = X.weight(i);
                const index_t old = res.labels[i];
                if (!(wi > 0.0) || w[old] <= wi) continue;  // keep every cluster non-empty
                const index_t nj = empty[e++];
                for (index_t l = 0; l < D; ++l) {
                    const double v = wi * static_cast<double>(X.row(i)[l]);
                    s[old * D + l] -= v;
                    s[nj * D + l] = v;
                }
                w[old] -= wi;
                w[nj] = wi;
                res.labels[i] = nj;
            }
        }
        double shift = 0.0;
        for (index_t j = 0; j < K; ++j) {
            if (!(w[j] > 0.0)) continue;  // could not be relocated: keep the old centre
            for (index_t l = 0; l < D; ++l) {
                const double nc = s[j * D + l] / w[j];
                const double dlt = nc - centers[j * D + l];
                shift += dlt * dlt;
                centers[j * D + l] = nc;
            }
        }
        if (it > 0 && n_changed == 0) {
            res.centers = centers;
            return res;  // strict convergence: labels match the centres already
        }
        if (shift <= tol) break;
    }
    assign(false);  // labels consistent with the final centres
    res.centers = std::move(centers);
    return res;
}

}  // namespace gaussmix
