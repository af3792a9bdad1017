// vmath.hpp -- exp and log, written for whole vectors.
//
// exp_vec (below, with its derivation) takes the values of a log-sum-exp,
// x <= 0, one 64-byte vector at a time.
//
// log(x) for normal positive x: x = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(f), f = (m - 1)/(m + 1), |f| <= 0.1716, by its odd series
// (through f^23 in double, truncation < 1e-18; f^9 in float, < 2e-8), plus
// e ln 2 in two parts. Exponent and mantissa come from the bits with integer
// and magic-number arithmetic only, so it vectorises without AVX-512's
// int64 conversions. NaN gives NaN; zero, negative, subnormal and infinite
// inputs are outside its domain (the E-step passes sums of exponentials in
// [1, K]).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "parallel.hpp"
#include "simd.hpp"

namespace gaussmix {
namespace vmath {

namespace detail {
inline double bits_to_double(std::int64_t b) {
    double d;
    std::memcpy(&d, &b, sizeof d);
    return d;
}
inline float bits_to_float(std::int32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
}  // namespace detail

namespace detail {
inline std::int64_t double_to_bits(double d) {
    std::int64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
}
inline std::int32_t float_to_bits(float f) {
    std::int32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}
}  // namespace detail

inline double log_scalar(double x) {
    constexpr double ln2_hi = 6.93147180369123816490e-01;
    constexpr double ln2_lo = 1.90821492927058770002e-10;
    const std::int64_t b = detail::double_to_bits(x);
    // mantissa m in [1, 2), then in [sqrt(1/2), sqrt(2))
    double m = detail::bits_to_double((b & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
    // the biased exponent as a double: 2^52 + e_biased, minus the offsets
    double e = detail::bits_to_double(((b >> 52) & 0x7ff) | 0x4330000000000000LL) -
               (4503599627370496.0 + 1023.0);
    const bool big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    e = big ? e + 1.0 : e;
    const double f = (m - 1.0) / (m + 1.0);
    const double f2 = f * f;
    double p = 2.0 / 23;
    p = p * f2 + 2.0 / 21;
    p = p * f2 + 2.0 / 19;
    p = p * f2 + 2.0 / 17;
    p = p * f2 + 2.0 / 15;
    p = p * f2 + 2.0 / 13;
    p = p * f2 + 2.0 / 11;
    p = p * f2 + 2.0 / 9;
    p = p * f2 + 2.0 / 7;
    p = p * f2 + 2.0 / 5;
    p = p * f2 + 2.0 / 3;
    const double lm = f * f2 * p + 2.0 * f;
    const double y = e * ln2_hi + (lm + e * ln2_lo);
    return x == x ? y : x;
}

inline float log_scalar(float x) {
    constexpr float ln2_hi = 0.693359375f;
    constexpr float ln2_lo = -2.12194440e-4f;
    const std::int32_t b = detail::float_to_bits(x);
    float m = detail::bits_to_float((b & 0x007fffff) | 0x3f800000);
    float e = detail::bits_to_float(((b >> 23) & 0xff) | 0x4b000000) - (8388608.0f + 127.0f);
    const bool big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e = big ? e + 1.0f : e;
    const float f = (m - 1.0f) / (m + 1.0f);
    const float f2 = f * f;
    float p = 2.0f / 9;
    p = p * f2 + 2.0f / 7;
    p = p * f2 + 2.0f / 5;
    p = p * f2 + 2.0f / 3;
    const float lm = f * f2 * p + 2.0f * f;
    const float y = e * ln2_hi + (lm + e * ln2_lo);
    return x == x ? y : x;
}

// exp over one vector of L lanes, for x <= 0 (as log-sum-exp passes: values
// minus their maximum). With s = log2 L: n = round(x 2^s / ln 2),
// x = (n >> s) ln 2 + (n & (L - 1)) ln 2 / L + r, |r| <= ln 2 / 2L, so
// exp(x) = 2^(n >> s) * 2^((n & (L - 1)) / L) * exp(r). The L powers
// 2^(j/L) fill one vector register and are looked up by a lane permutation
// (not a gather); exp(r) - 1 is a polynomial r p(r) whose error is below
// 1e-17 in double: for L = 8 and 4, p is the minimax polynomial of
// (exp(r) - 1) / r on |r| <= ln 2 / 2L (degree 6 and 7, by the Remez
// exchange in 50-digit arithmetic: errors 4.8e-18 and 5.9e-18 in exp(r) - 1,
// one degree less than the Taylor polynomial needs), for L = 2 and 1 the
// Taylor polynomial (degree 11 and 13 in all); in float, the Taylor
// polynomial below 1e-8 (degree 3 at L = 16, 4 at 8, 5 at 4);
// 2^(n >> s) 2^(j/L) is one integer addition: the table holds the bits of
// 2^(j/L) less j << (52 - s), so adding n << (52 - s) (the low bits of n
// shifted into the exponent field, from the bits of the rounded x 2^s / ln 2)
// adds n >> s to its exponent (the form of glibc's exp; Tang, ACM TOMS 15,
// 1989, for the table). No right shift or masking is needed (64-bit
// arithmetic right shifts are AVX-512's; the 8-lane permutation reads the
// low 3 bits of its indices only), and 2^(n/L) (1 + that) is one fused
// multiply-add. Inputs below -708.39 (float: -87.33), -inf included, give 0,
// where the true value is below the smallest normal number; NaN gives NaN.
// Positive inputs up to 709 (float: 88) are still right; larger ones are
// outside the domain. Within 1.5 ulp of the exact value (measured against
// long double on 9e6 inputs: 1.04 ulp at L = 8, 1.12 at 4, 1.29 at 2;
// checked against libm in the tests).
namespace detail {
// 2^(j/8), j < 8, and 2^(j/16), j < 16, correctly rounded.
constexpr double kPow2Eighths[8] = {1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
                                    1.4142135623730951, 1.5422108254079407, 1.681792830507429,
                                    1.8340080864093424};
constexpr float kPow2Sixteenths[16] = {
    1.0f, 1.0442737824274138f, 1.0905077326652577f, 1.1387886347566916f, 1.189207115002721f,
    1.241857812073484f, 1.2968395546510096f, 1.3542555469368927f, 1.4142135623730951f,
    1.4768261459394993f, 1.5422108254079407f, 1.6104903319492543f, 1.681792830507429f,
    1.7562521603732995f, 1.8340080864093424f, 1.9152065613971474f};

// The coefficients of r^k, k = 0 .. deg, of exp(r) - 1 for exp_vec<double>
// with L lanes: minimax for L = 8 (degree 7) and L = 4 (degree 8), see
// exp_vec; Taylor's 1/k! otherwise.
constexpr double kExpPoly8[8] = {0.0,
                                 1.0,
                                 0.500000000000018,
                                 0.1666666666666738,
                                 0.04166666659022593,
                                 0.008333333317559848,
                                 0.0013889703480795548,
                                 0.00019842433543822442};
constexpr double kExpPoly4[9] = {0.0,
                                 0.9999999999999999,
                                 0.49999999999999994,
                                 0.16666666666695817,
                                 0.04166666666674683,
                                 0.008333333139180278,
                                 0.0013888888558828713,
                                 0.0001984540773658604,
                                 2.480675966874686e-05};

constexpr int log2i(int v) { return v <= 1 ? 0 : 1 + log2i(v / 2); }

// 1/k! for k < 14
constexpr double kInvFactorial[14] = {1.0, 1.0, 0.5, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,
                                      1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800,
                                      1.0 / 479001600, 1.0 / 6227020800};

// tab[t] for the lanes of a vector, by permutation with the lane indices j.
template <class T, int L, class VU>
inline simd::vec<T, L> lookup(const simd::vec<T, L>& tab, const VU& j) {
    using U = typename std::remove_cv<typename std::remove_reference<decltype(j[0])>::type>::type;
    if constexpr (L == 1) {
        return tab;
    } else if constexpr (sizeof(T) == 8 && L < 8) {
        // 64-bit lanes as pairs of 32-bit lanes: AVX2 permutes those by a
        // vector of indices (vpermd), but not 64-bit ones.
        using I32 = simd::vec<std::int32_t, 2 * L>;
        const VU idx = (j * 2) | ((j * 2 + 1) << 32);
        I32 t32, i32;
        std::memcpy(&t32, &tab, sizeof t32);
        std::memcpy(&i32, &idx, sizeof i32);
        const I32 r32 = __builtin_shuffle(t32, i32);
        simd::vec<T, L> r;
        std::memcpy(&r, &r32, sizeof r);
        return r;
    } else {
        using S = simd::vec<typename std::make_signed<U>::type, L>;
        return __builtin_shuffle(tab, reinterpret_cast<S>(j));
    }
}
}  // namespace detail

// exp_vec gives exactly 0 below this (where exp is below the smallest normal
// number): the E-step skips the work of a component on the rows where all
// of its values are below it.
template <class T>
constexpr T exp_zero_below() {
    return std::is_same<T, double>::value ? T(-708.39) : T(-87.33f);
}

template <int L>
inline simd::vec<double, L> exp_vec(simd::vec<double, L> x) {
    using V = simd::vec<double, L>;
    using vu = simd::vec<std::uint64_t, L>;
    constexpr int s = detail::log2i(L);
    constexpr int deg = L >= 8 ? 7 : L == 4 ? 8 : L == 2 ? 11 : 13;
    constexpr const double* c = L >= 8 ? detail::kExpPoly8 : L == 4 ? detail::kExpPoly4 : detail::kInvFactorial;
    constexpr double lo = exp_zero_below<double>();
    constexpr double k_ln2 = 1.4426950408889634074 * L;                // L / ln 2
    constexpr double ln2_hi = 6.93147180369123816490e-01 / L;         // few bits: n * ln2_hi is exact
    constexpr double ln2_lo = 1.90821492927058770002e-10 / L;
    constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer
    static_assert(L <= 8, "exp_vec<double>: at most 8 lanes");
    // the bits of 2^(t/L) less t << (52 - s), as doubles for the permutation
    V tab;
    for (int t = 0; t < L; ++t) {
        std::uint64_t b;
        std::memcpy(&b, &detail::kPow2Eighths[(t * 8) / L], sizeof b);
        b -= static_cast<std::uint64_t>(t) << (52 - s);
        std::memcpy(&tab[t], &b, sizeof b);
    }
    const V t = x * k_ln2 + shifter;
    const V n = t - shifter;
    const V r = (x - n * ln2_hi) - n * ln2_lo;
    V p = r * c[deg] + c[deg - 1];
    for (int k = deg - 2; k >= 1; --k) p = p * r + c[k];
    const V q = p * r;  // exp(r) - 1
    // the low bits of t are n in two's complement (1.5 * 2^52 has none below
    // bit 51, and the shift below drops all but the low 12 + s)
    vu bits;
    std::memcpy(&bits, &t, sizeof bits);
    const vu j = L == 8 ? bits : bits & (L - 1);
    vu e;
    const V tj = detail::lookup<double, L>(tab, j);
    std::memcpy(&e, &tj, sizeof e);
    // 2^(n / L) = 2^(n >> s) 2^(j / L); n >= -1022 L wherever the result is kept
    e += bits << (52 - s);
    V scale;
    std::memcpy(&scale, &e, sizeof scale);
    const V y = scale * q + scale;  // one rounding for 2^(n/L) exp(r)
    return x < lo ? 0.0 : y;  // also where the integer path above overflowed
}

template <int L>
inline simd::vec<float, L> exp_vec(simd::vec<float, L> x) {
    using V = simd::vec<float, L>;
    using vu = simd::vec<std::uint32_t, L>;
    constexpr int s = detail::log2i(L > 16 ? 16 : L);
    constexpr int m = 1 << s;  // table entries
    constexpr int deg = m >= 16 ? 3 : m == 8 ? 4 : m == 4 ? 5 : 6;
    constexpr float lo = exp_zero_below<float>();
    constexpr float k_ln2 = static_cast<float>(1.4426950408889634074 * m);
    constexpr float ln2_hi = 0.693359375f / m;
    constexpr float ln2_lo = -2.12194440e-4f / m;
    constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
    // as in the double version: the bits of 2^(t/m) less t << (23 - s)
    V tab;
    for (int t = 0; t < L; ++t) {
        std::uint32_t b;
        std::memcpy(&b, &detail::kPow2Sixteenths[((t % m) * 16) / m], sizeof b);
        b -= static_cast<std::uint32_t>(t % m) << (23 - s);
        std::memcpy(&tab[t], &b, sizeof b);
    }
    const V t = x * k_ln2 + shifter;
    const V n = t - shifter;
    const V r = (x - n * ln2_hi) - n * ln2_lo;
    V p = r * static_cast<float>(detail::kInvFactorial[deg]) + static_cast<float>(detail::kInvFactorial[deg - 1]);
    for (int k = deg - 2; k >= 1; --k) p = p * r + static_cast<float>(detail::kInvFactorial[k]);
    const V q = p * r;
    vu bits;  // n in the low bits (1.5 * 2^23 has none below bit 22)
    std::memcpy(&bits, &t, sizeof bits);
    const vu j = L == m ? bits : bits & (m - 1);  // the permutation reads the low s bits only
    vu e;
    const V tj = detail::lookup<float, L>(tab, j);
    std::memcpy(&e, &tj, sizeof e);
    e += bits << (23 - s);
    V scale;
    std::memcpy(&scale, &e, sizeof scale);
    const V y = scale * q + scale;
    return x < lo ? 0.0f : y;
}

// y[i] = exp(x[i]) for i < n by exp_vec (so x <= 0), VB bytes at a time, the
// last vector padded; x and y may alias.
template <class T, int VB>
inline void exp_array(const T* x, T* y, std::int64_t n) {
    constexpr int W = simd::lanes<T, VB>;
    for (std::int64_t i = 0; i < n; i += W) {
        T buf[W] = {};
        const std::int64_t m = n - i < W ? n - i : W;
        std::memcpy(buf, x + i, sizeof(T) * static_cast<std::size_t>(m));
        simd::store<T, W>(buf, exp_vec<W>(simd::load<T, W>(buf)));
        std::memcpy(y + i, buf, sizeof(T) * static_cast<std::size_t>(m));
    }
}

}  // namespace vmath
}  // namespace gaussmix
