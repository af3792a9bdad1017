// parallel.hpp -- threading and deterministic partitioning.
//
// Every reduction over samples in gaussmix is cut into chunks whose boundaries
// depend only on the problem size, never on the thread count. Chunks are
// processed in any order by any thread, each into its own partial, and the
// partials are merged in chunk order afterwards: results are bitwise identical
// for 1, 2 or 64 threads.
//
// Exceptions must not escape an OpenMP region (that terminates the process):
// parallel_for catches the first one and rethrows it after the region.
//
// Interruption: a host (the Python binding) may install a check that says
// whether the user asked to stop (Ctrl-C). The calling thread polls it between
// work items, at most every 20 ms; once it says stop, no thread takes new
// work and parallel_for throws Interrupted, so a long fit or evaluation
// returns within a work item of the request.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <type_traits>

#ifdef GAUSSMIX_OPENMP
#include <omp.h>
#endif

// Hot loops are compiled for several x86-64 levels in one portable binary
// (baseline, AVX2+FMA, AVX-512) and the best one is chosen when the library
// loads, from the CPU it runs on; everything they call is inlined into each
// version. Define GAUSSMIX_NO_MULTIVERSION for a single baseline build.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(GAUSSMIX_NO_MULTIVERSION) && \
    (__GNUC__ >= 12)
#define GAUSSMIX_MULTIVERSION \
    __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4"), flatten))
#else
#define GAUSSMIX_MULTIVERSION
#endif

// The vector kernels (simd.hpp) are instead instantiated once per vector
// width, each inside a function compiled for its instruction set, and
// dispatch_isa picks one when called: AVX-512 (64-byte vectors), AVX2 + FMA
// (32), or the baseline (16 bytes: SSE2, NEON).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(GAUSSMIX_NO_MULTIVERSION) && \
    (__GNUC__ >= 12)
#define GAUSSMIX_ISA_DISPATCH 1
#define GAUSSMIX_TARGET_AVX512 __attribute__((target("arch=x86-64-v4"), flatten))
#define GAUSSMIX_TARGET_AVX2 __attribute__((target("arch=x86-64-v3"), flatten))
#endif

namespace gaussmix {

using index_t = std::ptrdiff_t;

// Vector width in bytes of the widest instruction set of this CPU that the
// engine has kernels for (without dispatch: the one it was compiled for).
// The environment variable GAUSSMIX_ISA = avx2 or baseline caps it, to test
// or measure the narrower kernels on a wider CPU; it is read once.
inline int vector_bytes() noexcept {
#if defined(GAUSSMIX_ISA_DISPATCH)
    static const int vb = [] {
        int v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
                    ? 64
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 32
                                                                                  : 16;
        if (const char* cap = std::getenv("GAUSSMIX_ISA")) {
            if (std::strcmp(cap, "avx2") == 0 && v > 32) v = 32;
            if (std::strcmp(cap, "baseline") == 0) v = 16;
        }
        return v;
    }();
    return vb;
#elif defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    return 64;
#elif defined(__AVX2__) && defined(__FMA__)
    return 32;
#else
    return 16;
#endif
}

namespace detail {
#if defined(GAUSSMIX_ISA_DISPATCH)
template <class F>
GAUSSMIX_TARGET_AVX512 void run_avx512(F& f) {
    f(std::integral_constant<int, 64>{});
}
template <class F>
GAUSSMIX_TARGET_AVX2 void run_avx2(F& f) {
    f(std::integral_constant<int, 32>{});
}
template <class F>
__attribute__((flatten)) void run_base(F& f) {
    f(std::integral_constant<int, 16>{});
}
template <class F>
GAUSSMIX_TARGET_AVX512 __attribute__((noinline)) void kernel_avx512(F& f) {
    f();
}
template <class F>
GAUSSMIX_TARGET_AVX2 __attribute__((noinline)) void kernel_avx2(F& f) {
    f();
}
template <class F>
__attribute__((flatten, noinline)) void kernel_base(F& f) {
    f();
}
#endif
}  // namespace detail

// Calls f() as a function of its own, compiled for the instruction set of
// vector width VB, everything it calls inlined into it: a hot kernel inside
// a dispatched pass. Flattened into the whole pass, a register-tiled kernel
// is compiled and allocated with everything around it, and runs far below
// its own speed (the full-covariance log-densities at D = 64 on one AVX2
// core: 9 G multiply-adds a second in the pass, 18 on their own; apart, 14).
template <int VB, class F>
inline void isa_kernel(F&& f) {
#if defined(GAUSSMIX_ISA_DISPATCH)
    if constexpr (VB == 64)
        detail::kernel_avx512(f);
    else if constexpr (VB == 32)
        detail::kernel_avx2(f);
    else
        detail::kernel_base(f);
#else
    f();
#endif
}

// Calls f(std::integral_constant<int, VB>{}) with the vector width of this
// CPU, compiled for its instruction set (everything f calls is inlined into
// that instantiation).
template <class F>
void dispatch_isa(F&& f) {
#if defined(GAUSSMIX_ISA_DISPATCH)
    switch (vector_bytes()) {
        case 64: return detail::run_avx512(f);
        case 32: return detail::run_avx2(f);
        default: return detail::run_base(f);
    }
#elif defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    f(std::integral_constant<int, 64>{});
#elif defined(__AVX2__) && defined(__FMA__)
    f(std::integral_constant<int, 32>{});
#else
    f(std::integral_constant<int, 16>{});
#endif
}

inline bool openmp_enabled() noexcept {
#ifdef GAUSSMIX_OPENMP
    return true;
#else
    return false;
#endif
}

// OpenMP's default team size (honours OMP_NUM_THREADS and omp_set_num_threads,
// hence threadpoolctl), or 1 in a serial build.
inline int default_threads() noexcept {
#ifdef GAUSSMIX_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int available_cores() noexcept {
#ifdef GAUSSMIX_OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

// Multiply-adds that make a thread's share worth starting it for.
constexpr double kWorkPerThread = 2e5;

// Threads worth starting for `work` (about a multiply-add per unit): waking a
// team costs microseconds and a busy second core costs far more, so small
// problems run on the calling thread. Results do not depend on it (chunks
// are fixed by the problem size), only speed does.
inline int threads_for(double work, int n_threads) {
    const double t = std::floor(work / kWorkPerThread);
    return std::max(1, static_cast<int>(std::min<double>(n_threads, std::max(t, 1.0))));
}

class Interrupted : public std::runtime_error {
   public:
    Interrupted() : std::runtime_error("gaussmix: computation interrupted") {}
};

using InterruptCheck = bool (*)();

inline std::atomic<InterruptCheck>& interrupt_check_slot() {
    static std::atomic<InterruptCheck> check{nullptr};
    return check;
}

// Installs the check (nullptr: none). It is called on the thread that
// entered the engine, and must return true when the computation should stop.
inline void set_interrupt_check(InterruptCheck check) { interrupt_check_slot().store(check); }

namespace detail {

// True while the calling thread must not poll the host (see QuietPolls in
// batch.hpp): a worker thread running a whole small job of its own.
inline bool& polls_muted() {
    thread_local bool muted = false;
    return muted;
}

// Rate-limited polling of the interrupt check, for the calling thread: the
// first check 20 ms after construction (the host checks before it calls in;
// a short call need not take the host's lock again), then every 20 ms.
class InterruptPoller {
   public:
    InterruptPoller() : next_(std::chrono::steady_clock::now() + std::chrono::milliseconds(20)) {}

    bool poll() {
        const InterruptCheck check = interrupt_check_slot().load(std::memory_order_relaxed);
        if (!check || polls_muted()) return false;
        const auto now = std::chrono::steady_clock::now();
        if (now < next_) return false;
        next_ = now + std::chrono::milliseconds(20);
        return check();
    }

   private:
    std::chrono::steady_clock::time_point next_;
};

}  // namespace detail

// Throws Interrupted if the installed check asks to stop (rate-limited).
inline void check_interrupt(detail::InterruptPoller& poller) {
    if (poller.poll()) throw Interrupted();
}

// Calls body(i) for i in [0, n) on up to n_threads threads (dynamic schedule).
// The first exception thrown by any body is rethrown on the calling thread;
// an interrupt request stops the loop with Interrupted.
template <class Body>
void parallel_for(index_t n, int n_threads, Body&& body) {
    if (n <= 0) return;
    detail::InterruptPoller poller;
    if (n_threads <= 1 || n == 1) {
        for (index_t i = 0; i < n; ++i) {
            check_interrupt(poller);
            body(i);
        }
        return;
    }
    std::exception_ptr error = nullptr;
    std::mutex error_mutex;
    std::atomic<bool> stop{false};
#ifdef GAUSSMIX_OPENMP
    const int team = static_cast<int>(std::min<index_t>(n_threads, n));
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
#endif
    for (index_t i = 0; i < n; ++i) {
        if (stop.load(std::memory_order_relaxed)) continue;  // stop handing out work
        try {
#ifdef GAUSSMIX_OPENMP
            if (omp_get_thread_num() == 0) check_interrupt(poller);
#endif
            body(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            stop.store(true);
        }
    }
    if (error) std::rethrow_exception(error);
}

// A fixed partition of [0, n) into contiguous chunks.
struct Partition {
    index_t n = 0;
    index_t n_chunks = 0;
    index_t chunk = 0;  // rows per chunk (the last one may be shorter)

    index_t begin(index_t c) const { return c * chunk; }
    index_t end(index_t c) const { return std::min(n, (c + 1) * chunk); }
};

// Chooses the partition from the problem alone: at least `min_rows` rows a
// chunk, at most `max_chunks` chunks, and no more chunks than `memory_budget`
// bytes of per-chunk partials (each `partial_bytes` large) allow -- but never
// fewer than 8 chunks while there are rows for them, so two threads balance.
// Chunks are whole multiples of `granule` rows (a pass's block), so that none
// ends in a sliver of a block that costs a block's overheads.
inline Partition make_partition(index_t n, index_t min_rows, std::size_t partial_bytes, index_t granule = 1,
                                std::size_t memory_budget = std::size_t(64) << 20,
                                index_t max_chunks = 512) {
    Partition p;
    p.n = n;
    if (n <= 0) return p;
    index_t by_rows = (n + min_rows - 1) / min_rows;
    index_t by_memory = static_cast<index_t>(memory_budget / std::max<std::size_t>(partial_bytes, 1));
    index_t chunks = std::min({by_rows, max_chunks, std::max<index_t>(by_memory, 8)});
    chunks = std::max<index_t>(chunks, 1);
    granule = std::max<index_t>(granule, 1);
    p.chunk = ((n + chunks - 1) / chunks + granule - 1) / granule * granule;
    p.n_chunks = (n + p.chunk - 1) / p.chunk;
    return p;
}

}  // namespace gaussmix
