// The compiled core of gaussmix: one module, one register_* call per area.
#include "binding.hpp"
#include "gaussmix/data.hpp"
#include "gaussmix/parallel.hpp"
#include "gaussmix/probe.hpp"
#include "gaussmix/vmath.hpp"

#include <algorithm>
#include <vector>

namespace py = pybind11;

namespace {

// out = exp(x) by the engine's vector exp (for testing its accuracy).
template <class T>
void vector_exp(const gaussmix::binding::carray<T>& x, gaussmix::binding::carray<T> out) {
    if (x.ndim() != 1 || out.ndim() != 1 || out.shape(0) != x.shape(0))
        throw std::invalid_argument("x and out must be 1-d arrays of the same length");
    const T* xp = x.data();
    T* op = out.mutable_data();
    const std::int64_t n = x.shape(0);
    py::gil_scoped_release release;
    gaussmix::dispatch_isa([&](auto vb) { gaussmix::vmath::exp_array<T, decltype(vb)::value>(xp, op, n); });
}

// True when every element of X is finite: one parallel pass that adds
// x * 0 (0 for a finite x, NaN for inf and NaN) in vector lanes, for the
// validation of large arrays, which scikit-learn does by a sum on one
// thread.
template <class T>
bool all_finite(const gaussmix::binding::carray<T>& X, int n_threads) {
    using gaussmix::index_t;
    const T* x = X.data();
    const index_t n = X.size();
    py::gil_scoped_release release;
    const gaussmix::Partition part = gaussmix::make_partition(n, 1 << 16, 64);
    std::vector<unsigned char> bad(static_cast<std::size_t>(part.n_chunks), 0);
    n_threads = gaussmix::threads_for(static_cast<double>(n) * 8.0, std::max(n_threads, 1));
    gaussmix::parallel_for(part.n_chunks, n_threads, [&](index_t c) {
        T acc = T(0);
#pragma omp simd reduction(+ : acc)
        for (index_t i = part.begin(c); i < part.end(c); ++i) acc += x[i] * T(0);
        bad[c] = !(acc == T(0));
    });
    return std::none_of(bad.begin(), bad.end(), [](unsigned char b) { return b != 0; });
}

// The machine probes of probe.hpp, for the benchmarks' hardware bounds:
// probe(n_threads, size) without the GIL, as (seconds, units of work done in
// all), units_per_thread(size) a thread.
template <class Probe, class Units>
py::tuple run_probe(int n_threads, std::int64_t size, Probe probe, Units units_per_thread) {
    if (n_threads < 1 || size < 1) throw std::invalid_argument("n_threads and the size must be positive");
    double s;
    {
        py::gil_scoped_release release;
        s = probe(n_threads, size);
    }
    return py::make_tuple(s, static_cast<double>(units_per_thread(size)) * n_threads);
}

template <class T>
py::tuple probe_fma(int n_threads, std::int64_t rounds) {
    return run_probe(n_threads, rounds, gaussmix::probe::fma<T>, gaussmix::probe::fma_per_thread<T>);
}

template <class T>
py::tuple probe_exp(int n_threads, std::int64_t n) {
    return run_probe(n_threads, n, gaussmix::probe::exp<T>, gaussmix::probe::exp_per_thread<T>);
}

// Runs Python's pending signal handlers (Ctrl-C raises KeyboardInterrupt
// there); true when one raised, so the engine stops.
bool python_interrupt_requested() {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "gaussmix engine (private; use the gaussmix package)";
    m.def("openmp_enabled", &gaussmix::openmp_enabled, "True if the engine was built with OpenMP.");
    m.def("default_threads", &gaussmix::default_threads,
          "OpenMP's default team size (honours OMP_NUM_THREADS and threadpoolctl).");
    m.def("available_cores", &gaussmix::available_cores, "Processors available to OpenMP.");
    m.def("vector_bytes", &gaussmix::vector_bytes,
          "Vector width in bytes of the kernels this CPU runs (64: AVX-512, 32: AVX2, 16: baseline).");
    m.def(
        "isa_dispatch",
        [] {
#if defined(GAUSSMIX_ISA_DISPATCH)
            return true;
#else
            return false;
#endif
        },
        "True if the engine holds kernels for several instruction sets and picks one at run time "
        "(GAUSSMIX_ISA can then cap it); False if built for one.");
    gaussmix::set_interrupt_check(&python_interrupt_requested);
    py::register_exception<gaussmix::NonFiniteInput>(m, "NonFiniteInput", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const gaussmix::Interrupted&) {
            // The signal handler's exception (KeyboardInterrupt) is already set.
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });
    m.def("_vector_exp", &vector_exp<double>, py::arg("x").noconvert(), py::arg("out").noconvert(),
          "out = exp(x) by the engine's vector exp (x <= 0; for tests).");
    m.def("_vector_exp", &vector_exp<float>, py::arg("x").noconvert(), py::arg("out").noconvert());
    m.def("_probe_fma", &probe_fma<double>, py::arg("n_threads"), py::arg("rounds"),
          "(seconds, multiply-adds) of independent double multiply-add chains on n_threads threads.");
    m.def("_probe_fma32", &probe_fma<float>, py::arg("n_threads"), py::arg("rounds"),
          "(seconds, multiply-adds) of independent float multiply-add chains on n_threads threads.");
    m.def("_probe_exp", &probe_exp<double>, py::arg("n_threads"), py::arg("n"),
          "(seconds, exps) of the engine's double vector exp, n per thread, on n_threads threads.");
    m.def("_probe_exp32", &probe_exp<float>, py::arg("n_threads"), py::arg("n"),
          "(seconds, exps) of the engine's float vector exp, n per thread, on n_threads threads.");
    py::class_<gaussmix::probe::ReadBuffer>(m, "_ReadProbe",
                                            "A buffer of `bytes`, spread over n_threads threads' memory.")
        .def(py::init([](std::int64_t bytes, int n_threads) {
                 if (bytes < 4096 || n_threads < 1)
                     throw std::invalid_argument("bytes must be at least 4096 and n_threads positive");
                 py::gil_scoped_release release;
                 return new gaussmix::probe::ReadBuffer(bytes, n_threads);
             }),
             py::arg("bytes"), py::arg("n_threads"))
        .def(
            "read", [](gaussmix::probe::ReadBuffer& b) {
                py::gil_scoped_release release;
                return b.read();
            },
            "Seconds to read the whole buffer once.")
        .def_property_readonly("bytes", &gaussmix::probe::ReadBuffer::bytes);
    m.def("all_finite", &all_finite<double>, py::arg("X").noconvert(), py::arg("n_threads"),
          "True when every element of the C-ordered array X is finite.");
    m.def("all_finite", &all_finite<float>, py::arg("X").noconvert(), py::arg("n_threads"));
    gaussmix::binding::register_stats(m);
    gaussmix::binding::register_gmm(m);
    gaussmix::binding::register_variational(m);
    gaussmix::binding::register_kde(m);
    gaussmix::binding::register_batch(m);
}
