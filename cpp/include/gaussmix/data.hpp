// data.hpp -- the data matrix as the engine sees it, and its weighted mean.
//
// X is N x D, row-major with a row stride, with optional sample weights w_i
// (unit weights when absent). The weighted column means are
//   mean_l = sum_i w_i x_il / sum_i w_i,
// the shift the statistics, k-means and the KDE use when they have no
// better guess.
#pragma once

#include <stdexcept>
#include <vector>

#include "parallel.hpp"

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

// X holds an infinity or a NaN (found by an E-step with check_finite). The
// binding turns it into an exception the Python layer answers with its full
// validation error.
class NonFiniteInput : public std::invalid_argument {
   public:
    NonFiniteInput() : std::invalid_argument("X contains infinity or NaN") {}
};

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

}  // namespace gaussmix
