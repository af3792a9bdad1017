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

// exp over one vector of 64 bytes (8 doubles, 16 floats), for x <= 0 (as
// log-sum-exp passes: values minus their maximum), by a shorter route than
// exp_scalar: n = round(x 2^s / ln 2) with s = 3 (double) or 4 (float),
// x = (n >> s) ln 2 + (n & (2^s - 1)) ln 2 / 2^s + r, |r| <= ln 2 / 2^(s+1),
// so exp(x) = 2^(n >> s) * 2^((n & (2^s-1)) / 2^s) * exp(r). The 2^s powers
// 2^(j/2^s) sit in one vector register, looked up by a lane permutation (not
// a gather); exp(r) - 1 is its Taylor polynomial of degree 8 (double: truncation
// < 2e-18 relative) or 3 (float: < 1e-8), and 2^(j/2^s) (1 + that) one
// fused multiply-add. Inputs below -708.39 (float:
// -87.33), -inf included, give 0, where the true value is below the smallest
// normal number; NaN gives NaN. Positive inputs up to 709 (float: 88) are
// still right; larger ones are outside the domain. Within 1.5 ulp of the
// exact value (1.0 measured; checked against libm in the tests).
using vd8 = simd::vec<double, 8>;
using vf16 = simd::vec<float, 16>;

inline vd8 exp_vec(vd8 x) {
    using vi = simd::vec<std::int64_t, 8>;
    using vu = simd::vec<std::uint64_t, 8>;
    constexpr double lo = -708.39;
    constexpr double k8_ln2 = 11.541560327111707;                // 8 / ln 2
    constexpr double ln2_8_hi = 6.93147180369123816490e-01 / 8;  // few bits: n * ln2_8_hi is exact
    constexpr double ln2_8_lo = 1.90821492927058770002e-10 / 8;
    constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer
    const vd8 tab = {1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
                     1.4142135623730951, 1.5422108254079407, 1.681792830507429, 1.8340080864093424};
    const vd8 t = x * k8_ln2 + shifter;
    const vd8 n = t - shifter;
    const vd8 r = (x - n * ln2_8_hi) - n * ln2_8_lo;
    vd8 p = r * (1.0 / 40320.0) + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    const vd8 q = p * r;  // exp(r) - 1
    vu bits;
    std::memcpy(&bits, &t, sizeof bits);
    const vi ni = reinterpret_cast<vi>(bits - 0x4338000000000000ULL);  // n, from the bits of t
    const vu e = reinterpret_cast<vu>((ni >> 3) + 1023) << 52;         // 2^floor(n / 8)
    vd8 scale;
    std::memcpy(&scale, &e, sizeof scale);
    const vd8 tj = __builtin_shuffle(tab, ni & 7);
    const vd8 y = (tj * q + tj) * scale;  // one rounding for 2^(j/8) exp(r)
    return x < lo ? 0.0 : y;  // also where the integer path above overflowed
}

inline vf16 exp_vec(vf16 x) {
    using vi = simd::vec<std::int32_t, 16>;
    using vu = simd::vec<std::uint32_t, 16>;
    constexpr float lo = -87.33f;
    constexpr float k16_ln2 = 23.083120654223414f;  // 16 / ln 2
    constexpr float ln2_16_hi = 0.693359375f / 16;
    constexpr float ln2_16_lo = -2.12194440e-4f / 16;
    constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
    const vf16 tab = {1.0f, 1.0442737824274138f, 1.0905077326652577f, 1.1387886347566916f,
                      1.189207115002721f, 1.241857812073484f, 1.2968395546510096f, 1.3542555469368927f,
                      1.4142135623730951f, 1.4768261459394993f, 1.5422108254079407f, 1.6104903319492543f,
                      1.681792830507429f, 1.7562521603732995f, 1.8340080864093424f, 1.9152065613971474f};
    const vf16 t = x * k16_ln2 + shifter;
    const vf16 n = t - shifter;
    const vf16 r = (x - n * ln2_16_hi) - n * ln2_16_lo;
    vf16 p = r * (1.0f / 6.0f) + 0.5f;
    p = p * r + 1.0f;
    const vf16 q = p * r;
    vu bits;
    std::memcpy(&bits, &t, sizeof bits);
    const vi ni = reinterpret_cast<vi>(bits - 0x4b400000U);
    const vu e = reinterpret_cast<vu>((ni >> 4) + 127) << 23;
    vf16 scale;
    std::memcpy(&scale, &e, sizeof scale);
    const vf16 tj = __builtin_shuffle(tab, ni & 15);
    const vf16 y = (tj * q + tj) * scale;
    return x < lo ? 0.0f : y;
}

// y[i] = exp(x[i]) for i < n by exp_vec (so x <= 0), a vector at a time, the
// last one padded; x and y may alias.
template <class T>
GAUSSMIX_MULTIVERSION void exp_array(const T* x, T* y, std::int64_t n) {
    constexpr int W = 64 / sizeof(T);
    for (std::int64_t i = 0; i < n; i += W) {
        T buf[W] = {};
        const std::int64_t m = n - i < W ? n - i : W;
        std::memcpy(buf, x + i, sizeof(T) * static_cast<std::size_t>(m));
        simd::store<T, W>(buf, exp_vec(simd::load<T, W>(buf)));
        std::memcpy(y + i, buf, sizeof(T) * static_cast<std::size_t>(m));
    }
}

}  // namespace vmath
}  // namespace gaussmix
