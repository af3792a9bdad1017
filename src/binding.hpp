// binding.hpp -- conversions between numpy arrays and engine views.
//
// Checks only what the engine relies on (dtype, C order, ndim, shapes); the
// Python layer does the user-facing validation. Every check throws
// std::invalid_argument (-> ValueError) naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gaussmix/data.hpp"
#include "gaussmix/gaussian.hpp"
#include "gaussmix/suffstats.hpp"

namespace gaussmix::binding {

namespace py = pybind11;

template <class T>
using carray = py::array_t<T, py::array::c_style>;

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        s += std::to_string(a.shape(i));
        if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
    }
    return s + ")";
}

inline void require_shape(const py::array& a, std::vector<py::ssize_t> shape, const char* name) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
    if (!ok) {
        std::string want = "(";
        for (std::size_t i = 0; i < shape.size(); ++i)
            want += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
        throw std::invalid_argument(std::string(name) + " must have shape " + want + "), got " + shape_str(a));
    }
}

template <class T>
DataView<T> data_view(const carray<T>& X, const std::optional<carray<double>>& w) {
    if (X.ndim() != 2) throw std::invalid_argument("X must be a 2-D array, got " + std::to_string(X.ndim()) + "-D");
    DataView<T> v;
    v.x = X.data();
    v.n = X.shape(0);
    v.d = X.shape(1);
    v.row_stride = v.d;
    if (v.d < 1) throw std::invalid_argument("X must have at least one feature");
    if (w) {
        require_shape(*w, {X.shape(0)}, "sample_weight");
        v.weights = w->data();
    }
    return v;
}

inline std::vector<py::ssize_t> prec_shape(CovType c, index_t k, index_t d) {
    switch (c) {
        case CovType::full: return {k, d, d};
        case CovType::tied: return {d, d};
        case CovType::diag: return {k, d};
        case CovType::spherical: return {k};
    }
    return {};
}

inline MixtureParams params_from_arrays(const std::string& covariance_type, const carray<double>& weights,
                                        const carray<double>& means, const carray<double>& prec_chol) {
    const CovType c = cov_type_from_string(covariance_type);
    if (means.ndim() != 2) throw std::invalid_argument("means must be a 2-D array");
    const index_t k = means.shape(0), d = means.shape(1);
    if (k < 1) throw std::invalid_argument("means must have at least one component (row)");
    if (d < 1) throw std::invalid_argument("means must have at least one feature (column)");
    require_shape(weights, {k}, "weights");
    require_shape(prec_chol, prec_shape(c, k, d), "precisions_cholesky");
    MixtureParams p(c, k, d);
    std::copy(weights.data(), weights.data() + k, p.weights.begin());
    std::copy(means.data(), means.data() + k * d, p.means.begin());
    std::copy(prec_chol.data(), prec_chol.data() + p.prec_chol.size(), p.prec_chol.begin());
    return p;
}

inline py::array_t<double> to_array(const std::vector<double>& v, std::vector<py::ssize_t> shape) {
    py::array_t<double> a(shape);
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

inline py::dict params_to_dict(const MixtureParams& p) {
    py::dict d;
    d["weights"] = to_array(p.weights, {p.k});
    d["means"] = to_array(p.means, {p.k, p.d});
    d["covariances"] = to_array(p.covariances, prec_shape(p.cov, p.k, p.d));
    d["precisions_cholesky"] = to_array(p.prec_chol, prec_shape(p.cov, p.k, p.d));
    return d;
}

inline std::vector<py::ssize_t> stats_shape(CovType c, index_t k, index_t d) {
    switch (c) {
        case CovType::full: return {k, d, d};
        case CovType::tied: return {d, d};
        default: return {k, d};
    }
}

inline int check_threads(int n_threads) {
    if (n_threads < 1) throw std::invalid_argument("n_threads must be >= 1, got " + std::to_string(n_threads));
    return n_threads;
}

void register_gmm(py::module_& m);
void register_stats(py::module_& m);
void register_variational(py::module_& m);
void register_kde(py::module_& m);
void register_batch(py::module_& m);

}  // namespace gaussmix::binding
