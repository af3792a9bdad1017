// kde_tree.hpp -- a k-d tree over a kernel density's training set, and
// approximate kernel sums on it with a certified error.
//
// The tree answers
//   S(q) = log sum_i w_i k(||(q - x_i) U|| * scale)
// (kde_index.hpp holds it with the other ways of computing S).
//
// The tree sum honours |S_returned - S_exact| <= A + rtol * S_exact (in linear
// space, S = sum w k) for every query: a node whose kernel values lie in
// [k_lo, k_hi] is replaced by its weight times (k_lo + k_hi) / 2, an error of
// at most W_node (k_hi - k_lo) / 2, only when that is within the node's share
// of the tolerance, W_node / W * (A + rtol * L), with L a lower bound of the
// sum so far (L <= S_exact). The shares add up to at most A + rtol * S_exact
// (Gray & Moore 2003, "Nonparametric density estimation: toward
// computational tractability"; scikit-learn's KernelDensity uses the same
// rule). Leaves are summed exactly. In leave-one-out sums the query's own
// point is left out, also from the approximated nodes that hold it. Node
// weights are summed pairwise up the tree, and the rounding of a node's
// weight (and of its weight without the own point) is charged to the bound.
//
// All sums run in log space with a running maximum, so far from the data the
// approximate answer is as exact as the exact one. Queries are independent:
// results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "kde.hpp"

namespace gaussmix {

// What a tree evaluation did, summed over queries (for the cost model and tests).
struct KdeTreeWork {
    index_t queries = 0;      // queries answered by the tree
    index_t nodes = 0;        // nodes whose bounds were computed
    index_t leaf_points = 0;  // kernel evaluations in leaves
    index_t expansions = 0;   // nodes summed by their Taylor expansion
    index_t grid_queries = 0; // queries answered by the grid (kde_grid.hpp)
};

namespace detail {

struct KdNode {
    index_t begin = 0, end = 0;    // range of tree positions
    index_t left = -1, right = -1; // children (-1 for a leaf)
    double weight = 0.0;
    double log_weight = 0.0;
};

// log k(r) from the squared scaled distance r^2 (-inf outside a compact support).
inline double log_kernel_d2(Kernel k, double d2) {
    switch (k) {
        case Kernel::gaussian: return -0.5 * d2;
        case Kernel::exponential: return -std::sqrt(d2);
        default: break;
    }
    if (!(d2 < 1.0)) return -std::numeric_limits<double>::infinity();
    switch (k) {
        case Kernel::tophat: return 0.0;
        case Kernel::epanechnikov: return std::log1p(-d2);
        case Kernel::linear: return std::log1p(-std::sqrt(d2));
        case Kernel::cosine: return std::log(std::cos(1.5707963267948966 * std::sqrt(d2)));
        default: return 0.0;
    }
}

// log(exp(a) + exp(b))
inline double log_add(double a, double b) {
    if (a < b) std::swap(a, b);
    if (b == -std::numeric_limits<double>::infinity()) return a;
    return a + std::log1p(std::exp(b - a));
}

struct KdTree {
    index_t n = 0, d = 0;
    std::vector<index_t> order;  // tree position -> training row
    std::vector<index_t> where;  // training row -> tree position
    std::vector<double> x;       // d x (n + 16), feature-major, tree order, index coordinates
    std::vector<double> w;       // n, tree order
    std::vector<KdNode> nodes;   // nodes[0] is the root
    std::vector<double> lo, hi;  // per node, d each: bounding box
    // per node, d each: weighted centroid c and sum_i w_i (x_il - c_l)^2, so
    // that sum_i w_i ||s (q - x_i)||^2 = sum_l s_l^2 (W (q_l - c_l)^2 + scatter_l)
    std::vector<double> centroid, scatter;
    index_t max_leaf = 0;
    // relative rounding of any node's weight: leaves are sums of at most
    // max_leaf weights, and every parent the sum of its two children
    double weight_rounding = 0.0;
};

// Splits on the widest side of the box (measured in scaled units) at the
// median; a range of identical points is a leaf whatever its size.
inline KdTree build_kd_tree(const std::vector<double>& rows, const std::vector<double>& weight, index_t n, index_t d,
                            const std::vector<double>& axis_scale, index_t leaf_size) {
    KdTree t;
    t.n = n;
    t.d = d;
    t.order.resize(n);
    std::iota(t.order.begin(), t.order.end(), index_t(0));
    struct Pending {
        index_t node, begin, end;
    };
    std::vector<Pending> todo;
    t.nodes.push_back(KdNode{0, n, -1, -1, 0.0, 0.0});
    todo.push_back({0, 0, n});
    while (!todo.empty()) {
        const Pending p = todo.back();
        todo.pop_back();
        std::vector<double> lo(d, std::numeric_limits<double>::infinity()), hi(d, -std::numeric_limits<double>::infinity());
        double wsum = 0.0;
        for (index_t i = p.begin; i < p.end; ++i) {
            const double* r = rows.data() + t.order[i] * d;
            for (index_t l = 0; l < d; ++l) {
                lo[l] = std::min(lo[l], r[l]);
                hi[l] = std::max(hi[l], r[l]);
            }
            wsum += weight[t.order[i]];
        }
        if (static_cast<index_t>(t.lo.size()) < (p.node + 1) * d) {
            t.lo.resize((p.node + 1) * d);
            t.hi.resize((p.node + 1) * d);
            t.centroid.resize((p.node + 1) * d);
            t.scatter.resize((p.node + 1) * d);
        }
        std::copy(lo.begin(), lo.end(), t.lo.begin() + p.node * d);
        std::copy(hi.begin(), hi.end(), t.hi.begin() + p.node * d);
        {
            double* c = t.centroid.data() + p.node * d;
            double* sc = t.scatter.data() + p.node * d;
            for (index_t l = 0; l < d; ++l) c[l] = sc[l] = 0.0;
            if (wsum > 0.0) {
                for (index_t i = p.begin; i < p.end; ++i) {
                    const double* r = rows.data() + t.order[i] * d;
                    const double wi = weight[t.order[i]];
                    for (index_t l = 0; l < d; ++l) c[l] += wi * (r[l] - lo[l]);
                }
                for (index_t l = 0; l < d; ++l) c[l] = lo[l] + c[l] / wsum;
                for (index_t i = p.begin; i < p.end; ++i) {
                    const double* r = rows.data() + t.order[i] * d;
                    const double wi = weight[t.order[i]];
                    for (index_t l = 0; l < d; ++l) sc[l] += wi * (r[l] - c[l]) * (r[l] - c[l]);
                }
            }
        }
        t.nodes[p.node].weight = wsum;
        t.nodes[p.node].log_weight = std::log(wsum);
        index_t axis = 0;
        double widest = 0.0;
        for (index_t l = 0; l < d; ++l) {
            const double extent = (hi[l] - lo[l]) * axis_scale[l];
            if (extent > widest) {
                widest = extent;
                axis = l;
            }
        }
        if (p.end - p.begin <= leaf_size || !(widest > 0.0)) {
            t.max_leaf = std::max(t.max_leaf, p.end - p.begin);
            continue;
        }
        const index_t mid = p.begin + (p.end - p.begin) / 2;
        std::nth_element(t.order.begin() + p.begin, t.order.begin() + mid, t.order.begin() + p.end,
                         [&](index_t a, index_t b) { return rows[a * d + axis] < rows[b * d + axis]; });
        const index_t left = static_cast<index_t>(t.nodes.size());
        t.nodes.push_back(KdNode{p.begin, mid, -1, -1, 0.0, 0.0});
        t.nodes.push_back(KdNode{mid, p.end, -1, -1, 0.0, 0.0});
        t.nodes[p.node].left = left;
        t.nodes[p.node].right = left + 1;
        todo.push_back({left + 1, mid, p.end});
        todo.push_back({left, p.begin, mid});
    }
    // Parents come before their children: summed from the last node back,
    // internal weights are pairwise sums of their leaves'.
    for (index_t k = static_cast<index_t>(t.nodes.size()) - 1; k >= 0; --k) {
        KdNode& nd = t.nodes[k];
        if (nd.left >= 0) nd.weight = t.nodes[nd.left].weight + t.nodes[nd.right].weight;
        nd.log_weight = std::log(nd.weight);
    }
    t.weight_rounding = std::numeric_limits<double>::epsilon() * static_cast<double>(t.max_leaf + 70);
    t.lo.resize(t.nodes.size() * d);
    t.hi.resize(t.nodes.size() * d);
    t.centroid.resize(t.nodes.size() * d);
    t.scatter.resize(t.nodes.size() * d);
    t.where.resize(n);
    t.x.assign(d * (n + 16), 0.0);  // feature rows of n + 16: whole vectors may run past n
    t.w.assign(n + 16, 0.0);  // zero past n: leaves are summed whole vectors at a time
    for (index_t i = 0; i < n; ++i) {
        t.where[t.order[i]] = i;
        t.w[i] = weight[t.order[i]];
        for (index_t l = 0; l < d; ++l) t.x[l * (n + 16) + i] = rows[t.order[i] * d + l];
    }
    return t;
}

// Squared scaled distances from q to the nearest and farthest points of a box.
inline void box_distances(const double* q, const double* lo, const double* hi, const double* s, index_t d, double& dmin2,
                          double& dmax2) {
    double a = 0.0, b = 0.0;
    for (index_t l = 0; l < d; ++l) {
        const double below = lo[l] - q[l], above = q[l] - hi[l];
        const double gap = std::max(0.0, std::max(below, above)) * s[l];
        const double far = std::max(std::abs(below), std::abs(above)) * s[l];
        a += gap * gap;
        b += far * far;
    }
    dmin2 = a;
    dmax2 = b;
}

// log k of the scaled distances from q to the cnt points of a leaf starting
// at tree position b, into buf (-inf for zero weights and, to a whole number
// of vectors plus one, past cnt); returns their maximum.
template <int VB>
double leaf_log_kernels(const KdTree& t, index_t b, index_t cnt, const double* q, const double* s, Kernel kernel,
                        double* buf) {
    constexpr int W = simd::lanes<double, VB>;
    using V = simd::vec<double, W>;
    constexpr double neg_inf = -std::numeric_limits<double>::infinity();
    const index_t d = t.d, n = t.n;
    const double* w = t.w.data() + b;
    V vmax = simd::splat<double, W>(neg_inf);
    const V ninf = vmax;
    V lane;
    for (int k = 0; k < W; ++k) lane[k] = static_cast<double>(k);
    for (index_t i = 0; i < cnt; i += W) {
        V acc = {};
        for (index_t l = 0; l < d; ++l) {
            // t.x has W spare values past each feature's row: the reads past cnt stay inside it
            const V e = (simd::load<double, W>(t.x.data() + l * (n + 16) + b + i) - q[l]) * s[l];
            acc += e * e;
        }
        V val;
        if (kernel == Kernel::gaussian) {
            val = acc * -0.5;
        } else if (kernel == Kernel::exponential) {
            for (int k = 0; k < W; ++k) val[k] = -std::sqrt(acc[k]);
        } else {
            for (int k = 0; k < W; ++k) val[k] = log_kernel_d2(kernel, acc[k]);
        }
        const auto keep = (simd::load<double, W>(w + i) > 0.0) & (lane < static_cast<double>(cnt - i));
        val = keep ? val : ninf;
        vmax = vmax > val ? vmax : val;
        simd::store<double, W>(buf + i, val);
    }
    const index_t padded = (cnt + W - 1) / W * W;
    for (int k = 0; k < W; ++k) buf[padded + k] = neg_inf;
    double mx = vmax[0];
    for (int k = 1; k < W; ++k) mx = vmax[k] > mx ? vmax[k] : mx;
    return mx;
}

// The leaf reached from the root by always taking the nearer child.
inline index_t home_leaf(const KdTree& t, const double* q, const double* s) {
    index_t node = 0;
    while (t.nodes[node].left >= 0) {
        const index_t a = t.nodes[node].left, b = t.nodes[node].right;
        double amin, amax, bmin, bmax;
        box_distances(q, t.lo.data() + a * t.d, t.hi.data() + a * t.d, s, t.d, amin, amax);
        box_distances(q, t.lo.data() + b * t.d, t.hi.data() + b * t.d, s, t.d, bmin, bmax);
        node = bmin < amin ? b : a;
    }
    return node;
}

// Taylor expansions of the Gaussian kernel about node centroids (the fast
// Gauss transform's series, Greengard & Strain 1991, in the form of Yang,
// Duraiswami & Gumerov 2003), for D <= 3. With v = s (x - c) for a point x
// and u = s (q - c) for the query,
//   exp(-|u - v|^2 / 2) = exp(-|u|^2 / 2) exp(-|v|^2 / 2) exp(u . v),
// and exp(t) = sum_{n < p} t^n / n! + R, |R| <= |t|^p / p! e^max(t, 0), with
// t = u . v = sum over multi-indices |a| = n of u^a v^a / a!, |t| <= |u| rho
// (rho: the node's radius). A node's moments
//   A_a = sum_i w_i exp(-|v_i|^2 / 2) v_i^a / a!,   |a| < p,
// give its sum as exp(-|u|^2 / 2) sum_a A_a u^a, within
//   W exp(-|u|^2 / 2 + |u| rho) (|u| rho)^p / p!
// plus rounding, at most (2 terms + 2 additions) eps W exp(-|u|^2 / 2 + |u| rho)
// (every sum is of terms bounded by that envelope: sum_a |u^a v^a| / a! <=
// exp(|u| |v|)). The moments depend on the scale, so they are made per call.
struct TaylorMoments {
    int p = 0;                          // order: the terms of total degree < p
    std::vector<std::array<int, 3>> a;  // their multi-indices, by degree
    std::vector<index_t> offset;        // per node: into coef, or -1 for none
    std::vector<double> rho;            // per node: radius in scaled units
    std::vector<double> log_round;      // per node: log(eps (2 terms + 2 additions + 16))
    std::vector<double> coef;
    double log_p_factorial = 0.0;
};

inline int taylor_order(index_t d) { return d == 1 ? 24 : d == 2 ? 14 : 10; }

// Points summed into a moment before it is added to the node's total: the
// rounding of a sum of n terms is then within (kMomentBlock + n / kMomentBlock)
// units of the last place of the sum of their magnitudes, not n.
constexpr index_t kMomentBlock = 128;

// Moments of the nodes of radius <= kMaxRadius, down to three levels below
// the first such node on each path (larger nodes rarely converge; smaller
// ones have larger ancestors that do, or are cheap to sum point by point).
inline TaylorMoments taylor_moments(const KdTree& t, const double* s, int n_threads) {
    constexpr double kMaxRadius = 2.0;
    TaylorMoments tm;
    const index_t d = t.d;
    tm.p = taylor_order(d);
    for (int i = 0; i < tm.p; ++i)
        for (int j = 0; j < (d > 1 ? tm.p - i : 1); ++j)
            for (int k = 0; k < (d > 2 ? tm.p - i - j : 1); ++k) tm.a.push_back({i, j, k});
    std::stable_sort(tm.a.begin(), tm.a.end(),
                     [](const auto& x, const auto& y) { return x[0] + x[1] + x[2] < y[0] + y[1] + y[2]; });
    tm.log_p_factorial = std::lgamma(static_cast<double>(tm.p) + 1.0);
    const index_t nn = static_cast<index_t>(t.nodes.size());
    tm.offset.assign(nn, -1);
    tm.rho.assign(nn, std::numeric_limits<double>::infinity());
    std::vector<int> level(nn, -1);  // levels below the first node small enough
    std::vector<index_t> chosen;
    for (index_t k = 0; k < nn; ++k) {  // parents come before their children
        const double* c = t.centroid.data() + k * d;
        double r2 = 0.0;
        for (index_t l = 0; l < d; ++l) {
            const double e = std::max(t.hi[k * d + l] - c[l], c[l] - t.lo[k * d + l]) * s[l];
            r2 += e * e;
        }
        tm.rho[k] = std::sqrt(r2);
        const KdNode& nd = t.nodes[k];
        if (level[k] < 0 && tm.rho[k] <= kMaxRadius) level[k] = 0;
        if (level[k] >= 0 && level[k] <= 3 && nd.weight > 0.0 && nd.end - nd.begin > 1) chosen.push_back(k);
        if (nd.left >= 0) {
            const int below = level[k] >= 0 ? level[k] + 1 : -1;
            level[nd.left] = below;
            level[nd.right] = below;
        }
    }
    const index_t terms = static_cast<index_t>(tm.a.size());
    tm.log_round.assign(nn, 0.0);
    for (std::size_t k = 0; k < chosen.size(); ++k) {
        const index_t node = chosen[k];
        tm.offset[node] = static_cast<index_t>(k) * terms;
        // the moments are sums of blocks of kMomentBlock points, then of the blocks
        const index_t cnt = t.nodes[node].end - t.nodes[node].begin;
        const double adds = static_cast<double>(std::min(cnt, kMomentBlock) + (cnt + kMomentBlock - 1) / kMomentBlock);
        tm.log_round[node] =
            std::log(std::numeric_limits<double>::epsilon() * (2.0 * static_cast<double>(terms) + 2.0 * adds + 16.0));
    }
    tm.coef.assign(chosen.size() * terms, 0.0);
    double work = 0.0;
    for (index_t k : chosen) work += static_cast<double>(t.nodes[k].end - t.nodes[k].begin) * terms;
    parallel_for(static_cast<index_t>(chosen.size()), threads_for(work, n_threads), [&](index_t ci) {
        const index_t k = chosen[ci];
        const KdNode& nd = t.nodes[k];
        const double* c = t.centroid.data() + k * d;
        double* A = tm.coef.data() + tm.offset[k];
        std::vector<double> pv(3 * tm.p, 0.0), inv(tm.p, 0.0), block(terms, 0.0);
        for (int j = 1; j < tm.p; ++j) inv[j] = 1.0 / j;
        for (index_t i = nd.begin; i < nd.end; ++i) {
            if ((i - nd.begin) % kMomentBlock == 0 && i > nd.begin) {
                for (index_t a = 0; a < terms; ++a) A[a] += block[a];
                std::fill(block.begin(), block.end(), 0.0);
            }
            const double wi = t.w[i];
            if (!(wi > 0.0)) continue;
            double v2 = 0.0;
            for (index_t l = 0; l < d; ++l) {
                const double v = (t.x[l * (t.n + 16) + i] - c[l]) * s[l];
                v2 += v * v;
                pv[l * tm.p] = 1.0;
                for (int j = 1; j < tm.p; ++j) pv[l * tm.p + j] = pv[l * tm.p + j - 1] * v * inv[j];
            }
            for (index_t l = d; l < 3; ++l) pv[l * tm.p] = 1.0;
            const double e = wi * std::exp(-0.5 * v2);
            for (index_t a = 0; a < terms; ++a) {
                const auto& al = tm.a[a];
                block[a] += e * pv[al[0]] * pv[tm.p + al[1]] * pv[2 * tm.p + al[2]];
            }
        }
        for (index_t a = 0; a < terms; ++a) A[a] += block[a];
    });
    return tm;
}

// sum_a A_a u^a for one node's moments A
inline double taylor_polynomial(const TaylorMoments& tm, const double* A, const double* u, index_t d) {
    if (d == 1) {  // Horner, in two interleaved chains (even and odd powers)
        const double u1 = u[0], u2 = u1 * u1;
        double even = 0.0, odd = 0.0;
        int n = tm.p - 1;
        if (n % 2 == 0) even = A[n--];
        for (; n > 0; n -= 2) {
            odd = odd * u2 + A[n];
            even = even * u2 + A[n - 1];
        }
        return even + u1 * odd;
    }
    double pu[3][32];
    for (index_t l = 0; l < 3; ++l) pu[l][0] = 1.0;
    for (index_t l = 0; l < d; ++l)
        for (int j = 1; j < tm.p; ++j) pu[l][j] = pu[l][j - 1] * u[l];
    double acc = 0.0, acc2 = 0.0;
    const index_t terms = static_cast<index_t>(tm.a.size());
    index_t a = 0;
    for (; a + 1 < terms; a += 2) {
        const auto& x = tm.a[a];
        const auto& y = tm.a[a + 1];
        acc += A[a] * pu[0][x[0]] * pu[1][x[1]] * pu[2][x[2]];
        acc2 += A[a + 1] * pu[0][y[0]] * pu[1][y[1]] * pu[2][y[2]];
    }
    if (a < terms) acc += A[a] * pu[0][tm.a[a][0]] * pu[1][tm.a[a][1]] * pu[2][tm.a[a][2]];
    return acc + acc2;
}

// The tree sum for one query q (index coordinates); self >= 0 is the tree
// position of the query's own point (left out), else -1. log_atol is log A
// (A in units of the sum). Returns log S.
//
// The tolerance is spent as the traversal goes (nearer children first): a
// node of weight W_n may take W_n / R of what is left of A + rtol * L, R the
// weight not yet summed or approximated. What a node does not use, and all
// that exact leaves leave, passes on to later nodes; each acceptance keeps
// the error spent within A + rtol * L <= A + rtol * S.
template <int VB>
double tree_log_sum(const KdTree& t, const double* q, const double* s, Kernel kernel, double log_atol, double rtol,
                    index_t self, double* buf, KdeTreeWork& work, const TaylorMoments* tm) {
    constexpr double neg_inf = -std::numeric_limits<double>::infinity();
    constexpr double log_half = -0.6931471805599453;
    constexpr double log_safety = -0.01005033585350145;  // log(0.99): the running sums round too
    const index_t d = t.d, n = t.n;
    const double w_self = self >= 0 ? t.w[self] : 0.0;
    double remaining = t.nodes[0].weight - w_self;
    // Without its own point the total may be a cancellation: such a query is
    // summed exactly by the caller (NaN says so).
    const double shaky_below = 1e3 * t.weight_rounding;  // wn / W_node under which wn is not trusted
    if (self >= 0 && !(remaining >= shaky_below * t.nodes[0].weight))
        return std::numeric_limits<double>::quiet_NaN();
    if (!(remaining > 0.0)) return neg_inf;
    const double log_rounding = std::log(t.weight_rounding);
    struct Entry {
        index_t node;
        double lk_lo, lk_hi;
    };
    Entry stack[160];  // depth <= 64 + 1: median splits
    int top = 0;
    // sum, its lower bound and the error spent, all times exp(-m)
    double m = neg_inf, sum = 0.0, lower = 0.0, spent = 0.0;
    auto rescale = [&](double to) {
        if (to > m) {
            const double f = std::exp(m - to);
            sum *= f;
            lower *= f;
            spent *= f;
            m = to;
        }
    };
    // A lower bound of the whole sum before any node is summed: along the
    // path to the query's own leaf, the largest W_node k(farthest corner).
    // Without it the first (largest, nearest) nodes would meet an empty
    // budget and always be split.
    double log_first = neg_inf;
    for (index_t node = 0;;) {
        const KdNode& nd = t.nodes[node];
        const double wn = (self >= nd.begin && self < nd.end) ? nd.weight - w_self : nd.weight;
        double dmin2, dmax2;
        box_distances(q, t.lo.data() + node * d, t.hi.data() + node * d, s, d, dmin2, dmax2);
        if (wn >= shaky_below * nd.weight && wn > 0.0)
            log_first = std::max(log_first, (wn == nd.weight ? nd.log_weight : std::log(wn)) + log_kernel_d2(kernel, dmax2));
        if (nd.left < 0) break;
        const index_t a = nd.left, b = nd.right;
        double amin, amax, bmin, bmax;
        box_distances(q, t.lo.data() + a * d, t.hi.data() + a * d, s, d, amin, amax);
        box_distances(q, t.lo.data() + b * d, t.hi.data() + b * d, s, d, bmin, bmax);
        node = bmin < amin ? b : a;
    }
    if (log_first > m) m = log_first;  // the sum is at least exp(m): nothing lost below it
    // what is left of A + rtol * max(lower, first), in log space
    auto log_budget = [&]() {
        if (m == neg_inf) return log_atol;
        const double c = rtol * std::max(lower, std::exp(log_first - m)) - spent;
        if (c >= 0.0) return log_add(log_atol, c > 0.0 ? m + std::log(c) : neg_inf);
        const double lc = m + std::log(-c);
        return lc < log_atol ? log_atol + std::log1p(-std::exp(lc - log_atol)) : neg_inf;
    };
    bool stale = true;
    double threshold = neg_inf;
    auto push = [&](index_t node) {
        double dmin2, dmax2;
        box_distances(q, t.lo.data() + node * d, t.hi.data() + node * d, s, d, dmin2, dmax2);
        ++work.nodes;
        const double lk_hi = log_kernel_d2(kernel, dmin2);
        if (lk_hi == neg_inf) {  // outside a compact support: exactly zero
            const KdNode& nd = t.nodes[node];
            remaining -= (self >= nd.begin && self < nd.end) ? nd.weight - w_self : nd.weight;
            stale = true;
            return;
        }
        stack[top++] = Entry{node, log_kernel_d2(kernel, dmax2), lk_hi};
    };
    push(0);
    while (top > 0) {
        const Entry e = stack[--top];
        const KdNode& nd = t.nodes[e.node];
        const bool has_self = self >= nd.begin && self < nd.end;
        const double wn = has_self ? nd.weight - w_self : nd.weight;
        const bool shaky = has_self && !(wn >= shaky_below * nd.weight);  // split it, never skip it
        if (!shaky && !(wn > 0.0)) continue;
        if (remaining < wn) {  // rounding of the subtractions: R is at least what is still pending
            remaining = wn;
            threshold = log_budget() - std::log(remaining) + log_safety;  // (it may have shrunk)
            stale = false;
        }
        // Approximations are tried against the threshold as it stood: it only
        // grows as nodes are summed (an accepted error is at most the node's
        // share; exact leaves spend nothing), so an old value is a safe one,
        // and it is brought up to date only before a node is split.
        auto approximate = [&]() -> bool {
            // A node holding the query's own point (leave-one-out) is
            // approximated without it: wn and log_wn leave it out, and each
            // method below takes its exact term away.
            const double log_wn = has_self ? std::log(wn) : nd.log_weight;
            const double w_in = has_self ? w_self : 0.0;
            // Each approximation's error bound E is compared with the node's
            // share W_n / R * budget: log E - log W_n <= threshold = log budget - log R.
            if (kernel == Kernel::epanechnikov && e.lk_lo != neg_inf) {
                // The whole node inside the support: sum_i w_i (1 - d_i^2) from
                // the node's moments, exact but for rounding (a few units of
                // W in the last place, charged to the budget).
                const double* c = t.centroid.data() + e.node * d;
                const double* sc = t.scatter.data() + e.node * d;
                // sum w (q - x)^2 = W (q - c)^2 + scatter + 2 W (q - c)(c - mean):
                // the last term, from the rounding of c (a few eps (|c| +
                // extent)), is charged to the error with W's own rounding
                double sq = 0.0, centre_err = 0.0;
                for (index_t l = 0; l < d; ++l) {
                    const double g = (q[l] - c[l]) * s[l];
                    sq += nd.weight * g * g + sc[l] * s[l] * s[l];
                    const double extent = t.hi[e.node * d + l] - t.lo[e.node * d + l];
                    centre_err += std::abs(g) * s[l] * (std::abs(c[l]) + extent);
                }
                // (the query's own point, at distance 0, adds w_self (1 - 0))
                const double value = std::max(0.0, nd.weight - sq - w_in);
                // rounding: the node's moments are sums of cnt terms, the rest a few operations per axis
                const double cnt = static_cast<double>(nd.end - nd.begin);
                const double err = std::numeric_limits<double>::epsilon() *
                                       ((nd.weight + sq) * (2.0 * cnt + 4.0 * static_cast<double>(d) + 8.0) +
                                        8.0 * nd.weight * centre_err) +
                                   t.weight_rounding * nd.weight;
                if (std::log(err) - log_wn <= threshold) {
                    rescale(log_wn + e.lk_hi);
                    sum += std::exp(std::log(value) - m);
                    lower += std::exp(std::log(std::max(0.0, value - err)) - m);
                    spent += std::exp(std::log(err) - m);
                    remaining -= wn;
                    stale = true;
                    return true;
                }
            }
            // The midpoint, E = W_n (k_hi - k_lo) / 2 + (rounding of W_n) k_hi,
            // that rounding being at most `over` W_n. log_gap = log(k_hi -
            // k_lo) <= log k_hi: a node within its share by k_hi alone needs
            // no more; one whose k_lo is below k_hi / 2 has log_gap >= log
            // k_hi - log 2.
            const double log_over = has_self ? log_rounding + nd.log_weight - log_wn : log_rounding;
            const double over = std::exp(log_over);
            bool fits = e.lk_hi + std::log(0.5 + over) <= threshold;
            if (!fits && !(e.lk_lo < e.lk_hi + log_half && e.lk_hi + 2.0 * log_half > threshold)) {
                const double log_gap =
                    e.lk_lo == neg_inf ? e.lk_hi : e.lk_hi + std::log1p(-std::exp(e.lk_lo - e.lk_hi));
                fits = log_add(log_gap + log_half, log_over + e.lk_hi) <= threshold;
            }
            if (fits) {
                rescale(log_wn + e.lk_hi);
                const double hi = std::exp(log_wn + e.lk_hi - m), lo = std::exp(log_wn + e.lk_lo - m);
                sum += 0.5 * (hi + lo);
                lower += lo * std::max(0.0, 1.0 - over);
                spent += 0.5 * (hi - lo) + over * hi;
                remaining -= wn;
                stale = true;
                return true;
            }
            if (tm && tm->offset[e.node] >= 0) {
                // the node's Taylor expansion, if its bound fits the share
                const double rho = tm->rho[e.node];
                const double* c = t.centroid.data() + e.node * d;
                double u[3] = {0.0, 0.0, 0.0}, u2 = 0.0;
                for (index_t l = 0; l < d; ++l) {
                    u[l] = (q[l] - c[l]) * s[l];
                    u2 += u[l] * u[l];
                }
                const double ur = std::sqrt(u2) * rho;
                const double log_env = nd.log_weight - 0.5 * u2 + ur;  // W exp(-|u|^2/2 + |u| rho)
                const double pos_inf = std::numeric_limits<double>::infinity();
                const double log_trunc = ur <= 0.0                          ? neg_inf
                                         : ur >= static_cast<double>(tm->p) ? pos_inf  // far from converging
                                                                            : log_env + tm->p * std::log(ur) -
                                                                                  tm->log_p_factorial;
                const double log_round = log_env + tm->log_round[e.node];
                const double log_err = std::max(log_trunc, log_round) - log_half;  // >= log(trunc + round)
                if (log_err - log_wn <= threshold) {
                    ++work.expansions;
                    double poly = taylor_polynomial(*tm, tm->coef.data() + tm->offset[e.node], u, d);
                    if (has_self) {
                        // the own point's terms: v = u, so sum_a u^a u^a / a! = sum_n |u|^2n / n!
                        double own = 0.0;
                        for (int n = tm->p - 1; n >= 0; --n) own = own * u2 / (n + 1) + 1.0;
                        poly -= w_self * std::exp(-0.5 * u2) * own;
                    }
                    rescale(log_wn + e.lk_hi);
                    // (poly / W) <= exp(|u| rho) and W exp(-|u|^2/2) <= exp(m): no overflow
                    const double value = poly > 0.0 ? (poly / wn) * std::exp(log_wn - 0.5 * u2 - m) : 0.0;
                    const double err = std::exp(log_err - m);
                    sum += value;
                    lower += std::max(0.0, value - err);
                    spent += err;
                    remaining -= wn;
                    stale = true;
                    return true;
                }
            }
            return false;
        };
        if (!shaky) {
            bool done = approximate();
            if (!done && stale) {
                threshold = log_budget() - std::log(remaining) + log_safety;
                stale = false;
                done = approximate();
            }
            if (done) continue;
        }
        if (nd.left < 0) {  // leaf: exact
            const index_t cnt = nd.end - nd.begin;
            const double* w = t.w.data() + nd.begin;
            double lmax = leaf_log_kernels<VB>(t, nd.begin, cnt, q, s, kernel, buf);
            work.leaf_points += cnt;
            remaining -= wn;
            stale = true;
            if (has_self) {  // the query's own point left out
                buf[self - nd.begin] = neg_inf;
                lmax = neg_inf;
                for (index_t i = 0; i < cnt; ++i) lmax = buf[i] > lmax ? buf[i] : lmax;
            }
            if (lmax == neg_inf) continue;
            const double lp = lmax + std::log(exp_sum<double, VB>(buf, w, cnt, lmax));
            rescale(lp);
            sum += std::exp(lp - m);
            lower += std::exp(lp - m);
            continue;
        }
        // nearer child last, so it is taken first
        const index_t before = top;
        push(nd.right);
        push(nd.left);
        if (top - before == 2 && stack[top - 1].lk_hi < stack[top - 2].lk_hi) std::swap(stack[top - 1], stack[top - 2]);
    }
    return m + std::log(sum);
}

}  // namespace detail

}  // namespace gaussmix
