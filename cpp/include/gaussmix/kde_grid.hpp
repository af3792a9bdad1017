// kde_grid.hpp -- Gaussian kernel sums in one and two dimensions on a grid of
// boxes (a fast Gauss transform), with an error bound for every query.
//
// In coordinates t = z / sqrt(2), z the scaled whitened point, the Gaussian
// kernel exp(-|z_q - z_i|^2 / 2) is exp(-|t_q - t_i|^2), a product over axes.
// Space is cut into boxes of side s. Per axis, for a training point
// x = c_s + v in a box centred at c_s and a query t = c_t + u in a box centred
// at c_t, d = c_t - c_s, and h_k(x) = (-1)^k d^k/dx^k exp(-x^2) the Hermite
// functions,
//   exp(-(t - x)^2) = sum_{n, m >= 0} v^n/n! u^m/m! (-1)^m h_{n+m}(d).
// Each training box keeps its Hermite moments A_n = sum_i w_i v_i^n / n!;
// each query box gets the local Taylor coefficients
//   L_m = (-1)^m / m! sum_{boxes} sum_{n<p} A_n h_{n+m}(d)
// from the training boxes within c boxes (per axis), and a query sums
// sum_{m<p} L_m u^m (Greengard & Strain 1991, "The fast Gauss transform").
// In two dimensions the conversion runs one axis at a time.
//
// The bound. Cramer's inequality |h_k(x)| <= K 2^{k/2} sqrt(k!) exp(-x^2/2),
// K = 1.086435 (Abramowitz & Stegun 22.14.17), and (n+m)! <= 2^{n+m} n! m!
// bound each term of the double series by
//   K exp(-d^2/2) a^n a^m / sqrt(n! m!),   a = s (|u|, |v| <= s / 2),
// so the terms left out (n >= p or m >= p) of one axis add up to at most
// K exp(-d^2/2) (S(a)^2 - S_p(a)^2), S_p(a) = sum_{n<p} a^n / sqrt(n!), and
// in D dimensions (a product of per-axis series) to at most
//   K^D exp(-|d|^2/2) (S^{2D} - S_p^{2D})
// per unit weight (Baxter & Roussos 2002 and Wan & Karniadakis 2006 derive
// bounds of this kind). Training boxes farther than c boxes along an axis
// hold points at least c s away: at most exp(-(c s)^2) per unit weight. The
// rounding of the sums is at most gamma K^D exp(-|d|^2/2) S^{2D} per unit
// weight (every product of the computation is a term of the double series,
// summed in chains of known length; Higham, "Accuracy and Stability of
// Numerical Algorithms", 3.1), and that of the coordinates is charged
// relative to the sum. A query's bound is then
//   b = (K^D (S^{2D} - S_p^{2D}) + gamma K^D S^{2D}) B + exp(-(c s)^2) W
// with B = sum over the training boxes in reach of W_box exp(-|d|^2/2),
// itself a sum over boxes. Callers accept the approximate sum where b meets
// their tolerance and compute the other queries another way. "Exact" means
// the exact sum over the coordinates given (t of whitened points, as the
// exact and tree sums take them too).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "parallel.hpp"
#include "simd.hpp"

namespace gaussmix::detail {

constexpr double kCramer = 1.0865;  // 1.086435..., rounded up
constexpr int kGridMaxTerms = 40;

// sum_{n >= from} a^n / sqrt(n!), for 0 < a <= 2 (the terms decrease past
// n = 4 and are below 1e-300 long before n = 400)
inline double root_factorial_tail(double a, int from) {
    double term = 1.0, sum = 0.0;
    for (int n = 0; n < 400; ++n) {
        if (n >= from) sum += term;
        term *= a / std::sqrt(n + 1.0);
        if (term < 1e-300) break;
    }
    return sum * (1.0 + 1e-12);
}

struct GaussGridPlan {
    int d = 0;
    int p = 0;       // terms per axis
    int c = 0;       // training boxes in reach per side, per axis
    double s = 0.0;  // box side, in t units
    double trunc = 0.0;     // K^D (S^{2D} - S_p^{2D}) + gamma K^D S^{2D}
    double cut = 0.0;       // exp(-(c s)^2)
    double coord = 0.0;     // relative error from the rounding of coordinates
    double cost = std::numeric_limits<double>::infinity();  // in about 1/3 ns
    index_t g[2] = {1, 1};   // training boxes per axis
    index_t ge[2] = {1, 1};  // query boxes per axis (g + 2c)
    double lo[2] = {0.0, 0.0};  // lower edge of training box 0
};

// The cheapest grid for n training points of total weight w_total within
// [tmin, tmax] (per axis) and m queries, such that the terms of the bound
// are below the tolerance atol + rtol * sum on sums of typical size. cost is
// infinite when no grid fits (too many boxes, or a tolerance too tight).
inline GaussGridPlan plan_gauss_grid(int d, const double* tmin, const double* tmax, index_t n, index_t m,
                                     double atol, double rtol, double w_total) {
    GaussGridPlan best;
    if (d < 1 || d > 2 || n == 0 || !(w_total > 0.0)) return best;
    const double eps = std::numeric_limits<double>::epsilon();
    double extent = 0.0;
    for (int l = 0; l < d; ++l) extent = std::max(extent, std::max(std::abs(tmin[l]), std::abs(tmax[l])));
    for (const double s : {0.25, 0.35, 0.5, 0.7, 1.0}) {
        GaussGridPlan pl;
        pl.d = d;
        pl.s = s;
        // reach: exp(-(c s)^2) W at most max(atol, 1e-8 rtol W) / 4
        const double cut_target = std::max(atol / (4.0 * w_total), rtol * 2.5e-9);
        if (!(cut_target > 0.0)) return best;
        const double reach = std::sqrt(std::max(0.0, -std::log(cut_target)));
        pl.c = std::max(1, static_cast<int>(std::ceil(reach / s)));
        pl.cut = std::exp(-(pl.c * s) * (pl.c * s));
        double boxes = 1.0, target_boxes = 1.0;
        bool fits = true;
        for (int l = 0; l < d; ++l) {
            const double g = std::floor((tmax[l] - tmin[l]) / s) + 1.0;
            if (!(g <= 1e7)) fits = false;
            pl.g[l] = fits ? static_cast<index_t>(g) : 1;
            pl.ge[l] = pl.g[l] + 2 * pl.c;
            pl.lo[l] = tmin[l];
            boxes *= g;
            target_boxes *= static_cast<double>(pl.ge[l]);
        }
        if (!fits) continue;
        // window sum of exp(-|d|^2/2) per unit weight: converts atol to B's scale
        double window = 0.0;
        for (int k = -pl.c; k <= pl.c; ++k) window += std::exp(-0.5 * (k * s) * (k * s));
        window = std::pow(window, d);
        // |u|, |v| <= s / 2 up to the rounding of box positions and centres,
        // which grows with the number of boxes and the distance from the origin
        double span = 0.0;
        for (int l = 0; l < d; ++l) span = std::max(span, static_cast<double>(pl.ge[l]) + std::abs(pl.lo[l]) / s);
        const double a = s * (1.0 + 16.0 * eps * (span + 2.0));
        const double full = root_factorial_tail(a, 0);
        const double kd = std::pow(kCramer, d);
        const double target = std::max(rtol / 8.0, atol / (8.0 * w_total * window));
        int p = 1;
        double trunc = 0.0;
        for (; p <= kGridMaxTerms; ++p) {
            const double tail = root_factorial_tail(a, p);
            const double part = full - tail;
            const double r = tail * (full + part);  // S^2 - S_p^2
            trunc = d == 1 ? kd * r : kd * r * (full * full + part * part);
            // rounding, in units of eps = 2u: chains of 8 + 16 + 16 + n / 2048
            // (moments), per axis 3p (powers and their 1/e factors), p
            // (factorials), 2p (Hermite functions, whose forward recurrence
            // stays within about k eps of Cramer's envelope), 2p (powers and
            // sums at the query), (2c + 1) p (conversions), and a few more
            const double chain =
                64.0 + static_cast<double>(n) / 2048.0 + d * (8.0 * p + (2.0 * pl.c + 1.0) * p);
            const double gamma = chain * eps / (1.0 - chain * eps);
            trunc += gamma * kd * std::pow(full, 2 * d);
            if (trunc <= target) break;
        }
        if (p > kGridMaxTerms) continue;
        pl.p = p;
        pl.trunc = trunc;
        // coordinates are off by at most 12 eps (|t| + ...) per axis; distances
        // in reach are at most (c + 1) s per axis
        const double dt = 12.0 * eps * (extent + (pl.c + 2.0) * s + 1.0);
        pl.coord = std::expm1(d * (2.0 * (pl.c + 1.0) * s * dt + dt * dt));
        const double terms = std::pow(static_cast<double>(p), d);
        const double stride = d == 1 ? 1.0 : static_cast<double>((p + 3) / 4 * 4) / p;
        const double P = terms * stride;
        // boxes are indexed densely (4 bytes each); coefficients are kept for
        // the boxes that hold points or queries only
        if (boxes > 1.6e7 || target_boxes > 1.6e7) continue;
        const double occupied = std::min(boxes, static_cast<double>(n));
        const double wanted = std::min(target_boxes, static_cast<double>(m));
        if ((occupied + wanted) * P > 2e7) continue;
        const double nd = 2.0 * pl.c + 1.0;
        const double convert = d == 1 ? wanted * nd * p * p
                                      : (std::min(static_cast<double>(pl.ge[0]) * static_cast<double>(pl.g[1]),
                                                  wanted * nd) +
                                         wanted) *
                                            nd * p * P / 2.0;
        pl.cost = static_cast<double>(n) * (40.0 + 1.5 * P) + static_cast<double>(m) * (60.0 + 1.5 * P) + convert +
                  2.0 * (boxes + target_boxes);
        if (pl.cost < best.cost) best = pl;
    }
    return best;
}

// h_k(x), k = 0 .. K - 1 (forward recurrence h_{k+1} = 2x h_k - 2k h_{k-1})
inline void hermite_functions(double x, int K, double* h) {
    h[0] = std::exp(-x * x);
    if (K > 1) h[1] = 2.0 * x * h[0];
    for (int k = 1; k + 1 < K; ++k) h[k + 1] = 2.0 * x * h[k] - 2.0 * k * h[k - 1];
}

// The boxes of a grid and where points fall in them.
struct GridBoxes {
    const GaussGridPlan& pl;
    index_t box(double t, int l) const {  // training box along axis l (clamped)
        const double k = std::floor((t - pl.lo[l]) / pl.s);
        return static_cast<index_t>(std::min<double>(std::max(k, 0.0), static_cast<double>(pl.g[l] - 1)));
    }
    double centre(index_t k, int l) const { return pl.lo[l] + (static_cast<double>(k) + 0.5) * pl.s; }
    // query box along axis l in the extended grid, or -1 outside it
    index_t query_box(double t, int l) const {
        const double r = std::floor((t - pl.lo[l]) / pl.s) + pl.c;
        return r >= 0.0 && r < static_cast<double>(pl.ge[l]) ? static_cast<index_t>(r) : -1;
    }
};

// Boxes that hold points, numbered in order of first appearance ("slots"):
// slot[box] (or -1), box[slot], and the points of slot k at
// start[k] .. start[k + 1] of the grouped arrays.
struct Slots {
    std::vector<std::int32_t> slot;
    std::vector<index_t> box, start;

    // keys: n box numbers below `boxes`, -1 for none
    Slots(const std::vector<index_t>& keys, index_t boxes) : slot(boxes, -1) {
        std::vector<index_t> count;
        for (const index_t k : keys) {
            if (k < 0) continue;
            if (slot[k] < 0) {
                slot[k] = static_cast<std::int32_t>(box.size());
                box.push_back(k);
                count.push_back(0);
            }
            ++count[slot[k]];
        }
        start.assign(box.size() + 1, 0);
        for (std::size_t k = 0; k < box.size(); ++k) start[k + 1] = start[k] + count[k];
    }
    index_t size() const { return static_cast<index_t>(box.size()); }
    // position of each key's point in the grouped order (-1 for none)
    std::vector<index_t> positions(const std::vector<index_t>& keys) const {
        std::vector<index_t> next(start.begin(), start.end() - 1), at(keys.size(), -1);
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] >= 0) at[i] = next[slot[keys[i]]]++;
        return at;
    }
};

// Training points grouped by box: offsets v from their box centre (n x d),
// weights, and each box's weight (rounded up).
struct BoxedPoints {
    Slots slots;
    std::vector<double> v, w, weight;
};

inline BoxedPoints box_points(const GaussGridPlan& pl, index_t n, const double* train, const double* w) {
    const int d = pl.d;
    const GridBoxes gb{pl};
    const index_t g1 = d == 2 ? pl.g[1] : 1;
    std::vector<index_t> keys(n);
    for (index_t i = 0; i < n; ++i) {
        index_t k = gb.box(train[i * d], 0);
        if (d == 2) k = k * g1 + gb.box(train[i * d + 1], 1);
        keys[i] = k;
    }
    BoxedPoints bp{Slots(keys, pl.g[0] * g1), {}, {}, {}};
    bp.v.resize(n * d);
    bp.w.resize(n);
    if (d == 1 && std::is_sorted(keys.begin(), keys.end())) {  // already grouped
        for (index_t i = 0; i < n; ++i) bp.v[i] = train[i] - gb.centre(keys[i], 0);
        std::copy(w, w + n, bp.w.begin());
    } else {
        const std::vector<index_t> at = bp.slots.positions(keys);
        for (index_t i = 0; i < n; ++i) {
            const index_t k = keys[i], j = at[i];
            bp.v[j * d] = train[i * d] - gb.centre(d == 2 ? k / g1 : k, 0);
            if (d == 2) bp.v[j * d + 1] = train[i * d + 1] - gb.centre(k % g1, 1);
            bp.w[j] = w[i];
        }
    }
    const index_t S = bp.slots.size();
    bp.weight.assign(S, 0.0);
    for (index_t k = 0; k < S; ++k) {
        double t = 0.0;
        const index_t i0 = bp.slots.start[k], i1 = bp.slots.start[k + 1];
        for (index_t i = i0; i < i1; ++i) t += bp.w[i];
        bp.weight[k] = t * (1.0 + 1.01 * static_cast<double>(i1 - i0) * std::numeric_limits<double>::epsilon());
    }
    return bp;
}

// Partial sums in three levels (8 points, 16 of those, 16 of those), which
// keep the chains of additions short: fold() adds a block of 8 and moves
// full levels up into out.
struct Levels {
    std::vector<double> l1, l2;
    int n1 = 0, n2 = 0;
    explicit Levels(index_t size) : l1(size, 0.0), l2(size, 0.0) {}
    void fold(std::vector<double>& block, double* out) {
        const index_t P = static_cast<index_t>(block.size());
        for (index_t e = 0; e < P; ++e) l1[e] += block[e];
        std::fill(block.begin(), block.end(), 0.0);
        if (++n1 < 16) return;
        n1 = 0;
        for (index_t e = 0; e < P; ++e) l2[e] += l1[e];
        std::fill(l1.begin(), l1.end(), 0.0);
        if (++n2 < 16) return;
        n2 = 0;
        for (index_t e = 0; e < P; ++e) out[e] += l2[e];
        std::fill(l2.begin(), l2.end(), 0.0);
    }
    void finish(double* out) {
        for (std::size_t e = 0; e < l1.size(); ++e) out[e] += l2[e] + l1[e];
        std::fill(l1.begin(), l1.end(), 0.0);
        std::fill(l2.begin(), l2.end(), 0.0);
        n1 = n2 = 0;
    }
};

// Conversion matrices C[delta][n][m] = (-1)^m / m! h_{n+m}(delta s), delta =
// (query box) - (training box) = -c .. c, with rows of stride ps (zero past p).
inline std::vector<double> conversion_matrices(const GaussGridPlan& pl, int ps) {
    const int p = pl.p, c = pl.c;
    std::vector<double> C(static_cast<std::size_t>(2 * c + 1) * p * ps, 0.0), h(2 * p), inv_fact(p);
    inv_fact[0] = 1.0;
    for (int e = 1; e < p; ++e) inv_fact[e] = inv_fact[e - 1] / e;
    for (int k = -c; k <= c; ++k) {
        hermite_functions(k * pl.s, 2 * p, h.data());
        double* ck = &C[static_cast<std::size_t>(k + c) * p * ps];
        for (int n = 0; n < p; ++n)
            for (int m = 0; m < p; ++m) ck[n * ps + m] = ((m & 1) ? -1.0 : 1.0) * inv_fact[m] * h[n + m];
    }
    return C;
}

// The query boxes (extended grid, numbered t0 * ge[1] + t1) of m queries,
// -1 outside.
inline std::vector<index_t> query_boxes(const GaussGridPlan& pl, index_t m, const double* q) {
    const GridBoxes gb{pl};
    const int d = pl.d;
    std::vector<index_t> keys(m);
    for (index_t j = 0; j < m; ++j) {
        const index_t k0 = gb.query_box(q[j * d], 0);
        const index_t k1 = d == 2 ? gb.query_box(q[j * d + 1], 1) : 0;
        keys[j] = k0 < 0 || k1 < 0 ? -1 : k0 * (d == 2 ? pl.ge[1] : 1) + k1;
    }
    return keys;
}

inline void grid_sums_1d(const GaussGridPlan& pl, index_t n, const double* train, const double* w, double w_total,
                         index_t m, const double* q, double* f, double* b, int n_threads) {
    const int p = pl.p, c = pl.c;
    const index_t g0 = pl.g[0];
    const GridBoxes gb{pl};
    const BoxedPoints bp = box_points(pl, n, train, w);
    const Slots& src = bp.slots;
    const index_t S = src.size();
    // Hermite moments of every training box
    std::vector<double> A(S * p, 0.0);
    parallel_for((S + 15) / 16, threads_for(static_cast<double>(n) * p, n_threads), [&](index_t chunk) {
        constexpr int B = 8;
        std::vector<double> block(p, 0.0), inv(p, 1.0);
        Levels lv(p);
        for (int e = 1; e < p; ++e) inv[e] = 1.0 / e;
        dispatch_isa([&](auto) {
            for (index_t k = chunk * 16; k < std::min(S, (chunk + 1) * 16); ++k) {
                for (index_t i = src.start[k]; i < src.start[k + 1]; i += B) {
                    const int nb = static_cast<int>(std::min<index_t>(B, src.start[k + 1] - i));
                    double x[B], v[B];
                    for (int j = 0; j < B; ++j) {
                        x[j] = j < nb ? bp.w[i + j] : 0.0;
                        v[j] = j < nb ? bp.v[i + j] : 0.0;
                    }
                    for (int e = 0; e < p; ++e) {  // x_j = w_j v_j^e / e!
                        double t = 0.0;
                        for (int j = 0; j < B; ++j) t += x[j];
                        block[e] = t;
                        const double r = e + 1 < p ? inv[e + 1] : 0.0;
                        for (int j = 0; j < B; ++j) x[j] *= v[j] * r;
                    }
                    lv.fold(block, &A[k * p]);
                }
                lv.finish(&A[k * p]);
            }
        });
    });
    const std::vector<double> C = conversion_matrices(pl, p);
    std::vector<double> half(2 * c + 1);
    for (int k = -c; k <= c; ++k) half[k + c] = std::exp(-0.5 * (k * pl.s) * (k * pl.s));
    // local coefficients of the query boxes that hold queries
    const std::vector<index_t> qkeys = query_boxes(pl, m, q);
    const Slots dst(qkeys, pl.ge[0]);
    const index_t T = dst.size();
    std::vector<double> L(T * p, 0.0), reach(T, 0.0);
    parallel_for((T + 15) / 16, threads_for(static_cast<double>(T) * (2 * c + 1) * p * p, n_threads),
                 [&](index_t chunk) {
                     for (index_t ts = chunk * 16; ts < std::min(T, (chunk + 1) * 16); ++ts) {
                         const index_t t = dst.box[ts];
                         double* l = &L[ts * p];
                         double r = 0.0;
                         for (int k = -c; k <= c; ++k) {
                             const index_t sb = t - c - k;
                             if (sb < 0 || sb >= g0 || src.slot[sb] < 0) continue;
                             const double* a = &A[src.slot[sb] * p];
                             const double* ck = &C[static_cast<std::size_t>(k + c) * p * p];
                             for (int e = 0; e < p; ++e)
                                 for (int f2 = 0; f2 < p; ++f2) l[f2] += a[e] * ck[e * p + f2];
                             r += bp.weight[src.slot[sb]] * half[k + c];
                         }
                         reach[ts] = r;
                     }
                 });
    const double base = pl.cut * w_total;
    // the bound's own arithmetic (box weights times exp factors, summed over
    // the reach; trunc times that) rounded up
    const double up = 1.0 + (4.0 * c + 16.0) * std::numeric_limits<double>::epsilon();
    parallel_for((m + 4095) / 4096, threads_for(static_cast<double>(m) * (p + 20), n_threads), [&](index_t chunk) {
        for (index_t j = chunk * 4096; j < std::min(m, (chunk + 1) * 4096); ++j) {
            const index_t t = qkeys[j];
            if (t < 0) {
                f[j] = 0.0;
                b[j] = std::numeric_limits<double>::infinity();
                continue;
            }
            const index_t ts = dst.slot[t];
            const double u = q[j] - gb.centre(t - c, 0);
            const double* l = &L[ts * p];
            double v = l[p - 1];
            for (int e = p - 2; e >= 0; --e) v = v * u + l[e];
            f[j] = v;
            const double rest = pl.trunc * reach[ts] + base;
            b[j] = (rest + pl.coord * (std::abs(v) + rest)) * up;
        }
    });
}

// out[0 .. PS) += sum_{i < count} coef[i * cs] * rows[i * rs + 0 .. PS), in
// vectors of VB bytes (at most 4 doubles), held in registers.
template <int VB, int PS>
inline void add_combination(const double* coef, index_t cs, const double* rows, index_t rs, int count, double* out) {
    constexpr int LN = VB >= 32 ? 4 : 2;
    constexpr int NV = PS / LN;
    using V = simd::vec<double, LN>;
    V acc[NV];
#pragma GCC unroll 20
    for (int x = 0; x < NV; ++x) acc[x] = simd::load<double, LN>(out + x * LN);
    for (int i = 0; i < count; ++i) {
        const V c = simd::splat<double, LN>(coef[i * cs]);
        const double* r = rows + i * rs;
#pragma GCC unroll 20
        for (int x = 0; x < NV; ++x) acc[x] += c * simd::load<double, LN>(r + x * LN);
    }
#pragma GCC unroll 20
    for (int x = 0; x < NV; ++x) simd::store<double, LN>(out + x * LN, acc[x]);
}

// Two dimensions; PS is the padded stride of the second axis's terms (p
// rounded up to a multiple of 4), so the inner loops run over registers.
template <int PS>
void grid_sums_2d(const GaussGridPlan& pl, index_t n, const double* train, const double* w, double w_total,
                  index_t m, const double* q, double* f, double* b, int n_threads) {
    const int p = pl.p, c = pl.c, nd = 2 * c + 1;
    const index_t P = static_cast<index_t>(p) * PS;
    const index_t g0 = pl.g[0], g1 = pl.g[1], e0 = pl.ge[0], e1 = pl.ge[1];
    const GridBoxes gb{pl};
    const BoxedPoints bp = box_points(pl, n, train, w);
    const Slots& src = bp.slots;
    const index_t S = src.size();
    // Hermite moments: A[slot][n0][n1] = sum w v0^n0 / n0! v1^n1 / n1!
    std::vector<double> A(S * P, 0.0);
    parallel_for((S + 63) / 64, threads_for(static_cast<double>(n) * P, n_threads), [&](index_t chunk) {
        constexpr int B = 8;
        std::vector<double> block(P, 0.0), inv(p, 1.0);
        alignas(32) double px[kGridMaxTerms][B], py[B][PS];
        Levels lv(P);
        for (int e = 1; e < p; ++e) inv[e] = 1.0 / e;
        for (index_t k = chunk * 64; k < std::min(S, (chunk + 1) * 64); ++k) {
            for (index_t i = src.start[k]; i < src.start[k + 1]; i += B) {
                const int nb = static_cast<int>(std::min<index_t>(B, src.start[k + 1] - i));
                for (int j = 0; j < B; ++j) {
                    const double v0 = j < nb ? bp.v[(i + j) * 2] : 0.0, v1 = j < nb ? bp.v[(i + j) * 2 + 1] : 0.0;
                    double x = j < nb ? bp.w[i + j] : 0.0, y = 1.0;
                    for (int e = 0; e < p; ++e) {
                        px[e][j] = x;
                        py[j][e] = y;
                        const double r = e + 1 < p ? inv[e + 1] : 0.0;
                        x *= v0 * r;
                        y *= v1 * r;
                    }
                    for (int e = p; e < PS; ++e) py[j][e] = 0.0;
                }
                dispatch_isa([&](auto vb) {
                    for (int e0v = 0; e0v < p; ++e0v)
                        add_combination<decltype(vb)::value, PS>(px[e0v], 1, py[0], PS, B, &block[e0v * PS]);
                });
                lv.fold(block, &A[k * P]);
            }
            lv.finish(&A[k * P]);
        }
    });
    auto source = [&](index_t s0, index_t s1) -> std::int32_t {  // slot of a training box, or -1
        return s0 < 0 || s0 >= g0 || s1 < 0 || s1 >= g1 ? -1 : src.slot[s0 * g1 + s1];
    };
    // the query boxes that hold queries, by column (axis 0)
    const std::vector<index_t> qkeys = query_boxes(pl, m, q);
    const Slots dst(qkeys, e0 * e1);
    const index_t T = dst.size();
    std::vector<index_t> columns;
    {
        std::vector<char> seen(e0, 0);
        for (const index_t t : dst.box)
            if (!seen[t / e1]) {
                seen[t / e1] = 1;
                columns.push_back(t / e1);
            }
        std::sort(columns.begin(), columns.end());
    }
    const std::vector<double> C = conversion_matrices(pl, PS);
    std::vector<double> half(nd);
    for (int k = -c; k <= c; ++k) half[k + c] = std::exp(-0.5 * (k * pl.s) * (k * pl.s));
    std::vector<double> L(T * P, 0.0), reach(T, 0.0);
    const double work = static_cast<double>(T) * 2.0 * nd * p * P;
    parallel_for(static_cast<index_t>(columns.size()), threads_for(work, n_threads), [&](index_t ci) {
        const index_t t0 = columns[ci];
        // pass 1, along axis 0, for the rows s1 a query box of this column
        // reaches: Bm[s1][m0][n1] = sum_k sum_n0 C[k][n0][m0] A[t0-c-k][s1][n0][n1]
        std::vector<char> need(g1, 0), bfull(g1, 0);
        for (index_t t1 = 0; t1 < e1; ++t1)
            if (dst.slot[t0 * e1 + t1] >= 0)
                for (index_t s1 = std::max<index_t>(0, t1 - 2 * c); s1 <= std::min<index_t>(g1 - 1, t1); ++s1) need[s1] = 1;
        std::vector<double> Bm(g1 * P), Bw(g1, 0.0);
        dispatch_isa([&](auto vb) {
            for (index_t s1 = 0; s1 < g1; ++s1) {
                if (!need[s1]) continue;
                double* bm = &Bm[s1 * P];
                std::fill(bm, bm + P, 0.0);
                double bw = 0.0;
                for (int k = -c; k <= c; ++k) {
                    const std::int32_t a = source(t0 - c - k, s1);
                    if (a < 0) continue;
                    bfull[s1] = 1;
                    bw += bp.weight[a] * half[k + c];
                    const double* ck = &C[static_cast<std::size_t>(k + c) * p * PS];
                    for (int m0 = 0; m0 < p; ++m0)
                        add_combination<decltype(vb)::value, PS>(ck + m0, PS, &A[a * P], PS, p, bm + m0 * PS);
                }
                Bw[s1] = bw;
            }
            // pass 2, along axis 1: L[t0][t1][m0][m1] = sum_k sum_n1 Bm[t1-c-k][m0][n1] C[k][n1][m1]
            for (index_t t1 = 0; t1 < e1; ++t1) {
                const std::int32_t ts = dst.slot[t0 * e1 + t1];
                if (ts < 0) continue;
                double* l = &L[ts * P];
                double r = 0.0;
                for (int k = -c; k <= c; ++k) {
                    const index_t s1 = t1 - c - k;
                    if (s1 < 0 || s1 >= g1 || !bfull[s1]) continue;
                    r += Bw[s1] * half[k + c];
                    const double* ck = &C[static_cast<std::size_t>(k + c) * p * PS];
                    for (int m0 = 0; m0 < p; ++m0)
                        add_combination<decltype(vb)::value, PS>(&Bm[s1 * P + m0 * PS], 1, ck, PS, p, l + m0 * PS);
                }
                reach[ts] = r;
            }
        });
    });
    // the queries, in order of box (the coefficients of a box are read once):
    // their offsets from the box centre gathered in that order, the results
    // scattered back
    const std::vector<index_t> at = dst.positions(qkeys);
    const index_t inside = dst.start[T];
    std::vector<index_t> order(inside);
    std::vector<std::int32_t> sslot(inside);
    std::vector<double> su(2 * inside), sf(inside), sb(inside);
    for (index_t j = 0; j < m; ++j) {
        const index_t t = qkeys[j];
        if (t < 0) {
            f[j] = 0.0;
            b[j] = std::numeric_limits<double>::infinity();
            continue;
        }
        order[at[j]] = j;
        sslot[at[j]] = dst.slot[t];
        su[2 * at[j]] = q[j * 2] - gb.centre(t / e1 - c, 0);
        su[2 * at[j] + 1] = q[j * 2 + 1] - gb.centre(t % e1 - c, 1);
    }
    const double base = pl.cut * w_total;
    // the bound's own arithmetic (box weights times exp factors, summed over
    // the reach; trunc times that) rounded up
    const double up = 1.0 + (4.0 * c + 16.0) * std::numeric_limits<double>::epsilon();
    parallel_for((inside + 1023) / 1024, threads_for(static_cast<double>(inside) * P, n_threads), [&](index_t chunk) {
        dispatch_isa([&](auto vb) {
            alignas(64) double pw[PS], row[PS];
            for (index_t k = chunk * 1024; k < std::min(inside, (chunk + 1) * 1024); ++k) {
                const index_t ts = sslot[k];
                const double u0 = su[2 * k], u1 = su[2 * k + 1];
                // row = sum_e u0^e L[e][.], then its polynomial in u1
                double x = 1.0;
                for (int e = 0; e < p; ++e, x *= u0) pw[e] = x;
                std::fill(row, row + PS, 0.0);
                add_combination<decltype(vb)::value, PS>(pw, 1, &L[ts * P], PS, p, row);
                double v = row[p - 1];
                for (int e = p - 2; e >= 0; --e) v = v * u1 + row[e];
                sf[k] = v;
                const double rest = pl.trunc * reach[ts] + base;
                sb[k] = (rest + pl.coord * (std::abs(v) + rest)) * up;
            }
        });
    });
    for (index_t k = 0; k < inside; ++k) {
        f[order[k]] = sf[k];
        b[order[k]] = sb[k];
    }
}

// Sums f[j] ~ sum_i w_i exp(-|t_j - t_i|^2) and their bounds b[j] (infinite
// for queries outside the grid). train: n x d (row-major), w: n weights, q:
// m x d, all in t units. In one dimension, training points in ascending
// order skip a sort.
inline void gauss_grid_sums(const GaussGridPlan& pl, index_t n, const double* train, const double* w, double w_total,
                            index_t m, const double* q, double* f, double* b, int n_threads) {
    if (pl.d == 1) return grid_sums_1d(pl, n, train, w, w_total, m, q, f, b, n_threads);
    switch ((pl.p + 3) / 4) {
        case 1: return grid_sums_2d<4>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 2: return grid_sums_2d<8>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 3: return grid_sums_2d<12>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 4: return grid_sums_2d<16>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 5: return grid_sums_2d<20>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 6: return grid_sums_2d<24>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 7: return grid_sums_2d<28>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 8: return grid_sums_2d<32>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        case 9: return grid_sums_2d<36>(pl, n, train, w, w_total, m, q, f, b, n_threads);
        default: return grid_sums_2d<40>(pl, n, train, w, w_total, m, q, f, b, n_threads);
    }
}

}  // namespace gaussmix::detail
