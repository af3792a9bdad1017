// Bindings of the mixture engine: E-step, EM loop, initialisation pieces.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "binding.hpp"
#include "gaussmix/cholesky.hpp"
#include "gaussmix/data.hpp"
#include "gaussmix/em.hpp"
#include "gaussmix/estep.hpp"
#include "gaussmix/given_stats.hpp"
#include "gaussmix/kmeans.hpp"
#include "gaussmix/suffstats.hpp"

namespace gaussmix::binding {

namespace {

using opt_weights = std::optional<carray<double>>;

// The K constants c_k of the log-densities, or null for the default ones
// (mixture_log_constants).
const double* log_constants_of(const opt_weights& log_constants, index_t k) {
    if (!log_constants) return nullptr;
    require_shape(*log_constants, {k}, "log_constants");
    return log_constants->data();
}

template <class T>
double e_step_py(const carray<T>& X, const opt_weights& sample_weight, const std::string& covariance_type,
                 const carray<double>& weights, const carray<double>& means, const carray<double>& prec_chol,
                 std::optional<carray<T>> log_prob_norm, std::optional<carray<T>> resp,
                 std::optional<carray<std::int64_t>> labels, int n_threads, bool check_finite, bool skip_zero,
                 const opt_weights& log_constants) {
    const DataView<T> xv = data_view(X, sample_weight);
    const MixtureParams p = params_from_arrays(covariance_type, weights, means, prec_chol);
    if (p.d != xv.d)
        throw std::invalid_argument("X has " + std::to_string(xv.d) + " features, but the model has " +
                                    std::to_string(p.d));
    EStepOutputs<T> out;
    out.check_finite = check_finite;
    out.skip_zero = skip_zero;
    if (log_prob_norm) {
        require_shape(*log_prob_norm, {xv.n}, "log_prob_norm");
        out.log_prob_norm = log_prob_norm->mutable_data();
    }
    if (resp) {
        require_shape(*resp, {xv.n, p.k}, "resp");
        out.resp = resp->mutable_data();
    }
    if (labels) {
        require_shape(*labels, {xv.n}, "labels");
        out.labels = labels->mutable_data();
    }
    const double* consts = log_constants_of(log_constants, p.k);
    check_threads(n_threads);
    py::gil_scoped_release release;
    return e_step<T>(xv, p, out, nullptr, n_threads, nullptr, consts);
}

template <class T>
py::dict em_fit_py(const carray<T>& X, const opt_weights& sample_weight, const std::string& covariance_type,
                   const carray<double>& weights, const carray<double>& means, const carray<double>& prec_chol,
                   double tol, std::int64_t max_iter, double reg_covar, double prev_lower_bound, int n_threads,
                   bool check_finite) {
    const DataView<T> xv = data_view(X, sample_weight);
    const MixtureParams p = params_from_arrays(covariance_type, weights, means, prec_chol);
    if (p.d != xv.d) throw std::invalid_argument("means and X disagree on the number of features");
    if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
    check_threads(n_threads);
    EMResult r;
    {
        py::gil_scoped_release release;
        r = em_fit<T>(xv, p, tol, max_iter, reg_covar, prev_lower_bound, n_threads, check_finite);
    }
    py::dict d = params_to_dict(r.params);
    d["lower_bounds"] = r.lower_bounds;
    d["n_iter"] = r.n_iter;
    d["converged"] = r.converged;
    return d;
}

// The optional shift s of the k-means passes (see kmeans.hpp): D values.
template <class T>
const T* shift_ptr(const std::optional<carray<T>>& shift, index_t d) {
    if (!shift) return nullptr;
    require_shape(*shift, {d}, "shift");
    return shift->data();
}

template <class T>
py::tuple kmeans_column_stats_py(const carray<T>& X) {
    const DataView<T> xv = data_view(X, std::nullopt);
    if (xv.d < 2) throw std::invalid_argument("X must have at least two features (numpy sums one pairwise)");
    carray<T> mean(xv.d), var(xv.d);
    T* m = mean.mutable_data();
    T* v = var.mutable_data();
    {
        py::gil_scoped_release release;
        column_mean_var<T>(xv, m, v);
    }
    return py::make_tuple(mean, var);
}

template <class T>
py::array_t<std::int64_t> kmeans_plusplus_py(const carray<T>& X, const opt_weights& sample_weight,
                                             const std::optional<carray<T>>& shift, double weight_sum,
                                             std::int64_t n_clusters, std::int64_t n_local_trials,
                                             const carray<double>& draws, int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    const T* s = shift_ptr(shift, xv.d);
    if (n_clusters < 1 || n_clusters > xv.n)
        throw std::invalid_argument("n_clusters must be in [1, n_samples], got " + std::to_string(n_clusters));
    if (n_local_trials < 1) throw std::invalid_argument("n_local_trials must be >= 1");
    if (!(weight_sum > 0.0) || !std::isfinite(weight_sum))
        throw std::invalid_argument("weight_sum must be positive and finite");
    require_shape(draws, {1 + (n_clusters - 1) * n_local_trials}, "draws");
    check_threads(n_threads);
    std::vector<index_t> seeds;
    {
        py::gil_scoped_release release;
        seeds = kmeans_plusplus<T>(xv, s, weight_sum, n_clusters, n_local_trials, draws.data(), n_threads);
    }
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(seeds.size()));
    std::copy(seeds.begin(), seeds.end(), out.mutable_data());
    return out;
}

template <class T>
std::int64_t kmeans_choice_py(const carray<T>& weights, double weight_sum, double u) {
    if (weights.ndim() != 1 || weights.shape(0) < 1)
        throw std::invalid_argument("weights must be a non-empty 1-D array");
    if (!(weight_sum > 0.0)) throw std::invalid_argument("weight_sum must be positive");
    const T* w = weights.data();
    const index_t n = weights.shape(0);
    py::gil_scoped_release release;
    return choice_index<T>(n, w, static_cast<T>(weight_sum), u);
}

template <class T>
py::array_t<std::int64_t> kmeans_cumsum_search_py(const carray<T>& closest, const std::optional<carray<T>>& weights,
                                                  const carray<double>& values) {
    if (closest.ndim() != 1 || closest.shape(0) < 1)
        throw std::invalid_argument("closest must be a non-empty 1-D array");
    const index_t n = closest.shape(0);
    const T* w = nullptr;
    if (weights) {
        require_shape(*weights, {n}, "weights");
        w = weights->data();
    }
    if (values.ndim() != 1) throw std::invalid_argument("values must be a 1-D array");
    const index_t m = values.shape(0);
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(m));
    std::int64_t* o = out.mutable_data();
    const T* d = closest.data();
    const double* v = values.data();
    {
        py::gil_scoped_release release;
        cumsum_search<T>(n, d, w, v, m, o);
    }
    return out;
}

template <class T>
void kmeans_sq_dists_py(const carray<T>& X, const std::optional<carray<T>>& shift,
                        const carray<std::int64_t>& candidates, const std::optional<carray<T>>& closest,
                        carray<T>& out, int n_threads) {
    const DataView<T> xv = data_view(X, std::nullopt);
    const T* s = shift_ptr(shift, xv.d);
    if (candidates.ndim() != 1 || candidates.shape(0) < 1)
        throw std::invalid_argument("candidates must be a non-empty 1-D array");
    const index_t m = candidates.shape(0);
    const std::int64_t* cand = candidates.data();
    for (index_t t = 0; t < m; ++t)
        if (cand[t] < 0 || cand[t] >= xv.n) throw std::invalid_argument("candidates must be in [0, n_samples)");
    const T* cl = nullptr;
    if (closest) {
        require_shape(*closest, {xv.n}, "closest");
        cl = closest->data();
    }
    require_shape(out, {m, xv.n}, "out");
    T* o = out.mutable_data();
    if (cl && static_cast<const void*>(cl) == static_cast<const void*>(o))
        throw std::invalid_argument("closest and out must not overlap");
    check_threads(n_threads);
    py::gil_scoped_release release;
    kmeans_candidate_sq_dists<T>(xv, s, cand, m, cl, o, n_threads);
}

// What both Lloyd bindings take, checked: X - shift with its weights (null:
// unit), K centres of X's width and N labels.
template <class T>
struct LloydInputs {
    DataView<T> x;
    const T* shift;
    const T* weights;
    index_t k;
};

template <class T>
LloydInputs<T> lloyd_inputs(const carray<T>& X, const std::optional<carray<T>>& sample_weight,
                            const std::optional<carray<T>>& shift, const carray<double>& centers,
                            const carray<std::int64_t>& labels) {
    LloydInputs<T> in{data_view(X, std::nullopt), nullptr, nullptr, 0};
    in.shift = shift_ptr(shift, in.x.d);
    if (sample_weight) {
        require_shape(*sample_weight, {in.x.n}, "sample_weight");
        in.weights = sample_weight->data();
    }
    if (centers.ndim() != 2 || centers.shape(1) != in.x.d || centers.shape(0) < 1)
        throw std::invalid_argument("centers must have shape (n_clusters, " + std::to_string(in.x.d) + ")");
    in.k = centers.shape(0);
    require_shape(labels, {in.x.n}, "labels");
    return in;
}

template <class T>
std::int64_t kmeans_assign_py(const carray<T>& X, const std::optional<carray<T>>& sample_weight,
                              const std::optional<carray<T>>& shift, const carray<double>& centers,
                              carray<std::int64_t>& labels, std::optional<carray<double>> sums,
                              std::optional<carray<double>> weight_sums, int n_threads) {
    const LloydInputs<T> in = lloyd_inputs(X, sample_weight, shift, centers, labels);
    const DataView<T>& xv = in.x;
    const index_t k = in.k;
    if (sums.has_value() != weight_sums.has_value())
        throw std::invalid_argument("give both sums and weight_sums, or neither");
    double* su = nullptr;
    double* ws = nullptr;
    if (sums) {
        require_shape(*sums, {k, xv.d}, "sums");
        require_shape(*weight_sums, {k}, "weight_sums");
        su = sums->mutable_data();
        ws = weight_sums->mutable_data();
    }
    std::int64_t* lab = labels.mutable_data();
    check_threads(n_threads);
    py::gil_scoped_release release;
    return kmeans_assign<T>(xv, in.shift, in.weights, centers.data(), k, lab, su, ws, n_threads);
}

// Whether [a, a + na) and [b, b + nb) share memory.
template <class A, class B>
bool overlap(const A* a, py::ssize_t na, const B* b, py::ssize_t nb) {
    const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
    return pa < pb + sizeof(B) * static_cast<std::size_t>(nb) && pb < pa + sizeof(A) * static_cast<std::size_t>(na);
}

template <class T>
py::tuple kmeans_lloyd_py(const carray<T>& X, const std::optional<carray<T>>& sample_weight,
                          const std::optional<carray<T>>& shift, carray<double>& centers, carray<std::int64_t>& labels,
                          carray<double>& sums, carray<double>& weight_sums, std::int64_t max_iter, double tol,
                          int n_threads) {
    const LloydInputs<T> in = lloyd_inputs(X, sample_weight, shift, centers, labels);
    const DataView<T>& xv = in.x;
    const index_t k = in.k;
    require_shape(sums, {k, xv.d}, "sums");
    require_shape(weight_sums, {k}, "weight_sums");
    if (max_iter < 1) throw std::invalid_argument("max_iter must be >= 1, got " + std::to_string(max_iter));
    double* c = centers.mutable_data();
    std::int64_t* lab = labels.mutable_data();
    double* su = sums.mutable_data();
    double* ws = weight_sums.mutable_data();
    const py::ssize_t kd = k * xv.d;
    if (overlap(c, kd, su, kd) || overlap(c, kd, ws, k) || overlap(su, kd, ws, k) ||
        overlap(lab, xv.n, c, kd) || overlap(lab, xv.n, su, kd) || overlap(lab, xv.n, ws, k))
        throw std::invalid_argument("centers, labels, sums and weight_sums must not overlap");
    check_threads(n_threads);
    LloydResult r;
    {
        py::gil_scoped_release release;
        r = kmeans_lloyd<T>(xv, in.shift, in.weights, c, k, lab, su, ws, max_iter, tol, n_threads);
    }
    return py::make_tuple(r.n_iter, static_cast<int>(r.stop), r.n_changed);
}

// Statistics of a hard assignment (label -1: unassigned) around the given
// shifts: what an initialisation's first M-step starts from.
template <class T>
SuffStats stats_from_labels_py(const carray<T>& X, const opt_weights& sample_weight,
                              const carray<std::int64_t>& labels, const carray<double>& shifts,
                              const std::string& covariance_type, int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    require_shape(labels, {xv.n}, "labels");
    if (shifts.ndim() != 2 || shifts.shape(1) != xv.d || shifts.shape(0) < 1)
        throw std::invalid_argument("shifts must have shape (n_components, " + std::to_string(xv.d) + ")");
    const index_t k = shifts.shape(0);
    const std::int64_t* lab = labels.data();
    for (index_t i = 0; i < xv.n; ++i)
        if (lab[i] < -1 || lab[i] >= k)
            throw std::invalid_argument("labels must be in [-1, n_components)");
    const CovType c = cov_type_from_string(covariance_type);
    std::vector<double> sh(shifts.data(), shifts.data() + k * xv.d);
    check_threads(n_threads);
    SuffStats st;
    {
        py::gil_scoped_release release;
        stats_from_labels<T>(xv, lab, c, k, sh, st, n_threads);
    }
    return st;
}

// Statistics of dense responsibilities around the weighted mean of X.
template <class T>
SuffStats stats_from_resp_py(const carray<T>& X, const opt_weights& sample_weight, const carray<T>& resp,
                            const std::string& covariance_type, int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    if (resp.ndim() != 2 || resp.shape(0) != xv.n || resp.shape(1) < 1)
        throw std::invalid_argument("resp must have shape (n_samples, n_components)");
    const index_t k = resp.shape(1);
    const CovType c = cov_type_from_string(covariance_type);
    check_threads(n_threads);
    SuffStats st;
    {
        py::gil_scoped_release release;
        const std::vector<double> mean = weighted_mean<T>(xv, n_threads);
        std::vector<double> sh(k * xv.d);
        for (index_t j = 0; j < k; ++j) std::copy(mean.begin(), mean.end(), sh.begin() + j * xv.d);
        stats_from_resp<T>(xv, resp.data(), c, k, sh, st, n_threads);
    }
    return st;
}

// Sufficient statistics of one E-step, around the current means, as arrays
// that add up over disjoint blocks of data (chunked and distributed EM).
template <class T>
SuffStats em_stats_py(const carray<T>& X, const opt_weights& sample_weight, const std::string& covariance_type,
                     const carray<double>& weights, const carray<double>& means, const carray<double>& prec_chol,
                     int n_threads, bool skip_zero, const opt_weights& log_constants) {
    const DataView<T> xv = data_view(X, sample_weight);
    const MixtureParams p = params_from_arrays(covariance_type, weights, means, prec_chol);
    if (p.d != xv.d)
        throw std::invalid_argument("X has " + std::to_string(xv.d) + " features, but the model has " +
                                    std::to_string(p.d));
    const double* consts = log_constants_of(log_constants, p.k);
    check_threads(n_threads);
    SuffStats st;
    {
        py::gil_scoped_release release;
        EStepOutputs<T> out;
        out.skip_zero = skip_zero;
        e_step<T>(xv, p, out, &st, n_threads, nullptr, consts);
    }
    return st;
}

template <class T>
void register_typed(py::module_& m) {
    m.def("e_step", &e_step_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("covariance_type"),
          py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"), py::kw_only(),
          py::arg("log_prob_norm").noconvert() = py::none(), py::arg("resp").noconvert() = py::none(),
          py::arg("labels").noconvert() = py::none(), py::arg("n_threads") = 1, py::arg("check_finite") = false,
          py::arg("skip_zero") = true, py::arg("log_constants") = py::none(),
          "E-step: fills the given per-sample outputs and returns the weighted mean log-likelihood. "
          "check_finite: raise NonFiniteInput if X holds an infinity or a NaN. skip_zero=False: compute "
          "every exponential and statistic, also where the responsibilities are all zero (the same "
          "results for finite X, weights and differences x - mean; for tests). log_constants: the K "
          "constants c_k of the log-densities l_ik = c_k - 0.5 ||(x_i - mu_k)^T U_k||^2 (None: "
          "log weights_k + log det U_k - 0.5 D log 2pi, those of maximum likelihood).");
    m.def("em_fit", &em_fit_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("covariance_type"),
          py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"), py::kw_only(), py::arg("tol"),
          py::arg("max_iter"), py::arg("reg_covar"), py::arg("prev_lower_bound"), py::arg("n_threads") = 1,
          py::arg("check_finite") = false,
          "EM iterations from the given parameters, as scikit-learn iterates. check_finite: the first "
          "E-step raises NonFiniteInput if X holds an infinity or a NaN.");
    m.def("kmeans_column_stats", &kmeans_column_stats_py<T>, py::arg("X").noconvert(),
          "numpy's (X.mean(axis=0), X.var(axis=0)) to the bit, for X with at least two columns.");
    m.def("kmeans_plusplus", &kmeans_plusplus_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("shift").noconvert(), py::arg("weight_sum"), py::arg("n_clusters"), py::arg("n_local_trials"),
          py::arg("draws"), py::arg("n_threads") = 1,
          "Indices of greedy k-means++ seeds from the uniform draws (1 + (n_clusters - 1) * "
          "n_local_trials of them), as scikit-learn picks them with those draws; X shifted by `shift`.");
    m.def("kmeans_choice", &kmeans_choice_py<T>, py::arg("weights").noconvert(), py::arg("weight_sum"),
          py::arg("u"),
          "numpy's RandomState.choice(n, p=weights / weight_sum) for its uniform draw u.");
    m.def("kmeans_cumsum_search", &kmeans_cumsum_search_py<T>, py::arg("closest").noconvert(),
          py::arg("weights").noconvert(), py::arg("values"),
          "numpy's searchsorted(cumsum(weights * closest), values), clipped to n - 1, in closest's type.");
    m.def("kmeans_sq_dists", &kmeans_sq_dists_py<T>, py::arg("X").noconvert(), py::arg("shift").noconvert(),
          py::arg("candidates").noconvert(), py::arg("closest").noconvert(), py::arg("out").noconvert(),
          py::arg("n_threads") = 1,
          "k-means++ distances: out[t, i] = min(closest[i], ||x_i - x_c||^2) for the candidate rows c, "
          "x shifted by `shift` (None: not shifted; closest None: no minimum).");
    m.def("kmeans_assign", &kmeans_assign_py<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("shift").noconvert(), py::arg("centers"), py::arg("labels").noconvert(),
          py::arg("sums").noconvert() = py::none(), py::arg("weight_sums").noconvert() = py::none(),
          py::arg("n_threads") = 1,
          "Lloyd assignment of X - shift to the nearest centre, in place in labels; returns how many "
          "labels changed. With sums and weight_sums: the per-cluster sums of w (x - shift) and of w "
          "(sample_weight in X's dtype, None: unit weights).");
    m.def("kmeans_lloyd", &kmeans_lloyd_py<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("shift").noconvert(), py::arg("centers").noconvert(), py::arg("labels").noconvert(),
          py::arg("sums").noconvert(), py::arg("weight_sums").noconvert(), py::arg("max_iter"), py::arg("tol"),
          py::arg("n_threads") = 1,
          "Lloyd iterations of X - shift from centers (in place, with labels), as scikit-learn's KMeans "
          "iterates, at most max_iter. Returns (n_iter, stop, n_changed): stop 0 after max_iter "
          "iterations, 1 when no label changed, 2 when the centres moved by at most tol, 3 when the last "
          "assignment left a cluster with zero weight (centers not updated; sums and weight_sums hold "
          "that assignment's sums for the caller to relocate it); n_changed: labels the last "
          "assignment changed.");
    m.def("stats_from_labels", &stats_from_labels_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("labels").noconvert(), py::arg("shifts"), py::arg("covariance_type"), py::arg("n_threads") = 1,
          "Statistics (SuffStats) of a hard assignment (label -1: unassigned) around shifts.");
    m.def("stats_from_resp", &stats_from_resp_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("resp").noconvert(), py::arg("covariance_type"), py::arg("n_threads") = 1,
          "Statistics (SuffStats) of dense responsibilities around X's weighted mean.");
    m.def("em_stats", &em_stats_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("covariance_type"), py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"),
          py::kw_only(), py::arg("n_threads") = 1, py::arg("skip_zero") = true,
          py::arg("log_constants") = py::none(),
          "One E-step's sufficient statistics (SuffStats) around the means (skip_zero, log_constants: as "
          "for e_step).");
}

// Initial precisions -> (precisions_cholesky, covariances), or None when
// they are not clearly valid (precision_init_factor); the caller then runs
// scikit-learn's checks, which decide and word the error.
py::object precisions_init_factor_py(const carray<double>& precisions, const std::string& covariance_type) {
    const CovType c = cov_type_from_string(covariance_type);
    const bool matrices = c == CovType::full || c == CovType::tied;
    const py::ssize_t want_ndim = c == CovType::full ? 3 : c == CovType::spherical ? 1 : 2;
    if (precisions.ndim() != want_ndim) throw std::invalid_argument("precisions has the wrong number of dimensions");
    std::vector<py::ssize_t> shape(precisions.shape(), precisions.shape() + precisions.ndim());
    py::array_t<double> chol(shape), cov(shape);
    const double* p = precisions.data();
    double* u = chol.mutable_data();
    double* cv = cov.mutable_data();
    const index_t d = precisions.shape(want_ndim - 1);
    const index_t n_mat = c == CovType::full ? precisions.shape(0) : 1;
    if (matrices && precisions.shape(want_ndim - 2) != d) throw std::invalid_argument("precisions must be square");
    bool ok = true;
    {
        py::gil_scoped_release release;
        if (matrices) {
            for (index_t j = 0; j < n_mat && ok; ++j)
                ok = precision_init_factor(p + j * d * d, u + j * d * d, cv + j * d * d, d);
        } else {
            const index_t n = precisions.size();
            for (index_t i = 0; i < n && ok; ++i) {
                ok = p[i] > 0.0 && std::isfinite(p[i]);
                u[i] = std::sqrt(p[i]);
                cv[i] = 1.0 / p[i];
            }
        }
    }
    if (!ok) return py::none();
    return py::make_tuple(chol, cov);
}

}  // namespace

void register_gmm(py::module_& m) {
    register_typed<double>(m);
    register_typed<float>(m);
    m.def("precisions_init_factor", &precisions_init_factor_py, py::arg("precisions").noconvert(),
          py::arg("covariance_type"),
          "(precisions_cholesky, covariances) of initial precisions that are clearly valid, else None.");
}

}  // namespace gaussmix::binding
