// probe.hpp -- short measurements of what this machine can do, for the
// hardware bounds of the benchmarks: the rate of vector multiply-adds, of the
// engine's own vector exp, and of reading memory, each on n_threads threads
// with the kernels of the instruction set the engine selected (dispatch_isa,
// called inside the parallel region: the region's body is a function of its
// own, compiled for the baseline unless it dispatches itself).
//
// Each probe returns the wall time of its parallel region in seconds; the
// caller divides the work it asked for by the best of several runs. The work
// is arranged so that nothing else limits it:
//   fma:  R independent chains a <- a * b + c per thread, R vectors of W
//         lanes, R large enough to cover the multiply-add latency of two pipes
//         (R * W * rounds multiply-adds a thread);
//   exp:  exp_vec on 4 independent vectors at a time, from a 4 kB input that
//         stays in L1 (n exps a thread);
//   read: a sum over a buffer far larger than the caches, 4 vectors at a
//         time, each thread its own contiguous share (bytes in all).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "parallel.hpp"
#include "simd.hpp"
#include "vmath.hpp"

namespace gaussmix {
namespace probe {

namespace detail {

template <class F>
double timed_team(int n_threads, F&& per_thread) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(n_threads, n_threads, per_thread);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class T, int VB>
T fma_chains(std::int64_t rounds, T seed, T mul, T add) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    // 12 chains fill 12 of AVX2's 16 registers; 24 of AVX-512's 32.
    constexpr int R = VB == 64 ? 24 : 12;
    V a[R];
    for (int r = 0; r < R; ++r) a[r] = V{} + (seed + T(r));
    const V b = V{} + mul, c = V{} + add;  // run-time values: nothing to fold
    for (std::int64_t i = 0; i < rounds; ++i) {
        for (int r = 0; r < R; ++r) a[r] = a[r] * b + c;
    }
    V s = V{};
    for (int r = 0; r < R; ++r) s += a[r];
    T out = T(0);
    for (int l = 0; l < W; ++l) out += s[l];
    return out;
}

template <class T, int VB>
T exp_chains(std::int64_t n, const T* x, std::int64_t nx) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    V s0 = V{}, s1 = V{}, s2 = V{}, s3 = V{};
    for (std::int64_t done = 0; done < n;) {
        for (std::int64_t i = 0; i + 4 * W <= nx && done < n; i += 4 * W, done += 4 * W) {
            s0 += vmath::exp_vec<W>(simd::load<T, W>(x + i));
            s1 += vmath::exp_vec<W>(simd::load<T, W>(x + i + W));
            s2 += vmath::exp_vec<W>(simd::load<T, W>(x + i + 2 * W));
            s3 += vmath::exp_vec<W>(simd::load<T, W>(x + i + 3 * W));
        }
    }
    const V s = (s0 + s1) + (s2 + s3);
    T out = T(0);
    for (int l = 0; l < W; ++l) out += s[l];
    return out;
}

template <int VB>
double read_sum(const double* p, std::int64_t n) {
    constexpr int W = simd::lanes<double, VB>;
    using V = simd::vec<double, W>;
    V s0 = V{}, s1 = V{}, s2 = V{}, s3 = V{};
    std::int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        s0 += simd::load<double, W>(p + i);
        s1 += simd::load<double, W>(p + i + W);
        s2 += simd::load<double, W>(p + i + 2 * W);
        s3 += simd::load<double, W>(p + i + 3 * W);
    }
    const V s = (s0 + s1) + (s2 + s3);
    double out = 0.0;
    for (int l = 0; l < W; ++l) out += s[l];
    for (; i < n; ++i) out += p[i];
    return out;
}

}  // namespace detail

// Multiply-adds a thread does in fma(rounds): R * W * rounds.
template <class T>
std::int64_t fma_per_thread(std::int64_t rounds) {
    const int vb = vector_bytes();
    const int w = vb / static_cast<int>(sizeof(T));
    return static_cast<std::int64_t>(vb == 64 ? 24 : 12) * w * rounds;
}

// Seconds for n_threads threads to do fma_per_thread<T>(rounds) multiply-adds each.
template <class T>
double fma(int n_threads, std::int64_t rounds) {
    std::vector<T> sink(static_cast<std::size_t>(n_threads), T(0));
    double seconds = 0.0;
    seconds = detail::timed_team(n_threads, [&](index_t t) {
        dispatch_isa([&](auto vb) {
            sink[static_cast<std::size_t>(t)] =
                detail::fma_chains<T, decltype(vb)::value>(rounds, T(t), T(0.999999), T(1e-6));
        });
    });
    volatile T keep = sink[0];
    (void)keep;
    return seconds;
}

// Exps a thread computes in exp(n): n rounded up to a multiple of 4 vectors.
template <class T>
std::int64_t exp_per_thread(std::int64_t n) {
    const std::int64_t group = 4 * vector_bytes() / static_cast<std::int64_t>(sizeof(T));
    return (n + group - 1) / group * group;
}

// Seconds for n_threads threads to compute exp_per_thread<T>(n) exps each,
// of arguments spread over [-30, 0].
template <class T>
double exp(int n_threads, std::int64_t n) {
    constexpr std::int64_t nx = 512;
    simd::aligned_vector<T> x(nx);
    for (std::int64_t i = 0; i < nx; ++i) x[static_cast<std::size_t>(i)] = T(-30) * T(i) / T(nx);
    std::vector<T> sink(static_cast<std::size_t>(n_threads), T(0));
    double seconds = 0.0;
    seconds = detail::timed_team(n_threads, [&](index_t t) {
        dispatch_isa([&](auto vb) {
            sink[static_cast<std::size_t>(t)] = detail::exp_chains<T, decltype(vb)::value>(n, x.data(), nx);
        });
    });
    volatile T keep = sink[0];
    (void)keep;
    return seconds;
}

// A buffer of `bytes` (rounded down to whole doubles), each thread's share
// first written by that thread (so it sits in that thread's memory node).
class ReadBuffer {
   public:
    ReadBuffer(std::int64_t bytes, int n_threads)
        : n_(bytes / static_cast<std::int64_t>(sizeof(double))), threads_(std::max(n_threads, 1)), data_(n_) {
        parallel_for(threads_, threads_, [&](index_t t) {
            for (std::int64_t i = begin(t); i < begin(t + 1); ++i) data_[static_cast<std::size_t>(i)] = 1.0;
        });
    }

    // Seconds for the team to read the whole buffer once.
    double read() {
        std::vector<double> sink(static_cast<std::size_t>(threads_), 0.0);
        double seconds = 0.0;
        seconds = detail::timed_team(threads_, [&](index_t t) {
            dispatch_isa([&](auto vb) {
                sink[static_cast<std::size_t>(t)] =
                    detail::read_sum<decltype(vb)::value>(data_.data() + begin(t), begin(t + 1) - begin(t));
            });
        });
        volatile double keep = sink[0];
        (void)keep;
        return seconds;
    }

    std::int64_t bytes() const { return n_ * static_cast<std::int64_t>(sizeof(double)); }
    int threads() const { return threads_; }

   private:
    std::int64_t begin(index_t t) const { return n_ * t / threads_; }

    std::int64_t n_;
    int threads_;
    simd::aligned_vector<double> data_;
};

}  // namespace probe
}  // namespace gaussmix
