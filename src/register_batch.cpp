// Bindings of the batched fits: one mixture per group of rows (batch.hpp),
// and model selection: many candidates on the same rows (grid.hpp) with the
// hierarchical trees whose cuts start them (hierarchical.hpp). One
// translation unit, so that the engine's passes are instantiated once.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "binding.hpp"
#include "gaussmix/batch.hpp"
#include "gaussmix/grid.hpp"
#include "gaussmix/hierarchical.hpp"

namespace gaussmix::binding {

namespace {

using opt_doubles = std::optional<carray<double>>;
using opt_ints = std::optional<carray<std::int64_t>>;

// offsets: G + 1 non-decreasing row offsets from 0 to n.
index_t check_offsets(const carray<std::int64_t>& offsets, index_t n) {
    if (offsets.ndim() != 1 || offsets.shape(0) < 1)
        throw std::invalid_argument("offsets must be a 1-D array of n_groups + 1 row offsets");
    const std::int64_t* o = offsets.data();
    const index_t G = offsets.shape(0) - 1;
    if (o[0] != 0 || o[G] != n) throw std::invalid_argument("offsets must run from 0 to the number of rows");
    for (index_t g = 0; g < G; ++g)
        if (o[g + 1] < o[g]) throw std::invalid_argument("offsets must be non-decreasing");
    return G;
}

// The stacked per-group shape of a covariance-shaped array.
std::vector<py::ssize_t> stacked(index_t G, std::vector<py::ssize_t> shape) {
    shape.insert(shape.begin(), G);
    return shape;
}

const double* optional_stack(const opt_doubles& a, std::vector<py::ssize_t> shape, const char* name) {
    if (!a) return nullptr;
    require_shape(*a, shape, name);
    return a->data();
}

template <class T>
py::dict fit_groups_py(const carray<T>& X, const opt_doubles& sample_weight, const carray<std::int64_t>& offsets,
                       const std::string& covariance_type, std::int64_t n_components, double tol, double reg_covar,
                       std::int64_t max_iter, std::int64_t n_init, int init, const opt_doubles& draws,
                       const opt_ints& draw_offsets, const opt_doubles& weights_init,
                       const opt_doubles& means_init, const opt_doubles& prec_chol_init,
                       const opt_doubles& covariances_init, const std::optional<carray<bool>>& skip,
                       int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    const index_t G = check_offsets(offsets, xv.n);
    const index_t K = n_components, D = xv.d;
    if (K < 1) throw std::invalid_argument("n_components must be >= 1");
    if (n_init < 1) throw std::invalid_argument("n_init must be >= 1");
    if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
    if (init < 0 || init > static_cast<int>(BatchInit::given)) throw std::invalid_argument("unknown init");
    check_threads(n_threads);
    if (xv.weights)
        for (index_t i = 0; i < xv.n; ++i)
            if (!(xv.weights[i] >= 0.0) || !std::isfinite(xv.weights[i]))
                throw std::invalid_argument("sample_weight must be finite and non-negative");
    BatchSpec spec;
    spec.cov = cov_type_from_string(covariance_type);
    spec.k = K;
    spec.tol = tol;
    spec.reg_covar = reg_covar;
    spec.max_iter = max_iter;
    spec.n_init = n_init;
    spec.init = static_cast<BatchInit>(init);

    BatchInputs in;
    in.offsets = offsets.data();
    in.n_groups = G;
    if (skip) {
        require_shape(*skip, {G}, "skip");
        in.skip = skip->data();
    }
    const bool needs_u = spec.init != BatchInit::given;
    if (needs_u) {
        if (!draws || !draw_offsets) throw std::invalid_argument("this init needs draws and draw_offsets");
        require_shape(*draw_offsets, {G * n_init + 1}, "draw_offsets");
        const std::int64_t* uo = draw_offsets->data();
        const index_t n_trials = 2 + static_cast<index_t>(std::log(static_cast<double>(K)));
        for (index_t g = 0; g < G; ++g)
            for (index_t s = 0; s < n_init; ++s) {
                const index_t slot = g * n_init + s;
                const index_t n_g = in.offsets[g + 1] - in.offsets[g];
                const bool skipped = skip && skip->data()[g];
                const index_t need = skipped ? 0
                                     : spec.init == BatchInit::random ? n_g * K
                                     : spec.init == BatchInit::rows ? n_g
                                                                    : 1 + (K - 1) * n_trials;
                if (uo[slot] < 0 || uo[slot + 1] - uo[slot] != need)
                    throw std::invalid_argument("draw_offsets do not give each start its draws");
            }
        if (draws->ndim() != 1 || draws->shape(0) < uo[G * n_init])
            throw std::invalid_argument("draws must be 1-D and hold every start's draws");
        for (index_t q = 0; q < uo[G * n_init]; ++q)
            if (!(draws->data()[q] >= 0.0 && draws->data()[q] < 1.0))
                throw std::invalid_argument("draws must be uniform numbers in [0, 1)");
        in.u = draws->data();
        in.u_offsets = uo;
    }
    const CovType c = spec.cov;
    in.weights = optional_stack(weights_init, {G, K}, "weights_init");
    in.means = optional_stack(means_init, {G, K, D}, "means_init");
    in.prec_chol = optional_stack(prec_chol_init, stacked(G, prec_shape(c, K, D)), "precisions_cholesky_init");
    in.covariances = optional_stack(covariances_init, stacked(G, prec_shape(c, K, D)), "covariances_init");
    if ((in.prec_chol == nullptr) != (in.covariances == nullptr))
        throw std::invalid_argument("precisions_cholesky_init and covariances_init come together");
    if (spec.init == BatchInit::given && !(in.weights && in.means && in.prec_chol))
        throw std::invalid_argument("init 'given' needs every starting value");

    std::vector<GroupFit> fits;
    {
        py::gil_scoped_release release;
        fit_groups<T>(xv, spec, in, fits, n_threads);
    }

    const std::size_t cs = cov_size(c, K, D);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    py::array_t<double> w(std::vector<py::ssize_t>{G, K}), mu(std::vector<py::ssize_t>{G, K, D}),
        cov(stacked(G, prec_shape(c, K, D))), pc(stacked(G, prec_shape(c, K, D))), lb(G);
    py::array_t<std::int64_t> n_iter(G), status(G), component(G);
    py::array_t<bool> converged(G), fewer(G);
    index_t total_iter = 0;
    for (const GroupFit& f : fits) total_iter += static_cast<index_t>(f.lower_bounds.size());
    py::array_t<double> lbs(total_iter);
    double* lbs_out = lbs.mutable_data();
    for (index_t g = 0; g < G; ++g) {
        const GroupFit& f = fits[g];
        const bool ok = f.status == GroupStatus::ok;
        auto put = [&](double* dst, const std::vector<double>& src, std::size_t n) {
            if (ok) std::copy(src.begin(), src.begin() + n, dst);
            else std::fill(dst, dst + n, nan);
        };
        put(w.mutable_data() + g * K, f.params.weights, K);
        put(mu.mutable_data() + g * K * D, f.params.means, K * D);
        put(cov.mutable_data() + g * cs, f.params.covariances, cs);
        put(pc.mutable_data() + g * cs, f.params.prec_chol, cs);
        lb.mutable_data()[g] = ok ? f.lower_bound : nan;
        n_iter.mutable_data()[g] = f.n_iter;
        status.mutable_data()[g] = static_cast<std::int64_t>(f.status);
        component.mutable_data()[g] = f.component;
        converged.mutable_data()[g] = f.converged;
        fewer.mutable_data()[g] = f.fewer_clusters;
        lbs_out = std::copy(f.lower_bounds.begin(), f.lower_bounds.end(), lbs_out);
    }
    py::dict d;
    d["weights"] = w;
    d["means"] = mu;
    d["covariances"] = cov;
    d["precisions_cholesky"] = pc;
    d["lower_bound"] = lb;
    d["lower_bounds"] = lbs;
    d["n_iter"] = n_iter;
    d["converged"] = converged;
    d["status"] = status;
    d["component"] = component;
    d["fewer_clusters"] = fewer;
    return d;
}

template <class T>
void e_step_groups_py(const carray<T>& X, const carray<std::int64_t>& offsets, const std::string& covariance_type,
                      const carray<double>& weights, const carray<double>& means, const carray<double>& prec_chol,
                      const carray<bool>& fitted, std::optional<carray<T>> log_prob_norm,
                      std::optional<carray<T>> resp, std::optional<carray<std::int64_t>> labels, int n_threads) {
    const DataView<T> xv = data_view(X, std::nullopt);
    const index_t G = check_offsets(offsets, xv.n);
    if (means.ndim() != 3 || means.shape(0) != G || means.shape(2) != xv.d)
        throw std::invalid_argument("means must have shape (n_groups, n_components, n_features)");
    const index_t K = means.shape(1), D = xv.d;
    const CovType c = cov_type_from_string(covariance_type);
    require_shape(weights, {G, K}, "weights");
    require_shape(prec_chol, stacked(G, prec_shape(c, K, D)), "precisions_cholesky");
    require_shape(fitted, {G}, "fitted");
    check_threads(n_threads);
    const std::size_t cs = cov_size(c, K, D);
    std::vector<MixtureParams> params(G);
    for (index_t g = 0; g < G; ++g) {
        if (!fitted.data()[g]) continue;
        MixtureParams p(c, K, D);
        std::copy(weights.data() + g * K, weights.data() + (g + 1) * K, p.weights.begin());
        std::copy(means.data() + g * K * D, means.data() + (g + 1) * K * D, p.means.begin());
        std::copy(prec_chol.data() + g * cs, prec_chol.data() + (g + 1) * cs, p.prec_chol.begin());
        params[g] = std::move(p);
    }
    EStepOutputs<T> out;
    if (log_prob_norm) {
        require_shape(*log_prob_norm, {xv.n}, "log_prob_norm");
        out.log_prob_norm = log_prob_norm->mutable_data();
    }
    if (resp) {
        require_shape(*resp, {xv.n, K}, "resp");
        out.resp = resp->mutable_data();
    }
    if (labels) {
        require_shape(*labels, {xv.n}, "labels");
        out.labels = labels->mutable_data();
    }
    py::gil_scoped_release release;
    e_step_groups<T>(xv, offsets.data(), params, out, n_threads);
}

template <class T>
py::array_t<std::int64_t> check_groups_py(const carray<T>& X, const opt_doubles& sample_weight,
                                          const carray<std::int64_t>& offsets, std::int64_t n_components,
                                          int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    const index_t G = check_offsets(offsets, xv.n);
    check_threads(n_threads);
    std::vector<GroupStatus> st(G);
    {
        py::gil_scoped_release release;
        check_groups<T>(xv, offsets.data(), G, n_components, st.data(), n_threads);
    }
    py::array_t<std::int64_t> out(G);
    for (index_t g = 0; g < G; ++g) out.mutable_data()[g] = static_cast<std::int64_t>(st[g]);
    return out;
}

// The uniforms a start of K components on n rows takes (batch.hpp).
index_t draws_needed(BatchInit init, index_t K, index_t n) {
    switch (init) {
        case BatchInit::random: return n * K;
        case BatchInit::rows: return n;
        default: return 1 + (K - 1) * (2 + static_cast<index_t>(std::log(static_cast<double>(K))));
    }
}

template <class T>
py::list fit_grid_py(const carray<T>& X, const opt_doubles& sample_weight, const carray<std::int64_t>& ks,
                     const carray<std::int64_t>& k_index, const std::vector<std::string>& covariance_types,
                     double tol, double reg_covar, std::int64_t max_iter, std::int64_t n_init, int init,
                     const opt_doubles& draws, const opt_ints& draw_offsets, const opt_ints& labels,
                     const opt_doubles& shifts, const opt_ints& shift_offsets, int n_threads) {
    const DataView<T> xv = data_view(X, sample_weight);
    const index_t N = xv.n, D = xv.d;
    if (ks.ndim() != 1 || ks.shape(0) < 1) throw std::invalid_argument("ks must be a non-empty 1-D array");
    const index_t n_k = ks.shape(0);
    if (k_index.ndim() != 1 || k_index.shape(0) != static_cast<py::ssize_t>(covariance_types.size()))
        throw std::invalid_argument("k_index and covariance_types must give one entry per candidate");
    if (n_init < 1) throw std::invalid_argument("n_init must be >= 1");
    if (n_init > (std::int64_t(1) << 20) / n_k) throw std::invalid_argument("n_init x len(ks) is too large");
    if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
    if (init < 0 || init > static_cast<int>(BatchInit::partition) || init == static_cast<int>(BatchInit::given))
        throw std::invalid_argument("unknown init");
    check_threads(n_threads);
    if (xv.weights)
        for (index_t i = 0; i < N; ++i)
            if (!(xv.weights[i] >= 0.0) || !std::isfinite(xv.weights[i]))
                throw std::invalid_argument("sample_weight must be finite and non-negative");
    GridInputs in;
    in.ks.resize(n_k);
    for (index_t q = 0; q < n_k; ++q) {
        in.ks[q] = ks.data()[q];
        if (in.ks[q] < 1) throw std::invalid_argument("every number of components must be >= 1");
    }
    std::vector<GridCandidate> cands(k_index.shape(0));
    for (std::size_t c = 0; c < cands.size(); ++c) {
        const std::int64_t q = k_index.data()[c];
        if (q < 0 || q >= n_k) throw std::invalid_argument("k_index out of range");
        cands[c].k_index = q;
        cands[c].cov = cov_type_from_string(covariance_types[c]);
    }
    BatchSpec spec;
    spec.tol = tol;
    spec.reg_covar = reg_covar;
    spec.max_iter = max_iter;
    spec.n_init = n_init;
    spec.init = static_cast<BatchInit>(init);
    const index_t slots = n_k * n_init;
    if (spec.init == BatchInit::partition) {
        if (!labels || !shifts || !shift_offsets)
            throw std::invalid_argument("init 'partition' needs labels, shifts and shift_offsets");
        require_shape(*labels, {slots, N}, "labels");
        require_shape(*shift_offsets, {slots + 1}, "shift_offsets");
        const std::int64_t* so = shift_offsets->data();
        if (shifts->ndim() != 1) throw std::invalid_argument("shifts must be 1-D");
        std::vector<std::int64_t> count;
        for (index_t slot = 0; slot < slots; ++slot) {
            const index_t K = in.ks[slot / n_init];
            if (K > N) continue;
            if (so[slot] < 0 || so[slot + 1] - so[slot] != K * D || so[slot + 1] > shifts->shape(0))
                throw std::invalid_argument("shift_offsets do not give each start K x n_features shifts");
            for (index_t q = so[slot]; q < so[slot + 1]; ++q)
                if (!std::isfinite(shifts->data()[q])) throw std::invalid_argument("shifts must be finite");
            count.assign(K, 0);
            const std::int64_t* lab = labels->data() + slot * N;
            for (index_t i = 0; i < N; ++i) {
                if (lab[i] < -1 || lab[i] >= K)
                    throw std::invalid_argument("labels must lie in [-1, n_components)");
                if (lab[i] >= 0) ++count[lab[i]];
            }
            for (index_t j = 0; j < K; ++j)
                if (count[j] == 0) throw std::invalid_argument("every part of a partition needs a row");
        }
        in.labels = labels->data();
        in.shifts = shifts->data();
        in.shift_offsets = so;
    } else {
        if (!draws || !draw_offsets) throw std::invalid_argument("this init needs draws and draw_offsets");
        require_shape(*draw_offsets, {slots + 1}, "draw_offsets");
        const std::int64_t* uo = draw_offsets->data();
        for (index_t slot = 0; slot < slots; ++slot) {
            const index_t K = in.ks[slot / n_init];
            const index_t need = K > N ? 0 : draws_needed(spec.init, K, N);
            if (uo[slot] < 0 || uo[slot + 1] - uo[slot] != need)
                throw std::invalid_argument("draw_offsets do not give each start its draws");
        }
        if (draws->ndim() != 1 || draws->shape(0) < uo[slots])
            throw std::invalid_argument("draws must be 1-D and hold every start's draws");
        for (index_t q = 0; q < uo[slots]; ++q)
            if (!(draws->data()[q] >= 0.0 && draws->data()[q] < 1.0))
                throw std::invalid_argument("draws must be uniform numbers in [0, 1)");
        in.u = draws->data();
        in.u_offsets = uo;
    }

    std::vector<GroupFit> fits;
    std::vector<CandidateScore> scores;
    {
        py::gil_scoped_release release;
        fit_grid<T>(xv, spec, cands, in, fits, scores, n_threads);
    }
    py::list out;
    for (std::size_t c = 0; c < cands.size(); ++c) {
        const GroupFit& f = fits[c];
        py::dict d;
        if (f.status == GroupStatus::ok) d = params_to_dict(f.params);
        d["lower_bounds"] = py::array_t<double>(static_cast<py::ssize_t>(f.lower_bounds.size()),
                                                f.lower_bounds.data());
        d["lower_bound"] = f.lower_bound;
        d["n_iter"] = f.n_iter;
        d["converged"] = f.converged;
        d["status"] = static_cast<int>(f.status);
        d["component"] = f.component;
        d["fewer_clusters"] = f.fewer_clusters;
        d["log_likelihood"] = scores[c].log_likelihood;
        d["map_log_resp"] = scores[c].map_log_resp;
        out.append(d);
    }
    return out;
}

// Checked inputs of the hierarchical partitions: Z finite, weights positive,
// every K between 1 and the number of rows.
DataView<double> partition_input(const carray<double>& Z, const opt_doubles& sample_weight,
                                 const carray<std::int64_t>& ks) {
    const DataView<double> zv = data_view(Z, sample_weight);
    if (ks.ndim() != 1) throw std::invalid_argument("ks must be a 1-D array");
    for (index_t q = 0; q < ks.shape(0); ++q)
        if (ks.data()[q] < 1 || ks.data()[q] > zv.n)
            throw std::invalid_argument("every number of clusters must lie between 1 and the number of rows");
    for (index_t i = 0; i < zv.n * zv.d; ++i)
        if (!std::isfinite(Z.data()[i])) throw std::invalid_argument("Z must be finite");
    if (zv.weights)
        for (index_t i = 0; i < zv.n; ++i)
            if (!(zv.weights[i] > 0.0) || !std::isfinite(zv.weights[i]))
                throw std::invalid_argument("sample_weight must be finite and positive");
    return zv;
}

py::array_t<std::int64_t> ward_partitions_py(const carray<double>& Z, const opt_doubles& sample_weight,
                                             const carray<std::int64_t>& ks) {
    const DataView<double> zv = partition_input(Z, sample_weight, ks);
    const index_t n_k = ks.shape(0), n = zv.n;
    py::array_t<std::int64_t> labels(std::vector<py::ssize_t>{n_k, n});
    std::int64_t* out = labels.mutable_data();
    py::gil_scoped_release release;
    const MergeTree tree = ward_tree<double>(zv);
    for (index_t q = 0; q < n_k; ++q) cut_tree(tree, ks.data()[q], out + q * n);
    return labels;
}

py::array_t<std::int64_t> hierarchical_partitions_py(const carray<double>& Z, const opt_doubles& sample_weight,
                                                     const carray<std::int64_t>& ks) {
    const DataView<double> zv = partition_input(Z, sample_weight, ks);
    py::array_t<std::int64_t> labels(std::vector<py::ssize_t>{ks.shape(0), zv.n});
    std::int64_t* out = labels.mutable_data();
    py::gil_scoped_release release;
    hierarchical_partitions<double>(zv, ks.data(), ks.shape(0), out);
    return labels;
}

template <class T>
void register_typed(py::module_& m) {
    m.def("check_groups", &check_groups_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("offsets").noconvert(), py::arg("n_components"), py::arg("n_threads") = 1,
          "Per group, the status of the checks made before a fit draws anything (0 passes, 2 a "
          "non-finite value, 1 fewer rows than two or than n_components, 3 no positive weight).");
    m.def("fit_groups", &fit_groups_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("offsets").noconvert(), py::arg("covariance_type"), py::arg("n_components"), py::kw_only(),
          py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"), py::arg("init"),
          py::arg("draws") = py::none(), py::arg("draw_offsets") = py::none(),
          py::arg("weights_init") = py::none(), py::arg("means_init") = py::none(),
          py::arg("precisions_cholesky_init") = py::none(), py::arg("covariances_init") = py::none(),
          py::arg("skip").noconvert() = py::none(), py::arg("n_threads") = 1,
          "One mixture per group of rows (group g: rows offsets[g] to offsets[g + 1]), each fitted as "
          "GaussianMixture fits it alone. init: 0 k-means, 1 k-means++, 2 random, 3 random rows (the "
          "smallest of one key per row), 4 given parameters. skip: groups to leave out (no draws; status 1). Returns stacked parameters and per-group lower_bound, n_iter, converged, status "
          "(0 fitted, 1 too few samples, 2 non-finite values, 3 no positive weight, 4 ill-defined "
          "covariance), component (the ill-defined one), fewer_clusters, and the lower bounds of every "
          "group's best start, concatenated.");
    m.def("e_step_groups", &e_step_groups_py<T>, py::arg("X").noconvert(), py::arg("offsets").noconvert(),
          py::arg("covariance_type"), py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"),
          py::arg("fitted").noconvert(), py::kw_only(), py::arg("log_prob_norm").noconvert() = py::none(),
          py::arg("resp").noconvert() = py::none(), py::arg("labels").noconvert() = py::none(),
          py::arg("n_threads") = 1,
          "Per-sample outputs of each group's rows under its own mixture (groups not fitted are left as "
          "they are).");
    m.def("fit_grid", &fit_grid_py<T>, py::arg("X").noconvert(), py::arg("sample_weight"),
          py::arg("ks").noconvert(), py::arg("k_index").noconvert(), py::arg("covariance_types"), py::kw_only(),
          py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"), py::arg("init"),
          py::arg("draws") = py::none(), py::arg("draw_offsets") = py::none(), py::arg("labels") = py::none(),
          py::arg("shifts") = py::none(), py::arg("shift_offsets") = py::none(), py::arg("n_threads") = 1,
          "One mixture per candidate (ks[k_index[c]] components, covariance_types[c]) on all of X, each "
          "fitted as GaussianMixture fits it alone. init: 0 k-means, 1 k-means++, 2 random, 3 random rows, "
          "5 the given partitions (labels per (K, start), -1 for rows in no part, with their shifts). "
          "Start s of ks[q] is slot q * n_init + s. Returns one dict per candidate: its parameters (when "
          "fitted), lower_bounds, lower_bound, n_iter, converged, status (as fit_groups), component, "
          "fewer_clusters, log_likelihood (sum of w log p(x)) and map_log_resp (sum of w log max_k r).");
}

}  // namespace

void register_batch(py::module_& m) {
    register_typed<double>(m);
    register_typed<float>(m);
    m.def("ward_partitions", &ward_partitions_py, py::arg("Z").noconvert(), py::arg("sample_weight"),
          py::arg("ks").noconvert(),
          "Ward's agglomerative tree of the rows of Z (weighted), cut into ks[q] clusters for each q: "
          "labels of shape (len(ks), n), numbered by each cluster's lowest row.");
    m.def("hierarchical_partitions", &hierarchical_partitions_py, py::arg("Z").noconvert(),
          py::arg("sample_weight"), py::arg("ks").noconvert(),
          "Starting partitions of the rows of Z for each ks[q]: Ward's tree cut at min(n, 50) parts, then "
          "the unconstrained-covariance merges of those parts down to ks[q] (hierarchical.hpp). Labels of "
          "shape (len(ks), n), numbered by each part's lowest row.");
}

}  // namespace gaussmix::binding
