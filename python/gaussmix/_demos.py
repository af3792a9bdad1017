"""The demos behind ``python -m gaussmix demo NAME``: each prints what it
found and, when matplotlib is installed (``pip install gaussmix[plot]``),
draws it to a PNG file; without matplotlib it says how to get the picture.

    select   BIC of every (components, covariance type) on a known mixture
    kde      a 1-D density: the bandwidth rules against leave-one-out likelihood and ISJ
    bayes    a Dirichlet-process mixture switching unneeded components off
    big      an out-of-core fit of a memory-mapped file, with a progress bar
"""

import os
import sys
import tempfile

import numpy as np


def _pyplot(out):
    """matplotlib's pyplot on the Agg backend, or None (and a note) without it."""
    try:
        import matplotlib
    except ImportError:
        print("(no picture: matplotlib is not installed; pip install gaussmix[plot])", file=out)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path, out):
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"picture: {path}", file=out)


def select(n=3000, picture="gaussmix_select.png", out=None):
    """GaussianMixtureIC on four sheared clusters: BIC per candidate."""
    from . import GaussianMixtureIC

    out = out or sys.stdout
    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0], [0.0, 4.0], [6.0, 0.0], [0.0, -4.0]])
    labels = rng.integers(0, 4, n)
    X = (centres[labels] + rng.normal(size=(n, 2))) @ np.array([[1.0, 0.6], [0.0, 0.5]])
    sel = GaussianMixtureIC(range(1, 9), init_params="hierarchical", random_state=0).fit(X)
    r = sel.results_
    print("BIC (lower is better), init_params='hierarchical':", file=out)
    print(f"{'K':>3}" + "".join(f"{c:>12}" for c in dict.fromkeys(r["param_covariance_type"])), file=out)
    for k in sorted(set(r["param_n_components"])):
        row = [r["bic"][i] for i in range(len(r["bic"])) if r["param_n_components"][i] == k]
        print(f"{k:>3}" + "".join(f"{v:>12.1f}" for v in row), file=out)
    print(f"chosen: {sel.best_params_} (data: 4 clusters sharing one covariance)", file=out)
    plt = _pyplot(out) if picture else None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for cov in dict.fromkeys(r["param_covariance_type"]):
            mask = r["param_covariance_type"] == cov
            ax.plot(r["param_n_components"][mask], r["bic"][mask], marker="o", label=cov)
        ax.axvline(sel.best_params_["n_components"], color="grey", linestyle=":")
        ax.set_xlabel("components")
        ax.set_ylabel("BIC (lower is better)")
        ax.set_title(f"GaussianMixtureIC: chosen {sel.best_params_['covariance_type']}, "
                     f"K={sel.best_params_['n_components']}")
        ax.legend()
        _save(fig, plt, picture, out)
    return sel


def kde(n=2000, picture="gaussmix_kde.png", out=None):
    """A bimodal 1-D density: Scott's and Silverman's rules against the
    bandwidth of largest leave-one-out likelihood and the improved
    Sheather-Jones bandwidth."""
    from . import KernelDensity

    out = out or sys.stdout
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2.0, 0.3, n // 2), rng.normal(1.5, 1.0, n - n // 2)])[:, None]
    grid = np.linspace(-4.0, 5.0, 400)[:, None]
    true = 0.5 * np.exp(-0.5 * ((grid[:, 0] + 2.0) / 0.3) ** 2) / (0.3 * np.sqrt(2 * np.pi)) + 0.5 * np.exp(
        -0.5 * (grid[:, 0] - 1.5) ** 2) / np.sqrt(2 * np.pi)
    fits = {rule: KernelDensity(bandwidth=rule).fit(x) for rule in ("scott", "silverman", "cv_ml", "isj")}
    dx = grid[1, 0] - grid[0, 0]
    errors = {}
    for rule, est in fits.items():
        dens = np.exp(est.score_samples(grid))
        errors[rule] = float(np.sum(np.abs(dens - true)) * dx)
        print(f"{rule:>10}: bandwidth {est.bandwidth_:.3f}, L1 error to the true density {errors[rule]:.3f}",
              file=out)
    plt = _pyplot(out) if picture else None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(grid[:, 0], true, color="black", linewidth=2, label="true density")
        for rule, est in fits.items():
            ax.plot(grid[:, 0], np.exp(est.score_samples(grid)), label=f"{rule} (h={est.bandwidth_:.2f})")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend()
        _save(fig, plt, picture, out)
    return errors


def bayes(n=1500, picture="gaussmix_bayes.png", out=None):
    """A Dirichlet-process mixture given 10 components for 3 clusters."""
    from . import BayesianGaussianMixture

    out = out or sys.stdout
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(c, 0.7, (n // 3, 2)) for c in (-4.0, 0.0, 4.0)])
    bgm = BayesianGaussianMixture(n_components=10, weight_concentration_prior=0.01, max_iter=500,
                                  random_state=0).fit(X)
    weights = np.sort(bgm.weights_)[::-1]
    print("weights, largest first: " + " ".join(f"{w:.3f}" for w in weights), file=out)
    print(f"components above 1%: {int(np.sum(weights > 0.01))} (data: 3 clusters)", file=out)
    plt = _pyplot(out) if picture else None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar(np.arange(1, 11), weights)
        ax.set_xlabel("component (by weight)")
        ax.set_ylabel("weight")
        ax.set_title("BayesianGaussianMixture (Dirichlet process): 10 offered, 3 used")
        _save(fig, plt, picture, out)
    return weights


def big(n=2_000_000, d=8, k=8, picture=None, out=None, progress=True):
    """An out-of-core fit: a memory-mapped .npy file read in blocks, with a
    progress bar (tqdm, when installed)."""
    from . import GaussianMixture

    out = out or sys.stdout
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.npy")
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        centres = rng.normal(size=(k, d)) * 5
        for r0 in range(0, n, 1 << 18):  # written in blocks, never whole in memory
            m = min(1 << 18, n - r0)
            X[r0:r0 + m] = centres[rng.integers(0, k, m)] + rng.normal(size=(m, d))
        X.flush()
        del X
        data = np.load(path, mmap_mode="r")
        print(f"{path}: {n:,} rows x {d} (float32, {data.nbytes / 2**20:.0f} MiB), read in blocks", file=out)
        gm = GaussianMixture(k, random_state=0).fit(data, progress=progress)
        print(f"fitted {k} components in {gm.n_iter_} iterations, "
              f"{'converged' if gm.converged_ else 'not converged'}", file=out)
        del data
    return gm
