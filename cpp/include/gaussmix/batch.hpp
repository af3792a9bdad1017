// batch.hpp -- many independent mixtures in one call: one EM fit per group of
// rows, the groups spread over the threads.
//
// The rows of group g are rows [offsets[g], offsets[g + 1]) of one row-major
// matrix. Each group's fit is the one GaussianMixture makes on those rows
// alone: the same initialisation (scikit-learn's k-means, k-means++ seeds,
// uniform responsibilities, or given rows), n_init starts, the EM loop of
// em.hpp and the best start by lower bound. The random numbers are drawn by
// the caller, one run of uniforms per (group, start), in the order a loop of
// fits sharing one RandomState would draw them.
//
// Threads: with at least as many groups as threads, each group runs on one
// thread (its passes single-threaded); with fewer, the groups run one after
// another and each pass uses every thread. The engine's reductions do not
// depend on the thread count, so neither does any result.
//
// A group that cannot be fitted (fewer rows than components or than two, a
// non-finite value, no positive weight, a covariance that is not positive
// definite) gets a status and keeps no parameters; the other groups are not
// affected.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "data.hpp"
#include "em.hpp"
#include "given_stats.hpp"
#include "kmeans.hpp"
#include "parallel.hpp"
#include "suffstats.hpp"

namespace gaussmix {

// How each start's responsibilities are made (GaussianMixture's init_params).
enum class BatchInit : int {
    kmeans = 0,       // scikit-learn's KMeans(n_init=1) labels
    plusplus = 1,     // k-means++ seeds, one row per component
    random = 2,       // uniform responsibilities, normalised per row
    rows = 3,         // random rows of the group, one per component
    given = 4,        // no responsibilities: the start is the given parameters
    partition = 5,    // a partition the caller gives (grid.hpp)
};

enum class GroupStatus : int {
    ok = 0,
    too_few_samples = 1,  // fewer rows than components, or than two
    non_finite = 2,       // a row holds an infinity or a NaN
    no_weight = 3,        // every sample weight is zero
    ill_defined = 4,      // a covariance is not positive definite
};

struct BatchSpec {
    CovType cov = CovType::full;
    index_t k = 1;
    double tol = 1e-3;
    double reg_covar = 1e-6;
    index_t max_iter = 100;
    index_t n_init = 1;
    BatchInit init = BatchInit::kmeans;
};

// The caller's per-group inputs besides the rows.
struct BatchInputs {
    const std::int64_t* offsets = nullptr;  // G + 1 row offsets, non-decreasing
    index_t n_groups = 0;
    // uniforms of start s of group g: u[u_offsets[g * n_init + s] ..); k-means
    // and k-means++ take 1 + (K - 1) n_trials, random n_g K, rows n_g (one
    // key per row: the K rows with the smallest keys start the components)
    const double* u = nullptr;
    const std::int64_t* u_offsets = nullptr;
    // given starting values per group (nullptr: from the responsibilities):
    // weights G x K, means G x K x D, precision factors and covariances
    // G x cov_size(cov, K, D)
    const double* weights = nullptr;
    const double* means = nullptr;
    const double* prec_chol = nullptr;
    const double* covariances = nullptr;
    // groups the caller found unfit before drawing (G flags, nullptr: none):
    // left out, with status too_few_samples for the caller to replace
    const bool* skip = nullptr;
};

struct GroupFit {
    MixtureParams params;
    std::vector<double> lower_bounds;  // of the best start
    double lower_bound = -std::numeric_limits<double>::infinity();
    index_t n_iter = 0;
    bool converged = false;
    bool fewer_clusters = false;  // a k-means start found fewer distinct clusters than K
    GroupStatus status = GroupStatus::ok;
    index_t component = -1;  // the ill-defined component
};

namespace detail {

// Turns off the interrupt polls of the calling thread while alive: a group
// fit on a worker thread must not call into the host (the loop over the
// groups polls between them instead).
struct QuietPolls {
    QuietPolls() : prev_(polls_muted()) { polls_muted() = true; }
    ~QuietPolls() { polls_muted() = prev_; }
    QuietPolls(const QuietPolls&) = delete;
    QuietPolls& operator=(const QuietPolls&) = delete;

   private:
    bool prev_;
};

// numpy's X.mean(axis=0), X.var(axis=0) for any column count (one column is
// summed pairwise, as numpy sums a contiguous run).
template <class T>
GAUSSMIX_NO_CONTRACT void numpy_mean_var(const DataView<T>& X, T* mean, T* var) {
    GAUSSMIX_NO_CONTRACT_BODY
    if (X.d > 1) {
        column_mean_var<T>(X, mean, var);
        return;
    }
    const index_t N = X.n;
    const double count = static_cast<double>(N);
    std::vector<T> col(N);
    for (index_t i = 0; i < N; ++i) col[i] = X.row(i)[0];
    mean[0] = static_cast<T>(static_cast<double>(numpy_sum<T>(col.data(), N)) / count);
    for (index_t i = 0; i < N; ++i) {
        const T e = col[i] - mean[0];
        col[i] = e * e;
    }
    var[0] = static_cast<T>(static_cast<double>(numpy_sum<T>(col.data(), N)) / count);
}

// scikit-learn's relocation of empty clusters (k-means, dense Lloyd): each
// empty cluster takes one of the rows farthest from their centres (farthest
// first, the lower index on ties), whose weighted row moves from its own
// cluster's sums; labels are left as they are.
template <class T>
GAUSSMIX_NO_CONTRACT void relocate_empty(const DataView<T>& X, const T* shift, const T* w, const double* centers,
                                         const std::int64_t* labels, index_t K, double* sums, double* wsums) {
    GAUSSMIX_NO_CONTRACT_BODY
    const index_t N = X.n, D = X.d;
    std::vector<index_t> empty;
    for (index_t j = 0; j < K; ++j)
        if (wsums[j] == 0.0) empty.push_back(j);
    if (empty.empty()) return;
    std::vector<T> dist(N), row(D);
    T dmax = T(0);
    for (index_t i = 0; i < N; ++i) {
        const T* xr = X.row(i);
        const double* c = centers + labels[i] * D;
        for (index_t l = 0; l < D; ++l) {
            const T e = (xr[l] - shift[l]) - static_cast<T>(c[l]);
            row[l] = e * e;
        }
        dist[i] = numpy_sum<T>(row.data(), D);
        dmax = std::max(dmax, dist[i]);
    }
    if (dmax == T(0)) return;  // more clusters than distinct points
    const index_t n_empty = static_cast<index_t>(empty.size());
    std::vector<index_t> order(N);
    std::iota(order.begin(), order.end(), index_t(0));
    std::partial_sort(order.begin(), order.begin() + n_empty, order.end(),
                      [&](index_t a, index_t b) { return dist[a] > dist[b] || (dist[a] == dist[b] && a < b); });
    for (index_t e = 0; e < n_empty; ++e) {
        const index_t far = order[e], to = empty[e], from = labels[far];
        const double weight = w ? static_cast<double>(w[far]) : 1.0;
        const T* xr = X.row(far);
        for (index_t l = 0; l < D; ++l) {
            const double v = static_cast<double>(xr[l] - shift[l]) * weight;
            sums[from * D + l] -= v;
            sums[to * D + l] = v;
        }
        wsums[to] = weight;
        wsums[from] -= weight;
    }
}

// scikit-learn's KMeans(n_clusters=K, n_init=1).fit(X) from the uniforms u
// (k-means++ draws): labels and centres (K x D, not shifted). Returns whether
// every cluster kept a row.
template <class T>
GAUSSMIX_NO_CONTRACT bool kmeans_labels(const DataView<T>& X, const T* w, index_t K, const double* u,
                                        std::int64_t* labels, std::vector<double>& centers, int n_threads) {
    GAUSSMIX_NO_CONTRACT_BODY
    constexpr index_t max_iter = 300;
    constexpr double rel_tol = 1e-4;
    const index_t N = X.n, D = X.d;
    std::vector<T> mean(D), var(D);
    numpy_mean_var<T>(X, mean.data(), var.data());
    const T mean_var = static_cast<T>(static_cast<double>(numpy_sum<T>(var.data(), D)) / static_cast<double>(D));
    const double tol = static_cast<double>(mean_var * static_cast<T>(rel_tol));

    const index_t n_trials = 2 + static_cast<index_t>(std::log(static_cast<double>(K)));
    const double w_sum = X.weights ? numpy_sum<double>(X.weights, N) : static_cast<double>(N);
    const std::vector<index_t> seeds = kmeans_plusplus<T>(X, mean.data(), w_sum, K, n_trials, u, n_threads);
    centers.assign(K * D, 0.0);
    for (index_t j = 0; j < K; ++j) {
        const T* xr = X.row(seeds[j]);
        for (index_t l = 0; l < D; ++l) centers[j * D + l] = static_cast<double>(xr[l] - mean[l]);
    }
    std::fill(labels, labels + N, std::int64_t(-1));
    std::vector<double> sums(K * D), wsums(K), next(K * D), sq(K * D);
    bool strict = false;
    index_t n_iter = 0;
    while (n_iter < max_iter) {
        const LloydResult r = kmeans_lloyd<T>(X, mean.data(), w, centers.data(), K, labels, sums.data(),
                                              wsums.data(), max_iter - n_iter, tol, n_threads);
        n_iter += r.n_iter;
        if (r.stop != LloydStop::empty) {
            strict = r.stop == LloydStop::strict;
            break;
        }
        relocate_empty<T>(X, mean.data(), w, centers.data(), labels, K, sums.data(), wsums.data());
        // scikit-learn's _average_centers: an empty cluster takes the row of
        // the heaviest one as it stands at that moment
        const index_t heaviest = std::max_element(wsums.begin(), wsums.end()) - wsums.begin();
        next = sums;
        for (index_t j = 0; j < K; ++j) {
            if (wsums[j] > 0.0) {
                const double inv = 1.0 / wsums[j];
                for (index_t l = 0; l < D; ++l) next[j * D + l] *= inv;
            } else {
                for (index_t l = 0; l < D; ++l) next[j * D + l] = next[heaviest * D + l];
            }
        }
        for (index_t q = 0; q < K * D; ++q) {
            const double e = next[q] - centers[q];
            sq[q] = e * e;
        }
        const double shift_tot = numpy_sum<double>(sq.data(), K * D);
        centers = next;
        if (r.n_changed == 0) {
            strict = true;
            break;
        }
        if (shift_tot <= tol) break;
    }
    if (!strict) kmeans_assign<T>(X, mean.data(), w, centers.data(), K, labels, nullptr, nullptr, n_threads);
    for (index_t j = 0; j < K; ++j)
        for (index_t l = 0; l < D; ++l) centers[j * D + l] += static_cast<double>(mean[l]);
    std::vector<char> seen(K, 0);
    for (index_t i = 0; i < N; ++i) seen[labels[i]] = 1;
    return std::count(seen.begin(), seen.end(), char(1)) == K;
}

// numpy's resp = uniform.astype(T); resp /= resp.sum(axis=1)[:, None].
template <class T>
GAUSSMIX_NO_CONTRACT void uniform_resp(const double* u, index_t n, index_t K, std::vector<T>& resp) {
    GAUSSMIX_NO_CONTRACT_BODY
    resp.resize(n * K);
    for (index_t q = 0; q < n * K; ++q) resp[q] = static_cast<T>(u[q]);
    for (index_t i = 0; i < n; ++i) {
        T* r = resp.data() + i * K;
        const T s = numpy_sum<T>(r, K);
        for (index_t j = 0; j < K; ++j) r[j] /= s;
    }
}

// A start's hard partition: labels (-1: in no part) and each part's shift
// (the point its statistics are taken around).
struct StartPartition {
    std::vector<std::int64_t> labels;
    std::vector<double> shifts;
    bool fewer_clusters = false;  // k-means found fewer distinct clusters than K
};

// The partition of a k-means, k-means++ or random-rows start (uniforms u).
template <class T>
StartPartition start_partition(const DataView<T>& X, const T* w_t, index_t K, BatchInit init, const double* u,
                               int n_threads) {
    const index_t D = X.d, N = X.n;
    StartPartition part;
    if (init == BatchInit::kmeans) {
        part.labels.resize(N);
        part.fewer_clusters = !kmeans_labels<T>(X, w_t, K, u, part.labels.data(), part.shifts, n_threads);
        return part;
    }
    std::vector<index_t> seeds(K);
    if (init == BatchInit::plusplus) {
        const index_t n_trials = 2 + static_cast<index_t>(std::log(static_cast<double>(K)));
        const double w_sum = X.weights ? numpy_sum<double>(X.weights, N) : static_cast<double>(N);
        seeds = kmeans_plusplus<T>(X, nullptr, w_sum, K, n_trials, u, n_threads);
    } else {  // the K rows with the smallest keys u, smallest first
        std::vector<index_t> order(N);
        std::iota(order.begin(), order.end(), index_t(0));
        std::partial_sort(order.begin(), order.begin() + K, order.end(),
                          [&](index_t a, index_t b) { return u[a] < u[b] || (u[a] == u[b] && a < b); });
        std::copy(order.begin(), order.begin() + K, seeds.begin());
    }
    part.labels.assign(N, -1);
    part.shifts.resize(K * D);
    for (index_t j = 0; j < K; ++j) {
        part.labels[seeds[j]] = j;
        for (index_t l = 0; l < D; ++l) part.shifts[j * D + l] = static_cast<double>(X.row(seeds[j])[l]);
    }
    return part;
}

// The parameters that start EM (scikit-learn's _initialize): the M-step of
// the statistics of a partition, or (part == nullptr) of uniform
// responsibilities u.
template <class T>
MixtureParams start_params(const DataView<T>& X, CovType cov, index_t K, double reg_covar, const double* u,
                           const StartPartition* part, int n_threads) {
    SuffStats st;
    if (part) {
        stats_from_labels<T>(X, part->labels.data(), cov, K, part->shifts, st, n_threads);
    } else {
        std::vector<T> resp;
        uniform_resp<T>(u, X.n, K, resp);
        const std::vector<double> mean = weighted_mean<T>(X, n_threads);
        std::vector<double> shifts(K * X.d);
        for (index_t j = 0; j < K; ++j) std::copy(mean.begin(), mean.end(), shifts.begin() + j * X.d);
        stats_from_resp<T>(X, resp.data(), cov, K, shifts, st, n_threads);
    }
    MixtureParams p;
    m_step(st, reg_covar, std::numeric_limits<T>::epsilon(), true, p);
    return p;
}

// Start s of a group: the parameters its responsibilities give, then the
// given values.
template <class T>
MixtureParams group_start(const DataView<T>& X, const T* w_t, const BatchSpec& spec, const BatchInputs& in,
                          index_t g, index_t s, bool& fewer_clusters, int n_threads) {
    const index_t K = spec.k, D = X.d;
    const index_t slot = g * spec.n_init + s;
    const double* u = in.u ? in.u + in.u_offsets[slot] : nullptr;
    MixtureParams p;
    if (spec.init == BatchInit::random) {
        p = start_params<T>(X, spec.cov, K, spec.reg_covar, u, nullptr, n_threads);
    } else if (spec.init != BatchInit::given) {
        const StartPartition part = start_partition<T>(X, w_t, K, spec.init, u, n_threads);
        fewer_clusters = part.fewer_clusters || fewer_clusters;
        p = start_params<T>(X, spec.cov, K, spec.reg_covar, nullptr, &part, n_threads);
    } else {
        p = MixtureParams(spec.cov, K, D);
    }
    const std::size_t cs = p.prec_chol.size();
    if (in.weights) std::copy(in.weights + g * K, in.weights + (g + 1) * K, p.weights.begin());
    if (in.means) std::copy(in.means + g * K * D, in.means + (g + 1) * K * D, p.means.begin());
    if (in.prec_chol) {
        std::copy(in.prec_chol + g * cs, in.prec_chol + (g + 1) * cs, p.prec_chol.begin());
        std::copy(in.covariances + g * cs, in.covariances + (g + 1) * cs, p.covariances.begin());
    }
    return p;
}

template <class T>
bool rows_finite(const DataView<T>& X) {
    for (index_t i = 0; i < X.n; ++i) {
        const T* xr = X.row(i);
        T acc = T(0);
        for (index_t l = 0; l < X.d; ++l) acc += xr[l] * T(0);
        if (acc != T(0)) return false;  // NaN from an infinity or a NaN
    }
    return true;
}

// The checks GaussianMixture makes on a group's rows before it draws
// anything, in its order: non_finite, too_few_samples (fewer rows than two or
// than K), no_weight; ok when it passes.
template <class T>
GroupStatus group_status(const DataView<T>& X, index_t K) {
    if (!rows_finite<T>(X)) return GroupStatus::non_finite;
    if (X.n < std::max<index_t>(K, 2)) return GroupStatus::too_few_samples;
    if (X.weights && std::none_of(X.weights, X.weights + X.n, [](double w) { return w > 0.0; }))
        return GroupStatus::no_weight;
    return GroupStatus::ok;
}

// EM from each of spec.n_init starts (start(s) gives start s), the best
// kept by scikit-learn's rule (a higher lower bound, or the first), into out;
// an ill-defined covariance ends the fit with that status.
template <class T, class Start>
void best_of_starts(const DataView<T>& X, const BatchSpec& spec, Start&& start, GroupFit& out, int n_threads) {
    MaximumLikelihood policy{spec.reg_covar, std::numeric_limits<T>::epsilon()};
    try {
        double best_lb = -std::numeric_limits<double>::infinity();
        for (index_t s = 0; s < spec.n_init; ++s) {
            MixtureParams p = start(s);
            if (spec.max_iter == 0) {
                out.params = std::move(p);
                out.n_iter = 0;
                continue;
            }
            EMResult r = em_fit<T>(X, p, policy, spec.tol, spec.max_iter,
                                   -std::numeric_limits<double>::infinity(), n_threads);
            const double lb = r.lower_bounds.back();
            if (lb > best_lb || best_lb == -std::numeric_limits<double>::infinity()) {
                best_lb = lb;
                out.params = std::move(r.params);
                out.lower_bounds = std::move(r.lower_bounds);
                out.n_iter = r.n_iter;
                out.converged = r.converged;
            }
        }
        out.lower_bound = best_lb;
    } catch (const IllDefinedCovariance& e) {
        const bool fewer = out.fewer_clusters;
        out = GroupFit{};
        out.fewer_clusters = fewer;
        out.status = GroupStatus::ill_defined;
        out.component = e.component();
    }
}

// The whole fit of one group: n_init starts and EM from each, the best kept
// (scikit-learn's rule: a higher lower bound, or the first).
template <class T>
void fit_group(const DataView<T>& X, const BatchSpec& spec, const BatchInputs& in, index_t g, GroupFit& out,
               int n_threads) {
    out = GroupFit{};
    // checked here too whatever the caller says: k-means must never see such rows
    const GroupStatus pre =
        in.skip && in.skip[g] ? GroupStatus::too_few_samples : group_status<T>(X, spec.k);
    if (pre != GroupStatus::ok) {
        out.status = pre;
        return;
    }
    // the weights in the data's type, as k-means reads them
    std::vector<T> w_t(X.weights ? X.n : 0);
    for (index_t i = 0; i < static_cast<index_t>(w_t.size()); ++i) w_t[i] = static_cast<T>(X.weights[i]);
    best_of_starts<T>(
        X, spec, [&](index_t s) {
            return group_start<T>(X, X.weights ? w_t.data() : nullptr, spec, in, g, s, out.fewer_clusters,
                                  n_threads);
        },
        out, n_threads);
}

}  // namespace detail

// Per group, the checks made before a fit draws anything (group_status).
template <class T>
void check_groups(const DataView<T>& X, const std::int64_t* offsets, index_t n_groups, index_t K,
                  GroupStatus* status, int n_threads) {
    parallel_for(n_groups, threads_for(static_cast<double>(X.n * X.d), n_threads), [&](index_t g) {
        DataView<T> v = X;
        v.x = X.row(offsets[g]);
        v.n = offsets[g + 1] - offsets[g];
        v.weights = X.weights ? X.weights + offsets[g] : nullptr;
        status[g] = detail::group_status<T>(v, K);
    });
}

// Fits every group of X (rows of group g: [offsets[g], offsets[g + 1]),
// weights X.weights or none) into out (n_groups entries).
template <class T>
void fit_groups(const DataView<T>& X, const BatchSpec& spec, const BatchInputs& in, std::vector<GroupFit>& out,
                int n_threads) {
    const index_t G = in.n_groups;
    out.assign(G, GroupFit{});
    auto group_view = [&](index_t g) {
        DataView<T> v = X;
        v.x = X.row(in.offsets[g]);
        v.n = in.offsets[g + 1] - in.offsets[g];
        v.weights = X.weights ? X.weights + in.offsets[g] : nullptr;
        return v;
    };
    if (G >= n_threads) {
        parallel_for(G, n_threads, [&](index_t g) {
            detail::QuietPolls quiet;
            detail::fit_group<T>(group_view(g), spec, in, g, out[g], 1);
        });
    } else {
        detail::InterruptPoller poller;
        for (index_t g = 0; g < G; ++g) {
            check_interrupt(poller);
            detail::fit_group<T>(group_view(g), spec, in, g, out[g], n_threads);
        }
    }
}

// Per-sample outputs of each group's rows under its own mixture (params[g]),
// as e_step computes them for one mixture; groups whose params are empty
// (k == 0) are skipped.
template <class T>
void e_step_groups(const DataView<T>& X, const std::int64_t* offsets, const std::vector<MixtureParams>& params,
                   const EStepOutputs<T>& out, int n_threads) {
    const index_t G = static_cast<index_t>(params.size());
    auto run = [&](index_t g, int threads) {
        const MixtureParams& p = params[g];
        if (p.k == 0) return;
        DataView<T> v = X;
        v.x = X.row(offsets[g]);
        v.n = offsets[g + 1] - offsets[g];
        v.weights = nullptr;
        if (v.n == 0) return;
        EStepOutputs<T> o = out;
        if (o.log_prob_norm) o.log_prob_norm += offsets[g];
        if (o.resp) o.resp += offsets[g] * p.k;
        if (o.labels) o.labels += offsets[g];
        e_step<T>(v, p, o, nullptr, threads, nullptr, nullptr);
    };
    if (G >= n_threads) {
        parallel_for(G, n_threads, [&](index_t g) {
            detail::QuietPolls quiet;
            run(g, 1);
        });
    } else {
        for (index_t g = 0; g < G; ++g) run(g, n_threads);
    }
}

}  // namespace gaussmix
