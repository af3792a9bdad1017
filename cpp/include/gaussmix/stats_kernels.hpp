// stats_kernels.hpp -- the sufficient statistics of one block, per component.
//
// With rw_i = w_i r_ik (sample weight times responsibility) and the shift
// s_k of suffstats.hpp, the kernels add, over the rows of a block,
//   n_k += sum_i rw_i
//   a_k += sum_i rw_i (x_i - s_k)
//   S_k += sum_i rw_i (x_i - s_k)(x_i - s_k)^T   (upper triangle; full, tied)
//   S_kl += sum_i rw_i (x_il - s_kl)^2           (diag, spherical)
// in register tiles and vector accumulators, lanes summed once per block
// (or per chunk: flush_stats). Then the per-chunk partials are merged in
// chunk order (reduce_partials) and S is made symmetric.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "block.hpp"
#include "gaussian.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "suffstats.hpp"

namespace gaussmix {
namespace detail {

// S[l0 + a][m0 + b] += the lane sums of acc[a][b], for the entries inside
// D x D (those below the diagonal are overwritten by symmetrize).
template <index_t RA, index_t R, int W>
inline void add_tile(double* s, index_t D, index_t l0, index_t m0, const simd::vec<double, W> (&acc)[RA][R]) {
    for (index_t a = 0; a < RA && l0 + a < D; ++a) {
        double* row = s + (l0 + a) * D + m0;
        if constexpr (R == 2) {
            if (a % 2 == 0 && a + 1 < RA && m0 + R <= D && l0 + a + 1 < D) {  // two rows' pairs in one reduction
                const simd::vec<double, 4> v = simd::hsum4<W>(acc[a][0], acc[a][1], acc[a + 1][0], acc[a + 1][1]);
                double* next = row + D;
                row[0] += v[0];
                row[1] += v[1];
                next[0] += v[2];
                next[1] += v[3];
                ++a;
                continue;
            }
        }
        if (R == 4 && m0 + R <= D) {
            const simd::vec<double, 4> v = simd::hsum4<W>(acc[a][0], acc[a][1], acc[a][2], acc[a][3]);
            simd::store<double, 4>(row, simd::load<double, 4>(row) + v);
        } else {
            for (index_t b = 0; b < R && m0 + b < D; ++b) row[b] += simd::hsum<W>(acc[a][b]);
        }
    }
}

// Adds one component's weighted statistics for a block (full and tied), from
// the block xt (D x ld) and rw = w_i r_ik over the row groups gs, where rw
// must be zero past the block's rows (xt is finite there: load_block): n +=
// sum rw, and per feature z = rw (x - s) (written to z, summed into a); then
// S += Z^T (X - s) in register tiles of RA x R entries x W lanes, the
// differences x - s formed in the tiles on the adder pipes beside the
// multiply-adds instead of being stored and read back; lanes are summed once
// per block. A tile's RA rows of z are read again by every tile of their row
// (they stay in the L1 cache), its R rows of x stream from the L2 cache,
// where a block of wide data lies: RA = 6 with R = 4 (24 accumulators) for
// AVX-512's 32 vector registers, R = 2 (12) for the 16 of AVX2 and SSE2, each
// z vector loaded where it is used. Per vector of samples AVX2 then loads 2
// vectors from L2 for 12 multiply-adds (a 2 x 4 tile loaded 4 for 8, more than
// the L2 cache delivers per cycle at two multiply-adds a cycle).
template <class T, int VB>
inline void accumulate_stored_tiles(SuffStats& st, index_t j, const double* __restrict rw, const T* __restrict xt,
                                    double* __restrict z, index_t ld, const Groups& gs) {
    constexpr int N = simd::lanes<double, VB>, GR = simd::lanes<T, VB>;
    using vd = simd::vec<double, N>;
    const index_t D = st.d;
    vd an = {};
    for_vectors<GR, N>(gs, [&](index_t i0) { an += simd::load<double, N>(rw + i0); });
    st.nk[j] += simd::hsum<N>(an);
    double* aj = st.a.data() + j * D;
    const double* shift = st.shift.data() + j * D;
    for (index_t l = 0; l < D; ++l) {
        const T* __restrict xl = xt + l * ld;
        double* __restrict zl = z + l * ld;
        vd s0 = {}, s1 = {};  // two chains
        const vd shv = simd::splat<double, N>(shift[l]);
        for_vectors<GR, N>(gs, [&](index_t i0) {
            const vd zv = simd::load<double, N>(rw + i0) * (simd::load_double<N>(xl + i0) - shv);
            simd::store<double, N>(zl + i0, zv);
            if ((i0 / N) % 2 == 0)
                s0 += zv;
            else
                s1 += zv;
        });
        aj[l] += simd::hsum<N>(s0 + s1);
    }
    constexpr index_t W = N, R = VB >= 64 ? 4 : 2, RA = 6;
    double* sj = st.s.data() + (st.cov == CovType::full ? j * D * D : 0);
    for (index_t l0 = 0; l0 < D; l0 += RA) {
        const double* zr[RA];
        for (index_t a = 0; a < RA; ++a) zr[a] = z + std::min(l0 + a, D - 1) * ld;
        for (index_t m0 = l0; m0 < D; m0 += R) {
            const T* xr[R];
            vd sh[R];
            for (index_t b = 0; b < R; ++b) {
                const index_t m = std::min(m0 + b, D - 1);
                xr[b] = xt + m * ld;
                sh[b] = simd::splat<double, W>(shift[m]);
            }
            vd acc[RA][R];
            for (index_t a = 0; a < RA; ++a)
                for (index_t b = 0; b < R; ++b) acc[a][b] = vd{};
            for_vectors<GR, W>(gs, [&](index_t i0) {
                vd dv[R];
                for (index_t b = 0; b < R; ++b) dv[b] = simd::load_double<W>(xr[b] + i0) - sh[b];
                for (index_t a = 0; a < RA; ++a) {
                    const vd zv = simd::load<double, W>(zr[a] + i0);
                    for (index_t b = 0; b < R; ++b) acc[a][b] += zv * dv[b];
                }
            });
            add_tile<RA, R, W>(sj, D, l0, m0, acc);
        }
    }
}

// The same statistics in 4 x 4 tiles that form z = rw (x - s) themselves
// (AVX-512, D <= 24): no z written and read back, at the price of four
// multiplies per tile and vector; n and a are summed in the diagonal tiles.
// The pass that writes z, saved here, grows with D, the extra multiplies
// with the number of tiles, about D^2 / 32: this pays at small D, and above
// D = 24 (accumulate_component) the stored z of accumulate_stored_tiles
// pays for itself.
template <class T, int VB>
inline void accumulate_fused_tiles(SuffStats& st, index_t j, const double* __restrict rw, const T* __restrict xt,
                                   index_t ld, const Groups& gs) {
    constexpr int W = simd::lanes<double, VB>, GR = simd::lanes<T, VB>;
    using vd = simd::vec<double, W>;
    constexpr index_t R = 4;
    const index_t D = st.d;
    double* sj = st.s.data() + (st.cov == CovType::full ? j * D * D : 0);
    double* aj = st.a.data() + j * D;
    const double* shift = st.shift.data() + j * D;
    const auto rows = [&](index_t r0, const T* (&p)[R], double (&sh)[R]) {
        for (index_t b = 0; b < R; ++b) {
            const index_t m = std::min(r0 + b, D - 1);
            p[b] = xt + m * ld;
            sh[b] = shift[m];
        }
    };
    for (index_t l0 = 0; l0 < D; l0 += R) {
        const T* zr[R];
        double zs[R];
        rows(l0, zr, zs);
        for (index_t m0 = l0; m0 < D; m0 += R) {
            const T* xr[R];
            double xs[R];
            rows(m0, xr, xs);
            vd acc[R][R], aa[R], an = {};
            for (index_t a = 0; a < R; ++a) {
                aa[a] = vd{};
                for (index_t b = 0; b < R; ++b) acc[a][b] = vd{};
            }
            // the diagonal tile's rows are its columns: z from the same
            // differences, only its upper triangle summed (6 of 16
            // multiply-adds saved), and a (and n, in the first) summed there
            const auto tile = [&](auto diagonal) {
                constexpr bool DG = decltype(diagonal)::value;
                for_vectors<GR, W>(gs, [&](index_t i0) {
                    const vd r = simd::load<double, W>(rw + i0);
                    vd zv[R], dv[R];
                    for (index_t b = 0; b < R; ++b) dv[b] = simd::load_double<W>(xr[b] + i0) - xs[b];
                    for (index_t a = 0; a < R; ++a)
                        zv[a] = r * (DG ? dv[a] : simd::load_double<W>(zr[a] + i0) - zs[a]);
                    if constexpr (DG) {
                        an += r;
                        for (index_t a = 0; a < R; ++a) aa[a] += zv[a];
                    }
                    for (index_t a = 0; a < R; ++a)
                        for (index_t b = DG ? a : 0; b < R; ++b) acc[a][b] += zv[a] * dv[b];
                });
            };
            if (m0 == l0) {
                tile(std::true_type{});
                for (index_t a = 0; a < R && l0 + a < D; ++a) aj[l0 + a] += simd::hsum<W>(aa[a]);
                if (l0 == 0) st.nk[j] += simd::hsum<W>(an);
            } else {
                tile(std::false_type{});
            }
            add_tile<R, R, W>(sj, D, l0, m0, acc);
        }
    }
}

template <class T, int VB>
inline void accumulate_component(SuffStats& st, index_t j, const double* __restrict rw, const T* __restrict xt,
                                 double* __restrict z, index_t ld, const Groups& gs) {
    if constexpr (VB >= 64)
        if (st.d <= 24) return accumulate_fused_tiles<T, VB>(st, j, rw, xt, ld, gs);
    accumulate_stored_tiles<T, VB>(st, j, rw, xt, z, ld, gs);
}

// Rows of a block up to which the kernels read whole groups: nb rounded up to
// 16, the most lanes of a group (blocks are multiples of 64 rows).
inline index_t padded_rows(index_t nb) { return (nb + 15) / 16 * 16; }

// Zeroes rw[nb, padded_rows(nb)).
inline void zero_tail(double* rw, index_t nb) {
    for (index_t i = nb; i < padded_rows(nb); ++i) rw[i] = 0.0;
}

// The weights rw_i of a block, one vector at a time: stored ones, or (in the
// E-step of a fit) the products of two arrays, formed where they are used.
template <int VB>
struct StoredWeights {
    const double* __restrict rw;
    simd::vec<double, simd::lanes<double, VB>> operator()(index_t i0) const {
        return simd::load<double, simd::lanes<double, VB>>(rw + i0);
    }
};
template <int VB, class T>
struct ProductWeights {
    const double* __restrict w;  // w_i / sum_k e_ik
    const T* __restrict e;       // e_ik
    simd::vec<double, simd::lanes<double, VB>> operator()(index_t i0) const {
        constexpr int W = simd::lanes<double, VB>;
        return simd::load<double, W>(w + i0) * simd::load_double<W>(e + i0);
    }
};

// a_l += sum rw (x_l - s_l) and S_l += sum rw (x_l - s_l)^2 for G <= 8
// features at once (and n += sum rw when N is set) over the row groups gs:
// 2G (+1) vector accumulators in registers, lanes summed once per block. rw
// is zero past the block's rows and xt finite there.
template <int G, bool N, int VB, class T, class RW>
inline void accumulate_diag_group(const double* __restrict shift, double* __restrict a, double* __restrict s,
                                  double* __restrict n, const RW& rw, const T* __restrict xt, index_t ld,
                                  const Groups& gs) {
    constexpr int W = simd::lanes<double, VB>, GR = simd::lanes<T, VB>;
    using vd = simd::vec<double, W>;
    constexpr int NA = 2 * G + (N ? 1 : 0);
    vd sh[G], acc[NA] = {};  // sums of z, then of z dv, per feature; then of rw
    for (int g = 0; g < G; ++g) sh[g] = simd::splat<double, W>(shift[g]);
    for_vectors<GR, W>(gs, [&](index_t i0) {
        const vd r = rw(i0);
        if constexpr (N) acc[2 * G] += r;
#pragma GCC unroll 8
        for (int g = 0; g < G; ++g) {
            const vd dv = simd::load_double<W>(xt + g * ld + i0) - sh[g];
            const vd z = r * dv;
            acc[g] += z;
            acc[G + g] += z * dv;
        }
    });
    double sums[NA];
    simd::hsum_n<W>(acc, sums);
    for (int g = 0; g < G; ++g) {
        a[g] += sums[g];
        s[g] += sums[G + g];
    }
    if constexpr (N) *n += sums[2 * G];
}

// Statistics of one component for diag and spherical, straight from the
// block: n += sum rw, a_l += sum rw (x_l - s_l), S_l += sum rw (x_l - s_l)^2,
// GMAX features per pass over the block, n with the first.
template <class T, int VB, class RW>
inline void accumulate_diag(SuffStats& st, index_t j, const RW& rw, const T* __restrict xt, index_t ld,
                            const Groups& gs) {
    const index_t D = st.d;
    // features per pass: as many as keep 2G + 1 accumulators in the registers
    constexpr index_t GMAX = VB >= 64 ? 8 : 4;
    const double* shift = st.shift.data() + j * D;
    double* aj = st.a.data() + j * D;
    double* sj = st.s.data() + j * D;
    double* nj = st.nk.data() + j;
    for (index_t l0 = 0; l0 < D; l0 += GMAX) {
        const double* sh = shift + l0;
        double* a = aj + l0;
        double* s = sj + l0;
        const T* x = xt + l0 * ld;
        const auto group = [&](auto g, auto first) {
            accumulate_diag_group<decltype(g)::value, decltype(first)::value, VB>(sh, a, s, nj, rw, x, ld, gs);
        };
        const auto dispatch = [&](auto first) {
            using I = index_t;
            switch (std::min<index_t>(GMAX, D - l0)) {
                case 1: return group(std::integral_constant<I, 1>{}, first);
                case 2: return group(std::integral_constant<I, 2>{}, first);
                case 3: return group(std::integral_constant<I, 3>{}, first);
                case 4: return group(std::integral_constant<I, 4>{}, first);
                case 5: return group(std::integral_constant<I, 5>{}, first);
                case 6: return group(std::integral_constant<I, 6>{}, first);
                case 7: return group(std::integral_constant<I, 7>{}, first);
                default: return group(std::integral_constant<I, 8>{}, first);
            }
        };
        if (l0 == 0)
            dispatch(std::true_type{});
        else
            dispatch(std::false_type{});
    }
}

// Statistics of components j0 .. j0 + TK - 1 for diag and spherical from
// the block's rows as they are in X (sample-major, D = DV vectors each):
// the lanes run over features, so each sum is one vector accumulator, added
// to st once per block, with no reduction across lanes. rw holds w_i r_ik,
// K rows ld apart.
template <int DV, int TK, int VB>
inline void accumulate_diag_rows_tile(SuffStats& st, index_t j0, const double* __restrict rows, index_t stride,
                                      const double* __restrict rw, index_t ld, index_t nb) {
    constexpr int W = simd::lanes<double, VB>;
    using vd = simd::vec<double, W>;
    constexpr index_t D = DV * W;
    vd mu[TK][DV], a[TK][DV] = {}, q[TK][DV] = {};
    const double* r[TK];
    for (int t = 0; t < TK; ++t) {
        r[t] = rw + (j0 + t) * ld;
        for (int v = 0; v < DV; ++v) mu[t][v] = simd::load_double<W>(st.shift.data() + (j0 + t) * D + v * W);
    }
    for (index_t i = 0; i < nb; ++i) {
        vd x[DV];
        for (int v = 0; v < DV; ++v) x[v] = simd::load_double<W>(rows + i * stride + v * W);
#pragma GCC unroll 8
        for (int t = 0; t < TK; ++t) {
            const double rb = r[t][i];  // broadcast in the multiply
#pragma GCC unroll 2
            for (int v = 0; v < DV; ++v) {
                const vd dv = x[v] - mu[t][v];
                const vd z = dv * rb;
                a[t][v] += z;
                q[t][v] += z * dv;
            }
        }
    }
    for (int t = 0; t < TK; ++t)
        for (int v = 0; v < DV; ++v) {
            double* pa = st.a.data() + (j0 + t) * D + v * W;
            double* ps = st.s.data() + (j0 + t) * D + v * W;
            simd::store<double, W>(pa, simd::load_double<W>(pa) + a[t][v]);
            simd::store<double, W>(ps, simd::load_double<W>(ps) + q[t][v]);
        }
}

// diag and spherical statistics of a block from its rows when D is one or
// two vectors (accumulate_diag_rows_tile), for all K components: rw_ik =
// ws_i e_ik formed in place in e (and n_k summed) first. The feature-major
// kernel (accumulate_diag) sums its lanes once per component and block
// (2D + 1 lane sums), and at D = 16 makes two passes of 8 features over the
// block; this one does neither, and loads each row once for TK components.
// For diag_rows_kernel's shapes.
template <class T, int VB>
inline bool diag_rows_kernel(const SuffStats& st) {
    constexpr int W = simd::lanes<double, VB>;
    return std::is_same<T, double>::value && (st.cov == CovType::diag || st.cov == CovType::spherical) && W >= 4 &&
           (st.d == W || st.d == 2 * W);
}

template <int VB>
inline void accumulate_diag_rows(SuffStats& st, const double* rows, index_t stride, const double* ws_i, double* e,
                                 index_t ld, index_t nb) {
    constexpr int W = simd::lanes<double, VB>;
    using vd = simd::vec<double, W>;
    const index_t K = st.k, D = st.d;
    // rw in place; past nb (up to padded_rows) ws_i and e are zero
    for (index_t j = 0; j < K; ++j) {
        double* ej = e + j * ld;
        vd n = {};
        for (index_t i0 = 0; i0 < nb; i0 += W) {
            const vd v = simd::load<double, W>(ws_i + i0) * simd::load<double, W>(ej + i0);
            simd::store<double, W>(ej + i0, v);
            n += v;
        }
        st.nk[j] += simd::hsum<W>(n);
    }
    const auto tiles = [&](auto dv) {
        constexpr int DV = decltype(dv)::value, TK = 8 / DV;
        index_t j0 = 0;
        for (; j0 + TK <= K; j0 += TK) accumulate_diag_rows_tile<DV, TK, VB>(st, j0, rows, stride, e, ld, nb);
        for (; j0 < K; ++j0) accumulate_diag_rows_tile<DV, 1, VB>(st, j0, rows, stride, e, ld, nb);
    };
    if (D == W)
        tiles(std::integral_constant<int, 1>{});
    else
        tiles(std::integral_constant<int, 2>{});
}

// accumulate_diag_rows for a block whose live components are known
// (live_components): only the rows where e_ik is not zero, row by row. A
// group of W rows with one live component has, at well-separated clusters
// whose rows are interleaved, that component live on one or two of its rows:
// far fewer (row, component) pairs are live than (group, component) pairs,
// and visiting rows skips the rest. For each row, its live components from
// the lanes of the pair flags: rw = ws_i e_ik, and each component's sums
// run through the rows in order, as in accumulate_diag_rows_tile, n in the
// lane of the row as in accumulate_diag_rows: the same bits. The sums wait
// in the workspace (row_acc). Rows from nb on are not read.
template <int VB>
inline void accumulate_diag_rows_sparse(SuffStats& st, const double* rows, index_t stride, const double* ws_i,
                                        const double* e, index_t ld, index_t nb, Workspace<double>& ws) {
    constexpr int W = simd::lanes<double, VB>;
    static_assert(W <= 8, "a group of W rows: its lane flags fit a byte (bit_of_bytes16)");
    using vd = simd::vec<double, W>;
    const index_t K = st.k, D = st.d, S = 2 * D + W;  // per component: a, q, n
    const index_t ngb = (nb + W - 1) / W, KP = ws.k_padded;
    double* __restrict acc = ws.row_acc.data();
    std::fill(acc, acc + K * S, 0.0);
    const double* __restrict mu = st.shift.data();
    const unsigned char* __restrict flags = ws.pair_flags.data();
    const auto run = [&](auto dv) {
        constexpr int DV = decltype(dv)::value;
        for (index_t g = 0; g < ngb; ++g) {
            const unsigned char* f = flags + g * KP;
            const index_t i0 = g * W, rows_here = std::min<index_t>(W, nb - i0);
            for (index_t t = 0; t < rows_here; ++t) {
                const index_t i = i0 + t;
                const double wi = ws_i[i];
                vd x[DV];
                for (int v = 0; v < DV; ++v) x[v] = simd::load<double, W>(rows + i * stride + v * W);
                // most rows have one live component: the loop below is
                // entered and left in the same way, and its branches predicted
                for (index_t j0 = 0; j0 < K; j0 += 16)
                    for (unsigned m = simd::bit_of_bytes16(f + j0, static_cast<int>(t)); m != 0; m &= m - 1) {
                        const index_t j = j0 + __builtin_ctz(m);
                        const double rb = wi * e[j * ld + i];
                        double* aj = acc + j * S;
                        aj[2 * D + t] += rb;  // n, in the lane accumulate_diag_rows sums it in
                        for (int v = 0; v < DV; ++v) {
                            const vd d = x[v] - simd::load<double, W>(mu + j * D + v * W);
                            const vd z = d * rb;
                            simd::store<double, W>(aj + v * W, simd::load<double, W>(aj + v * W) + z);
                            simd::store<double, W>(aj + D + v * W, simd::load<double, W>(aj + D + v * W) + z * d);
                        }
                    }
            }
        }
    };
    if (D == W)
        run(std::integral_constant<int, 1>{});
    else
        run(std::integral_constant<int, 2>{});
    for (index_t j = 0; j < K; ++j) {
        const double* aj = acc + j * S;
        st.nk[j] += simd::hsum<W>(simd::load<double, W>(aj + 2 * D));
        for (index_t l = 0; l < D; ++l) {
            st.a[j * D + l] += aj[l];
            st.s[j * D + l] += aj[D + l];
        }
    }
}

// Statistics of one component for full and tied covariances and compile-time
// D <= 4, straight from the block: for each vector of W samples the D
// differences x_l - s_l stay in registers and feed vector accumulators of n,
// a_l and the triangle of S (1 + D + D(D+1)/2 of them: 15 at D = 4), loaded
// from and stored to the component's v (Workspace::vacc), over the row groups
// gs. rw is zero past the block's rows and xt finite there (load_block).
template <int DC, int VB, class T, class RW>
inline void accumulate_small(const SuffStats& st, index_t j, double* v, const RW& rw, const T* __restrict xt,
                             index_t ld, const Groups& gs) {
    constexpr int W = simd::lanes<double, VB>, GR = simd::lanes<T, VB>;
    using vd = simd::vec<double, W>;
    constexpr int NS = DC * (DC + 1) / 2, NA = 1 + DC + NS;
    const double* shift = st.shift.data() + j * DC;
    vd sh[DC];
    for (int l = 0; l < DC; ++l) sh[l] = simd::splat<double, W>(shift[l]);
    // acc[0]: n; acc[1 + l]: a_l; acc[1 + DC + q]: S in the packed upper triangle
    vd acc[NA];
    for (int q = 0; q < NA; ++q) acc[q] = simd::load<double, W>(v + q * W);
    for_vectors<GR, W>(gs, [&](index_t i0) {
        vd dv[DC];
#pragma GCC unroll 4
        for (int l = 0; l < DC; ++l) dv[l] = simd::load_double<W>(xt + l * ld + i0) - sh[l];
        const vd r = rw(i0);
        acc[0] += r;
#pragma GCC unroll 4
        for (int l = 0; l < DC; ++l) {
            const vd z = r * dv[l];
            acc[1 + l] += z;
            const int row = l * DC - l * (l - 1) / 2;  // index of (l, l) in the packed triangle
#pragma GCC unroll 4
            for (int m = l; m < DC; ++m) acc[1 + DC + row + m - l] += z * dv[m];
        }
    });
    for (int q = 0; q < NA; ++q) simd::store<double, W>(v + q * W, acc[q]);
}

// Statistics of one component for a block by the kernels that read the
// weights rw(i0) where they use them (diag and spherical; full and tied with
// D <= 4, whose sums stay in the workspace's vector accumulators until
// flush_stats). False for the others, which need rw stored
// (accumulate_component).
inline bool in_place_kernels(const SuffStats& st) {
    return st.cov == CovType::diag || st.cov == CovType::spherical || st.d <= 4;
}
inline bool vector_accumulators(const SuffStats& st) {
    return (st.cov == CovType::full || st.cov == CovType::tied) && st.d <= 4;
}

template <class T, int VB, class RW>
inline bool accumulate_in_place(SuffStats& st, index_t j, const RW& rw, Workspace<T>& ws, const Groups& gs) {
    const T* xt = ws.xt.data();
    double* v = ws.vacc.data() + j * ws.vacc_stride * simd::lanes<double, VB>;
    if (st.cov == CovType::diag || st.cov == CovType::spherical) {
        accumulate_diag<T, VB>(st, j, rw, xt, ws.ld, gs);
        return true;
    }
    switch (st.d) {
        case 1: accumulate_small<1, VB>(st, j, v, rw, xt, ws.ld, gs); return true;
        case 2: accumulate_small<2, VB>(st, j, v, rw, xt, ws.ld, gs); return true;
        case 3: accumulate_small<3, VB>(st, j, v, rw, xt, ws.ld, gs); return true;
        case 4: accumulate_small<4, VB>(st, j, v, rw, xt, ws.ld, gs); return true;
        default: return false;
    }
}

// Zeroes the vector accumulators, at the start of a chunk (when st's kernels
// use them).
template <class T>
inline void clear_stats(const SuffStats& st, Workspace<T>& ws) {
    if (vector_accumulators(st)) std::fill(ws.vacc.begin(), ws.vacc.end(), 0.0);
}

// Adds the lane sums of the vector accumulators to st, at the end of a chunk.
template <class T, int VB>
inline void flush_stats(SuffStats& st, const Workspace<T>& ws) {
    if (!vector_accumulators(st)) return;
    constexpr index_t W = simd::lanes<double, VB>;
    const index_t D = st.d;
    const auto sum = [](const double* v) { return simd::hsum<W>(simd::load<double, W>(v)); };
    for (index_t j = 0; j < st.k; ++j) {
        const double* v = ws.vacc.data() + j * ws.vacc_stride * W;
        st.nk[j] += sum(v);
        for (index_t l = 0; l < D; ++l) st.a[j * D + l] += sum(v + (1 + l) * W);
        const double* vs = v + (1 + D) * W;
        double* sj = st.s.data() + (st.cov == CovType::full ? j * D * D : 0);
        for (index_t l = 0, q = 0; l < D; ++l)
            for (index_t m = l; m < D; ++m, ++q) sj[l * D + m] += sum(vs + q * W);
    }
}

// Statistics of one component for the row groups gs of a block, rw = w_i r_ik
// (zeroed here past nb, where the kernels read whole groups).
template <class T, int VB>
inline void accumulate(SuffStats& st, index_t j, double* rw, Workspace<T>& ws, index_t nb, const Groups& gs) {
    zero_tail(rw, nb);
    if (!accumulate_in_place<T, VB>(st, j, StoredWeights<VB>{rw}, ws, gs))
        accumulate_component<T, VB>(st, j, rw, ws.xt.data(), ws.z.data(), ws.ld, gs);
}

// Finishes the symmetric second moments (only the upper triangle is summed).
inline void symmetrize(SuffStats& st) {
    if (st.cov != CovType::full && st.cov != CovType::tied) return;
    const index_t D = st.d;
    const index_t nmat = st.cov == CovType::full ? st.k : 1;
    for (index_t j = 0; j < nmat; ++j) {
        double* s = st.s.data() + j * D * D;
        for (index_t l = 0; l < D; ++l)
            for (index_t m = 0; m < l; ++m) s[l * D + m] = s[m * D + l];
    }
}

// out = partials[0] + partials[1] + ... in chunk order (all around the same
// shifts), then symmetrized. Each entry is summed by one thread in that
// order, so the bits are those of a sequential merge; the entries are shared
// out in slices when there are enough of them: large partials (full
// covariances at large K and D) would otherwise be merged on one thread
// while the others wait.
inline void reduce_partials(const std::vector<SuffStats>& partials, SuffStats& out, int n_threads) {
    out = partials[0];
    const index_t C = static_cast<index_t>(partials.size());
    for (index_t c = 1; c < C; ++c) {
        out.sum_w += partials[c].sum_w;
        out.loglik += partials[c].loglik;
    }
    std::vector<double> SuffStats::*const fields[] = {&SuffStats::nk, &SuffStats::a, &SuffStats::s};
    constexpr index_t kSlice = 4096;
    for (const auto field : fields) {
        double* dst = (out.*field).data();
        const index_t n = static_cast<index_t>((out.*field).size());
        const index_t slices = (n + kSlice - 1) / kSlice;
        const int team = threads_for(static_cast<double>(n) * static_cast<double>(C), n_threads);
        parallel_for(slices, team, [&](index_t q) {
            const index_t i0 = q * kSlice, i1 = std::min(n, i0 + kSlice);
            for (index_t c = 1; c < C; ++c) {
                const double* src = (partials[c].*field).data();
                for (index_t i = i0; i < i1; ++i) dst[i] += src[i];
            }
        });
    }
    symmetrize(out);
}

}  // namespace detail
}  // namespace gaussmix
