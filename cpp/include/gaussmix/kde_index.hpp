// kde_index.hpp -- a fitted kernel density index: the training set prepared
// once, exact sums, and approximate sums with a certified error.
//
// KdeIndex holds the whitened training set of kde.hpp (for the exact,
// vectorised sums) and, each built on first need, the grid coordinates of
// kde_grid.hpp (Gaussian sums in one and two dimensions) and the k-d tree of
// kde_tree.hpp. All answer
//   S(q) = log sum_i w_i k(||(q - x_i) U|| * scale),
// where `scale` multiplies the whitening factor U the index was built with
// (a bandwidth search reuses one index for every candidate); the
// approximate ones within |S_returned - S_exact| <= A + rtol * S_exact (in
// linear space) for every query.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "kde.hpp"
#include "kde_grid.hpp"
#include "kde_tree.hpp"

namespace gaussmix {

template <class T>
class KdeIndex {
   public:
    using value_type = T;
    // train: the training points (and weights); u: the upper-triangular
    // whitening factor (D x D, row-major) distances are measured with.
    // The training points are read again when the tree is first built: the
    // caller keeps `train` alive as long as the index.
    KdeIndex(const DataView<T>& train, const double* u, index_t leaf_size, int n_threads)
        : train_(train), ws_(detail::whiten_set(train, u, n_threads)), leaf_size_(std::max<index_t>(1, leaf_size)) {
        axis_scale_.resize(train.d);
        for (index_t l = 0; l < train.d; ++l)
            axis_scale_[l] = ws_.diagonal ? static_cast<double>(ws_.scale[l]) : 1.0;
    }

    // Builds the tree now rather than on the first evaluation with a tolerance.
    void build_tree() const { (void)tree(); }
    // Prepares the grid's coordinates now (D <= 2).
    void build_grid() const {
        if (ws_.d <= 2) (void)grid_coordinates();
    }

    index_t n() const { return ws_.n; }
    index_t d() const { return ws_.d; }

    // out[j] = log sum_i w_i k(scale * ||(q_j - x_i) U||). method: 0 exact,
    // 1 tree, 2 automatic, 3 grid (Gaussian kernel, D <= 2; queries the grid
    // cannot certify go to the tree). With a tolerance, automatic sums
    // Gaussian kernels in D <= 2 on the grid when its modelled cost is under
    // a quarter of the exact sum's; the other queries run a pilot on the
    // tree and follow the cheaper path by the work it measured. Approximate
    // sums honour |sum - exact| <= exp(log_atol) + rtol * exact per query.
    KdeTreeWork log_sum(const DataView<T>& Q, Kernel kernel, double scale, double log_atol, double rtol,
                        bool exclude_self, int method, T* out, int n_threads) const {
        if (Q.d != ws_.d) throw std::invalid_argument("queries and training data differ in the number of features");
        if (exclude_self && Q.n != ws_.n)
            throw std::invalid_argument("leave-one-out sums need the training set as queries");
        KdeTreeWork total;
        const index_t M = Q.n;
        if (M == 0) return total;
        const bool tolerant = log_atol > -std::numeric_limits<double>::infinity() || rtol > 0.0;
        if (method == 0 || (method == 2 && !tolerant)) {
            exact(Q, kernel, scale, exclude_self, 0, M, out, n_threads);
            return total;
        }
        std::vector<index_t> rows;
        bool gridded = false;
        if ((method == 3 || method == 2) && kernel == Kernel::gaussian && ws_.d <= 2 && tolerant) {
            rows = grid_rows(Q, scale, log_atol, rtol, exclude_self, method == 3, out, n_threads, total);
            gridded = total.grid_queries > 0;
        } else {
            rows.resize(M);
            std::iota(rows.begin(), rows.end(), index_t(0));
        }
        if (rows.empty()) return total;
        const KdeTreeWork more = tree_or_exact(Q, kernel, scale, log_atol, rtol, exclude_self, method == 2,
                                               gridded, std::move(rows), out, n_threads);
        total.queries += more.queries;
        total.nodes += more.nodes;
        total.leaf_points += more.leaf_points;
        total.expansions += more.expansions;
        return total;
    }

   private:
    DataView<T> train_;
    detail::WhitenedSet<T> ws_;
    index_t leaf_size_;
    std::vector<double> axis_scale_;
    mutable std::once_flag tree_once_;
    mutable std::unique_ptr<detail::KdTree> tree_;
    struct GridCoordinates;
    mutable std::once_flag grid_once_;
    mutable std::unique_ptr<GridCoordinates> grid_;

    const detail::KdTree& tree() const {
        std::call_once(tree_once_, [&] {
            // index coordinates in double: (x - c) U, or raw x when U is diagonal
            const index_t n = train_.n, d = train_.d;
            std::vector<double> rows(n * d), weight(n);
            for (index_t i = 0; i < n; ++i) {
                detail::whiten_row(train_.row(i), ws_.center.data(), ws_.qu.data(), d, rows.data() + i * d);
                weight[i] = train_.weight(i);
            }
            tree_ = std::make_unique<detail::KdTree>(detail::build_kd_tree(rows, weight, n, d, axis_scale_, leaf_size_));
        });
        return *tree_;
    }

    detail::WhitenedSet<T> scaled(double scale) const {
        detail::WhitenedSet<T> sc = ws_;
        if (scale == 1.0) return sc;
        if (sc.diagonal) {
            for (auto& v : sc.scale) v = static_cast<T>(static_cast<double>(v) * scale);
            const double s0 = static_cast<double>(sc.scale[0]);
            sc.isotropic = sc.isotropic && s0 * s0 >= 1e-30 && s0 * s0 <= 1e30;
        } else {
            for (auto& v : sc.x) v = static_cast<T>(static_cast<double>(v) * scale);
            for (auto& v : sc.qu) v *= scale;
        }
        return sc;
    }

    // The rows of Q on the tree (with `choose`, after a pilot: the tree only
    // where the pilot found it cheaper than the exact sum; with `few_exact`,
    // a handful of rows are summed exactly).
    KdeTreeWork tree_or_exact(const DataView<T>& Q, Kernel kernel, double scale, double log_atol, double rtol,
                              bool exclude_self, bool choose, bool few_exact, std::vector<index_t> rows, T* out,
                              int n_threads) const {
        const index_t M = static_cast<index_t>(rows.size());
        // A few queries (those the grid left) are not worth a tree (building
        // one costs about as much as 2000 / (D + 2) exact sums); the choice
        // does not depend on whether the tree exists, so results do not either.
        if (few_exact && static_cast<double>(M) * (ws_.d + 2.0) < 2000.0) {
            exact_runs(scaled(scale), Q, kernel, exclude_self, runs_of(rows), out, n_threads);
            return KdeTreeWork{};
        }
        const detail::KdTree& t = tree();
        std::vector<double> s(ws_.d);
        for (index_t l = 0; l < ws_.d; ++l) s[l] = axis_scale_[l] * scale;
        // The pilot: every stride-th query (all of them without a choice).
        index_t stride = 1;
        if (choose) stride = std::max<index_t>(1, std::min<index_t>(M / 16, 32));
        std::vector<index_t> pilot, rest;
        for (index_t k = 0; k < M; ++k) (k % stride == 0 ? pilot : rest).push_back(rows[k]);
        if (choose && stride == 1 && M > 8) {
            rest.insert(rest.begin(), pilot.begin() + 8, pilot.end());
            pilot.resize(8);
            std::sort(rest.begin(), rest.end());
        }
        // Gaussian sums in D <= 3 also try each node's Taylor expansion.
        std::unique_ptr<detail::TaylorMoments> tm;
        // Their moments cost about (levels x terms) per point: made only when
        // that is under 5 % of the exact sum over these queries.
        if (kernel == Kernel::gaussian && ws_.d <= 3) {
            const double terms = ws_.d == 1 ? 24.0 : ws_.d == 2 ? 105.0 : 220.0;
            const double moments = 4.0 * 4.0 * terms * static_cast<double>(ws_.n);
            if (moments <= 0.05 * static_cast<double>(M) * static_cast<double>(ws_.n) * (ws_.d + 2.0))
                tm = std::make_unique<detail::TaylorMoments>(detail::taylor_moments(t, s.data(), n_threads));
        }
        KdeTreeWork total =
            tree_rows(t, Q, kernel, scale, s.data(), log_atol, rtol, exclude_self, pilot, out, n_threads, tm.get());
        if (rest.empty()) return total;
        // Cost per query, in units of about a third of a nanosecond: the
        // vectorised exact sum takes D + 2 per training point, a leaf point
        // about three times that (one query per load, and cache misses), the
        // bounds of a node about 400 (measured on AVX2 and AVX-512, D = 1..20).
        const double dd = static_cast<double>(ws_.d) + 2.0;
        const double terms = tm ? static_cast<double>(tm->a.size()) : 0.0;
        const double per_tree = (3.0 * dd * static_cast<double>(total.leaf_points) +
                                 400.0 * static_cast<double>(total.nodes) +
                                 (4.0 * terms + 200.0) * static_cast<double>(total.expansions)) /
                                static_cast<double>(pilot.size());
        const double per_exact = dd * static_cast<double>(ws_.n);
        if (per_tree <= 0.8 * per_exact) {
            const KdeTreeWork more =
                tree_rows(t, Q, kernel, scale, s.data(), log_atol, rtol, exclude_self, rest, out, n_threads, tm.get());
            total.queries += more.queries;
            total.nodes += more.nodes;
            total.leaf_points += more.leaf_points;
            total.expansions += more.expansions;
            return total;
        }
        // exact for the rest, in contiguous runs
        exact_runs(scaled(scale), Q, kernel, exclude_self, runs_of(rest), out, n_threads);
        return total;
    }

    // ascending rows as runs [first, last + 1) of consecutive rows
    static std::vector<std::pair<index_t, index_t>> runs_of(const std::vector<index_t>& rows) {
        std::vector<std::pair<index_t, index_t>> runs;
        for (std::size_t k = 0; k < rows.size();) {
            std::size_t e = k + 1;
            while (e < rows.size() && rows[e] == rows[e - 1] + 1) ++e;
            runs.emplace_back(rows[k], rows[e - 1] + 1);
            k = e;
        }
        return runs;
    }

    // Gaussian sums on the grid of kde_grid.hpp. Writes the queries whose
    // bound meets the tolerance and returns the others (all of them when no
    // grid fits, or, unless `force`, when the grid would not cost under a
    // quarter of the exact sum).
    std::vector<index_t> grid_rows(const DataView<T>& Q, double scale, double log_atol, double rtol, bool exclude_self,
                                   bool force, T* out, int n_threads, KdeTreeWork& work) const {
        const index_t M = Q.n, n = ws_.n, d = ws_.d;
        std::vector<index_t> rows;
        const GridCoordinates& gc = grid_coordinates();
        const double atol = std::exp(log_atol);
        // t = (y - origin) * f per axis: the kernel is exp(-|t_q - t_i|^2)
        double f[2], tmin[2], tmax[2];
        for (index_t l = 0; l < d; ++l) {
            f[l] = axis_scale_[l] * scale * std::sqrt(0.5);
            tmin[l] = (gc.lo[l] - gc.origin[l]) * f[l];
            tmax[l] = (gc.hi[l] - gc.origin[l]) * f[l];
        }
        const detail::GaussGridPlan plan =
            detail::plan_gauss_grid(static_cast<int>(d), tmin, tmax, n, M, atol, rtol, gc.w_total);
        const double exact_cost = (static_cast<double>(d) + 2.0) * static_cast<double>(n) * static_cast<double>(M);
        if (!(plan.cost < std::numeric_limits<double>::infinity()) || (!force && plan.cost > 0.25 * exact_cost)) {
            rows.resize(M);
            std::iota(rows.begin(), rows.end(), index_t(0));
            return rows;
        }
        // (one dimension: the training points in ascending order, which spares
        // the grid a sort)
        const std::vector<double>& ty = d == 1 ? gc.y_sorted : gc.y;
        const std::vector<double>& tw = d == 1 ? gc.w_sorted : gc.w;
        std::vector<double> tt(n * d), tq(M * d), sum(M), bound(M);
        parallel_for((n + 4095) / 4096, threads_for(static_cast<double>(n) * 4.0, n_threads), [&](index_t b) {
            for (index_t i = b * 4096; i < std::min(n, (b + 1) * 4096); ++i)
                for (index_t l = 0; l < d; ++l) tt[i * d + l] = (ty[i * d + l] - gc.origin[l]) * f[l];
        });
        parallel_for((M + 4095) / 4096, threads_for(static_cast<double>(M) * 20.0, n_threads), [&](index_t b) {
            double y[2];
            for (index_t j = b * 4096; j < std::min(M, (b + 1) * 4096); ++j) {
                detail::whiten_row(Q.row(j), ws_.center.data(), ws_.qu.data(), d, y);
                for (index_t l = 0; l < d; ++l) tq[j * d + l] = (y[l] - gc.origin[l]) * f[l];
            }
        });
        detail::gauss_grid_sums(plan, n, tt.data(), tw.data(), gc.w_total, M, tq.data(), sum.data(), bound.data(),
                                n_threads);
        const double eps = std::numeric_limits<double>::epsilon();
        std::vector<char> certified(M);
        parallel_for((M + 4095) / 4096, threads_for(static_cast<double>(M) * 30.0, n_threads), [&](index_t b) {
            for (index_t j = b * 4096; j < std::min(M, (b + 1) * 4096); ++j) {
                double v = sum[j], e = bound[j];
                if (exclude_self) {  // the own term, exactly
                    v -= gc.w[j];
                    e += 2.0 * eps * std::abs(sum[j]);
                }
                const double lower = v - e;
                certified[j] = lower > 0.0 && e <= atol + rtol * lower;
                if (certified[j]) out[j] = static_cast<T>(std::log(v));
            }
        });
        for (index_t j = 0; j < M; ++j)
            if (!certified[j]) rows.push_back(j);
        work.grid_queries += M - static_cast<index_t>(rows.size());
        return rows;
    }

    struct GridCoordinates {
        std::vector<double> y;  // n x d whitened (unscaled) training points
        std::vector<double> w;  // their weights
        std::vector<double> y_sorted, w_sorted;  // one dimension: both in ascending order of y
        double w_total = 0.0;
        double lo[2] = {0.0, 0.0}, hi[2] = {0.0, 0.0}, origin[2] = {0.0, 0.0};
    };

    const GridCoordinates& grid_coordinates() const {
        std::call_once(grid_once_, [&] {
            auto g = std::make_unique<GridCoordinates>();
            const index_t n = train_.n, d = train_.d;
            g->y.resize(n * d);
            g->w.resize(n);
            for (index_t l = 0; l < d; ++l) {
                g->lo[l] = std::numeric_limits<double>::infinity();
                g->hi[l] = -std::numeric_limits<double>::infinity();
            }
            for (index_t i = 0; i < n; ++i) {
                detail::whiten_row(train_.row(i), ws_.center.data(), ws_.qu.data(), d, &g->y[i * d]);
                g->w[i] = train_.weight(i);
                g->w_total += g->w[i];
                for (index_t l = 0; l < d; ++l) {
                    g->lo[l] = std::min(g->lo[l], g->y[i * d + l]);
                    g->hi[l] = std::max(g->hi[l], g->y[i * d + l]);
                }
            }
            // an upper bound of the total weight despite rounding
            g->w_total *= 1.0 + 1.01 * static_cast<double>(n) * std::numeric_limits<double>::epsilon();
            for (index_t l = 0; l < d; ++l) g->origin[l] = 0.5 * (g->lo[l] + g->hi[l]);
            if (d == 1) {
                std::vector<std::pair<double, double>> yw(n);
                for (index_t i = 0; i < n; ++i) yw[i] = {g->y[i], g->w[i]};
                std::sort(yw.begin(), yw.end());
                g->y_sorted.resize(n);
                g->w_sorted.resize(n);
                for (index_t i = 0; i < n; ++i) {
                    g->y_sorted[i] = yw[i].first;
                    g->w_sorted[i] = yw[i].second;
                }
            }
            grid_ = std::move(g);
        });
        return *grid_;
    }

    void exact(const DataView<T>& Q, Kernel kernel, double scale, bool exclude_self, index_t q0, index_t q1, T* out,
               int n_threads) const {
        const detail::WhitenedSet<T> sc = scaled(scale);
        exact_runs(sc, Q, kernel, exclude_self, {{q0, q1}}, out, n_threads);
    }

    void exact_runs(const detail::WhitenedSet<T>& sc, const DataView<T>& Q, Kernel kernel, bool exclude_self,
                    const std::vector<std::pair<index_t, index_t>>& runs, T* out, int n_threads) const {
        // blocks of up to 16 queries inside each run
        std::vector<std::pair<index_t, index_t>> blocks;
        for (const auto& r : runs)
            for (index_t a = r.first; a < r.second; a += 16) blocks.emplace_back(a, std::min(r.second, a + 16));
        index_t m = 0;
        for (const auto& r : runs) m += r.second - r.first;
        const double work = static_cast<double>(m) * static_cast<double>(sc.n) * static_cast<double>(sc.d + 10);
        parallel_for(static_cast<index_t>(blocks.size()), threads_for(work, n_threads), [&](index_t b) {
            detail::kde_rows<T>(sc, Q, kernel, blocks[b].first, blocks[b].second, exclude_self, out);
        });
    }

    KdeTreeWork tree_rows(const detail::KdTree& t, const DataView<T>& Q, Kernel kernel, double scale, const double* s,
                          double log_atol, double rtol, bool exclude_self, std::vector<index_t> rows, T* out,
                          int n_threads, const detail::TaylorMoments* tm) const {
        const index_t m = static_cast<index_t>(rows.size());
        // Queries are taken in the order of the leaves they fall in, so that
        // consecutive queries read the same leaves from cache.
        {
            std::vector<index_t> home(m);
            parallel_for((m + 255) / 256, threads_for(static_cast<double>(m) * 200.0, n_threads), [&](index_t b) {
                std::vector<double> q(ws_.d);
                for (index_t k = b * 256; k < std::min(m, (b + 1) * 256); ++k) {
                    detail::whiten_row(Q.row(rows[k]), ws_.center.data(), ws_.qu.data(), ws_.d, q.data());
                    home[k] = detail::home_leaf(t, q.data(), s);
                }
            });
            std::vector<index_t> by(m);
            std::iota(by.begin(), by.end(), index_t(0));
            std::stable_sort(by.begin(), by.end(), [&](index_t a, index_t b) { return home[a] < home[b]; });
            std::vector<index_t> sorted(m);
            for (index_t k = 0; k < m; ++k) sorted[k] = rows[by[k]];
            rows.swap(sorted);
        }
        const index_t per = 64;
        const index_t n_blocks = (m + per - 1) / per;
        std::vector<KdeTreeWork> parts(n_blocks);
        const double work = static_cast<double>(m) * 64.0 * static_cast<double>(ws_.d + 10) *
                            std::log2(static_cast<double>(ws_.n) + 2.0);
        parallel_for(n_blocks, threads_for(work, n_threads), [&](index_t b) {
            std::vector<double> q(ws_.d), buf(t.max_leaf + 32);
            KdeTreeWork& wk = parts[b];
            dispatch_isa([&](auto vb) {
                for (index_t k = b * per; k < std::min(m, (b + 1) * per); ++k) {
                    const index_t j = rows[k];
                    detail::whiten_row(Q.row(j), ws_.center.data(), ws_.qu.data(), ws_.d, q.data());
                    const index_t self = exclude_self ? t.where[j] : -1;
                    out[j] = static_cast<T>(detail::tree_log_sum<decltype(vb)::value>(t, q.data(), s, kernel, log_atol,
                                                                                     rtol, self, buf.data(), wk, tm));
                    ++wk.queries;
                }
            });
        });
        // queries the tree could not certify (a leave-one-out total that
        // cancels): summed exactly
        std::vector<std::pair<index_t, index_t>> redo;
        for (index_t k = 0; k < m; ++k)
            if (std::isnan(static_cast<double>(out[rows[k]]))) redo.emplace_back(rows[k], rows[k] + 1);
        if (!redo.empty()) exact_runs(scaled(scale), Q, kernel, exclude_self, redo, out, n_threads);
        KdeTreeWork total;
        for (const auto& p : parts) {
            total.queries += p.queries;
            total.nodes += p.nodes;
            total.leaf_points += p.leaf_points;
            total.expansions += p.expansions;
        }
        return total;
    }
};

}  // namespace gaussmix
