// vmath.hpp -- exp over arrays, written so the compiler vectorises it.
//
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (Cody-Waite split
// of ln 2, so r is exact to a few ulp), |r| <= ln(2)/2, and exp(r) by its
// Taylor polynomial: degree 13 in double (truncation < 2e-16 relative), degree
// 7 in float (< 6e-9). 2^n is built in the exponent bits. Inputs below the
// smallest normal result give 0; the callers only pass x <= 0 (log-sum-exp
// shifted by the maximum), where that is an absolute error under 1e-307.
// NaN gives NaN (and never reaches the integer conversion).
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

inline double exp_scalar(double x) {
    constexpr double log2e = 1.4426950408889634074;
    constexpr double ln2_hi = 6.93147180369123816490e-01;
    constexpr double ln2_lo = 1.90821492927058770002e-10;
    constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to nearest
    const bool in_range = x >= -708.39;  // false for NaN too
    const bool huge = x > 709.78;
    double xc = in_range ? (huge ? 709.78 : x) : 0.0;
    double n = (xc * log2e + shifter) - shifter;
    double r = (xc - n * ln2_hi) - n * ln2_lo;
    double p = 1.0 / 6227020800.0;  // 1/13!
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const std::int64_t e = static_cast<std::int64_t>(static_cast<std::uint64_t>(static_cast<std::int64_t>(n) + 1023) << 52);
    double y = p * detail::bits_to_double(e);
    return in_range ? y : (x != x ? x : 0.0);
}

inline float exp_scalar(float x) {
    constexpr float log2e = 1.44269504088896341f;
    constexpr float ln2_hi = 0.693359375f;
    constexpr float ln2_lo = -2.12194440e-4f;
    constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
    const bool in_range = x >= -87.33f;  // false for NaN too
    const bool huge = x > 88.72f;
    float xc = in_range ? (huge ? 88.72f : x) : 0.0f;
    float n = (xc * log2e + shifter) - shifter;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t e = static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23);
    float y = p * detail::bits_to_float(e);
    return in_range ? y : (x != x ? x : 0.0f);
}

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

// y[i] = exp(x[i]) for i < n; x and y may alias.
template <class T>
inline void exp_inplace(T* __restrict y, std::int64_t n) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = exp_scalar(y[i]);
}

}  // namespace vmath
}  // namespace gaussmix
