"""GaussianMixture's k-means initialisation against scikit-learn's KMeans.

Times gaussmix._kmeans.kmeans and KMeans(n_clusters, n_init=1) on the same
data with the same random_state, in one run, and prints the ratio; each pair
is checked to give the same labels and iteration count. The data are blobs,
half of them overlapping (so Lloyd runs for many iterations).

    python benchmarks/kmeans_init.py            # N = 1e5 and 1e6, D = 2..16, K = 8, 16
    python benchmarks/kmeans_init.py --quick
    python benchmarks/kmeans_init.py --threads 1
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from gaussmix import _kmeans
from gaussmix._validation import effective_n_threads


def blobs(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    return centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="both libraries' threads")
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    dims = [2, 16] if args.quick else [2, 4, 8, 16]
    ks = [8] if args.quick else [8, 16]
    n_threads = effective_n_threads(args.threads)
    if args.threads is not None:
        threadpool_limits(args.threads)  # scikit-learn's OpenMP and BLAS
    print(f"threads: {n_threads}")
    print(f"{'N':>9} {'D':>3} {'K':>3} {'iter':>5} {'sklearn s':>10} {'gaussmix s':>11} {'ratio':>6}")
    warnings.simplefilter("ignore", ConvergenceWarning)
    for n in sizes:
        for d in dims:
            X = blobs(n, d, 12)
            for k in ks:
                t_sk, km = best_of(
                    lambda: KMeans(k, n_init=1, random_state=0).fit(X), args.repeat
                )
                t_gm, (labels, _, n_iter) = best_of(
                    lambda: _kmeans.kmeans(X, None, k, 0, n_threads), args.repeat
                )
                same = np.array_equal(labels, km.labels_) and n_iter == km.n_iter_
                print(
                    f"{n:>9} {d:>3} {k:>3} {n_iter:>5} {t_sk:>10.3f} {t_gm:>11.3f} "
                    f"{t_sk / t_gm:>6.1f}" + ("" if same else "  (labels differ)")
                )


if __name__ == "__main__":
    main()
