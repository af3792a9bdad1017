// Bindings of the kernel density engine.
#include <optional>

#include "binding.hpp"
#include "gaussmix/kde.hpp"
#include "gaussmix/kde_index.hpp"

#include <cmath>
#include <cstring>
#include <memory>
#include <variant>

namespace gaussmix::binding {

namespace {

template <class T>
void kde_log_sum_py(const carray<T>& train, const std::optional<carray<double>>& train_weight,
                    const carray<T>& queries, const carray<double>& whiten, const std::string& kernel,
                    bool exclude_self, carray<T> out, int n_threads) {
    const DataView<T> tv = data_view(train, train_weight);
    if (queries.ndim() != 2 || queries.shape(1) != tv.d)
        throw std::invalid_argument("queries must have shape (n_queries, " + std::to_string(tv.d) + ")");
    DataView<T> qv;
    qv.x = queries.data();
    qv.n = queries.shape(0);
    qv.d = tv.d;
    qv.row_stride = tv.d;
    require_shape(whiten, {tv.d, tv.d}, "whiten");
    require_shape(out, {qv.n}, "out");
    if (exclude_self && qv.n != tv.n)
        throw std::invalid_argument("exclude_self needs the training set as queries");
    const Kernel k = kernel_from_string(kernel);
    check_threads(n_threads);
    const double* u = whiten.data();
    T* o = out.mutable_data();
    py::gil_scoped_release release;
    kde_log_sum<T>(tv, qv, u, k, exclude_self, o, n_threads);
}

template <class T>
void register_typed(py::module_& m) {
    m.def("kde_log_sum", &kde_log_sum_py<T>, py::arg("train").noconvert(), py::arg("train_weight"),
          py::arg("queries").noconvert(), py::arg("whiten"), py::arg("kernel"), py::arg("exclude_self"),
          py::arg("out").noconvert(), py::arg("n_threads") = 1,
          "out[j] = log sum_i w_i k(||(q_j - x_i) U||), U = whiten (upper triangular): "
          "the unnormalised log kernel sums, exact, in log space.");
}

// The fitted index: the engine's prepared training set, for one dtype. The
// arrays it was built from are kept (not copied) for pickling.
class Index {
   public:
    Index(py::array train, std::optional<carray<double>> weight, carray<double> whiten, index_t leaf_size,
          int n_threads)
        : train_(train), weight_(weight), whiten_(whiten), leaf_size_(leaf_size) {
        check_threads(n_threads);
        if (leaf_size < 1) throw std::invalid_argument("leaf_size must be at least 1, got " + std::to_string(leaf_size));
        if (py::isinstance<carray<double>>(train))
            build<double>(n_threads);
        else if (py::isinstance<carray<float>>(train))
            build<float>(n_threads);
        else
            throw std::invalid_argument("train must be a C-contiguous float64 or float32 array");
    }

    py::dict log_sum(const py::array& queries, const std::string& kernel, double scale, double log_atol, double rtol,
                     bool exclude_self, int method, py::array out, int n_threads) const {
        check_threads(n_threads);
        if (!(scale > 0.0) || !std::isfinite(scale)) throw std::invalid_argument("scale must be positive and finite");
        if (std::isnan(log_atol) || !(rtol >= 0.0) || !std::isfinite(rtol))
            throw std::invalid_argument("the tolerances must be non-negative numbers");
        if (method < 0 || method > 3)
            throw std::invalid_argument("method must be 0 (exact), 1 (tree), 2 (automatic) or 3 (grid)");
        const Kernel k = kernel_from_string(kernel);
        KdeTreeWork work;
        std::visit(
            [&](const auto& idx) {
                using T = typename std::decay_t<decltype(*idx)>::value_type;
                if (!py::isinstance<carray<T>>(queries))
                    throw std::invalid_argument("queries must be a C-contiguous array of the training dtype");
                const carray<T> q = py::reinterpret_borrow<carray<T>>(queries);
                if (q.ndim() != 2 || q.shape(1) != idx->d())
                    throw std::invalid_argument("queries must have shape (n_queries, " + std::to_string(idx->d()) + ")");
                if (!py::isinstance<carray<T>>(out))
                    throw std::invalid_argument("out must be a C-contiguous array of the training dtype");
                carray<T> o = py::reinterpret_borrow<carray<T>>(out);
                require_shape(o, {q.shape(0)}, "out");
                if (!o.writeable()) throw std::invalid_argument("out must be writeable");
                DataView<T> qv;
                qv.x = q.data();
                qv.n = q.shape(0);
                qv.d = idx->d();
                qv.row_stride = qv.d;
                if (exclude_self) {  // leave-one-out sums: the queries are the training points
                    const carray<T> x = py::reinterpret_borrow<carray<T>>(train_);
                    if (q.shape(0) != x.shape(0) ||
                        (q.data() != x.data() &&
                         std::memcmp(q.data(), x.data(), sizeof(T) * static_cast<std::size_t>(x.size())) != 0))
                        throw std::invalid_argument("exclude_self needs the training set as queries");
                }
                T* po = o.mutable_data();
                py::gil_scoped_release release;
                work = idx->log_sum(qv, k, scale, log_atol, rtol, exclude_self, method, po, n_threads);
            },
            index_);
        py::dict r;
        r["tree_queries"] = work.queries;
        r["nodes"] = work.nodes;
        r["leaf_points"] = work.leaf_points;
        r["expansions"] = work.expansions;
        r["grid_queries"] = work.grid_queries;
        return r;
    }

    void build_tree() const {
        std::visit(
            [](const auto& idx) {
                py::gil_scoped_release release;
                idx->build_tree();
            },
            index_);
    }

    void build_grid() const {
        std::visit(
            [](const auto& idx) {
                py::gil_scoped_release release;
                idx->build_grid();
            },
            index_);
    }

    py::tuple state() const {
        return py::make_tuple(train_, weight_ ? py::object(*weight_) : py::object(py::none()), whiten_, leaf_size_);
    }
    const py::array& train() const { return train_; }
    const carray<double>& whiten() const { return whiten_; }

   private:
    py::array train_;
    std::optional<carray<double>> weight_;
    carray<double> whiten_;
    index_t leaf_size_;
    std::variant<std::shared_ptr<const KdeIndex<double>>, std::shared_ptr<const KdeIndex<float>>> index_;

    template <class T>
    void build(int n_threads) {
        const carray<T> x = py::reinterpret_borrow<carray<T>>(train_);
        const DataView<T> tv = data_view(x, weight_);
        require_shape(whiten_, {tv.d, tv.d}, "whiten");
        const double* u = whiten_.data();
        // The tree's splits and bounds need ordered numbers.
        for (index_t i = 0; i < tv.n * tv.d; ++i)
            if (!std::isfinite(static_cast<double>(tv.x[i]))) throw std::invalid_argument("train contains infinity or NaN");
        for (index_t i = 0; i < tv.d * tv.d; ++i)
            if (!std::isfinite(u[i])) throw std::invalid_argument("whiten contains infinity or NaN");
        if (tv.weights) {
            double total = 0.0;
            for (index_t i = 0; i < tv.n; ++i) {
                if (!(tv.weights[i] >= 0.0) || !std::isfinite(tv.weights[i]))
                    throw std::invalid_argument("train_weight must be finite and non-negative");
                total += tv.weights[i];
            }
            if (!std::isfinite(total))
                throw std::invalid_argument("train_weight sums to infinity; rescale the weights");
        }
        std::shared_ptr<const KdeIndex<T>> idx;
        {
            py::gil_scoped_release release;
            idx = std::make_shared<const KdeIndex<T>>(tv, u, leaf_size_, n_threads);
        }
        index_ = idx;
    }
};

}  // namespace

void register_kde(py::module_& m) {
    register_typed<double>(m);
    register_typed<float>(m);
    py::class_<Index>(m, "KdeIndex",
                      "A fitted kernel density index: the training set prepared once for exact sums, and a k-d "
                      "tree (built on first need) for sums with a certified error.")
        .def(py::init<py::array, std::optional<carray<double>>, carray<double>, index_t, int>(), py::arg("train"),
             py::arg("train_weight"), py::arg("whiten"), py::arg("leaf_size") = 40, py::arg("n_threads") = 1)
        .def("log_sum", &Index::log_sum, py::arg("queries"), py::arg("kernel"), py::arg("scale"), py::arg("log_atol"),
             py::arg("rtol"), py::arg("exclude_self"), py::arg("method"), py::arg("out"), py::arg("n_threads") = 1,
             "out[j] = log sum_i w_i k(scale ||(q_j - x_i) U||). method 0: exact; 1: the tree, within "
             "exp(log_atol) + rtol * sum of the exact sum; 2: automatic (the grid for Gaussian kernels in one or two "
             "dimensions when it is cheap, else the cheaper of tree and exact by a pilot of the queries); 3: the "
             "grid, the queries it cannot certify on the tree. Returns what the grid and the tree did (queries, "
             "nodes, leaf kernel evaluations, Taylor expansions, grid queries).")
        .def("build_tree", &Index::build_tree,
             "Builds the k-d tree now (otherwise it is built by the first evaluation with a tolerance).")
        .def("build_grid", &Index::build_grid,
             "Prepares the grid's coordinates now, in one or two dimensions (otherwise the first evaluation "
             "on the grid does).")
        .def_property_readonly("train", &Index::train, "The training points (the array the index was built on).")
        .def_property_readonly("whiten", &Index::whiten, "The whitening factor U distances are measured with.")
        .def(py::pickle([](const Index& i) { return i.state(); },
                        [](py::tuple t) {
                            if (t.size() != 4) throw std::invalid_argument("invalid KdeIndex state");
                            std::optional<carray<double>> w;
                            if (!t[1].is_none()) w = t[1].cast<carray<double>>();
                            return Index(t[0].cast<py::array>(), w, t[2].cast<carray<double>>(),
                                         t[3].cast<index_t>(), 1);
                        }));
}

}  // namespace gaussmix::binding
