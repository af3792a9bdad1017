"""Model selection over components x covariance types: GaussianMixtureIC
against the loops users write.

    python benchmarks/selection.py [--threads N] [--repeats R] [--n N]

The grid of issue-style model selection: K = 1..10 x the four covariance
types on N = 100,000 rows, D = 5, k-means starts, default tol, once on four
well separated blobs and once on four blobs one standard deviation apart
(overlapping). Peers, measured in the same run:

* scikit-learn's loop ``GaussianMixture(k, covariance_type=c,
  random_state=0).fit(X).bic(X)`` over the grid (what its model-selection
  example computes, without the cross-validation);
* the same loop over gaussmix's ``GaussianMixture``.

Every candidate's BIC is checked against scikit-learn's. Times are the best
of --repeats runs (scikit-learn: one run); ratios are peer / GaussianMixtureIC.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

COV_TYPES = ("full", "tied", "diag", "spherical")


def data(n, d=5, k=4, sep=6.0, seed=0):
    """k Gaussian blobs with unequal full covariances, centres sep apart on average."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * sep / np.sqrt(2 * d)
    labels = rng.integers(0, k, n)
    shapes = [np.diag(rng.uniform(0.5, 1.5, d)) @ np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(k)]
    z = rng.normal(size=(n, d))
    X = np.empty((n, d))
    for j in range(k):
        m = labels == j
        X[m] = z[m] @ shapes[j] + centres[j]
    return X


def grid_loop(cls, X, ks, **extra):
    return [
        cls(k, covariance_type=c, random_state=0, **extra).fit(X).bic(X) for c in COV_TYPES for k in ks
    ]


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(n, threads, repeats, ks=range(1, 11)):
    import gaussmix
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    print(f"## K = {ks.start}..{ks.stop - 1} x 4 covariance types, N = {n:,}, D = 5, k-means starts\n")
    print("| data | GaussianMixtureIC | gaussmix loop | scikit-learn loop | vs gaussmix loop "
          "| vs scikit-learn | largest BIC difference (rel.) | chosen |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, sep in (("separated", 8.0), ("overlapping", 1.0)):
        X = data(n, sep=sep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t_ic, sel = best_of(
                lambda: gaussmix.GaussianMixtureIC(ks, random_state=0, n_jobs=threads).fit(X), repeats
            )
            t_loop, _ = best_of(lambda: grid_loop(gaussmix.GaussianMixture, X, ks, n_jobs=threads), repeats)
            t_sk, bic = best_of(lambda: grid_loop(SkGaussianMixture, X, ks), 1)
        dev = float(np.max(np.abs(sel.results_["bic"] - bic) / np.abs(bic)))
        chosen = f"{sel.best_params_['covariance_type']}, K={sel.best_params_['n_components']}"
        print(f"| {name} | {t_ic:.2f} s | {t_loop:.2f} s | {t_sk:.1f} s | {t_loop / t_ic:.1f} "
              f"| {t_sk / t_ic:.0f} | {dev:.1g} | {chosen} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    import gaussmix

    print(f"gaussmix {gaussmix.__version__}; {gaussmix._core.vector_bytes() * 8}-bit vector kernels; "
          f"threads {args.threads or gaussmix._core.default_threads()}\n")
    run(args.n, args.threads, args.repeats)


if __name__ == "__main__":
    main()
