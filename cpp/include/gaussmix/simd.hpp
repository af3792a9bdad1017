// simd.hpp -- fixed-width vector values for the hot kernels.
//
// vec<T, N> is N lanes of T as one value (a GCC/Clang vector extension), so a
// kernel can hold a dozen running sums as named values that the compiler
// keeps in registers. The same sums written as local arrays, T acc[R][W],
// were kept on the stack by GCC (every multiply-add became load, add, store
// through memory). Each lane does what the scalar code would: no reassociation
// beyond the lane split, no fast-math. One type serves every instruction set a
// kernel is compiled for (GAUSSMIX_MULTIVERSION); on a narrower one the
// compiler splits it into the vectors it has.
#pragma once

#include <cstddef>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__)
// Vector values of 64 bytes change the calling convention where AVX-512 is
// off; they are only passed between inlined functions of this engine.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace gaussmix {
namespace simd {

template <class T, int N>
struct vec_of {
    typedef T type __attribute__((vector_size(N * sizeof(T))));
};
template <class T, int N>
using vec = typename vec_of<T, N>::type;

// Eight doubles: the width the statistics are accumulated at.
constexpr int kW = 8;
using vd = vec<double, kW>;

template <class T, int N>
inline vec<T, N> load(const T* p) {
    vec<T, N> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <class T, int N>
inline void store(T* p, const vec<T, N>& v) {
    std::memcpy(p, &v, sizeof v);
}

template <class T, int N>
inline vec<T, N> splat(T x) {
    vec<T, N> v = {};
    return v + x;
}

// kW lanes of p converted to double.
template <class T>
inline vd load_double(const T* p) {
    return __builtin_convertvector((load<T, kW>(p)), vd);
}

// Sum of the lanes, in lane order.
inline double hsum(const vd& v) {
    double s = v[0];
    for (int t = 1; t < kW; ++t) s += v[t];
    return s;
}

}  // namespace simd
}  // namespace gaussmix
