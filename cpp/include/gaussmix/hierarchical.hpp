// hierarchical.hpp -- model-based agglomerative clustering: one merge tree
// whose cuts give a starting partition for every number of components.
//
// For the Gaussian model with equal spherical covariances (Fraley 1998,
// "EII"), the merge that lowers the classification likelihood least is the
// one raising the within-cluster sum of squares least, Ward's criterion:
//
//     d(A, B) = w_A w_B / (w_A + w_B) ||c_A - c_B||^2
//
// with w the total weight and c the weighted centroid of a cluster. Ward's
// distance is reducible (d(A u B, C) >= min(d(A, C), d(B, C))), so the
// nearest-neighbour chain (Murtagh 1983; Muellner 2011, "Modern hierarchical,
// agglomerative clustering algorithms") finds the greedy algorithm's merges
// in O(n^2 D) time and O(n D) memory: follow nearest neighbours until two
// clusters are each other's nearest, merge them, go on from the chain's rest.
//
// Ties are broken the same way on every machine (the chain's previous
// cluster first, then the lower row), so the tree depends on the data only.
// Cutting the tree into K clusters applies its n - K cheapest merges.
//
// Clusters of unequal shapes need the unconstrained model ("VVV"), whose
// merge cost is the rise of the classification criterion
//
//     sum_k n_k log det S_k,   S_k = (W_k + nu S0) / (n_k + nu)
//
// (W_k the within-cluster scatter, n_k the weight; nu S0 a prior of one
// pseudo-row with spherical covariance S0, which keeps small clusters
// regular). It is neither reducible nor monotone, so its merges are found
// greedily over all pairs, O(m^2 D^3) for m clusters: hierarchical_partitions
// runs it on the kWardParts parts of Ward's tree, as mclust's hc may start
// from a given partition.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "data.hpp"

namespace gaussmix {

// The n - 1 merges of a tree over n rows, cheapest first: merge m joins the
// clusters containing rows a[m] and b[m] at Ward cost cost[m].
struct MergeTree {
    index_t n = 0;
    std::vector<index_t> a, b;
    std::vector<double> cost;
};

// Ward's tree of the rows of Z, each weighted by Z.weights (all > 0) or 1.
template <class T>
MergeTree ward_tree(const DataView<T>& Z) {
    const index_t n = Z.n, D = Z.d;
    MergeTree tree;
    tree.n = n;
    if (n <= 1) return tree;
    std::vector<double> cent(static_cast<std::size_t>(n) * D), wt(n);
    for (index_t i = 0; i < n; ++i) {
        const T* zr = Z.row(i);
        for (index_t l = 0; l < D; ++l) cent[i * D + l] = static_cast<double>(zr[l]);
        wt[i] = Z.weights ? Z.weights[i] : 1.0;
        if (!(wt[i] > 0.0)) throw std::invalid_argument("ward_tree: every weight must be positive");
    }
    std::vector<index_t> active(n);  // alive clusters, by their lowest row, ascending
    std::iota(active.begin(), active.end(), index_t(0));
    auto dist = [&](index_t p, index_t q) {
        const double* cp = cent.data() + p * D;
        const double* cq = cent.data() + q * D;
        double s = 0.0;
        for (index_t l = 0; l < D; ++l) {
            const double e = cp[l] - cq[l];
            s += e * e;
        }
        return wt[p] * wt[q] / (wt[p] + wt[q]) * s;
    };
    std::vector<index_t> ma, mb;
    std::vector<double> mc;
    ma.reserve(n - 1);
    mb.reserve(n - 1);
    mc.reserve(n - 1);
    std::vector<index_t> chain;
    chain.reserve(n);
    std::vector<char> in_chain(n, 0);
    while (static_cast<index_t>(active.size()) > 1) {
        if (chain.empty()) {
            chain.push_back(active.front());
            in_chain[active.front()] = 1;
        }
        const index_t a = chain.back();
        const index_t prev = chain.size() >= 2 ? chain[chain.size() - 2] : index_t(-1);
        index_t best = prev;
        double best_d = prev >= 0 ? dist(a, prev) : std::numeric_limits<double>::infinity();
        for (const index_t j : active) {  // ascending: the lower row wins ties
            if (j == a || j == prev) continue;
            const double dj = dist(a, j);
            if (best < 0 || dj < best_d) {  // the first candidate even if every distance overflows
                best_d = dj;
                best = j;
            }
        }
        if (best != prev) {
            if (in_chain[best]) {
                // rounding of recomputed centroids can lead back into the chain:
                // go on from that cluster, dropping the links after it
                while (chain.back() != best) {
                    in_chain[chain.back()] = 0;
                    chain.pop_back();
                }
            } else {
                chain.push_back(best);
                in_chain[best] = 1;
            }
            continue;
        }
        // a and prev are each other's nearest: merge them into the lower row
        chain.resize(chain.size() - 2);
        in_chain[a] = in_chain[prev] = 0;
        const index_t lo = std::min(a, prev), hi = std::max(a, prev);
        const double w = wt[lo] + wt[hi];
        for (index_t l = 0; l < D; ++l)
            cent[lo * D + l] = (wt[lo] * cent[lo * D + l] + wt[hi] * cent[hi * D + l]) / w;
        wt[lo] = w;
        const auto gone = std::lower_bound(active.begin(), active.end(), hi);
        if (gone == active.end() || *gone != hi) throw std::logic_error("ward_tree: merged a cluster twice");
        active.erase(gone);
        ma.push_back(lo);
        mb.push_back(hi);
        mc.push_back(best_d);
    }
    // cheapest first; equal costs keep the order they were found in, so a
    // cluster is formed before it is merged again
    std::vector<index_t> order(ma.size());
    std::iota(order.begin(), order.end(), index_t(0));
    std::stable_sort(order.begin(), order.end(), [&](index_t p, index_t q) { return mc[p] < mc[q]; });
    tree.a.resize(order.size());
    tree.b.resize(order.size());
    tree.cost.resize(order.size());
    for (std::size_t m = 0; m < order.size(); ++m) {
        tree.a[m] = ma[order[m]];
        tree.b[m] = mb[order[m]];
        tree.cost[m] = mc[order[m]];
    }
    return tree;
}

// The partition of the tree's rows into K clusters (its n - K cheapest
// merges): labels 0 .. K - 1, numbered in the order of each cluster's lowest
// row.
inline void cut_tree(const MergeTree& tree, index_t K, std::int64_t* labels) {
    const index_t n = tree.n;
    if (K < 1 || K > n) throw std::invalid_argument("cut_tree: K must be between 1 and the number of rows");
    std::vector<index_t> parent(n);
    std::iota(parent.begin(), parent.end(), index_t(0));
    auto find = [&](index_t i) {
        while (parent[i] != i) {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        return i;
    };
    for (index_t m = 0; m < n - K; ++m) {
        const index_t ra = find(tree.a[m]), rb = find(tree.b[m]);
        if (ra < rb) parent[rb] = ra;
        else parent[ra] = rb;
    }
    std::vector<std::int64_t> label_of(n, -1);
    std::int64_t next = 0;
    for (index_t i = 0; i < n; ++i) {
        const index_t r = find(i);
        if (label_of[r] < 0) label_of[r] = next++;
        labels[i] = label_of[r];
    }
}

// Ward's parts that the unconstrained merges start from.
constexpr index_t kWardParts = 50;
// Leading columns the unconstrained merges look at (their cost grows as D^3
// per pair): with sphered data, the leading principal axes.
constexpr index_t kMergeColumns = 16;

namespace detail {

// log det((W + nu S0) / (n + nu)) with S0 = s0 I and nu = 1.
inline double vvv_log_det(const std::vector<double>& W, double n, double s0, index_t D, std::vector<double>& tmp) {
    tmp = W;
    for (index_t l = 0; l < D; ++l) tmp[l * D + l] += s0;
    const double scale = 1.0 / (n + 1.0);
    for (double& v : tmp) v *= scale;
    // Cholesky in place; the matrix is positive definite by the prior
    double ld = 0.0;
    for (index_t j = 0; j < D; ++j) {
        double d = tmp[j * D + j];
        for (index_t p = 0; p < j; ++p) d -= tmp[j * D + p] * tmp[j * D + p];
        d = std::sqrt(std::max(d, std::numeric_limits<double>::min()));
        tmp[j * D + j] = d;
        ld += 2.0 * std::log(d);
        for (index_t i = j + 1; i < D; ++i) {
            double v = tmp[i * D + j];
            for (index_t p = 0; p < j; ++p) v -= tmp[i * D + p] * tmp[j * D + p];
            tmp[i * D + j] = v / d;
        }
    }
    return ld;
}

}  // namespace detail

// The unconstrained merges of the m parts of a partition of Z's rows
// (labels 0 .. m - 1), in the order they are made: a tree over the parts.
template <class T>
MergeTree vvv_merges(const DataView<T>& Z, const std::int64_t* labels, index_t m) {
    const index_t n = Z.n, D = Z.d;
    MergeTree tree;
    tree.n = m;
    std::vector<double> cnt(m, 0.0), mu(m * D, 0.0), W(m * D * D, 0.0);
    // total variance per dimension, for the prior's scale
    double w_tot = 0.0;
    std::vector<double> mean(D, 0.0);
    for (index_t i = 0; i < n; ++i) {
        const double w = Z.weights ? Z.weights[i] : 1.0;
        const index_t j = labels[i];
        cnt[j] += w;
        w_tot += w;
        for (index_t l = 0; l < D; ++l) {
            mu[j * D + l] += w * static_cast<double>(Z.row(i)[l]);
            mean[l] += w * static_cast<double>(Z.row(i)[l]);
        }
    }
    for (index_t j = 0; j < m; ++j)
        for (index_t l = 0; l < D; ++l) mu[j * D + l] /= cnt[j];
    for (index_t l = 0; l < D; ++l) mean[l] /= w_tot;
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) {
        const double w = Z.weights ? Z.weights[i] : 1.0;
        const double* c = mu.data() + labels[i] * D;
        double* Wj = W.data() + labels[i] * D * D;
        for (index_t a = 0; a < D; ++a) {
            const double ea = static_cast<double>(Z.row(i)[a]) - c[a];
            const double ta = static_cast<double>(Z.row(i)[a]) - mean[a];
            total += w * ta * ta;
            for (index_t b = 0; b < D; ++b) Wj[a * D + b] += w * ea * (static_cast<double>(Z.row(i)[b]) - c[b]);
        }
    }
    // S0: the covariance of a spherical cluster holding 1 / m of the data's volume
    const double s0 = std::max(total / (w_tot * D), std::numeric_limits<double>::min()) *
                      std::pow(static_cast<double>(m), -2.0 / static_cast<double>(D));
    std::vector<double> tmp, pooled(D * D), term(m);
    for (index_t j = 0; j < m; ++j) {
        const std::vector<double> Wj(W.begin() + j * D * D, W.begin() + (j + 1) * D * D);
        term[j] = cnt[j] * detail::vvv_log_det(Wj, cnt[j], s0, D, tmp);
    }
    auto merged = [&](index_t a, index_t b, std::vector<double>& out) {
        const double nab = cnt[a] + cnt[b], f = cnt[a] * cnt[b] / nab;
        for (index_t p = 0; p < D; ++p)
            for (index_t q = 0; q < D; ++q)
                out[p * D + q] = W[a * D * D + p * D + q] + W[b * D * D + p * D + q] +
                                 f * (mu[a * D + p] - mu[b * D + p]) * (mu[a * D + q] - mu[b * D + q]);
        return nab * detail::vvv_log_det(out, nab, s0, D, tmp) - term[a] - term[b];
    };
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> cost(m * m, inf);  // cost[a * m + b], a < b, alive pairs
    for (index_t a = 0; a < m; ++a)
        for (index_t b = a + 1; b < m; ++b) cost[a * m + b] = merged(a, b, pooled);
    std::vector<char> alive(m, 1);
    for (index_t step = 0; step + 1 < m; ++step) {
        index_t ba = -1, bb = -1;
        double best = inf;
        for (index_t a = 0; a < m; ++a) {
            if (!alive[a]) continue;
            for (index_t b = a + 1; b < m; ++b)
                if (alive[b] && (ba < 0 || cost[a * m + b] < best)) {
                    best = cost[a * m + b];
                    ba = a;
                    bb = b;
                }
        }
        merged(ba, bb, pooled);
        const double nab = cnt[ba] + cnt[bb];
        for (index_t l = 0; l < D; ++l) mu[ba * D + l] = (cnt[ba] * mu[ba * D + l] + cnt[bb] * mu[bb * D + l]) / nab;
        std::copy(pooled.begin(), pooled.end(), W.begin() + ba * D * D);
        cnt[ba] = nab;
        term[ba] = nab * detail::vvv_log_det(pooled, nab, s0, D, tmp);
        alive[bb] = 0;
        tree.a.push_back(ba);
        tree.b.push_back(bb);
        tree.cost.push_back(best);
        for (index_t j = 0; j < m; ++j) {
            if (!alive[j] || j == ba) continue;
            const index_t lo = std::min(j, ba), hi = std::max(j, ba);
            cost[lo * m + hi] = merged(lo, hi, pooled);
        }
    }
    return tree;
}

// mclust-style starting partitions of Z's rows for each K in ks (out: n_k x
// n labels, numbered by each part's lowest row): Ward's tree cut at
// min(n, kWardParts) parts, then the unconstrained merges of those parts
// (on Z's first kMergeColumns columns) down to K (K above kWardParts: Ward's
// cut alone).
template <class T>
void hierarchical_partitions(const DataView<T>& Z, const std::int64_t* ks, index_t n_k, std::int64_t* out) {
    const index_t n = Z.n;
    const MergeTree ward = ward_tree<T>(Z);
    const index_t m = std::min(n, kWardParts);
    std::vector<std::int64_t> parts(n), part_label(m), row(n);
    cut_tree(ward, m, parts.data());
    DataView<T> leading = Z;
    leading.d = std::min(Z.d, kMergeColumns);
    const MergeTree vvv = vvv_merges<T>(leading, parts.data(), m);
    for (index_t q = 0; q < n_k; ++q) {
        std::int64_t* lab = out + q * n;
        if (ks[q] > m) {
            cut_tree(ward, ks[q], lab);
            continue;
        }
        cut_tree(vvv, ks[q], part_label.data());
        for (index_t i = 0; i < n; ++i) row[i] = part_label[parts[i]];
        // renumbered by each part's lowest row
        std::vector<std::int64_t> renum(ks[q], -1);
        std::int64_t next = 0;
        for (index_t i = 0; i < n; ++i) {
            if (renum[row[i]] < 0) renum[row[i]] = next++;
            lab[i] = renum[row[i]];
        }
    }
}

}  // namespace gaussmix
