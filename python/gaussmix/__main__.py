"""Command line (``gaussmix`` or ``python -m gaussmix``):

    demo      fit the digits side by side with scikit-learn, draw new digits;
              demo select | kde | bayes | big: the other demos (gaussmix._demos)
    config    the build and threading configuration
    run       run a Python script with scikit-learn and SciPy patched to gaussmix
    fit       fit a GaussianMixture to a .npy file of any size (read as a
              memory map, in blocks) and save it (GaussianMixture.to_file)
    score     per-row log-density of a .npy file under a saved model, to .npy
    predict   per-row component label, to .npy

score and predict read and write a block of rows at a time, so neither the
data nor the results need to fit in memory.
"""

import argparse
import sys
import time
import warnings


def _best_time(fn, repeat):
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _kmeans_start(X, n_components, covariance_type, reg=1e-6):
    """Weights, means and precisions of a k-means partition: one start for both."""
    import numpy as np
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=n_components, n_init=1, random_state=0).fit(X).labels_
    onehot = np.eye(n_components)[labels]
    nk = onehot.sum(axis=0)
    means = onehot.T @ X / nk[:, None]
    diffs = [X[labels == k] - means[k] for k in range(n_components)]
    full = np.array([d.T @ d / len(d) + reg * np.eye(X.shape[1]) for d in diffs])
    if covariance_type == "full":
        prec = np.linalg.inv(full)
    elif covariance_type == "tied":
        prec = np.linalg.inv(np.einsum("k,kij->ij", nk, full) / nk.sum())
    elif covariance_type == "diag":
        prec = 1.0 / np.diagonal(full, axis1=1, axis2=2)
    else:
        prec = 1.0 / np.diagonal(full, axis1=1, axis2=2).mean(axis=1)
    return dict(weights_init=nk / nk.sum(), means_init=means, precisions_init=prec)


def demo(n_components=10, n_pca=16, covariance_type="full", repeat=3, out=sys.stdout,
         picture="gaussmix_digits.png"):
    """Fit a mixture to the handwritten digits (shipped with scikit-learn).

    The digits are projected on their first ``n_pca`` principal components;
    gaussmix and scikit-learn fit the same model from the same starting point
    (a k-means partition), and their fits, BIC and times are printed side by
    side. Then new digits are drawn from the fitted mixture and from a
    kernel density estimate of the same points, mapped back to 8 x 8 images
    and written beside real ones to the PNG file ``picture`` (None: none).
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import adjusted_rand_score
    from ._patch import original

    SkGaussianMixture = original("sklearn.mixture", "GaussianMixture")

    from . import GaussianMixture, show_config

    show_config(file=out)
    digits = load_digits()
    pca = PCA(n_components=n_pca, random_state=0)
    X = pca.fit_transform(digits.data)
    params = dict(
        n_components=n_components,
        covariance_type=covariance_type,
        **_kmeans_start(X, n_components, covariance_type),
        max_iter=500,
        tol=1e-6,
        random_state=0,
    )
    print(
        f"\ndigits: {X.shape[0]} samples, PCA to {X.shape[1]} dimensions; "
        f"{n_components} '{covariance_type}' components, same start for both\n",
        file=out,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_gm, gm = _best_time(lambda: GaussianMixture(**params).fit(X), repeat)
        t_sk, sk = _best_time(lambda: SkGaussianMixture(**params).fit(X), repeat)

    header = f"{'':14}{'iterations':>11}{'log-lik/sample':>16}{'BIC':>14}{'fit time':>12}"
    print(header, file=out)
    for name, model, t in (("gaussmix", gm, t_gm), ("scikit-learn", sk, t_sk)):
        print(
            f"{name:14}{model.n_iter_:>11d}{model.score(X):>16.6f}"
            f"{model.bic(X):>14.2f}{t * 1e3:>10.2f}ms",
            file=out,
        )
    same_labels = adjusted_rand_score(sk.predict(X), gm.predict(X))
    rel = abs(gm.bic(X) - sk.bic(X)) / abs(sk.bic(X))
    print(
        f"\nspeed-up: {t_sk / t_gm:.1f}x   |BIC difference| / |BIC|: {rel:.1e}   "
        f"label agreement (ARI): {same_labels:.6f}",
        file=out,
    )
    agreement = {"bic_rel_diff": rel, "ari": same_labels, "speedup": t_sk / t_gm}
    if picture is not None:
        _draw_digits(digits.images, X, pca, gm, picture, out)
    return agreement


def _draw_digits(images, X, pca, gm, path, out, per_band=22, columns=11):
    """Real digits, digits drawn from the fitted mixture, digits drawn from a
    kernel density estimate (bandwidth by leave-one-out likelihood), each
    mapped back from the PCA space: one PNG grid, two rows of each."""
    import numpy as np

    from . import KernelDensity
    from ._pictures import png_bytes, tile

    from_gm, _ = gm.sample(per_band)
    kde = KernelDensity(bandwidth="cv_ml").fit(X)
    from_kde = kde.sample(per_band, random_state=0)
    drawn = pca.inverse_transform(np.vstack([from_gm, from_kde])).reshape(-1, 8, 8)
    bands = [images[:per_band], drawn[:per_band], drawn[per_band:]]
    grids = [tile(band / 16.0, columns) for band in bands]  # the digits' pixels run 0..16
    spacer = np.full((12, grids[0].shape[1]), 255, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(png_bytes(np.vstack([grids[0], spacer, grids[1], spacer, grids[2]])))
    print(
        f"\nnew digits: {path} (rows 1-2 real, 3-4 drawn from GaussianMixture.sample, 5-6 from "
        f"KernelDensity.sample with bandwidth {kde.bandwidth_:.2f} by leave-one-out likelihood)",
        file=out,
    )


_BLOCK_ROWS = 1 << 16


def _data(path):
    import numpy as np

    X = np.load(path, mmap_mode="r", allow_pickle=False)
    if X.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array (rows x features), got shape {X.shape}")
    return X


def _fit(args, out=None):
    out = out or sys.stdout
    from . import GaussianMixture

    X = _data(args.data)
    gm = GaussianMixture(
        n_components=args.components, covariance_type=args.covariance_type, tol=args.tol,
        max_iter=args.max_iter, n_init=args.n_init, init_params=args.init,
        random_state=args.random_state, n_jobs=args.threads,
    ).fit(X, progress=args.progress)
    gm.to_file(args.out)
    print(
        f"{args.data}: {X.shape[0]} rows x {X.shape[1]} features; {args.components} "
        f"'{args.covariance_type}' components, {gm.n_iter_} iterations, "
        f"{'converged' if gm.converged_ else 'not converged'}, lower bound {gm.lower_bound_:.6f}; "
        f"saved to {args.out}",
        file=out,
    )


def _per_row(args, method, dtype, out=None):
    out = out or sys.stdout
    import numpy as np

    from . import GaussianMixture

    gm = GaussianMixture.from_file(args.model)
    X = _data(args.data)
    if X.shape[1] != gm.n_features_in_:
        raise ValueError(f"{args.data} has {X.shape[1]} features; the model was fitted on {gm.n_features_in_}")
    result = np.lib.format.open_memmap(args.out, mode="w+", dtype=dtype, shape=(X.shape[0],))
    for r0 in range(0, X.shape[0], _BLOCK_ROWS):  # blocks of rows, each in memory once
        rows = np.asarray(X[r0:r0 + _BLOCK_ROWS])
        result[r0:r0 + rows.shape[0]] = getattr(gm, method)(rows)
    result.flush()
    del result
    print(f"{args.out}: {method} of {X.shape[0]} rows", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gaussmix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="fit the digits data set, side by side with scikit-learn")
    p_demo.add_argument("--components", type=int, default=10)
    p_demo.add_argument("--pca", type=int, default=16)
    p_demo.add_argument(
        "--covariance-type", default="full", choices=["full", "tied", "diag", "spherical"]
    )
    p_demo.add_argument("name", nargs="?", default="digits",
                        choices=["digits", "select", "kde", "bayes", "big"],
                        help="digits (default): the side-by-side fit and new digits; select: model "
                             "selection by BIC; kde: bandwidth rules vs likelihood; bayes: a "
                             "Dirichlet-process mixture; big: an out-of-core fit with a progress bar")
    p_demo.add_argument("--picture", default=None,
                        help="the PNG file to write (default: gaussmix_NAME.png)")
    p_demo.add_argument("--no-picture", action="store_true", help="write no picture")
    sub.add_parser("config", help="print build and threading configuration")
    p_run = sub.add_parser("run", help="run a Python script with scikit-learn and SciPy patched to gaussmix")
    p_run.add_argument("script")
    p_run.add_argument("args", nargs=argparse.REMAINDER)
    p_fit = sub.add_parser("fit", help="fit a GaussianMixture to a .npy file and save it")
    p_fit.add_argument("data", help=".npy file of rows x features (read as a memory map)")
    p_fit.add_argument("--out", required=True, help="the model file to write (.npz)")
    p_fit.add_argument("--components", type=int, default=1)
    p_fit.add_argument("--covariance-type", default="full", choices=["full", "tied", "diag", "spherical"])
    p_fit.add_argument("--tol", type=float, default=1e-3)
    p_fit.add_argument("--max-iter", type=int, default=100)
    p_fit.add_argument("--n-init", type=int, default=1)
    p_fit.add_argument("--init", default="kmeans",
                       choices=["kmeans", "k-means++", "random", "random_from_data", "hierarchical"])
    p_fit.add_argument("--random-state", type=int, default=None)
    p_fit.add_argument("--threads", type=int, default=None)
    p_fit.add_argument("--progress", action="store_true", help="a progress bar over the iterations (needs tqdm)")
    for name, text in (("score", "log-density of each row"), ("predict", "component label of each row")):
        p = sub.add_parser(name, help=f"{text} under a saved model, written to a .npy file")
        p.add_argument("model", help="a model file written by gaussmix fit (or GaussianMixture.to_file)")
        p.add_argument("data", help=".npy file of rows x features")
        p.add_argument("--out", required=True, help="the .npy file to write")
    args = parser.parse_args(argv)
    if args.command in ("fit", "score", "predict"):
        try:
            if args.command == "fit":
                _fit(args)
            else:
                _per_row(args, *{"score": ("score_samples", "float64"), "predict": ("predict", "int64")}[args.command])
        except (ValueError, OSError) as err:
            print(f"gaussmix {args.command}: error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "demo":
        picture = None if args.no_picture else (args.picture or f"gaussmix_{args.name}.png")
        if args.name == "digits":
            demo(args.components, args.pca, args.covariance_type, picture=picture)
        else:
            from . import _demos

            if args.name == "big":
                _demos.big()
            else:
                getattr(_demos, args.name)(picture=picture)
    elif args.command == "run":
        import runpy

        from ._patch import patch_sklearn

        patch_sklearn()
        sys.argv = [args.script, *args.args]
        runpy.run_path(args.script, run_name="__main__")
    else:
        from . import show_config

        show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
