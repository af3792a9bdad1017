// Bindings of the batched fits: one mixture per group of rows (batch.hpp).
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "binding.hpp"
#include "gaussmix/batch.hpp"

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
}

}  // namespace

void register_batch(py::module_& m) {
    register_typed<double>(m);
    register_typed<float>(m);
}

}  // namespace gaussmix::binding
