// Binding of the sufficient statistics (suffstats.hpp) as a Python value type:
// what E-steps return, what data sources sum (in this process or on Dask's
// workers, hence pickling), and what every M-step starts from.
#include <limits>

#include "binding.hpp"
#include "gaussmix/suffstats.hpp"

namespace gaussmix::binding {

namespace {

std::string cov_name(CovType c) {
    switch (c) {
        case CovType::full: return "full";
        case CovType::tied: return "tied";
        case CovType::diag: return "diag";
        case CovType::spherical: return "spherical";
    }
    return "full";
}

SuffStats stats_from_arrays(const std::string& covariance_type, const carray<double>& nk, const carray<double>& a,
                            const carray<double>& s, const carray<double>& shift, double sum_w, double loglik) {
    const CovType c = cov_type_from_string(covariance_type);
    if (shift.ndim() != 2 || shift.shape(0) < 1 || shift.shape(1) < 1)
        throw std::invalid_argument("shift must have shape (n_components, n_features)");
    const index_t k = shift.shape(0), d = shift.shape(1);
    require_shape(nk, {k}, "nk");
    require_shape(a, {k, d}, "a");
    require_shape(s, stats_shape(c, k, d), "s");
    SuffStats st(c, k, d);
    std::copy(shift.data(), shift.data() + k * d, st.shift.begin());
    std::copy(nk.data(), nk.data() + k, st.nk.begin());
    std::copy(a.data(), a.data() + k * d, st.a.begin());
    std::copy(s.data(), s.data() + st.s.size(), st.s.begin());
    st.sum_w = sum_w;
    st.loglik = loglik;
    return st;
}

py::dict m_step_py(const SuffStats& st, double reg_covar, bool single_precision, bool initial) {
    if (!(reg_covar >= 0.0)) throw std::invalid_argument("reg_covar must be >= 0");
    const double eps =
        single_precision ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
    MixtureParams p;
    m_step(st, reg_covar, eps, initial, p);
    return params_to_dict(p);
}

SuffStats of_parameters_py(const carray<double>& weights, const carray<double>& means,
                           const carray<double>& covariances, const std::string& covariance_type,
                           double reg_covar) {
    const CovType c = cov_type_from_string(covariance_type);
    if (means.ndim() != 2 || means.shape(0) < 1 || means.shape(1) < 1)
        throw std::invalid_argument("means must have shape (n_components, n_features)");
    const index_t k = means.shape(0), d = means.shape(1);
    require_shape(weights, {k}, "weights");
    require_shape(covariances, prec_shape(c, k, d), "covariances");
    MixtureParams p(c, k, d);
    std::copy(weights.data(), weights.data() + k, p.weights.begin());
    std::copy(means.data(), means.data() + k * d, p.means.begin());
    std::copy(covariances.data(), covariances.data() + p.covariances.size(), p.covariances.begin());
    return of_parameters(p, reg_covar);
}

py::tuple gaussian_estimates_py(const SuffStats& st, double reg_covar, bool single_precision) {
    if (!(reg_covar >= 0.0)) throw std::invalid_argument("reg_covar must be >= 0");
    const double eps =
        single_precision ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
    const GaussianEstimates g = gaussian_estimates(st, reg_covar, eps);
    return py::make_tuple(to_array(g.nk, {st.k}), to_array(g.means, {st.k, st.d}),
                          to_array(g.covariances, prec_shape(st.cov, st.k, st.d)));
}

py::array_t<double> precisions_cholesky_py(const carray<double>& covariances, const std::string& covariance_type,
                                           bool single_precision) {
    const CovType c = cov_type_from_string(covariance_type);
    const py::ssize_t want_ndim = c == CovType::full ? 3 : c == CovType::spherical ? 1 : 2;
    if (covariances.ndim() != want_ndim)
        throw std::invalid_argument("covariances has the wrong number of dimensions for '" + covariance_type + "'");
    const index_t d = c == CovType::spherical ? 1 : covariances.shape(want_ndim - 1);
    const index_t k = c == CovType::tied ? 1 : covariances.shape(0);
    if ((c == CovType::full || c == CovType::tied) && covariances.shape(want_ndim - 2) != d)
        throw std::invalid_argument("covariances must be square matrices");
    std::vector<py::ssize_t> shape(covariances.shape(), covariances.shape() + covariances.ndim());
    py::array_t<double> u(shape);
    const double* cv = covariances.data();
    double* out = u.mutable_data();
    {
        py::gil_scoped_release release;
        factor_covariances(c, k, d, cv, out, single_precision);
    }
    return u;
}

}  // namespace

void register_stats(py::module_& m) {
    py::class_<SuffStats>(m, "SuffStats",
                          "Sufficient statistics of a weighted mixture around per-component shifts: "
                          "nk, a = sum w r (x - shift), s = sum w r (x - shift)(x - shift)^T (summed over "
                          "components for 'tied', its diagonal for 'diag' and 'spherical'), sum_w and loglik.")
        .def(py::init(&stats_from_arrays), py::arg("covariance_type"), py::arg("nk"), py::arg("a"), py::arg("s"),
             py::arg("shift"), py::arg("sum_w") = 0.0, py::arg("loglik") = 0.0)
        .def_property_readonly("covariance_type", [](const SuffStats& st) { return cov_name(st.cov); })
        .def_property_readonly("nk", [](const SuffStats& st) { return to_array(st.nk, {st.k}); })
        .def_property_readonly("a", [](const SuffStats& st) { return to_array(st.a, {st.k, st.d}); })
        .def_property_readonly("s",
                               [](const SuffStats& st) { return to_array(st.s, stats_shape(st.cov, st.k, st.d)); })
        .def_property_readonly("shift", [](const SuffStats& st) { return to_array(st.shift, {st.k, st.d}); })
        .def_readonly("sum_w", &SuffStats::sum_w)
        .def_readonly("loglik", &SuffStats::loglik)
        .def(
            "__iadd__", [](SuffStats& st, const SuffStats& o) -> SuffStats& { return st += o; },
            py::arg("other"), "Adds statistics of other data taken around the same shifts.")
        .def(
            "__add__",
            [](const SuffStats& st, const SuffStats& o) {
                SuffStats r = st;
                r += o;
                return r;
            },
            py::arg("other"))
        .def("centred", &centred, "The same statistics around each component's own mean.")
        .def("normalised", &normalised, "Every sum divided by sum_w (the means unchanged).")
        .def("blend", &blend, py::arg("other"), py::arg("eta"),
             "(1 - eta) self + eta other, both centred: the pairwise merge.")
        .def_static("of_parameters", &of_parameters_py, py::arg("weights"), py::arg("means"),
                    py::arg("covariances"), py::arg("covariance_type"), py::arg("reg_covar"),
                    "Centred statistics of total weight one whose M-step gives these parameters back.")
        .def("m_step", &m_step_py, py::arg("reg_covar"), py::kw_only(), py::arg("single_precision") = false,
             py::arg("initial") = false,
             "Maximum-likelihood parameters (dict) from the statistics; initial: weights divided by sum_w.")
        .def("gaussian_estimates", &gaussian_estimates_py, py::arg("reg_covar"), py::kw_only(),
             py::arg("single_precision") = false,
             "(n_k + 10 eps, means, covariances + reg_covar) of each component, not factored.")
        .def(py::pickle(
            [](const SuffStats& st) {
                return py::make_tuple(cov_name(st.cov), to_array(st.nk, {st.k}), to_array(st.a, {st.k, st.d}),
                                      to_array(st.s, stats_shape(st.cov, st.k, st.d)),
                                      to_array(st.shift, {st.k, st.d}), st.sum_w, st.loglik);
            },
            [](const py::tuple& t) {
                if (t.size() != 7) throw std::invalid_argument("SuffStats: invalid pickled state");
                return stats_from_arrays(t[0].cast<std::string>(), t[1].cast<carray<double>>(),
                                         t[2].cast<carray<double>>(), t[3].cast<carray<double>>(),
                                         t[4].cast<carray<double>>(), t[5].cast<double>(), t[6].cast<double>());
            }));
    m.def("precisions_cholesky", &precisions_cholesky_py, py::arg("covariances").noconvert(),
          py::arg("covariance_type"), py::kw_only(), py::arg("single_precision") = false,
          "Upper Cholesky factors of the precisions of covariances (scikit-learn's layout); raises the "
          "ill-defined covariance error naming the first component that is not positive definite.");
}

}  // namespace gaussmix::binding
