// grid.hpp -- model selection: one mixture per candidate (number of
// components K, covariance type) on the same rows, all in one call, with what
// the information criteria need of each.
//
// Every candidate's fit is the one GaussianMixture makes alone (batch.hpp's
// starts, em.hpp's loop, the best of n_init starts). What does not depend on
// the covariance type is done once and shared: the starting partition of
// each (K, start) -- scikit-learn's k-means, k-means++ seeds, random rows, or
// a partition the caller gives (a cut of one hierarchical tree) -- serves the
// candidates of every covariance type with that K.
//
// After its fit, each candidate's rows are scored once more with the final
// parameters (as scikit-learn's bic(X) and aic(X) do):
//     log_likelihood = sum_i w_i log p(x_i)
//     map_log_resp   = sum_i w_i log max_k r_ik   (<= 0; ICL's entropy term,
//                      Biernacki, Celeux & Govaert 2000, as mclust takes it)
//
// Threads: with at least as many jobs (partitions to find, candidates to
// fit) as threads, each job runs on one thread, the costliest first;
// otherwise the jobs run in turn, each using every thread. No result depends
// on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "batch.hpp"

namespace gaussmix {

struct GridCandidate {
    index_t k_index = 0;  // into GridInputs::ks
    CovType cov = CovType::full;
};

struct GridInputs {
    std::vector<index_t> ks;  // the distinct numbers of components
    // Start s of K = ks[q] is slot q * n_init + s. Its uniforms (k-means,
    // k-means++, random, rows: as in BatchInputs) are u[u_offsets[slot] ..).
    const double* u = nullptr;
    const std::int64_t* u_offsets = nullptr;
    // init == partition: the caller's partitions, n labels a slot from
    // labels[slot * n] (-1: in no part), and K x D shifts from
    // shifts[shift_offsets[slot]].
    const std::int64_t* labels = nullptr;
    const double* shifts = nullptr;
    const std::int64_t* shift_offsets = nullptr;
};

struct CandidateScore {
    double log_likelihood = std::numeric_limits<double>::quiet_NaN();
    double map_log_resp = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

// Runs job(j, threads) for j in order[0 .. n): one job a thread when there
// are enough of them, else in turn with every thread.
template <class Job>
void run_jobs(const std::vector<index_t>& order, int n_threads, Job&& job) {
    const index_t n = static_cast<index_t>(order.size());
    if (n >= n_threads && n_threads > 1) {
        parallel_for(n, n_threads, [&](index_t i) {
            QuietPolls quiet;
            job(order[i], 1);
        });
    } else {
        InterruptPoller poller;
        for (index_t i = 0; i < n; ++i) {
            check_interrupt(poller);
            job(order[i], n_threads);
        }
    }
}

// The indices 0 .. n - 1, the largest cost first (ties in index order).
inline std::vector<index_t> costliest_first(const std::vector<double>& cost) {
    std::vector<index_t> order(cost.size());
    std::iota(order.begin(), order.end(), index_t(0));
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return cost[a] > cost[b]; });
    return order;
}

// log_likelihood and map_log_resp of a fitted mixture on X, a block of rows
// at a time (no n x K array).
template <class T>
CandidateScore score_fit(const DataView<T>& X, const MixtureParams& p, int n_threads) {
    constexpr index_t block = 16384;
    const index_t K = p.k;
    std::vector<T> lpn(std::min(block, X.n)), resp(std::min(block, X.n) * K);
    double ll = 0.0, map = 0.0;
    for (index_t r0 = 0; r0 < X.n; r0 += block) {
        DataView<T> v = X;
        v.x = X.row(r0);
        v.n = std::min(block, X.n - r0);
        v.weights = X.weights ? X.weights + r0 : nullptr;
        EStepOutputs<T> out;
        out.log_prob_norm = lpn.data();
        out.resp = resp.data();
        e_step<T>(v, p, out, nullptr, n_threads);
        for (index_t i = 0; i < v.n; ++i) {
            const double w = v.weights ? v.weights[i] : 1.0;
            const T* r = resp.data() + i * K;
            const T r_max = *std::max_element(r, r + K);
            ll += w * static_cast<double>(lpn[i]);
            map += w * std::log(static_cast<double>(r_max));
        }
    }
    return {ll, map};
}

}  // namespace detail

// Fits every candidate on all of X (weights X.weights or none). spec gives
// tol, reg_covar, max_iter, n_init and init (kmeans, plusplus, random, rows,
// or partition for in.labels); its k and cov are the candidates'. A
// candidate with more components than rows gets too_few_samples.
template <class T>
void fit_grid(const DataView<T>& X, const BatchSpec& spec, const std::vector<GridCandidate>& candidates,
              const GridInputs& in, std::vector<GroupFit>& fits, std::vector<CandidateScore>& scores,
              int n_threads) {
    const index_t C = static_cast<index_t>(candidates.size());
    const index_t n_k = static_cast<index_t>(in.ks.size()), S = spec.n_init, N = X.n, D = X.d;
    fits.assign(C, GroupFit{});
    scores.assign(C, CandidateScore{});
    const GroupStatus pre = detail::group_status<T>(X, 1);
    std::vector<char> k_ok(n_k);
    for (index_t q = 0; q < n_k; ++q) k_ok[q] = pre == GroupStatus::ok && in.ks[q] <= N;

    // the starting partitions of every (K, start), shared across covariance types
    std::vector<detail::StartPartition> parts(n_k * S);
    if (spec.init == BatchInit::partition) {
        for (index_t slot = 0; slot < n_k * S; ++slot) {
            if (!k_ok[slot / S]) continue;
            const index_t K = in.ks[slot / S];
            const std::int64_t* lab = in.labels + slot * N;
            parts[slot].labels.assign(lab, lab + N);
            const double* sh = in.shifts + in.shift_offsets[slot];
            parts[slot].shifts.assign(sh, sh + K * D);
        }
    } else if (spec.init != BatchInit::random) {
        std::vector<T> w_t(X.weights ? N : 0);
        for (index_t i = 0; i < static_cast<index_t>(w_t.size()); ++i) w_t[i] = static_cast<T>(X.weights[i]);
        std::vector<double> cost(n_k * S);
        std::vector<index_t> jobs;
        for (index_t slot = 0; slot < n_k * S; ++slot) cost[slot] = k_ok[slot / S] ? in.ks[slot / S] : -1.0;
        for (index_t slot : detail::costliest_first(cost))
            if (cost[slot] >= 0.0) jobs.push_back(slot);
        detail::run_jobs(jobs, n_threads, [&](index_t slot, int threads) {
            parts[slot] = detail::start_partition<T>(X, X.weights ? w_t.data() : nullptr, in.ks[slot / S],
                                                     spec.init, in.u + in.u_offsets[slot], threads);
        });
    }

    // the candidates' fits, then their scores
    std::vector<double> cost(C);
    for (index_t c = 0; c < C; ++c) {
        const GridCandidate& g = candidates[c];
        const bool matrix = g.cov == CovType::full || g.cov == CovType::tied;
        cost[c] = k_ok[g.k_index] ? static_cast<double>(in.ks[g.k_index]) * (matrix ? D * D + D : 2 * D) : -1.0;
        if (!k_ok[g.k_index])
            fits[c].status = pre != GroupStatus::ok ? pre : GroupStatus::too_few_samples;
    }
    std::vector<index_t> jobs;
    for (index_t c : detail::costliest_first(cost))
        if (cost[c] >= 0.0) jobs.push_back(c);
    detail::run_jobs(jobs, n_threads, [&](index_t c, int threads) {
        const GridCandidate& g = candidates[c];
        BatchSpec cs = spec;
        cs.k = in.ks[g.k_index];
        cs.cov = g.cov;
        GroupFit& out = fits[c];
        detail::best_of_starts<T>(
            X, cs, [&](index_t s) {
                const index_t slot = g.k_index * S + s;
                if (spec.init == BatchInit::random)
                    return detail::start_params<T>(X, cs.cov, cs.k, cs.reg_covar, in.u + in.u_offsets[slot],
                                                   nullptr, threads);
                out.fewer_clusters = out.fewer_clusters || parts[slot].fewer_clusters;
                return detail::start_params<T>(X, cs.cov, cs.k, cs.reg_covar, nullptr, &parts[slot], threads);
            },
            out, threads);
        if (out.status == GroupStatus::ok) scores[c] = detail::score_fit<T>(X, out.params, threads);
    });
}

}  // namespace gaussmix
