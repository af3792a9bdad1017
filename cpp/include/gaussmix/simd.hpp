// simd.hpp -- fixed-width vector values for the hot kernels.
//
// vec<T, N> is N lanes of T as one value (a GCC/Clang vector extension), so a
// kernel can hold a dozen running sums as named values that the compiler
// keeps in registers. The same sums written as local arrays, T acc[R][W],
// were kept on the stack by GCC (every multiply-add became load, add, store
// through memory). Each lane does what the scalar code would: no reassociation
// beyond the lane split, no fast-math.
//
// Kernels take the vector width in bytes, VB, as a template parameter and are
// instantiated once per instruction set (64: AVX-512, 32: AVX2, 16: SSE2 and
// others; see parallel.hpp's dispatch_isa). A width the target does not have
// is lowered by GCC element by element through memory, many times slower, so
// a kernel must never use vectors wider than its VB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define GAUSSMIX_X86_INTRINSICS 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
// Vector values wider than the baseline change the calling convention; they
// are only passed between inlined functions of this engine.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace gaussmix {
namespace simd {

// Allocates on 64-byte boundaries, one cache line: scratch that kernels read
// and write a whole vector at a time, so that no 64-byte access straddles two
// lines. With malloc's 16-byte alignment, how many accesses straddle lines,
// and so the speed of a pass, would depend on where its workspace happened
// to land, and vary between two runs of the same code.
template <class T>
struct CacheAligned {
    using value_type = T;
    static constexpr std::size_t kAlign = 64;
    CacheAligned() noexcept = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) noexcept {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign)));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(kAlign)); }
    friend bool operator==(const CacheAligned&, const CacheAligned&) noexcept { return true; }
    friend bool operator!=(const CacheAligned&, const CacheAligned&) noexcept { return false; }
};
template <class T>
using aligned_vector = std::vector<T, CacheAligned<T>>;

template <class T, int N>
struct vec_of {
    typedef T type __attribute__((vector_size(N * sizeof(T))));
};
template <class T, int N>
using vec = typename vec_of<T, N>::type;

// Lanes of T in VB bytes, and the vector of them.
template <class T, int VB>
constexpr int lanes = VB / static_cast<int>(sizeof(T));
template <class T, int VB>
using native = vec<T, lanes<T, VB>>;

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
    vec<T, N> v;
    for (int t = 0; t < N; ++t) v[t] = x;
    return v;
}

// N lanes of p converted to double.
template <int N, class T>
inline vec<double, N> load_double(const T* p) {
    if constexpr (std::is_same<T, double>::value)
        return load<double, N>(p);
    else
        return __builtin_convertvector((load<T, N>(p)), vec<double, N>);
}

// Sum of the lanes, by halving (the same order at every width).
template <int N>
inline double hsum(const vec<double, N>& v) {
    if constexpr (N == 1) {
        return v[0];
    } else {
        vec<double, N / 2> lo, hi;
        std::memcpy(&lo, &v, sizeof lo);
        std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
        return hsum<N / 2>(lo + hi);
    }
}

// The lane sums of four vectors, {sum a, sum b, sum c, sum d}. At eight lanes
// by pairwise halving across the four (12 vector operations instead of 28
// scalar ones); otherwise one vector at a time.
template <int N>
inline vec<double, 4> hsum4(const vec<double, N>& a, const vec<double, N>& b, const vec<double, N>& c,
                            const vec<double, N>& d) {
    if constexpr (N == 8) {
        using V = vec<double, 8>;
        using I = vec<long long, 8>;
        const V ab = __builtin_shuffle(a, b, I{0, 1, 2, 3, 8, 9, 10, 11}) +
                     __builtin_shuffle(a, b, I{4, 5, 6, 7, 12, 13, 14, 15});
        const V cd = __builtin_shuffle(c, d, I{0, 1, 2, 3, 8, 9, 10, 11}) +
                     __builtin_shuffle(c, d, I{4, 5, 6, 7, 12, 13, 14, 15});
        // {a, a, c, c, b, b, d, d} partial sums
        const V w = __builtin_shuffle(ab, cd, I{0, 1, 8, 9, 4, 5, 12, 13}) +
                    __builtin_shuffle(ab, cd, I{2, 3, 10, 11, 6, 7, 14, 15});
        const V s = __builtin_shuffle(w, I{0, 4, 2, 6, 1, 5, 3, 7});
        vec<double, 4> lo, hi;
        std::memcpy(&lo, &s, sizeof lo);
        std::memcpy(&hi, reinterpret_cast<const char*>(&s) + sizeof lo, sizeof hi);
        return lo + hi;
    } else {
        return vec<double, 4>{hsum<N>(a), hsum<N>(b), hsum<N>(c), hsum<N>(d)};
    }
}

// out[i] = the lane sum of v[i], i < M, four at a time.
template <int N, int M>
inline void hsum_n(const vec<double, N> (&v)[M], double* out) {
    int i = 0;
    for (; i + 4 <= M; i += 4) store<double, 4>(out + i, hsum4<N>(v[i], v[i + 1], v[i + 2], v[i + 3]));
    for (; i < M; ++i) out[i] = hsum<N>(v[i]);
}

// The lanes of x that are not below lo (a NaN is not), as bits: one compare
// into a mask. On x86 by the instruction set of the vector width (these
// functions carry its target, so that they are inlined only into the kernels
// of that width); elsewhere lane by lane. (GCC lowers the portable form to a
// compare and a chain of extractions, one per lane.)
#if defined(GAUSSMIX_X86_INTRINSICS)
namespace detail {
__attribute__((target("avx512f"))) inline unsigned lanes_not_below512(vec<double, 8> x, double lo) {
    __m512d a;
    std::memcpy(&a, &x, sizeof a);
    return _mm512_cmp_pd_mask(a, _mm512_set1_pd(lo), _CMP_NLT_UQ);
}
__attribute__((target("avx512f"))) inline unsigned lanes_not_below512(vec<float, 16> x, float lo) {
    __m512 a;
    std::memcpy(&a, &x, sizeof a);
    return _mm512_cmp_ps_mask(a, _mm512_set1_ps(lo), _CMP_NLT_UQ);
}
__attribute__((target("avx"))) inline unsigned lanes_not_below256(vec<double, 4> x, double lo) {
    __m256d a;
    std::memcpy(&a, &x, sizeof a);
    return static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(a, _mm256_set1_pd(lo), _CMP_NLT_UQ)));
}
__attribute__((target("avx"))) inline unsigned lanes_not_below256(vec<float, 8> x, float lo) {
    __m256 a;
    std::memcpy(&a, &x, sizeof a);
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(lo), _CMP_NLT_UQ)));
}
inline unsigned lanes_not_below128(vec<double, 2> x, double lo) {
    __m128d a;
    std::memcpy(&a, &x, sizeof a);
    return static_cast<unsigned>(_mm_movemask_pd(_mm_cmpnlt_pd(a, _mm_set1_pd(lo))));
}
inline unsigned lanes_not_below128(vec<float, 4> x, float lo) {
    __m128 a;
    std::memcpy(&a, &x, sizeof a);
    return static_cast<unsigned>(_mm_movemask_ps(_mm_cmpnlt_ps(a, _mm_set1_ps(lo))));
}
}  // namespace detail
#endif

template <class T, int N>
inline unsigned lanes_not_below(const vec<T, N>& x, T lo) {
#if defined(GAUSSMIX_X86_INTRINSICS)
    constexpr std::size_t bytes = sizeof(T) * N;
    if constexpr (bytes == 64) return detail::lanes_not_below512(x, lo);
    if constexpr (bytes == 32) return detail::lanes_not_below256(x, lo);
    if constexpr (bytes == 16) return detail::lanes_not_below128(x, lo);
#endif
    unsigned bits = 0;
    for (int t = 0; t < N; ++t) bits |= (x[t] < lo ? 0u : 1u) << t;
    return bits;
}

// Bit t set where byte t of p[0, 16) is not zero (SSE2 on x86).
inline unsigned nonzero_bytes16(const unsigned char* p) {
#if defined(GAUSSMIX_X86_INTRINSICS)
    __m128i v;
    std::memcpy(&v, p, sizeof v);
    return ~static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))) & 0xffffu;
#else
    unsigned bits = 0;
    for (int t = 0; t < 16; ++t) bits |= (p[t] != 0 ? 1u : 0u) << t;
    return bits;
#endif
}

// Bit j set where bit t of byte j of p[0, 16) is (SSE2 on x86).
inline unsigned bit_of_bytes16(const unsigned char* p, int t) {
#if defined(GAUSSMIX_X86_INTRINSICS)
    __m128i v;
    std::memcpy(&v, p, sizeof v);
    // bit t of each byte to its top bit, by a shift of the 64-bit lanes
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_sll_epi64(v, _mm_cvtsi32_si128(7 - t))));
#else
    unsigned bits = 0;
    for (int j = 0; j < 16; ++j) bits |= ((p[j] >> t) & 1u) << j;
    return bits;
#endif
}

// Writes base + t for each bit t of bits (< 2^m, m <= 16) to out, in order,
// and returns their number; out must have room for 16 entries. One vector
// compression with AVX-512 (VB = 64), a branch-free loop over m otherwise.
#if defined(GAUSSMIX_X86_INTRINSICS)
namespace detail {
__attribute__((target("avx512f"))) inline int compress_indices512(unsigned bits, int base, std::int32_t* out) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(base),
                                         _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    _mm512_storeu_si512(out, _mm512_maskz_compress_epi32(static_cast<__mmask16>(bits), idx));
    return __builtin_popcount(bits);
}
}  // namespace detail
#endif

template <int VB>
inline int compress_indices16(unsigned bits, int m, int base, std::int32_t* out) {
#if defined(GAUSSMIX_X86_INTRINSICS)
    if constexpr (VB == 64) return detail::compress_indices512(bits, base, out);
#endif
    int n = 0;
    for (int t = 0; t < m; ++t) {
        out[n] = base + t;
        n += static_cast<int>((bits >> t) & 1u);
    }
    return n;
}

// Eight rows of eight values (row-major, rows `stride` apart at src) stored
// as eight columns: dst[l * ld + i] = src[i * stride + l]. Three rounds of
// lane shuffles; for a width of eight lanes of T.
template <class T>
inline void transpose8(const T* __restrict src, std::ptrdiff_t stride, T* __restrict dst, std::ptrdiff_t ld) {
    using V = vec<T, 8>;
    using I = vec<typename std::conditional<sizeof(T) == 8, long long, int>::type, 8>;
    V r[8];
    for (int i = 0; i < 8; ++i) r[i] = load<T, 8>(src + stride * i);
    const I lo1 = {0, 8, 2, 10, 4, 12, 6, 14}, hi1 = {1, 9, 3, 11, 5, 13, 7, 15};
    const I lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const I lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    V t[8], u[8];
    for (int k = 0; k < 4; ++k) {  // pairs of rows, interleaved
        t[2 * k] = __builtin_shuffle(r[2 * k], r[2 * k + 1], lo1);
        t[2 * k + 1] = __builtin_shuffle(r[2 * k], r[2 * k + 1], hi1);
    }
    for (int k = 0; k < 2; ++k) {  // pairs of pairs
        u[4 * k] = __builtin_shuffle(t[4 * k], t[4 * k + 2], lo2);
        u[4 * k + 2] = __builtin_shuffle(t[4 * k], t[4 * k + 2], hi2);
        u[4 * k + 1] = __builtin_shuffle(t[4 * k + 1], t[4 * k + 3], lo2);
        u[4 * k + 3] = __builtin_shuffle(t[4 * k + 1], t[4 * k + 3], hi2);
    }
    for (int c = 0; c < 4; ++c) {  // halves: columns c and c + 4
        store<T, 8>(dst + c * ld, __builtin_shuffle(u[c], u[c + 4], lo4));
        store<T, 8>(dst + (c + 4) * ld, __builtin_shuffle(u[c], u[c + 4], hi4));
    }
}

}  // namespace simd
}  // namespace gaussmix
