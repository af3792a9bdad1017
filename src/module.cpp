// The compiled core of gaussmix: one module, one register_* call per area.
#include "binding.hpp"
#include "gaussmix/vmath.hpp"

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
    gaussmix::set_interrupt_check(&python_interrupt_requested);
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
    gaussmix::binding::register_gmm(m);
    gaussmix::binding::register_kde(m);
}
