// em.hpp -- the fused EM pass and the EM loop.
//
// One pass over the data per iteration. For each block of rows:
//   1. the K log-densities  log pi_k + log N(x_i | mu_k, Sigma_k)   (gaussian.hpp)
//   2. log-sum-exp over k:  log p(x_i) = m_i + log sum_k exp(l_ik - m_i),
//      m_i = max_k l_ik, and r_ik = exp(l_ik - log p(x_i))
//   3. the sufficient statistics of suffstats.hpp, around the current means,
// while the block is in cache. N x K responsibilities are written only when
// the caller gives an output for them. The rows are cut into chunks that depend
// on the problem size only, each reduced into its own partial, merged in chunk
// order: the result does not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "gaussian.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "suffstats.hpp"
#include "vmath.hpp"

namespace gaussmix {

// A row-major data matrix (rows may be strided) with optional sample weights.
template <class T>
struct DataView {
    const T* x = nullptr;
    index_t n = 0, d = 0;
    index_t row_stride = 0;          // in elements
    const double* weights = nullptr;  // n, or nullptr for unit weights

    const T* row(index_t i) const { return x + i * row_stride; }
    double weight(index_t i) const { return weights ? weights[i] : 1.0; }
};

// Optional per-sample outputs of an E-step.
template <class T>
struct EStepOutputs {
    T* log_prob_norm = nullptr;   // n: log p(x_i)
    T* resp = nullptr;            // n x K: responsibilities
    std::int64_t* labels = nullptr;  // n: argmax_k of the weighted log-density
    // Check that X is finite on the way (e_step then throws NonFiniteInput
    // when it is not): the check a caller would otherwise make in a pass of
    // its own over X, here on each block while it is in the L1 cache.
    bool check_finite = false;
    // Skip the work of a component on the groups of rows where all of its
    // e_ik = exp(l_ik - m_i) are zero (in the floating range; see
    // live_components): the results are the same bits either way, for finite
    // weights and finite differences x - mu (which the estimators ensure;
    // where one overflows, computing every term adds 0 * inf = NaN).
    bool skip_zero = true;
};

// X holds an infinity or a NaN (found by an E-step with check_finite). The
// binding turns it into an exception the Python layer answers with its full
// validation error.
class NonFiniteInput : public std::invalid_argument {
   public:
    NonFiniteInput() : std::invalid_argument("X contains infinity or NaN") {}
};

namespace detail {

// Rows per block: 256, fewer for wide data so a block's working set (four
// D x B arrays) stays within the L2 cache. diag and spherical, whose kernels
// stream the block once per component, keep the block and its K
// log-densities ((D + K) x B values) within 48 KB, a typical L1 data cache:
// with cache-aligned workspaces, 256 rows at D = 8, K = 16 run 6% faster
// than 128 (and 128 at D = 32 or K = 32, 16% faster than 64); twice that
// size runs 20-30% slower. Always a multiple of 64, so that kernels working
// on four vectors at a time stay inside a block.
inline index_t block_rows(index_t d, index_t k, CovType cov) {
    index_t b = 16384 / std::max<index_t>(d, 1);
    if (cov == CovType::diag || cov == CovType::spherical) b = std::min<index_t>(b, 6144 / (d + k));
    b = std::max<index_t>(64, std::min<index_t>(256, b));
    return (b / 64) * 64;
}

template <class T>
struct Workspace {
    index_t d = 0, k = 0, ld = 0;
    simd::aligned_vector<T> xt, diff, logp, mx, sum;
    simd::aligned_vector<double> z, rw, w, winv;
    std::vector<unsigned char> far;
    // Vector accumulators of accumulate_small (full and tied, D <= 4), kept
    // across the blocks of a chunk and summed over lanes once at its end
    // (flush_stats): per component, vacc_stride vectors of kMaxLanes doubles,
    // n, a_1..a_D and the packed triangle of S. (diag and spherical sum their
    // lanes per block: K x (2D + 1) vectors held between blocks would crowd
    // their block out of the L1 cache, measured 5% slower at D = 8, K = 16.)
    static constexpr index_t kMaxLanes = 8;
    index_t vacc_stride = 0;
    simd::aligned_vector<double> vacc;
    // The live components of a block (see live_components): per (group of
    // rows, component) a byte of lane flags, K rounded up to 16 of them per
    // group; per group, the components with an e_ik that is not zero
    // (live_stride slots each, and their count); per component, its groups
    // (max_groups slots each, and their count). row_acc: the sums of
    // accumulate_diag_rows_sparse.
    index_t max_groups = 0, k_padded = 0, live_stride = 0;
    int probe_in = 0;  // blocks to run before live_components is tried again
    std::vector<unsigned char> pair_flags;
    std::vector<std::int32_t> group_live, n_group_live, comp_live, n_comp_live;
    simd::aligned_vector<double> row_acc;

    Workspace() = default;
    Workspace(index_t d_, index_t k_, index_t ld_) : d(d_), k(k_), ld(ld_) {
        vacc_stride = d <= 4 ? 1 + d + d * (d + 1) / 2 : 0;
        vacc.resize(k * vacc_stride * kMaxLanes);
        max_groups = ld / 2;  // groups of 2 doubles at the least (SSE2)
        k_padded = (k + 15) / 16 * 16;
        live_stride = k_padded + 16;
        pair_flags.assign(max_groups * k_padded, 0);
        group_live.resize(max_groups * live_stride);
        n_group_live.resize(max_groups);
        comp_live.resize(k * max_groups);
        n_comp_live.resize(k);
        row_acc.resize(k * (2 * d + kMaxLanes));
        xt.resize(d * ld);
        diff.resize(d * ld);
        logp.resize(k * ld);
        mx.resize(ld);
        sum.resize(ld);
        z.resize(d * ld);
        rw.resize(ld);
        w.resize(ld);
        winv.resize(ld);
        far.resize(ld);
    }
};

// The calling thread's workspace for (d, k, ld), kept between passes: an EM
// iteration on a small data set would otherwise spend a third of its time
// allocating and zeroing it. What an earlier block left in it reaches no
// result: lanes past a block's rows that feed the statistics (xt, rw, the
// weights and e_ik) are set for each block, and the others only fill lanes
// that are never used.
template <class T>
inline Workspace<T>& thread_workspace(index_t d, index_t k, index_t ld) {
    thread_local Workspace<T> ws;
    if (ws.d != d || ws.k != k || ws.ld != ld) ws = Workspace<T>(d, k, ld);
    return ws;
}

// Rows [0, nb) of a row-major block with compile-time D (row stride DC)
// into xt (D x ld): unrolled over features so the compiler can transpose
// whole vectors of rows.
template <int DC, class T>
inline void transpose_fixed(const T* __restrict src, index_t nb, T* __restrict xt, index_t ld) {
    for (index_t i = 0; i < nb; ++i)
#pragma GCC unroll 8
        for (int l = 0; l < DC; ++l) xt[l * ld + i] = src[i * DC + l];
}

// Transpose rows [r0, r0 + nb) of X into xt (D x ld); their weights into w.
// Lanes from nb to ld are zeroed, so kernels that run over whole vectors
// read finite values there.
template <class T, int VB>
inline void load_block(const DataView<T>& X, index_t r0, index_t nb, T* __restrict xt, double* __restrict w,
                       index_t ld) {
    const index_t d = X.d;
    const T* src = X.row(r0);
    if (X.row_stride == d && d <= 8) {
        switch (d) {
            case 1: std::copy(src, src + nb, xt); break;
            case 2: transpose_fixed<2>(src, nb, xt, ld); break;
            case 3: transpose_fixed<3>(src, nb, xt, ld); break;
            case 4: transpose_fixed<4>(src, nb, xt, ld); break;
            case 5: transpose_fixed<5>(src, nb, xt, ld); break;
            case 6: transpose_fixed<6>(src, nb, xt, ld); break;
            case 7: transpose_fixed<7>(src, nb, xt, ld); break;
            default: {
                index_t i = 0;
                if constexpr (8 * sizeof(T) <= VB)
                    for (; i + 8 <= nb; i += 8) simd::transpose8(src + i * 8, 8, xt + i, ld);
                transpose_fixed<8>(src + i * 8, nb - i, xt + i, ld);
                break;
            }
        }
    } else {
        // groups of eight rows and eight features by shuffles, the rest one by one
        const index_t stride = X.row_stride;
        index_t i = 0;
        if constexpr (8 * sizeof(T) <= VB)
            for (; i + 8 <= nb; i += 8) {
                index_t l = 0;
                for (; l + 8 <= d; l += 8) simd::transpose8(src + i * stride + l, stride, xt + l * ld + i, ld);
                for (; l < d; ++l)
                    for (index_t r = i; r < i + 8; ++r) xt[l * ld + r] = src[r * stride + l];
            }
        for (; i < nb; ++i) {
            const T* __restrict xr = X.row(r0 + i);
            for (index_t l = 0; l < d; ++l) xt[l * ld + i] = xr[l];
        }
    }
    if (nb < ld)
        for (index_t l = 0; l < d; ++l) std::fill(xt + l * ld + nb, xt + (l + 1) * ld, T(0));
    if (X.weights) {
        for (index_t i = 0; i < nb; ++i) w[i] = X.weights[r0 + i];
    } else {
        for (index_t i = 0; i < nb; ++i) w[i] = 1.0;
    }
}

// Cache lines [begin, end) split into `parts` equal shares, prefetched one
// share at a time: rows of the next block, read while this one is computed
// so that the hardware need not wait on memory when it is loaded.
struct PrefetchRange {
    const char* begin = nullptr;
    index_t lines = 0, parts = 1;
    void fetch(index_t part) const {
        const index_t l0 = lines * part / parts, l1 = lines * (part + 1) / parts;
        for (index_t l = l0; l < l1; ++l) __builtin_prefetch(begin + l * 64, 0, 3);
    }
};

// The rows [r0, r0 + nb) of X when they are contiguous (nothing otherwise).
template <class T>
inline PrefetchRange next_block(const DataView<T>& X, index_t r0, index_t nb, index_t parts) {
    PrefetchRange p;
    if (nb <= 0 || X.row_stride != X.d) return p;
    p.begin = reinterpret_cast<const char*>(X.row(r0));
    p.lines = (nb * X.d * static_cast<index_t>(sizeof(T)) + 63) / 64;
    p.parts = std::max<index_t>(parts, 1);
    return p;
}

// The rows of a block a component's statistics visit, as groups of GR rows
// (GR: the lanes of one exp vector of the block's type): all of them, or
// those where one of its e_ik is not zero (the others add exactly nothing).
// Group numbers ascend, so sums skip zero terms but keep their order.
struct Groups {
    const std::int32_t* idx = nullptr;  // null: groups 0, 1, ..., n - 1
    index_t n = 0;
};

// f(i0) for the first row i0 of each vector of W doubles in the groups gs of
// GR rows, in order.
template <int GR, int W, class F>
inline void for_vectors(const Groups& gs, F&& f) {
    static_assert(GR % W == 0, "a group is whole vectors of doubles");
    const std::int32_t* idx = gs.idx;  // copies: the stores of f may alias gs
    const index_t n = gs.n;
    if (!idx) {
        for (index_t i0 = 0; i0 < n * GR; i0 += W) f(i0);
        return;
    }
    for (index_t c = 0; c < n; ++c) {
        const index_t r0 = static_cast<index_t>(idx[c]) * GR;
        for (index_t u = 0; u < GR; u += W) f(r0 + u);
    }
}

// S[l0 + a][m0 + b] += the lane sums of acc[a][b], for the entries inside
// D x D (those below the diagonal are overwritten by symmetrize).
template <index_t RA, index_t R, int W>
inline void add_tile(double* s, index_t D, index_t l0, index_t m0, const simd::vec<double, W> (&acc)[RA][R]) {
    for (index_t a = 0; a < RA && l0 + a < D; ++a) {
        double* row = s + (l0 + a) * D + m0;
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
// S += Z^T (X - s) in register tiles of RA x 4 entries x W lanes, the
// differences x - s formed in the tiles on the adder pipes beside the
// multiply-adds instead of being stored and read back; lanes are summed once
// per block. RA = 6 (24
// accumulators) with AVX-512's 32 vector registers, each z vector loaded
// where it is used (7-14% faster than 4 x 4 at D = 48 to 64); RA = 2 with the
// 16 of AVX2 and SSE2.
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
    constexpr index_t W = N, R = 4, RA = VB >= 64 ? 6 : 2;
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
                if constexpr (RA > 4) {
                    for (index_t a = 0; a < RA; ++a) {
                        const vd zv = simd::load<double, W>(zr[a] + i0);
                        for (index_t b = 0; b < R; ++b) acc[a][b] += zv * dv[b];
                    }
                } else {
                    vd zv[RA];
                    for (index_t a = 0; a < RA; ++a) zv[a] = simd::load<double, W>(zr[a] + i0);
                    for (index_t a = 0; a < RA; ++a)
                        for (index_t b = 0; b < R; ++b) acc[a][b] += zv[a] * dv[b];
                }
            });
            add_tile<RA, R, W>(sj, D, l0, m0, acc);
        }
    }
}

// The same statistics in 4 x 4 tiles that form z = rw (x - s) themselves
// (AVX-512, D <= 24): no z written and read back, at the price of four
// multiplies per tile and vector; n and a are summed in the diagonal tiles.
// Measured 25-35% faster than accumulate_stored_tiles at D = 8 to 16 and 15%
// at D = 24; from D = 32 the stored z pays for itself.
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
// kernel (accumulate_diag) sums its lanes once per component and block, and
// at D = 16 makes two passes of 8 features; measured on the whole E-step,
// this one is 47% faster at D = 16, K = 16, 23% at D = 16, K = 4, 19% at
// D = 8, K = 64 and 3% at D = 8, K = 16. For diag_rows_kernel's shapes.
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
// group of W rows with one live component has, at well-separated clusters,
// that component live on one or two of its rows (at 1e6 x 8, K = 16, 38% of
// the (group, component) pairs are live but 6% of the (row, component)
// pairs). For each row, its live components from the lanes of the pair
// flags: rw = ws_i e_ik, and each component's sums run through the rows in
// order, as in accumulate_diag_rows_tile, n in the lane of the row as in
// accumulate_diag_rows: the same bits. The sums wait in the workspace
// (row_acc). Rows from nb on are not read.
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

// Rough multiply-add count of a pass, for threads_for.
inline double pass_work(index_t n, index_t d, index_t k, CovType cov, bool stats) {
    const double dd = static_cast<double>(d);
    const double per = (cov == CovType::full || cov == CovType::tied) ? dd * (dd + 1) / 2 + dd : 2 * dd;
    return static_cast<double>(n) * static_cast<double>(k) * (per * (stats ? 2 : 1) + 20.0);
}

// Rows per chunk at least: 512, or as many as make one thread's worth of
// work (threads_for), so that a pass too small to share runs as one chunk
// (a 1000-row fit spent a tenth of each iteration on its second chunk).
//
// A chunk's partial (partial_bytes) is cleared, written and merged once per
// pass, so chunks are also made long enough to do kWorkPerPartialDouble
// multiply-adds per double of it, as long as that leaves 128 chunks or more
// to share out: G2's 390 partials of 37 KB took 6% of its pass to merge.
constexpr double kWorkPerPartialDouble = 1000.0;

inline index_t chunk_rows(index_t n, double work, std::size_t partial_bytes = 0) {
    const double per_row = std::max(work / static_cast<double>(std::max<index_t>(n, 1)), 1.0);
    double rows = std::ceil(kWorkPerThread / per_row);
    const double by_partial = kWorkPerPartialDouble * static_cast<double>(partial_bytes / sizeof(double)) / per_row;
    rows = std::max(rows, std::min(by_partial, static_cast<double>(n) / 128.0));
    return std::max<index_t>(512, static_cast<index_t>(std::min(rows, 1e9)));
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
// out in slices when there are enough of them (G3's 64 partials of 1 MB took
// 4% of an iteration on one thread).
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

namespace detail {

constexpr double kLn2 = 0.69314718055994530942;

// p = 2^e m with m in [1, 2) for positive normal p: p becomes m, e is added
// to expo (from the bits, as vmath's log takes them apart).
template <int W>
inline void split_exponent(simd::vec<double, W>& p, simd::vec<double, W>& expo) {
    using vu = simd::vec<std::uint64_t, W>;
    vu b;
    std::memcpy(&b, &p, sizeof b);
    const vu e_bits = (b >> 52) | 0x4330000000000000ULL;  // 2^52 + biased exponent
    simd::vec<double, W> e;
    std::memcpy(&e, &e_bits, sizeof e);
    expo += e - (4503599627370496.0 + 1023.0);
    const vu m_bits = (b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    std::memcpy(&p, &m_bits, sizeof p);
}

// True when the n values at xt (a D x ld block, n a multiple of 64) are
// finite: the lanes of sum x * 0 are 0 for finite x and NaN for an infinity
// or a NaN (the padding past a block's rows is zero). Four independent sums:
// one chain of dependent multiply-adds cost 5% of a pass at D = 8, K = 16.
template <class T, int VB>
inline bool block_finite(const T* __restrict xt, index_t n) {
    constexpr int W = simd::lanes<T, VB>;
    using V = simd::vec<T, W>;
    V acc[4] = {};
    const V zero = {};
    for (index_t i = 0; i < n; i += 4 * W)
        for (int u = 0; u < 4; ++u) acc[u] += simd::load<T, W>(xt + i + u * W) * zero;
    const V a = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    T s = T(0);
    for (int l = 0; l < W; ++l) s += a[l];
    return s == T(0);
}

// The live components of a block. exp_vec gives exactly 0 below
// exp_zero_below, so where all x_ik = l_ik - m_i of component k on a group
// of GR rows (one exp vector) are below it, its e_ik and its terms in every
// sum are 0 there: well-separated clusters leave most (group, component)
// pairs so (62% at 1e6 x 8, K = 16, diag, blobs 8 standard deviations
// apart), and skipping their exps and statistics made an EM iteration 13%
// faster there, 18% at 2e5 x 16, K = 16, full and 30% at 5e4 x 64, K = 32
// (AVX-512; with AVX2, whose groups are of four rows, 28-33%). Lists per
// group its live components (Workspace::group_live) and, with by_component, per
// component its live groups (comp_live), in ascending order. Returns the
// number of live pairs. Two sweeps: a byte per pair (a compare into a mask
// and a store), then the lists from 16 bytes at a time, once the bytes have
// reached the cache (read back at once, they would wait on the stores).
template <class T, int VB>
inline index_t live_components(const T* lp, const T* mx, index_t ld, index_t K, index_t ngb, bool by_component,
                               Workspace<T>& ws) {
    constexpr int GR = simd::lanes<T, VB>;
    using V = simd::vec<T, GR>;
    constexpr T lo = vmath::exp_zero_below<T>();
    const index_t KP = ws.k_padded, LS = ws.live_stride;
    unsigned char* flags = ws.pair_flags.data();
    for (index_t g = 0; g < ngb; ++g) {
        const V m = simd::load<T, GR>(mx + g * GR);
        unsigned char* f = flags + g * KP;
        for (index_t j = 0; j < K; ++j) {
            const unsigned bits = simd::lanes_not_below<T, GR>(simd::load<T, GR>(lp + j * ld + g * GR) - m, lo);
            f[j] = static_cast<unsigned char>(GR > 8 ? bits | (bits >> 8) : bits);
        }
    }
    std::int32_t* n_comp = ws.n_comp_live.data();
    std::int32_t* comp = ws.comp_live.data();
    const index_t mg = ws.max_groups;
    if (by_component) std::fill(n_comp, n_comp + K, 0);
    index_t total = 0;
    for (index_t g = 0; g < ngb; ++g) {
        const unsigned char* f = flags + g * KP;
        std::int32_t* live = ws.group_live.data() + g * LS;
        int n = 0;
        for (index_t j0 = 0; j0 < K; j0 += 16)  // flags past K are zero
            n += simd::compress_indices16<VB>(simd::nonzero_bytes16(f + j0),
                                              static_cast<int>(std::min<index_t>(16, K - j0)),
                                              static_cast<int>(j0), live + n);
        ws.n_group_live[g] = n;
        total += n;
        if (by_component)
            for (int c = 0; c < n; ++c) {
                const std::int32_t j = live[c];
                comp[j * mg + n_comp[j]++] = static_cast<std::int32_t>(g);
            }
    }
    return total;
}

// Above a share of live pairs in a block, the block and the next kProbeEvery
// blocks the thread takes run without skipping: finding the live pairs costs
// about kLiveCost vector operations per pair (more without AVX-512's
// compression of the lists), and each dead one saves its exp (about
// kExpCost) and its statistics. At 1e6 x 2, K = 8, full, where 81% of the
// pairs are live, skipping was 4% slower; at 1e6 x 8, K = 16, diag, with
// 38%, 10-25% faster.
constexpr double kExpCost = 25.0;
constexpr int kProbeEvery = 64;

// That share, for statistics of `stats_madds` multiply-adds per vector of
// rows and component (0: no statistics). With AVX2, at 1e6 x 2, K = 8, full,
// 60% live (groups of four rows), skipping was 20% slower with the cost of
// AVX-512.
template <int VB>
inline double dense_live_share(double stats_madds) {
    constexpr double live_cost = VB >= 64 ? 10.0 : 20.0;
    return 1.0 - live_cost / (kExpCost + stats_madds);
}

// The fused pass over rows [r0, r1): log-densities, log-sum-exp, per-sample
// outputs and (when st is not null) sufficient statistics. Adds the weighted
// log-likelihood and the weight seen to ll and sw. Returns false when
// out.check_finite is set and a value of X is not finite (the outputs are
// then meaningless; the pass still runs to its end, on any values). next_r0:
// the first row of the chunk the thread is likely to take next (-1: none),
// prefetched during the last block.
template <class T, int VB>
inline bool e_step_rows_impl(const DataView<T>& X, const Model<T>& model, index_t r0, index_t r1,
                             const EStepOutputs<T>& out, SuffStats* st, Workspace<T>& ws, double& ll, double& sw,
                             index_t next_r0) {
    const index_t K = model.k, ld = ws.ld;
    T* __restrict lp = ws.logp.data();
    T* __restrict mx = ws.mx.data();
    T* __restrict sum = ws.sum.data();
    double* __restrict w = ws.w.data();
    double* __restrict rw = ws.rw.data();
    if (st) clear_stats(*st, ws);
    bool finite = true;
    // With unit weights and no per-sample output, sum_i log p(x_i) =
    // sum_i m_i + log prod_i sum_i: no log per sample (it cost a fifth of a
    // fit's pass at K = 3). The product of the sums (each in [1, K]) is kept
    // in [1, 2) per lane, its exponent moved out after each factor; one log
    // per lane ends the chunk.
    constexpr int W = simd::lanes<double, VB>;
    using vd = simd::vec<double, W>;
    const bool product_ll = !out.log_prob_norm && !X.weights;
    vd m_acc = {}, expo = {}, prod = simd::splat<double, W>(1.0);
    // Skipping the components whose e_ik are all zero on a group of rows
    // (live_components), unless a block where most pairs were live came
    // less than kProbeEvery blocks before. Both ways give the same bits, so
    // the choice may follow the thread from chunk to chunk and pass to pass.
    constexpr int GR = simd::lanes<T, VB>;
    const bool skip = out.skip_zero && K > 1;
    const bool rows_kernel = st && diag_rows_kernel<T, VB>(*st);
    const bool by_component = st && !rows_kernel;
    const double dd = static_cast<double>(X.d);
    const bool matrices = model.cov == CovType::full || model.cov == CovType::tied;
    const double dense_live = dense_live_share<VB>(!st ? 0.0 : matrices ? dd * (dd + 3) / 2 : 2 * dd);
    int& probe_in = ws.probe_in;
    for (index_t b0 = r0; b0 < r1; b0 += ld) {
        const index_t nb = std::min(ld, r1 - b0);
        load_block<T, VB>(X, b0, nb, ws.xt.data(), w, ld);
        if (out.check_finite) finite = block_finite<T, VB>(ws.xt.data(), X.d * ld) && finite;
        // The next block's rows are fetched from memory while this one is
        // computed, a share of them with each component; during the last
        // block, the first of next_r0's (the chunk this thread is likely to
        // take next), which would otherwise start cold.
        const bool last = b0 + nb >= r1;
        const index_t nr0 = last ? next_r0 : b0 + nb;
        const index_t nrows = last ? (next_r0 >= 0 ? std::min(ld, X.n - next_r0) : 0) : std::min(ld, r1 - b0 - nb);
        const PrefetchRange next = next_block(X, nr0, nrows, K);
        for (index_t j = 0; j < K; ++j) {
            next.fetch(j);
            kernel::component_log_prob<T, VB>(model, j, ws.xt.data(), ws.diff.data(), lp + j * ld, ld, nb);
        }
        // m_i = max_k l_ik (and its argmax)
        if (out.labels) {
#pragma omp simd
            for (index_t i = 0; i < nb; ++i) mx[i] = lp[i];
            std::int64_t* lab = out.labels + b0;
            for (index_t i = 0; i < nb; ++i) lab[i] = 0;
            for (index_t j = 1; j < K; ++j) {
                const T* lj = lp + j * ld;
                for (index_t i = 0; i < nb; ++i)
                    if (lj[i] > mx[i]) {
                        mx[i] = lj[i];
                        lab[i] = j;
                    }
            }
        } else {
            // one vector of samples at a time, the maximum in a register
            constexpr int VW = simd::lanes<T, VB>;
            using V = simd::vec<T, VW>;
            for (index_t i0 = 0; i0 < nb; i0 += VW) {
                V m = simd::load<T, VW>(lp + i0);
                for (index_t j = 1; j < K; ++j) {
                    const V l = simd::load<T, VW>(lp + j * ld + i0);
                    m = l > m ? l : m;
                }
                simd::store<T, VW>(mx + i0, m);
            }
        }
        // A sample whose every log-density is -inf (its squared distances
        // overflow) belongs, in the limit, to one component: give it that
        // component's full responsibility, and log p(x_i) = -inf below.
        constexpr T inf = std::numeric_limits<T>::infinity();
        int n_far = 0;
#pragma omp simd reduction(+ : n_far)
        for (index_t i = 0; i < nb; ++i) n_far += mx[i] == -inf ? 1 : 0;
        const bool any_far = n_far > 0;
        if (any_far) {
            for (index_t i = 0; i < nb; ++i) {
                ws.far[i] = mx[i] == -inf;
                if (!ws.far[i]) continue;
                const index_t kf = far_point_component(model, X.row(b0 + i));
                for (index_t j = 0; j < K; ++j) lp[j * ld + i] = j == kf ? T(0) : -inf;
                mx[i] = T(0);
                if (out.labels) out.labels[b0 + i] = kf;
            }
        }
        // exp(l_ik - m_i) in place, and their sum over k, one vector of
        // samples at a time (lanes past nb are computed and never used):
        // for the live components only where that pays (live_components;
        // the others' e_ik are 0, and s adds them in the same order).
        const index_t ngb = (nb + GR - 1) / GR;
        bool live_only = false;
        if (probe_in > 0) {
            --probe_in;
        } else if (skip) {
            const index_t n_live = live_components<T, VB>(lp, mx, ld, K, ngb, by_component, ws);
            // mostly live: the lists would cost more than they save, here
            // and in the next blocks; look again later
            live_only = static_cast<double>(n_live) <= dense_live * static_cast<double>(K * ngb);
            if (!live_only) probe_in = kProbeEvery;
        }
        {
            using V = simd::vec<T, GR>;
            if (live_only) {
                for (index_t g = 0; g < ngb; ++g) {
                    const std::int32_t* live = ws.group_live.data() + g * ws.live_stride;
                    const index_t n_live = ws.n_group_live[g];
                    const V m = simd::load<T, GR>(mx + g * GR);
                    V s = {};
                    for (index_t c = 0; c < n_live; ++c) {
                        T* lj = lp + live[c] * ld + g * GR;
                        const V e = vmath::exp_vec<GR>(simd::load<T, GR>(lj) - m);
                        simd::store<T, GR>(lj, e);
                        s += e;
                    }
                    simd::store<T, GR>(sum + g * GR, s);
                    // the others' e_ik = 0, which only the responsibilities read
                    if (out.resp)
                        for (index_t j = 0, c = 0; j < K; ++j) {
                            if (c < n_live && live[c] == j)
                                ++c;
                            else
                                simd::store<T, GR>(lp + j * ld + g * GR, V{});
                        }
                }
            } else {
                for (index_t i0 = 0; i0 < nb; i0 += GR) {
                    const V m = simd::load<T, GR>(mx + i0);
                    V s = {};
                    for (index_t j = 0; j < K; ++j) {
                        T* lj = lp + j * ld + i0;
                        const V e = vmath::exp_vec<GR>(simd::load<T, GR>(lj) - m);
                        simd::store<T, GR>(lj, e);
                        s += e;
                    }
                    simd::store<T, GR>(sum + i0, s);
                }
            }
        }
        // the row groups of component j the statistics visit
        const auto groups_of = [&](index_t j) {
            if (!live_only) return Groups{nullptr, ngb};
            return Groups{ws.comp_live.data() + j * ws.max_groups, ws.n_comp_live[j]};
        };
        // log p(x_i) = m_i + log(sum); responsibilities r_ik = e_ik / sum
        if (!product_ll) {
#pragma omp simd
            for (index_t i = 0; i < nb; ++i) mx[i] = mx[i] + vmath::log_scalar(sum[i]);
        }
        if (any_far)  // their log p(x_i) is below the floating range
            for (index_t i = 0; i < nb; ++i)
                if (ws.far[i]) mx[i] = -inf;
        if (product_ll) {
            index_t i = 0;
            for (; i + W <= nb; i += W) {
                m_acc += simd::load_double<W>(mx + i);
                prod *= simd::load_double<W>(sum + i);
                split_exponent<W>(prod, expo);
            }
            double l = 0.0;
            for (; i < nb; ++i) l += static_cast<double>(mx[i]) + vmath::log_scalar(static_cast<double>(sum[i]));
            ll += l;
            sw += static_cast<double>(nb);
        } else {
            // sum w_i log p(x_i) and sum w_i, in vector registers; a
            // zero-weight row adds nothing, even where log p(x_i) = -inf
            const vd zero = {};
            vd lv = {}, sv = {};
            index_t i = 0;
            for (; i + W <= nb; i += W) {
                const vd wv = simd::load<double, W>(w + i);
                const vd pv = wv * simd::load_double<W>(mx + i);
                lv += wv > zero ? pv : zero;
                sv += wv;
            }
            double l = simd::hsum<W>(lv), s = simd::hsum<W>(sv);
            for (; i < nb; ++i) {
                l += w[i] > 0.0 ? w[i] * static_cast<double>(mx[i]) : 0.0;
                s += w[i];
            }
            ll += l;
            sw += s;
        }
        if (out.log_prob_norm) std::copy(mx, mx + nb, out.log_prob_norm + b0);
        if (!out.resp && !st) continue;
#pragma omp simd
        for (index_t i = 0; i < nb; ++i) sum[i] = T(1) / sum[i];
        if (out.resp) {
            for (index_t j = 0; j < K; ++j) {
                T* __restrict lj = lp + j * ld;
#pragma omp simd
                for (index_t i = 0; i < nb; ++i) lj[i] *= sum[i];
            }
            T* r = out.resp + b0 * K;
            for (index_t i = 0; i < nb; ++i)
                for (index_t j = 0; j < K; ++j) r[i * K + j] = lp[j * ld + i];
        }
        if (!st) continue;
        // w_i r_ik: w_i times the responsibilities normalised above, or, in
        // the fit, (w_i / sum_i) e_ik without a normalising pass.
        double* __restrict ws_i = ws.winv.data();
        if (out.resp) {
            std::copy(w, w + nb, ws_i);
        } else {
#pragma omp simd
            for (index_t i = 0; i < nb; ++i) ws_i[i] = w[i] * static_cast<double>(sum[i]);
        }
        if (in_place_kernels(*st)) {
            // rw_i = ws_i e_ik formed inside the kernels; past nb (up to
            // padded_rows) ws_i is zero and e_ik finite
            for (index_t i = nb; i < padded_rows(nb); ++i) {
                ws_i[i] = 0.0;
                for (index_t j = 0; j < K; ++j) lp[j * ld + i] = T(0);
            }
            if constexpr (std::is_same<T, double>::value)
                if (rows_kernel) {
                    if (live_only)
                        accumulate_diag_rows_sparse<VB>(*st, X.row(b0), X.row_stride, ws_i, lp, ld, nb, ws);
                    else
                        accumulate_diag_rows<VB>(*st, X.row(b0), X.row_stride, ws_i, lp, ld, nb);
                    continue;
                }
            for (index_t j = 0; j < K; ++j)
                accumulate_in_place<T, VB>(*st, j, ProductWeights<VB, T>{ws_i, lp + j * ld}, ws, groups_of(j));
            continue;
        }
        for (index_t j = 0; j < K; ++j) {
            // rw over the groups the kernel reads (past nb, accumulate zeroes it)
            const Groups gs = groups_of(j);
            const ProductWeights<VB, T> rw_of{ws_i, lp + j * ld};
            for_vectors<GR, W>(gs, [&](index_t i0) { simd::store<double, W>(rw + i0, rw_of(i0)); });
            accumulate<T, VB>(*st, j, rw, ws, nb, gs);
        }
    }
    if (st) flush_stats<T, VB>(*st, ws);
    if (product_ll) {
        double l = simd::hsum<W>(m_acc) + kLn2 * simd::hsum<W>(expo);
        for (int q = 0; q < W; ++q) l += std::log(prod[q]);
        ll += l;
    }
    return finite;
}

template <class T>
bool e_step_rows(const DataView<T>& X, const Model<T>& model, index_t r0, index_t r1, const EStepOutputs<T>& out,
                 SuffStats* st, Workspace<T>& ws, double& ll, double& sw, index_t next_r0 = -1) {
    bool finite = true;
    dispatch_isa([&](auto vb) {
        finite = e_step_rows_impl<T, decltype(vb)::value>(X, model, r0, r1, out, st, ws, ll, sw, next_r0);
    });
    return finite;
}

// Statistics of given responsibilities over rows [r0, r1): hard labels
// (labels[i] in [0, K) or -1 for none) or dense resp (N x K).
template <class T, int VB>
inline void stats_rows_impl(const DataView<T>& X, const std::int64_t* labels, const T* resp, index_t r0,
                                      index_t r1, SuffStats& st, Workspace<T>& ws) {
    const index_t K = st.k, ld = ws.ld;
    constexpr int GR = simd::lanes<T, VB>;
    double* __restrict w = ws.w.data();
    double* __restrict rw = ws.rw.data();
    clear_stats(st, ws);
    for (index_t b0 = r0; b0 < r1; b0 += ld) {
        const index_t nb = std::min(ld, r1 - b0);
        load_block<T, VB>(X, b0, nb, ws.xt.data(), w, ld);
        for (index_t i = 0; i < nb; ++i) st.sum_w += w[i];
        for (index_t j = 0; j < K; ++j) {
            bool any = false;
            if (labels) {
                for (index_t i = 0; i < nb; ++i) {
                    const bool mine = labels[b0 + i] == j;
                    rw[i] = mine ? w[i] : 0.0;
                    any = any || mine;
                }
            } else {
                for (index_t i = 0; i < nb; ++i) rw[i] = w[i] * static_cast<double>(resp[(b0 + i) * K + j]);
                any = true;
            }
            if (!any) continue;
            accumulate<T, VB>(st, j, rw, ws, nb, Groups{nullptr, (nb + GR - 1) / GR});
        }
    }
    flush_stats<T, VB>(st, ws);
}

template <class T>
void stats_rows(const DataView<T>& X, const std::int64_t* labels, const T* resp, index_t r0, index_t r1,
                SuffStats& st, Workspace<T>& ws) {
    dispatch_isa([&](auto vb) { stats_rows_impl<T, decltype(vb)::value>(X, labels, resp, r0, r1, st, ws); });
}

template <class T>
void stats_pass(const DataView<T>& X, const std::int64_t* labels, const T* resp, CovType cov, index_t K,
                const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    const index_t N = X.n, D = X.d;
    const index_t ld = block_rows(D, K, cov);
    SuffStats proto(cov, K, D);
    proto.shift = shifts;
    const double work = pass_work(N, D, K, cov, true);
    const Partition part = make_partition(N, chunk_rows(N, work, proto.bytes()), proto.bytes(), ld);
    std::vector<SuffStats> partials(part.n_chunks, proto);
    const int team = threads_for(work, n_threads);
    parallel_for(part.n_chunks, team, [&](index_t c) {
        Workspace<T>& ws = thread_workspace<T>(D, K, ld);
        stats_rows<T>(X, labels, resp, part.begin(c), part.end(c), partials[c], ws);
    });
    if (part.n_chunks == 0) {
        stats = proto;
    } else {
        reduce_partials(partials, stats, n_threads);
    }
}

}  // namespace detail

// One E-step over X with the given parameters. Fills the requested per-sample
// outputs and, when `stats` is not null, the sufficient statistics around the
// current means (the fused EM pass). Returns the weighted mean log-likelihood.
// Throws NonFiniteInput when out.check_finite is set and X is not finite.
// `scratch` (optional) holds the per-chunk partials between calls: an EM loop
// passes the same one each iteration, so that they are allocated once per fit
// rather than mapped and zeroed afresh each pass (at G2's 250 chunks of 33 KB,
// the page faults alone took 3% of an iteration).
template <class T>
double e_step(const DataView<T>& X, const MixtureParams& params, const EStepOutputs<T>& out,
              SuffStats* stats, int n_threads, std::vector<SuffStats>* scratch = nullptr) {
    const index_t N = X.n, D = X.d, K = params.k;
    if (D != params.d) throw std::invalid_argument("e_step: X has a different number of features than the model");
    const Model<T> model(params);
    const index_t ld = detail::block_rows(D, K, params.cov);
    SuffStats proto(params.cov, K, D);
    proto.shift = params.means;
    const double work = detail::pass_work(N, D, K, params.cov, stats != nullptr);
    const std::size_t partial_bytes = stats ? proto.bytes() : 64;
    const Partition part = make_partition(N, detail::chunk_rows(N, work, partial_bytes), partial_bytes, ld);
    std::vector<SuffStats> local;
    std::vector<SuffStats>& partials = scratch ? *scratch : local;
    // each chunk's partial is (re)set by its thread, in parallel
    if (stats) partials.resize(part.n_chunks);
    std::vector<double> chunk_loglik(part.n_chunks, 0.0), chunk_w(part.n_chunks, 0.0);
    std::vector<unsigned char> chunk_finite(part.n_chunks, 1);
    const int team = threads_for(work, n_threads);

    parallel_for(part.n_chunks, team, [&](index_t c) {
        detail::Workspace<T>& ws = detail::thread_workspace<T>(D, K, ld);
        SuffStats* st = nullptr;
        if (stats) {
            st = &partials[c];
            if (st->cov == proto.cov && st->k == K && st->d == D) {
                st->clear();
                st->shift = proto.shift;
            } else {
                *st = proto;
            }
        }
        double ll = 0.0, sw = 0.0;
        // with the chunks handed out in turn, this thread's next is likely c + team
        const index_t next_r0 = c + team < part.n_chunks ? part.begin(c + team) : -1;
        chunk_finite[c] = detail::e_step_rows<T>(X, model, part.begin(c), part.end(c), out, st, ws, ll, sw, next_r0);
        chunk_loglik[c] = ll;
        chunk_w[c] = sw;
        if (st) {
            st->loglik = ll;
            st->sum_w = sw;
        }
    });
    if (std::find(chunk_finite.begin(), chunk_finite.end(), 0) != chunk_finite.end()) throw NonFiniteInput();

    double ll = 0.0, sw = 0.0;
    for (index_t c = 0; c < part.n_chunks; ++c) {
        ll += chunk_loglik[c];
        sw += chunk_w[c];
    }
    if (stats) {
        if (part.n_chunks == 0) {
            *stats = proto;
        } else {
            detail::reduce_partials(partials, *stats, n_threads);
        }
    }
    return sw > 0.0 ? ll / sw : -std::numeric_limits<double>::infinity();
}

// Statistics of a hard assignment (labels[i] in [0, K), or -1 for none)
// around the given shifts: the initialisation from k-means labels, k-means++
// seeds or random rows.
template <class T>
void stats_from_labels(const DataView<T>& X, const std::int64_t* labels, CovType cov, index_t K,
                       const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    detail::stats_pass<T>(X, labels, nullptr, cov, K, shifts, stats, n_threads);
}

// Statistics of dense responsibilities resp (N x K, rows summing to one).
template <class T>
void stats_from_resp(const DataView<T>& X, const T* resp, CovType cov, index_t K,
                     const std::vector<double>& shifts, SuffStats& stats, int n_threads) {
    detail::stats_pass<T>(X, nullptr, resp, cov, K, shifts, stats, n_threads);
}

// Weighted column means of X (the shift for statistics with no better guess).
template <class T>
std::vector<double> weighted_mean(const DataView<T>& X, int n_threads) {
    const index_t N = X.n, D = X.d;
    const Partition part = make_partition(N, 4096, sizeof(double) * (D + 1));
    std::vector<double> sums(part.n_chunks * (D + 1), 0.0);
    n_threads = threads_for(static_cast<double>(N * D), n_threads);
    parallel_for(part.n_chunks, n_threads, [&](index_t c) {
        double* s = sums.data() + c * (D + 1);
        for (index_t i = part.begin(c); i < part.end(c); ++i) {
            const double w = X.weight(i);
            const T* xr = X.row(i);
            for (index_t l = 0; l < D; ++l) s[l] += w * static_cast<double>(xr[l]);
            s[D] += w;
        }
    });
    std::vector<double> mean(D, 0.0);
    double total = 0.0;
    for (index_t c = 0; c < part.n_chunks; ++c) {
        for (index_t l = 0; l < D; ++l) mean[l] += sums[c * (D + 1) + l];
        total += sums[c * (D + 1) + D];
    }
    if (total > 0.0)
        for (auto& m : mean) m /= total;
    return mean;
}

// Result of an EM run from given starting parameters.
struct EMResult {
    MixtureParams params;
    std::vector<double> lower_bounds;  // mean log-likelihood of each E-step
    index_t n_iter = 0;
    bool converged = false;
};

// scikit-learn's EM loop: each iteration takes the E-step of the current
// parameters (its mean log-likelihood is that iteration's lower bound) and the
// M-step; it stops when |change| < tol. `prev_lower_bound` is -inf for a fresh
// start, or the last lower bound for a warm start. With check_finite, the
// first E-step checks that X is finite (NonFiniteInput otherwise).
template <class T>
EMResult em_fit(const DataView<T>& X, const MixtureParams& start, double tol, index_t max_iter,
                double reg_covar, double prev_lower_bound, int n_threads, bool check_finite = false) {
    EMResult res;
    res.params = start;
    const double eps = std::numeric_limits<T>::epsilon();
    double lb = prev_lower_bound;
    SuffStats st;
    std::vector<SuffStats> partials;
    detail::InterruptPoller poller;
    for (index_t it = 1; it <= max_iter; ++it) {
        check_interrupt(poller);
        const double prev = lb;
        EStepOutputs<T> out;
        out.check_finite = check_finite && it == 1;
        lb = e_step<T>(X, res.params, out, &st, n_threads, &partials);
        MixtureParams next;
        m_step(st, reg_covar, eps, false, next);
        res.params = std::move(next);
        res.lower_bounds.push_back(lb);
        res.n_iter = it;
        const double change = lb - prev;
        if (std::abs(change) < tol) {
            res.converged = true;
            break;
        }
    }
    return res;
}

}  // namespace gaussmix
