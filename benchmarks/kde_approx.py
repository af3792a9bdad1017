"""Kernel sums with a tolerance: gaussmix's certified grid and tree against
its exact sum and the peers' approximate methods, on the same data in one run.

    python benchmarks/kde_approx.py [--threads N] [--cases A1,A2,A3,A4] [--scale S]

Cases (Gaussian kernel; --scale shrinks N and the queries together):

* A1: 1-D, train 1e5, query 1e5, rtol 1e-8, two overlapping normals,
  Silverman's bandwidth. Peer: KDEpy's FFTKDE (binned, no error bound) on a
  2^14 grid, read at the queries by linear interpolation.
* A2: 2-D, train 1e6, query 1e6, rtol 1e-6, a mixture of five correlated
  normals, Scott's bandwidth. Peer: scikit-learn's KernelDensity (a tree)
  with the same rtol.
* A3: 5-D, ten well separated clusters, train 2e5, query 2e5, rtol 1e-3,
  Scott's bandwidth. Peer: scikit-learn's KernelDensity with the same rtol.
* A4: ``KernelDensity(bandwidth="cv_ml")`` on 1e6 1-D points (the data of
  A1): the whole bandwidth search, whose leave-one-out sums carry rtol 1e-10.
  Beside it, the same search with exact sums (one exact leave-one-out pass
  on --subset points, scaled to all points and to the search's passes), and
  the largest error of the leave-one-out sums at the chosen bandwidth.

gaussmix runs ``KernelDensity(bandwidth=h, rtol=...)`` (the engine chooses
the grid, the tree or the exact sum) and the exact ``KernelDensity(bandwidth=h)``.
Where a full exact run or a peer would take minutes, it runs on the first
``--subset`` queries and its time is scaled to all of them ("extrapolated").
Every approximate answer is compared with the exact one on the queries both
computed: the largest relative density error is printed beside the bound
(for FFTKDE, which has none, beside nothing).
"""

import argparse
import time

import numpy as np

import gaussmix


def case_data(name, scale, rng):
    if name == "A1":
        n = int(1e5 * scale)
        X = np.concatenate([rng.normal(size=n // 2), rng.normal(2.0, 0.5, size=n - n // 2)])[:, None]
        Q = np.concatenate([rng.normal(size=n // 2), rng.normal(2.0, 0.5, size=n - n // 2)])[:, None]
        rtol = 1e-8
    elif name == "A2":
        n = int(1e6 * scale)
        centres = rng.normal(size=(5, 2)) * 3.0
        shapes = [np.linalg.cholesky(np.array([[1.0, r], [r, 1.0]])) for r in np.linspace(-0.8, 0.8, 5)]

        def draw(m):
            lab = rng.integers(5, size=m)
            z = rng.normal(size=(m, 2))
            return np.einsum("nij,nj->ni", np.array(shapes)[lab], z) + centres[lab]

        X, Q = draw(n), draw(n)
        rtol = 1e-6
    elif name == "A4":
        n = int(1e6 * scale)
        X = np.concatenate([rng.normal(size=n // 2), rng.normal(2.0, 0.5, size=n - n // 2)])[:, None]
        Q = X
        rtol = 1e-10
    elif name == "A3":
        n = int(2e5 * scale)
        centres = rng.normal(size=(10, 5)) * 20.0
        X = centres[rng.integers(10, size=n)] + rng.normal(size=(n, 5))
        Q = centres[rng.integers(10, size=n)] + rng.normal(size=(n, 5))
        rtol = 1e-3
    else:
        raise ValueError(f"unknown case {name!r}")
    d = X.shape[1]
    sd = float(np.sqrt(np.mean(np.var(X, axis=0))))
    if d == 1:  # Silverman's rule of thumb
        iqr = float(np.subtract(*np.percentile(X[:, 0], [75, 25])))
        h = 0.9 * min(sd, iqr / 1.34) * n ** (-0.2)
    elif name == "A3":  # within-cluster spread 1: Scott's factor
        h = n ** (-1.0 / (d + 4))
    else:
        h = sd * n ** (-1.0 / (d + 4))
    return X, Q, h, rtol


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def max_rel_error(approx_log, exact_log):
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(np.expm1(np.asarray(approx_log) - np.asarray(exact_log)))
    both = np.isneginf(approx_log) & np.isneginf(exact_log)
    rel[both] = 0.0
    return float(np.max(rel))


def run_cv_ml(name, scale, threads, subset, rng):
    from gaussmix import _kde_core

    X, _, _, _ = case_data(name, scale, rng)
    n, d = X.shape
    passes = []
    real = _kde_core.index_log_sums

    def counted(*args, **kwargs):
        passes.append(kwargs.get("rtol", 0.0))
        return real(*args, **kwargs)

    _kde_core.index_log_sums = counted
    try:
        t_search, kde = timed(lambda: gaussmix.KernelDensity(bandwidth="cv_ml", n_jobs=threads).fit(X))
    finally:
        _kde_core.index_log_sums = real
    h = kde.bandwidth_
    rtol = _kde_core.cv_rtol(n)
    # the leave-one-out sums at h: all of them as the search made them, and
    # exactly on the first `subset` points (the full sum less the own term)
    index = _kde_core.build_index(X, None, np.eye(d), threads or 2)
    loo = real(index, X, "gaussian", threads or 2, scale=1 / h, rtol=rtol, exclude_self=True)
    k = min(n, subset)
    t_exact, full = timed(lambda: real(index, X[:k], "gaussian", threads or 2, scale=1 / h, method="exact"))
    exact_loo = full + np.log(-np.expm1(-full))  # log(sum - 1): the own kernel value is 1
    err = max_rel_error(loo[:k], exact_loo)
    t_exact_search = t_exact * n / k * len(passes)
    rows = [
        (name, f"gaussmix KernelDensity(bandwidth='cv_ml'), h = {h:.4g}", t_search,
         f"{len(passes)} leave-one-out passes", 1.0, f"{err:.2e} <= {rtol:g}"),
        (name, "the same search with exact sums", t_exact_search, f"extrapolated from {k} points, 1 pass",
         t_exact_search / t_search, "exact"),
    ]
    return (n, n, d, h), rows


def run_case(name, scale, threads, subset, rng):
    if name == "A4":
        return run_cv_ml(name, scale, threads, subset, rng)
    X, Q, h, rtol = case_data(name, scale, rng)
    n, d = X.shape
    m = len(Q)
    rows = []
    fast = gaussmix.KernelDensity(bandwidth=h, rtol=rtol, n_jobs=threads).fit(X)
    exact = gaussmix.KernelDensity(bandwidth=h, n_jobs=threads).fit(X)
    t_fast, log_fast = timed(lambda: fast.score_samples(Q))
    # the exact sum on every query when that is affordable, else on a subset
    k_exact = m if n * m <= 2e10 else subset
    t_exact, log_exact = timed(lambda: exact.score_samples(Q[:k_exact]))
    t_exact_full = t_exact * m / k_exact
    err = max_rel_error(log_fast[:k_exact], log_exact)
    rows.append((name, f"gaussmix KernelDensity(rtol={rtol:g})", t_fast, "", 1.0, f"{err:.2e} <= {rtol:g}"))
    rows.append((name, "gaussmix KernelDensity (exact)", t_exact_full,
                 "" if k_exact == m else f"extrapolated from {k_exact}", t_exact_full / t_fast, "exact"))
    if name in ("A2", "A3"):
        from sklearn.neighbors import KernelDensity as SkKernelDensity

        sk = SkKernelDensity(bandwidth=h, rtol=rtol).fit(X)
        k = min(m, subset)
        t_sk, log_sk = timed(lambda: sk.score_samples(Q[:k]))
        t_sk_full = t_sk * m / k
        err_sk = max_rel_error(log_sk[: min(k, k_exact)], log_exact[: min(k, k_exact)])
        rows.append((name, f"scikit-learn KernelDensity(rtol={rtol:g})", t_sk_full,
                     "" if k == m else f"extrapolated from {k}", t_sk_full / t_fast, f"{err_sk:.2e} <= {rtol:g}"))
    if name == "A1":
        try:
            from KDEpy import FFTKDE
        except ImportError:
            rows.append((name, "KDEpy FFTKDE", float("nan"), "not installed (pip install KDEpy)", float("nan"), ""))
        else:
            def fft():
                grid, values = FFTKDE(kernel="gaussian", bw=h).fit(X[:, 0]).evaluate(2**14)
                return np.interp(Q[:, 0], grid, values)

            t_fft, dens = timed(fft)
            with np.errstate(divide="ignore"):
                err_fft = max_rel_error(np.log(dens[:k_exact]), log_exact)
            rows.append((name, "KDEpy FFTKDE (2^14 grid, interpolated)", t_fft, "", t_fft / t_fast,
                         f"{err_fft:.2e} (no bound)"))
    return (n, m, d, h), rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cases", default="A1,A2,A3,A4")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--subset", type=int, default=2000)
    args = parser.parse_args()
    gaussmix.show_config()
    rng = np.random.default_rng(0)
    print("| case | library | time | | vs gaussmix with tolerance | max rel. error |")
    print("|---|---|---:|---|---:|---|")
    for name in args.cases.split(","):
        (n, m, d, h), rows = run_case(name, args.scale, args.threads, args.subset, rng)
        for case, lib, t, note, ratio, err in rows:
            print(f"| {case} (N={n:,}, M={m:,}, D={d}, h={h:.3g}) | {lib} | {t:.3g} s | {note} | {ratio:.1f}x | {err} |")


if __name__ == "__main__":
    main()
