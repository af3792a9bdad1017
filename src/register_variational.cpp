// Binding of variational Bayes (variational.hpp): the posterior updates, the
// E-step constants and the whole loop on an in-memory array, for
// BayesianGaussianMixture. Parameters travel as the dict the estimator keeps:
// weights, means, covariances, precisions_cholesky (scikit-learn's layouts),
// weight_concentration (an array, or the pair of arrays of the Dirichlet
// process), mean_precision and degrees_of_freedom (a float for 'tied').
#include <cstdint>
#include <limits>
#include <optional>

#include "binding.hpp"
#include "gaussmix/em.hpp"
#include "gaussmix/variational.hpp"

namespace gaussmix::binding {

namespace {

struct Variational {
    CovType cov;
    VariationalBayes vb;
};

std::vector<double> vec(const py::handle& h, std::size_t n, const char* name) {
    const auto a = py::cast<carray<double>>(h);
    if (static_cast<std::size_t>(a.size()) != n)
        throw std::invalid_argument(std::string(name) + " must have " + std::to_string(n) + " values, got " +
                                    std::to_string(a.size()));
    return std::vector<double>(a.data(), a.data() + n);
}

// The engine's parameters and posterior state from the estimator's dict.
MixtureParams read_params(Variational& v, const py::dict& d) {
    const auto means = py::cast<carray<double>>(d["means"]);
    if (means.ndim() != 2 || means.shape(0) < 1 || means.shape(1) < 1)
        throw std::invalid_argument("means must have shape (n_components, n_features)");
    const index_t k = means.shape(0), n = means.shape(1);
    if (n != static_cast<index_t>(v.vb.prior.mean.size()))
        throw std::invalid_argument("means have " + std::to_string(n) + " features, the priors " +
                                    std::to_string(v.vb.prior.mean.size()));
    MixtureParams p(v.cov, k, n);
    p.weights = vec(d["weights"], k, "weights");
    p.means.assign(means.data(), means.data() + k * n);
    p.covariances = vec(d["covariances"], p.covariances.size(), "covariances");
    p.prec_chol = vec(d["precisions_cholesky"], p.prec_chol.size(), "precisions_cholesky");
    VariationalState& s = v.vb.state;
    if (v.vb.prior.dirichlet_process) {
        const auto pair = py::cast<py::tuple>(d["weight_concentration"]);
        if (pair.size() != 2) throw std::invalid_argument("weight_concentration must be a pair of arrays");
        s.conc_a = vec(pair[0], k, "weight_concentration[0]");
        s.conc_b = vec(pair[1], k, "weight_concentration[1]");
    } else {
        s.conc_a = vec(d["weight_concentration"], k, "weight_concentration");
        s.conc_b.assign(k, 0.0);
    }
    s.mean_precision = vec(d["mean_precision"], k, "mean_precision");
    if (v.cov == CovType::tied)
        s.dof.assign(k, py::cast<double>(d["degrees_of_freedom"]));
    else
        s.dof = vec(d["degrees_of_freedom"], k, "degrees_of_freedom");
    return p;
}

py::dict write_params(const Variational& v, const MixtureParams& p) {
    py::dict d = params_to_dict(p);
    const VariationalState& s = v.vb.state;
    if (v.vb.prior.dirichlet_process)
        d["weight_concentration"] = py::make_tuple(to_array(s.conc_a, {p.k}), to_array(s.conc_b, {p.k}));
    else
        d["weight_concentration"] = to_array(s.conc_a, {p.k});
    d["mean_precision"] = to_array(s.mean_precision, {p.k});
    if (v.cov == CovType::tied)
        d["degrees_of_freedom"] = s.dof[0];
    else
        d["degrees_of_freedom"] = to_array(s.dof, {p.k});
    return d;
}

Variational make(const std::string& covariance_type, const std::string& weight_prior_type,
                 double weight_concentration, double mean_precision, const carray<double>& mean, double dof,
                 const carray<double>& covariance, double reg_covar, bool single_precision) {
    Variational v;
    v.cov = cov_type_from_string(covariance_type);
    if (weight_prior_type != "dirichlet_process" && weight_prior_type != "dirichlet_distribution")
        throw std::invalid_argument("weight_concentration_prior_type must be 'dirichlet_process' or "
                                    "'dirichlet_distribution', got '" + weight_prior_type + "'");
    if (!(weight_concentration > 0.0) || !(mean_precision > 0.0) || !(reg_covar >= 0.0))
        throw std::invalid_argument("the concentration and mean precision priors must be > 0, reg_covar >= 0");
    const index_t d = mean.ndim() == 1 ? mean.shape(0) : 0;
    if (d < 1) throw std::invalid_argument("mean must be a non-empty 1-D array");
    if (!(dof > static_cast<double>(d) - 1.0))
        throw std::invalid_argument("dof must be greater than n_features - 1");
    const std::size_t n_cov = v.cov == CovType::full || v.cov == CovType::tied ? d * d
                              : v.cov == CovType::diag                        ? d
                                                                              : 1;
    VariationalPrior& pr = v.vb.prior;
    pr.dirichlet_process = weight_prior_type == "dirichlet_process";
    pr.weight_concentration = weight_concentration;
    pr.mean_precision = mean_precision;
    pr.mean.assign(mean.data(), mean.data() + d);
    pr.dof = dof;
    pr.covariance = vec(covariance, n_cov, "covariance");
    v.vb.reg_covar = reg_covar;
    v.vb.eps = single_precision ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
    return v;
}

template <class T>
py::dict fit_py(Variational& v, const carray<T>& X, const std::optional<carray<double>>& sample_weight,
                const py::dict& start, double tol, std::int64_t max_iter, double prev_lower_bound, int n_threads,
                bool check_finite) {
    const DataView<T> xv = data_view(X, sample_weight);
    const MixtureParams p = read_params(v, start);
    if (p.d != xv.d) throw std::invalid_argument("means and X disagree on the number of features");
    if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
    check_threads(n_threads);
    EMResult r;
    {
        py::gil_scoped_release release;
        r = em_fit<T>(xv, p, v.vb, tol, max_iter, prev_lower_bound, n_threads, check_finite);
    }
    py::dict d = write_params(v, r.params);
    d["lower_bounds"] = r.lower_bounds;
    d["n_iter"] = r.n_iter;
    d["converged"] = r.converged;
    return d;
}

}  // namespace

void register_variational(py::module_& m) {
    py::class_<Variational>(m, "VariationalBayes",
                            "Variational Bayes for a Gaussian mixture: the posterior from statistics, the "
                            "E-step's constants, and the whole loop (variational.hpp).")
        .def(py::init(&make), py::arg("covariance_type"), py::arg("weight_concentration_prior_type"),
             py::arg("weight_concentration"), py::arg("mean_precision"), py::arg("mean").noconvert(), py::arg("dof"),
             py::arg("covariance").noconvert(), py::kw_only(), py::arg("reg_covar"),
             py::arg("single_precision") = false)
        .def(
            "posterior",
            [](Variational& v, const SuffStats& st) {
                if (st.cov != v.cov || st.d != static_cast<index_t>(v.vb.prior.mean.size()))
                    throw std::invalid_argument("statistics of another covariance type or feature count");
                MixtureParams next;
                v.vb.m_step(st, next);
                return write_params(v, next);
            },
            py::arg("stats"), "The posterior (parameters dict) of the statistics.")
        .def(
            "log_constants",
            [](Variational& v, const py::dict& params) {
                const MixtureParams p = read_params(v, params);
                std::vector<double> c;
                v.vb.log_constants(p, c);
                return to_array(c, {p.k});
            },
            py::arg("params"), "The E-step's constants c_k of the parameters.")
        .def(
            "step",
            [](Variational& v, const SuffStats& st, const py::dict& params) {
                const MixtureParams p = read_params(v, params);
                if (st.cov != v.cov || st.k != p.k || st.d != p.d)
                    throw std::invalid_argument("statistics of another shape than the parameters");
                std::vector<double> c;
                v.vb.log_constants(p, c);
                MixtureParams next;
                v.vb.m_step(st, next);
                const double lb = v.vb.lower_bound(st, 0.0);
                return py::make_tuple(lb, write_params(v, next));
            },
            py::arg("stats"), py::arg("params"),
            "(lower bound, next parameters) from the statistics of an E-step with params.")
        .def("fit", &fit_py<double>, py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("params"),
             py::kw_only(), py::arg("tol"), py::arg("max_iter"), py::arg("prev_lower_bound"),
             py::arg("n_threads") = 1, py::arg("check_finite") = false)
        .def("fit", &fit_py<float>, py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("params"),
             py::kw_only(), py::arg("tol"), py::arg("max_iter"), py::arg("prev_lower_bound"),
             py::arg("n_threads") = 1, py::arg("check_finite") = false,
             "Iterations from params as scikit-learn iterates (em_fit with this policy).");
}

}  // namespace gaussmix::binding
