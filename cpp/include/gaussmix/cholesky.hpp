// cholesky.hpp -- small dense factorizations on row-major D x D matrices.
//
// A covariance C = L L^T (L lower) has precision C^-1 = L^-T L^-1 = U U^T with
// U = L^-T upper triangular: the "precision Cholesky factor" that scikit-learn
// stores as precisions_cholesky_. With it,
//   log N(x | mu, C) = -0.5 (D log 2 pi + ||(x - mu)^T U||^2) + sum_j log U_jj,
// and no inverse matrix is ever formed.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace gaussmix {

// In-place lower Cholesky factor of the symmetric matrix a (only the lower
// triangle is read; the upper triangle is zeroed). Returns false when a is not
// numerically positive definite (a pivot <= 0 or not finite).
inline bool cholesky_lower(double* a, std::ptrdiff_t d) {
    for (std::ptrdiff_t j = 0; j < d; ++j) {
        double s = a[j * d + j];
        for (std::ptrdiff_t k = 0; k < j; ++k) s -= a[j * d + k] * a[j * d + k];
        if (!(s > 0.0) || !std::isfinite(s)) return false;
        const double ljj = std::sqrt(s);
        a[j * d + j] = ljj;
        for (std::ptrdiff_t i = j + 1; i < d; ++i) {
            double t = a[i * d + j];
            for (std::ptrdiff_t k = 0; k < j; ++k) t -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = t / ljj;
        }
        for (std::ptrdiff_t i = 0; i < j; ++i) a[i * d + j] = 0.0;
    }
    return true;
}

// Given the lower factor L (row-major), writes U = L^-T (upper) into u.
inline void precision_factor_from_lower(const double* l, double* u, std::ptrdiff_t d) {
    // Solve L X = I column by column (X = L^-1 lower), then U = X^T.
    std::vector<double> x(static_cast<std::size_t>(d * d), 0.0);
    for (std::ptrdiff_t c = 0; c < d; ++c) {
        for (std::ptrdiff_t i = c; i < d; ++i) {
            double s = (i == c) ? 1.0 : 0.0;
            for (std::ptrdiff_t k = c; k < i; ++k) s -= l[i * d + k] * x[k * d + c];
            x[i * d + c] = s / l[i * d + i];
        }
    }
    for (std::ptrdiff_t i = 0; i < d; ++i)
        for (std::ptrdiff_t j = 0; j < d; ++j) u[i * d + j] = x[j * d + i];
}

// Covariance (row-major, symmetric) -> precision Cholesky factor U.
// Returns false when the covariance is not positive definite.
inline bool precision_cholesky(const double* cov, double* u, std::ptrdiff_t d) {
    std::vector<double> l(cov, cov + d * d);
    if (!cholesky_lower(l.data(), d)) return false;
    precision_factor_from_lower(l.data(), u, d);
    return true;
}

// Initial parameters given as a precision matrix P (row-major, D x D): its
// factor U (upper, U U^T = P_U, scikit-learn's precisions_cholesky_) and the
// inverse C = P_U^-1 = U^-T U^-1 (the covariance), where P_U is P with its
// lower triangle taken from the upper one (what a Cholesky factor of the
// flipped matrix reads). Returns true only when P is clearly valid:
//  - symmetric to numpy.isclose's default tolerances (|p_ij - p_ji| <= 1e-8
//    + 1e-5 |p_ji|, every ordered pair), as scikit-learn requires;
//  - U exists and ||P||_F ||C||_F < 1e6, so every eigenvalue of P_U is at
//    least 1/||C||_F > ||P||_F / 1e6, far above the rounding error of any
//    eigenvalue routine;
//  - ||P - P^T||_F ||C||_F <= 1e-8. An eigenvalue check reads the other
//    triangle, P_L, and ||P_L - P_U||_2 <= ||P - P^T||_F, so (Weyl) its
//    eigenvalues are those of P_U within 1e-8 of the smallest: it accepts P
//    too, and P's inverse, however computed, is C to about 1e-8 relative.
// False says nothing: the caller decides such matrices the slow way.
inline bool precision_init_factor(const double* p, double* u, double* c, std::ptrdiff_t d) {
    double norm_p = 0.0, asym = 0.0;
    for (std::ptrdiff_t i = 0; i < d; ++i)
        for (std::ptrdiff_t j = 0; j < d; ++j) {
            const double a = p[i * d + j], b = p[j * d + i];
            if (!(std::abs(a - b) <= 1e-8 + 1e-5 * std::abs(b))) return false;
            norm_p += a * a;
            asym += (a - b) * (a - b);
        }
    // U from the bottom right: u_jj^2 = p_jj - sum_{k>j} u_jk^2 and
    // u_ij = (p_ij - sum_{k>j} u_ik u_jk) / u_jj for i < j (the upper triangle
    // of P is read).
    for (std::ptrdiff_t i = 0; i < d * d; ++i) u[i] = 0.0;
    for (std::ptrdiff_t j = d - 1; j >= 0; --j) {
        double s = p[j * d + j];
        for (std::ptrdiff_t k = j + 1; k < d; ++k) s -= u[j * d + k] * u[j * d + k];
        if (!(s > 0.0) || !std::isfinite(s)) return false;
        const double ujj = std::sqrt(s);
        u[j * d + j] = ujj;
        for (std::ptrdiff_t i = 0; i < j; ++i) {
            double t = p[i * d + j];
            for (std::ptrdiff_t k = j + 1; k < d; ++k) t -= u[i * d + k] * u[j * d + k];
            u[i * d + j] = t / ujj;
        }
    }
    // V = U^-1 (upper) by back substitution, column by column; C = V^T V.
    std::vector<double> v(static_cast<std::size_t>(d * d), 0.0);
    for (std::ptrdiff_t col = 0; col < d; ++col)
        for (std::ptrdiff_t i = col; i >= 0; --i) {
            double s = i == col ? 1.0 : 0.0;
            for (std::ptrdiff_t k = i + 1; k <= col; ++k) s -= u[i * d + k] * v[k * d + col];
            v[i * d + col] = s / u[i * d + i];
        }
    double norm_c = 0.0;
    for (std::ptrdiff_t i = 0; i < d; ++i)
        for (std::ptrdiff_t j = i; j < d; ++j) {
            double s = 0.0;
            for (std::ptrdiff_t k = 0; k <= i; ++k) s += v[k * d + i] * v[k * d + j];
            c[i * d + j] = c[j * d + i] = s;
            norm_c += (i == j ? 1.0 : 2.0) * s * s;
        }
    norm_c = std::sqrt(norm_c);
    return std::isfinite(norm_c) && std::sqrt(norm_p) * norm_c < 1e6 && std::sqrt(asym) * norm_c <= 1e-8;
}

}  // namespace gaussmix
