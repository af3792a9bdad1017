"""Many small fits in one call: gaussmix.fit_many against loops and gmm-gpu.

    python benchmarks/batched.py [--threads N] [--repeats R]

1. G5 as users run it (200 groups of N=1000, D=2, K=3, full, default
   k-means initialisation, convergence by tol): ``fit_many`` against a loop
   of gaussmix's ``GaussianMixture`` and a loop of scikit-learn's, all
   sharing one RandomState, so that every fit is the same one (checked).
2. gmm-gpu's own benchmark shape (1000 groups x 400 points x 2-D, K=2) on
   the CPU, from the same start, float32 (gmm-gpu's default; its k-means,
   which it runs even when every starting value is given, fails in
   float64), a fixed number of iterations (tol=0): ``fit_many`` against
   gmm-gpu's ``GMM(device="cpu")`` when it imports (it needs PyTorch), with
   the per-group log-likelihoods compared.

Times are the best of --repeats runs; ratios are peer / gaussmix (above 1:
gaussmix is faster).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning


def best_of(fn, repeats):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def blobs(n_groups, n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, k, d)) * 4
    labels = rng.integers(0, k, size=(n_groups, n))
    return centres[np.arange(n_groups)[:, None], labels] + rng.normal(size=(n_groups, n, d))


def g5(threads, repeats):
    import gaussmix
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = blobs(200, 1000, 2, 3, 0)
    kw = dict(n_components=3, covariance_type="full")

    def batch():
        return gaussmix.fit_many(X, random_state=0, n_jobs=threads, **kw)

    def loop(cls, **extra):
        rs = np.random.RandomState(0)
        return [cls(random_state=rs, **kw, **extra).fit(x) for x in X]

    t_batch, fitted = best_of(batch, repeats)
    t_loop, ours = best_of(lambda: loop(gaussmix.GaussianMixture, n_jobs=threads), repeats)
    t_sk, theirs = best_of(lambda: loop(SkGaussianMixture), 1)
    dev = max(
        max(float(np.max(np.abs(fitted.means_[g] - m.means_))) for g, m in enumerate(ours)),
        max(float(np.max(np.abs(fitted.means_[g] - m.means_))) for g, m in enumerate(theirs)),
    )
    print("## G5 as users run it: 200 fits of N=1,000 D=2 K=3 full, k-means start, tol=1e-3\n")
    print("| | time per fit | ratio to fit_many |")
    print("|---|---:|---:|")
    for name, t in (("gaussmix.fit_many", t_batch), ("loop of gaussmix.GaussianMixture", t_loop),
                    ("loop of scikit-learn GaussianMixture", t_sk)):
        print(f"| {name} | {t / 200 * 1e6:.0f} µs | {t / t_batch:.1f} |")
    print(f"\nSame fits: largest difference of the means from both loops {dev:.1g}; "
          f"iterations {int(fitted.n_iter_.sum())} in all.\n")


def gmm_gpu(threads, repeats):
    print("## gmm-gpu's benchmark shape: 1000 groups x 400 points x 2-D, K=2, CPU\n")
    try:
        import torch
        from gmm_gpu.gmm import GMM
    except ImportError as err:
        print(f"gmm-gpu not run: {err} (pip install gmm-gpu torch)\n")
        return
    import gaussmix

    if threads is not None:
        torch.set_num_threads(threads)
    X = blobs(1000, 400, 2, 2, 1).astype(np.float32)
    max_iter = 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = gaussmix.fit_many(X, n_components=2, max_iter=1, random_state=0)
    inits = {
        "weights_init": start.weights_,
        "means_init": start.means_.astype(np.float64),
        "precisions_init": start.precisions_.astype(np.float64),
    }

    def ours():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return gaussmix.fit_many(X, n_components=2, tol=0.0, max_iter=max_iter, n_jobs=threads, **inits)

    Xt = torch.from_numpy(X)

    def theirs():
        model = GMM(
            n_components=2, max_iter=max_iter, device="cpu", tol=0.0, dtype=torch.float32,
            means_init=torch.from_numpy(inits["means_init"]).float(),
            weights_init=torch.from_numpy(inits["weights_init"]).float(),
            precisions_init=torch.from_numpy(inits["precisions_init"]).float(),
        )
        model.fit(Xt)
        return model

    t_ours, fitted = best_of(ours, repeats)
    t_theirs, model = best_of(theirs, repeats)
    ll_ours = fitted.score_samples(X).astype(np.float64).mean(axis=1)
    ll_theirs = np.asarray(model.score(Xt), dtype=np.float64).reshape(-1)
    dev = float(np.max(np.abs(ll_ours - ll_theirs) / np.abs(ll_ours)))
    print("| | time | ratio to fit_many |")
    print("|---|---:|---:|")
    print(f"| gaussmix.fit_many | {t_ours * 1e3:.1f} ms | 1.0 |")
    print(f"| gmm-gpu GMM(device='cpu'), float32 | {t_theirs * 1e3:.1f} ms | {t_theirs / t_ours:.1f} |")
    print(f"\n{max_iter} EM iterations from the same start; per-group mean log-likelihoods "
          f"agree to {dev:.1g} relative.\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g5(args.threads, args.repeats)
    gmm_gpu(args.threads, args.repeats)


if __name__ == "__main__":
    main()
