// kmeans_tiles.hpp -- the distance machinery of k-means (kmeans.hpp): blocks
// of rows, shifted as numpy shifts them, transposed into double; register
// tiles of rows x centres giving squared distances, summed in double over
// the features in order; and the nearest centre of each row.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "data.hpp"
#include "simd.hpp"

namespace gaussmix {
namespace detail {
// Rows per block: a block's rows, transposed (D x kBlock doubles), and its
// distances to a few centres stay in the first cache levels.
constexpr index_t kBlock = 256;

// The distance kernels work on register tiles of kTileRows vectors of rows
// by kTileCentres centres: per feature, kTileRows + kTileCentres loads feed
// kTileRows * kTileCentres subtractions and multiply-adds, and the eight
// running sums stay in registers (16 vector registers with AVX2 or SSE2).
constexpr int kTileRows = 2;
constexpr int kTileCentres = 4;

// Rows per tile at vector width VB; blocks are padded to a multiple of it.
template <int VB>
constexpr index_t tile_rows = kTileRows * (VB / static_cast<int>(sizeof(double)));

// W coordinates of a row from xr, shifted (Shifted: by s, rounded to T as
// numpy's X - s rounds it), widened to double.
template <int W, bool Shifted, class T>
inline simd::vec<double, W> shifted_lanes(const T* xr, const T* shift) {
    simd::vec<T, W> v = simd::load<T, W>(xr);
    if (Shifted) v -= simd::load<T, W>(shift);
    if constexpr (std::is_same<T, double>::value)
        return v;
    else
        return __builtin_convertvector(v, simd::vec<double, W>);
}

// Rows [b0, b0 + nb) into xt (see load_rows): W rows by W features at a
// time, transposed in registers (W = 4 or 2), the rest one by one.
template <int W, class T, bool Shifted>
inline void transpose_rows(const DataView<T>& X, const T* shift, index_t b0, index_t nb, double* __restrict xt) {
    using V = simd::vec<double, W>;
    using I = simd::vec<long long, W>;
    static_assert(W == 2 || W == 4, "transposes of 2 x 2 and 4 x 4");
    const index_t D = X.d;
    auto one = [&](index_t i, index_t l) {
        const T x = X.row(b0 + i)[l];
        const T v = Shifted ? static_cast<T>(x - shift[l]) : x;
        xt[l * kBlock + i] = static_cast<double>(v);
    };
    index_t i = 0;
    for (; i + W <= nb; i += W) {
        index_t l = 0;
        for (; l + W <= D; l += W) {
            V r[W];
            for (int q = 0; q < W; ++q) r[q] = shifted_lanes<W, Shifted>(X.row(b0 + i + q) + l, shift + (Shifted ? l : 0));
            double* o = xt + l * kBlock + i;
            if constexpr (W == 2) {
                simd::store<double, 2>(o, __builtin_shuffle(r[0], r[1], I{0, 2}));
                simd::store<double, 2>(o + kBlock, __builtin_shuffle(r[0], r[1], I{1, 3}));
            } else {
                const V t0 = __builtin_shuffle(r[0], r[1], I{0, 4, 2, 6}), t1 = __builtin_shuffle(r[0], r[1], I{1, 5, 3, 7});
                const V t2 = __builtin_shuffle(r[2], r[3], I{0, 4, 2, 6}), t3 = __builtin_shuffle(r[2], r[3], I{1, 5, 3, 7});
                simd::store<double, 4>(o, __builtin_shuffle(t0, t2, I{0, 1, 4, 5}));
                simd::store<double, 4>(o + kBlock, __builtin_shuffle(t1, t3, I{0, 1, 4, 5}));
                simd::store<double, 4>(o + 2 * kBlock, __builtin_shuffle(t0, t2, I{2, 3, 6, 7}));
                simd::store<double, 4>(o + 3 * kBlock, __builtin_shuffle(t1, t3, I{2, 3, 6, 7}));
            }
        }
        for (; l < D; ++l)
            for (int q = 0; q < W; ++q) one(i + q, l);
    }
    for (; i < nb; ++i)
        for (index_t l = 0; l < D; ++l) one(i, l);
}

// Rows [b0, b0 + nb) of X shifted by s (nullptr: none), each coordinate
// rounded to T as numpy's X - s rounds it, widened to double and transposed:
// xt[l * kBlock + i]. Rows nb .. nb_pad are zero, so that tiles run over
// whole vectors; their results are never used.
template <int VB, class T>
inline void load_rows(const DataView<T>& X, const T* shift, index_t b0, index_t nb, index_t nb_pad, double* xt) {
    constexpr int W = VB >= 32 ? 4 : 2;
    if (shift)
        transpose_rows<W, T, true>(X, shift, b0, nb, xt);
    else
        transpose_rows<W, T, false>(X, shift, b0, nb, xt);
    if (nb < nb_pad)
        for (index_t l = 0; l < X.d; ++l) std::fill(xt + l * kBlock + nb, xt + l * kBlock + nb_pad, 0.0);
}

// acc[r][c] = ||x - cen_c||^2 for the W rows of vector r of the transposed
// block xt (from its first row), C centres at cen (rows of D values): the
// squared differences summed in double from l = 0 to D - 1.
template <int W, int R, int C>
inline void tile_sq_dists(const double* __restrict xt, index_t D, const double* __restrict cen,
                          simd::vec<double, W> (&acc)[R][C]) {
    using V = simd::vec<double, W>;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = V{};
    for (index_t l = 0; l < D; ++l) {
        V x[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) x[r] = simd::load<double, W>(xt + l * kBlock + r * W);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
            const double m = cen[c * D + l];  // broadcast by the subtraction: one load
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
                const V v = x[r] - m;
                acc[r][c] += v * v;
            }
        }
    }
}

// Folds centres j0 .. j0 + C into the running nearest centre (best distance,
// label) of each row of the tile: a centre replaces the one held only if
// strictly nearer, so ties go to the first, and a NaN distance never wins
// (First: centre j0 is the first one, taken as it is).
template <int W, int R, int C, bool First>
inline void tile_nearest(const double* xt, index_t D, const double* centers, index_t j0,
                         simd::vec<double, W> (&best)[R], simd::vec<long long, W> (&lab)[R]) {
    using L = simd::vec<long long, W>;
    simd::vec<double, W> acc[R][C];
    tile_sq_dists<W, R, C>(xt, D, centers + j0 * D, acc);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
        const L j = simd::splat<long long, W>(static_cast<long long>(j0 + c));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            if (First && c == 0) {
                best[r] = acc[r][0];
                lab[r] = j;
            } else {
                const L lt = acc[r][c] < best[r];
                best[r] = lt ? acc[r][c] : best[r];
                lab[r] = lt ? j : lab[r];
            }
        }
    }
}

// lab[i] = argmin_j ||x_i - mu_j||^2 over the K centres (the first on ties)
// for the nb rows of xt (nb a multiple of tile_rows<VB>).
template <int VB>
inline void block_nearest(const double* xt, index_t nb, index_t D, const double* centers, index_t K,
                          std::int64_t* __restrict lab) {
    constexpr int W = VB / static_cast<int>(sizeof(double)), R = kTileRows, C = kTileCentres;
    static_assert(C == 4, "the remainders below are for four centres a tile");
    for (index_t i0 = 0; i0 < nb; i0 += R * W) {
        simd::vec<double, W> best[R];
        simd::vec<long long, W> lb[R];
        const double* x = xt + i0;
        index_t j0 = std::min<index_t>(K, C);
        switch (j0) {
            case 1: tile_nearest<W, R, 1, true>(x, D, centers, 0, best, lb); break;
            case 2: tile_nearest<W, R, 2, true>(x, D, centers, 0, best, lb); break;
            case 3: tile_nearest<W, R, 3, true>(x, D, centers, 0, best, lb); break;
            default: tile_nearest<W, R, C, true>(x, D, centers, 0, best, lb); break;
        }
        for (; j0 + C <= K; j0 += C) tile_nearest<W, R, C, false>(x, D, centers, j0, best, lb);
        switch (K - j0) {
            case 1: tile_nearest<W, R, 1, false>(x, D, centers, j0, best, lb); break;
            case 2: tile_nearest<W, R, 2, false>(x, D, centers, j0, best, lb); break;
            case 3: tile_nearest<W, R, 3, false>(x, D, centers, j0, best, lb); break;
            default: break;
        }
        for (int r = 0; r < R; ++r) std::memcpy(lab + i0 + r * W, &lb[r], sizeof lb[r]);
    }
}

template <int W, int R, int C>
inline void tile_store(const double* xt, index_t D, const double* cen, double* __restrict dd) {
    simd::vec<double, W> acc[R][C];
    tile_sq_dists<W, R, C>(xt, D, cen, acc);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) simd::store<double, W>(dd + c * kBlock + r * W, acc[r][c]);
}

// dd[t * kBlock + i] = ||x_i - c_t||^2 for the nb rows of xt (a multiple of
// tile_rows<VB>) and the m centres at cen.
template <int VB>
inline void block_sq_dists(const double* xt, index_t nb, index_t D, const double* cen, index_t m,
                           double* __restrict dd) {
    constexpr int W = VB / static_cast<int>(sizeof(double)), R = kTileRows, C = kTileCentres;
    for (index_t i0 = 0; i0 < nb; i0 += R * W) {
        index_t t = 0;
        for (; t + C <= m; t += C) tile_store<W, R, C>(xt + i0, D, cen + t * D, dd + t * kBlock + i0);
        switch (m - t) {
            case 1: tile_store<W, R, 1>(xt + i0, D, cen + t * D, dd + t * kBlock + i0); break;
            case 2: tile_store<W, R, 2>(xt + i0, D, cen + t * D, dd + t * kBlock + i0); break;
            case 3: tile_store<W, R, 3>(xt + i0, D, cen + t * D, dd + t * kBlock + i0); break;
            default: break;
        }
    }
}

// Row i of X, shifted, as double.
template <class T>
void shifted_row(const DataView<T>& X, const T* shift, index_t i, double* out) {
    const T* xr = X.row(i);
    for (index_t l = 0; l < X.d; ++l) {
        const T v = shift ? static_cast<T>(xr[l] - shift[l]) : xr[l];
        out[l] = static_cast<double>(v);
    }
}

// Per-chunk scratch of the distance passes.
struct BlockScratch {
    simd::aligned_vector<double> xt, dd;
    simd::aligned_vector<std::int64_t> lab;
    BlockScratch(index_t D, index_t n_dists) : xt(D * kBlock), dd(n_dists * kBlock), lab(kBlock) {}
};

}  // namespace detail
}  // namespace gaussmix
