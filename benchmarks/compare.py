"""Side-by-side timing of gaussmix and every installed peer on the same data.

    python benchmarks/compare.py [--quick] [--workloads G1,G2,K1] [--threads N] [--repeats R]

Everything runs in one process, on the data of _workloads.py. Each library is
called once untimed (the warm-up, whose result is checked), then R timed
repeats run interleaved across libraries, each after a short pause; a
library's time is its best repeat.

Gaussian mixtures (G1-G5). Every library starts from the same weights, means
and covariances and runs max_iter EM iterations (tol=0); the time per EM
iteration is the best fit time / (iterations run x fits). Peers, each used
only if it imports (otherwise the machine section says why):

- scikit-learn: GaussianMixture; its fit is the reference gaussmix is checked
  against (means, covariances, weights, lower_bound_ at rtol 1e-8, n_iter_
  exactly). Its fit includes one final E-step beyond max_iter (it computes
  labels for fit_predict): that is its real cost and is not subtracted.
- daal4py (oneDAL): em_gmm from the same start; its covariances are those of
  the plain M-step, so scikit-learn's reg_covar (1e-6, which gaussmix adds)
  is added to them before the check. oneDAL's EM also ends as soon as the
  log-likelihood stops increasing (its accuracyThreshold cannot be negative):
  a run that stops before max_iter is reported as "fails".
- sklearnex: its GaussianMixture, if it accelerates one.
- torchgmm: its GaussianMixtureModel with the weights, means and Cholesky
  precisions set to the start, trained by its own EM (the
  GaussianMixtureLightningModule under a Lightning Trainer, exactly what
  GaussianMixture.fit runs after its initialisation, which takes initial
  means only), on the CPU in float64 (precision=64, and its torchmetrics
  accumulators set to float64: they stay float32 otherwise).

Every peer's result is checked against gaussmix's fit from the same start
(itself checked against scikit-learn): means and covariances at rtol 1e-6
relative to their largest magnitude, weights at 1e-6, the final
log-likelihood at rtol 1e-6, the iteration count exactly. "(!)" marks a
result that disagrees; "fails: ..." one that did not run as asked (not timed
against gaussmix: the notes say what it did).

Kernel densities (K1-K4), one row per library, time per query (K4: per
leave-one-out row). Estimators are built untimed; gaussmix runs every query;
slow peers run on the first few hundred queries and their time is scaled to
the full workload ("extrapolated"). Each result is checked against the
brute-force numpy reference (every pair, in log space) on 200 random queries
(the peers: those inside their subset), rtol 1e-10. Binned or truncated
methods (KDEpy FFTKDE and TreeKDE, statsmodels' FFT grid) are not exact:
their row gives their largest relative density error on those queries
instead. Peers: scikit-learn KernelDensity and scipy.stats.gaussian_kde,
KDEpy (NaiveKDE exact; TreeKDE; FFTKDE on a grid, D <= 2, read at the queries
by linear interpolation), statsmodels (KDEUnivariate.evaluate exact and its
FFT grid for D = 1, KDEMultivariate.pdf for D > 1). K4 (leave-one-out
bandwidth selection): gaussmix.select_bandwidth against a numpy brute force
over the same candidate bandwidths, and statsmodels' KDEMultivariate: its
loo_likelihood is timed at full size on one bandwidth and scaled to the same
candidates; its own bw='cv_ml' search (per-axis bandwidths, Nelder-Mead) runs
on a subset to count its likelihood evaluations and check its optimum, and is
scaled as that many full-size evaluations.

Hardware bounds are measured, not assumed: before the workloads run, short
probes time this machine's vector multiply-adds, the engine's own vector exp
and its memory reads, on the threads of the run and with the kernels the
engine selected (_hardware.py). A workload's bound is the time of the work no
exact method can avoid at those rates (its operation counts are listed in
_hardware.py; for mixtures only the pairs whose responsibility is not exactly
zero need an exp and a place in the statistics). "gaussmix / bound" is
gaussmix's time over the bound, with the fraction of the bound reached.

daal4py releases that predate the installed scikit-learn fail to import their
scikit-learn patches (daal4py.sklearn); em_gmm does not need them, so they are
left out (the machine section says so).

--quick divides N (or the number of fits, or the KDE sizes) by 10 and times
2 repeats: a smoke run of a minute or two. Absolute times on a shared machine
are noise; read the ratios.
"""

import argparse
import contextlib
import copy
import importlib
import logging
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hardware import case_work, kde_work, measure_limits  # noqa: E402
from _workloads import (  # noqa: E402
    BAYES_WORKLOADS,
    KDE_RTOL,
    KDE_WORKLOADS,
    WORKLOADS,
    all_workloads,
    check_bayes,
    check_cv_ml,
    engine_loo_terms,
    fit_all,
    fit_batch,
    fit_quietly,
    logpdf_agrees,
    machine_facts,
    make_case,
    make_kde_case,
    numpy_loo_terms,
    record_cv_ml_candidates,
    reference_logpdf,
    resolve_workloads,
)

ALL_WORKLOADS = all_workloads()

QUICK_FACTOR = 10
RTOL_GAUSSMIX = 1e-8
RTOL_PEER = 1e-6
REG_COVAR = 1e-6  # scikit-learn's default reg_covar, which gaussmix and torchgmm add too
# Idle worker threads of the library timed before (OpenBLAS, OpenMP, TBB) spin
# for a while before they sleep; on a small machine they would steal the next
# library's cores. A short pause before each timed call lets them settle.
PAUSE_SECONDS = 0.2
# A call this short is run once untimed right after the pause: an idle core
# comes back at a low clock with cold caches, which cost G5's 200 small fits
# (15 ms in all) a third of their time, and a 40 ms fit a tenth. Every
# library gets the same warm-up; the first repeat stays cold.
WARM_UP_BELOW_SECONDS = 0.5

# Grids of the binned KDE peers (points per axis).
FFT_GRID_1D = 2**16
FFT_GRID_2D = 1024
# statsmodels' KDEUnivariate.evaluate builds an N x queries matrix: it is called on
# one query at a time, the fastest here (its N-vectors stay in cache; 64 at a time
# was 2-6x slower and erratic).
QUERY_CHUNK = 1
# KDEpy adds machine epsilon to every density it returns ("helps contour
# plotting"); it is subtracted before the check (it is 5e-7 of a density of
# 4e-10, as K3 has in its tails).
KDEPY_OFFSET = float(np.finfo(float).eps)


def format_seconds(s):
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def format_bound(t, bound):
    """'2.5x' (gaussmix time / bound) and the fraction of the bound reached."""
    if not t or not bound:
        return "n/a"
    return f"{t / bound:.2g}x ({min(bound / t, 9.99):.0%})"


def _first_lines(err, n=3):
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return " ".join(lines[:n])


def _dist_version(*names):
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


# ---------------------------------------------------------------- mixtures (G1-G5)


@dataclass
class Fit:
    """What the checks read from one fitted mixture, in scikit-learn's layout (float64)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    n_iter: int
    lower_bound: float = None  # mean log-likelihood of the last E-step

    @classmethod
    def of(cls, model):
        return cls(
            np.asarray(model.weights_, dtype=np.float64),
            np.asarray(model.means_, dtype=np.float64),
            np.asarray(model.covariances_, dtype=np.float64),
            int(model.n_iter_),
            float(model.lower_bound_),
        )


def deviations(got, ref):
    """Largest deviations of the fits ``got`` from ``ref`` (lists, fit by fit).

    Means and covariances relative to the largest magnitude of the reference's,
    weights absolute, the lower bound relative; a shape mismatch is infinite.
    """
    dev = {"means": 0.0, "covariances": 0.0, "weights": 0.0, "log-likelihood": 0.0}
    for g, r in zip(got, ref):
        for key in ("means", "covariances"):
            a, b = getattr(g, key), getattr(r, key)
            if a.shape != b.shape:
                dev[key] = float("inf")
                continue
            scale = max(float(np.max(np.abs(b))), np.finfo(float).tiny)
            d = float(np.max(np.abs(a - b))) / scale
            dev[key] = max(dev[key], d if np.isfinite(d) else float("inf"))
        d = float(np.max(np.abs(g.weights - r.weights))) if g.weights.shape == r.weights.shape else float("inf")
        dev["weights"] = max(dev["weights"], d if np.isfinite(d) else float("inf"))
        if g.lower_bound is None or r.lower_bound is None:
            dev.pop("log-likelihood", None)
        elif "log-likelihood" in dev:
            d = abs(g.lower_bound - r.lower_bound) / max(abs(r.lower_bound), np.finfo(float).tiny)
            dev["log-likelihood"] = max(dev["log-likelihood"], d if np.isfinite(d) else float("inf"))
    return dev


def format_deviations(dev):
    return ", ".join(f"{k} {v:.1g}" for k, v in dev.items())


@dataclass
class Outcome:
    """One library on one workload."""

    seconds: float = None  # per EM iteration (per query for KDE), None if not timed
    status: str = "ok"  # ok | mismatch | fails | unsupported | reference
    note: str = ""
    short: str = ""  # the reason shown in the table cell of a failure


class Library:
    """A mixture library under test: a name, a fit function and how strictly it is checked.

    ``fit(Xs, params)`` returns one Fit per data set. ``stops_early`` explains
    why a run may end before max_iter (None: it never should).
    """

    def __init__(self, name, fit, version, rtol=RTOL_PEER, kinds=None, stops_early=None, note="",
                 batched=False):
        self.batched = batched  # runs only workloads of many fits, all in one call
        self.name = name
        self.fit = fit
        self.version = version
        self.rtol = rtol
        self.kinds = kinds  # covariance types supported, None for all
        self.stops_early = stops_early
        self.note = note  # shown in the machine section

    def supports(self, workload):
        if self.batched and workload.n_fits < 2:
            return False
        return self.kinds is None or workload.covariance_type in self.kinds


def _gaussmix(n_jobs):
    import gaussmix

    extra = {} if n_jobs is None else {"n_jobs": n_jobs}
    return Library(
        "gaussmix",
        lambda Xs, params: fit_all(gaussmix.GaussianMixture, Xs, params, **extra),
        gaussmix.__version__,
        RTOL_GAUSSMIX,
    )


def _gaussmix_batch(n_jobs):
    import gaussmix

    extra = {} if n_jobs is None else {"n_jobs": n_jobs}
    return Library(
        "gaussmix fit_many",
        lambda Xs, params: fit_batch(Xs, params, **extra),
        gaussmix.__version__,
        RTOL_GAUSSMIX,
        batched=True,
    )


def _sklearn():
    import sklearn
    from sklearn.mixture import GaussianMixture

    return Library(
        "scikit-learn",
        lambda Xs, params: fit_all(GaussianMixture, Xs, params),
        sklearn.__version__,
        RTOL_GAUSSMIX,
    )


def _sklearnex():
    import sklearnex
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    from sklearnex.mixture import GaussianMixture

    if GaussianMixture is SkGaussianMixture:
        raise ImportError("sklearnex does not accelerate GaussianMixture")
    return Library(
        "sklearnex",
        lambda Xs, params: fit_all(GaussianMixture, Xs, params),
        getattr(sklearnex, "__version__", _dist_version("scikit-learn-intelex")),
    )


def _import_daal4py():
    """daal4py, and a note if its scikit-learn patches had to be left out.

    The package's __init__ also imports daal4py.sklearn (scikit-learn patches,
    not used here), which fails on a scikit-learn newer than the daal4py
    release knows. em_gmm lives in the compiled daal4py._daal4py: if the
    failure comes from daal4py.sklearn, that module is replaced by an empty
    one and the import is retried.
    """
    try:
        return importlib.import_module("daal4py"), ""
    except ImportError as err:
        frames = traceback.extract_tb(err.__traceback__)
        if not any("daal4py/sklearn" in f.filename.replace("\\", "/") for f in frames):
            raise
        reason = _first_lines(err, 1)
    for name in [m for m in sys.modules if m == "daal4py" or m.startswith("daal4py.")]:
        del sys.modules[name]
    sys.modules["daal4py.sklearn"] = types.ModuleType("daal4py.sklearn")
    module = importlib.import_module("daal4py")
    return module, f"daal4py.sklearn not loaded ({reason})"


def _daal4py(n_threads):
    d4p, note = _import_daal4py()
    if n_threads is not None:
        d4p.daalinit(n_threads)

    def fit(Xs, params):
        out = []
        for X, p in zip(Xs, params):
            prec = np.asarray(p["precisions_init"], dtype=np.float64)
            if p["covariance_type"] == "full":
                covs = [np.ascontiguousarray(c) for c in np.linalg.inv(prec)]
                storage = "full"
            else:
                covs = [np.ascontiguousarray(1.0 / c[np.newaxis, :]) for c in prec]
                storage = "diagonal"
            algo = d4p.em_gmm(
                nComponents=p["n_components"],
                maxIterations=p["max_iter"],
                accuracyThreshold=0.0,
                covarianceStorage=storage,
            )
            res = algo.compute(
                X,
                np.asarray(p["weights_init"], dtype=np.float64)[np.newaxis, :],
                np.asarray(p["means_init"], dtype=np.float64),
                covs,
            )
            means = np.asarray(res.means, dtype=np.float64)
            k, d = means.shape
            cov = np.array([np.asarray(c, dtype=np.float64) for c in res.covariances])
            if storage == "full":
                cov = cov.reshape(k, d, d) + REG_COVAR * np.eye(d)
            else:
                cov = cov.reshape(k, d) + REG_COVAR
            out.append(
                Fit(
                    np.ravel(np.asarray(res.weights, dtype=np.float64)),
                    means,
                    cov,
                    int(np.ravel(res.nIterations)[0]),
                    float(np.ravel(res.goalFunction)[0]) / X.shape[0],
                )
            )
        return out

    return Library(
        "daal4py", fit, getattr(d4p, "__version__", None) or _dist_version("daal4py", "scikit-learn-intelex"),
        kinds=("full", "diag"),
        stops_early=(
            "oneDAL ends EM as soon as the log-likelihood stops increasing "
            "(accuracyThreshold must be >= 0, so a fixed iteration count cannot be forced)"
        ),
        note=note,
    )


def _torchgmm(n_threads):
    import torch
    from torchgmm.base.data import DataLoader, collate_tensor, dataset_from_tensors
    from torchgmm.bayes import GaussianMixture
    from torchgmm.bayes.core import cholesky_precision
    from torchgmm.bayes.gmm.lightning_module import GaussianMixtureLightningModule
    from torchgmm.bayes.gmm.model import GaussianMixtureModel, GaussianMixtureModelConfig

    if n_threads is not None:
        torch.set_num_threads(n_threads)
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def fit_one(X, p):
        k, cov_type = p["n_components"], p["covariance_type"]
        estimator = GaussianMixture(
            k,
            covariance_type=cov_type,
            convergence_tolerance=0.0,
            covariance_regularization=REG_COVAR,
            trainer_params={
                "max_epochs": p["max_iter"],
                "precision": 64,
                "accelerator": "cpu",
                "devices": 1,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "enable_checkpointing": False,
                "logger": False,
            },
        )
        model = GaussianMixtureModel(GaussianMixtureModelConfig(k, X.shape[1], cov_type)).double()
        prec = np.asarray(p["precisions_init"], dtype=np.float64)
        covs = np.linalg.inv(prec) if cov_type == "full" else 1.0 / prec
        with torch.no_grad():
            model.component_probs.copy_(torch.as_tensor(p["weights_init"]))
            model.means.copy_(torch.as_tensor(p["means_init"]))
            model.precisions_cholesky.copy_(cholesky_precision(torch.as_tensor(covs), cov_type))
        data = torch.as_tensor(X)
        loader = DataLoader(dataset_from_tensors(data), batch_size=len(data), collate_fn=collate_tensor)
        module = GaussianMixtureLightningModule(
            model, convergence_tolerance=0.0, covariance_regularization=REG_COVAR, is_batch_training=False
        )
        for metric in (module.prior_aggregator, module.mean_aggregator, module.covar_aggregator, module.metric_nll):
            metric.set_dtype(torch.float64)
        trainer = estimator.trainer(max_epochs=p["max_iter"], enable_progress_bar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's advice on workers, loggers and devices
            trainer.fit(module, loader)
        return Fit(
            model.component_probs.detach().numpy().astype(np.float64),
            model.means.detach().numpy().astype(np.float64),
            model.covariances.detach().numpy().astype(np.float64),
            int(module.current_epoch),
            -float(trainer.callback_metrics["nll"].item()),
        )

    return Library(
        "torchgmm",
        lambda Xs, params: [fit_one(X, p) for X, p in zip(Xs, params)],
        _dist_version("torchgmm") + f" (torch {torch.__version__})",
    )


def discover_peers(n_threads):
    """scikit-learn and whichever optional mixture peers import; (libraries, skipped notes)."""
    peers = [_sklearn()]
    skipped = []
    for name, make in (
        ("sklearnex", _sklearnex),
        ("daal4py", lambda: _daal4py(n_threads)),
        ("torchgmm", lambda: _torchgmm(n_threads)),
    ):
        try:
            peers.append(make())
        except Exception as err:  # ImportError, or a broken install
            skipped.append(f"{name} ({type(err).__name__}: {_first_lines(err, 1)})")
    return peers, skipped


def _timed_call(fn, warm_up=False):
    time.sleep(PAUSE_SECONDS)
    if warm_up:
        fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_workload(workload, libraries, repeats, log, gaussmix_lib, limits):
    """Warm-up + checks + interleaved timed repeats: ({library name: Outcome}, hardware bound)."""
    case = make_case(workload)
    Xs, params = case.X(), case.all_params()
    outcomes = {}
    fits = {}
    iterations = {}
    active = []
    # scikit-learn first (its fit checks gaussmix), then gaussmix (its fit checks the peers).
    order = sorted(libraries, key=lambda lib: {"scikit-learn": 0, "gaussmix": 1}.get(lib.name, 2))
    for lib in order:
        if not lib.supports(workload):
            outcomes[lib.name] = Outcome(None, "unsupported", f"{workload.covariance_type} not supported")
            continue
        try:
            got = lib.fit(Xs, params)
            got = [g if isinstance(g, Fit) else Fit.of(g) for g in got]
        except Exception as err:
            outcomes[lib.name] = Outcome(
                None, "fails", f"error: {type(err).__name__}: {_first_lines(err)}", type(err).__name__
            )
            continue
        fits[lib.name] = got
        iterations[lib.name] = sum(g.n_iter for g in got)
        outcomes[lib.name] = check_fits(lib, got, fits, workload, Xs, params, gaussmix_lib)
        active.append(lib)
    best = {lib.name: float("inf") for lib in active}
    for r in range(repeats):
        # Rotate the order so no library always runs right after the same one.
        shift = r % max(len(active), 1)
        for lib in active[shift:] + active[:shift]:
            warm = best[lib.name] < WARM_UP_BELOW_SECONDS
            best[lib.name] = min(best[lib.name], _timed_call(lambda: lib.fit(Xs, params), warm))
        log(".")
    for lib in active:
        per_iter = best[lib.name] / max(iterations[lib.name], 1)
        out = outcomes[lib.name]
        out.seconds = per_iter
        if out.status == "fails":  # ran, but not as asked: its time goes to the notes
            out.note += f"; time per EM iteration it ran: {format_seconds(per_iter)}"
    return outcomes, case_work(case).seconds(limits)


def check_fits(lib, got, fits, workload, Xs, params, gaussmix_lib):
    """The Outcome of ``lib``'s warm-up fits ``got`` (not yet timed)."""
    max_iter = workload.max_iter
    if lib.name == "scikit-learn":
        return Outcome(None, "reference", "the reference gaussmix is checked against")
    if lib.name == "gaussmix":
        ref, what = fits.get("scikit-learn"), "scikit-learn's fit"
    else:
        ref, what = fits.get("gaussmix"), "gaussmix's fit"
    if ref is None:
        return Outcome(None, "mismatch", f"not checked: {what} is missing")
    early = [i for i, g in enumerate(got) if g.n_iter != max_iter]
    if early and lib.stops_early and all(got[i].n_iter < max_iter for i in early):
        # Check what it computed against gaussmix run for as many iterations.
        refit = list(ref)
        for i in early:
            p = dict(params[i], max_iter=got[i].n_iter)
            refit[i] = Fit.of(gaussmix_lib.fit([Xs[i]], [p])[0])
        dev = deviations(got, refit)
        agree = all(v <= lib.rtol for v in dev.values())
        counts = sorted({got[i].n_iter for i in early})
        ran = "/".join(str(c) for c in counts)
        note = (
            f"stops after {ran} of {max_iter} EM iterations in {len(early)} of {len(got)} fits: "
            f"{lib.stops_early}. What it computed "
            + ("matches" if agree else "DISAGREES with")
            + f" gaussmix run for as many iterations ({format_deviations(dev)}, rtol {lib.rtol:g})"
        )
        return Outcome(None, "fails", note, f"stops after {ran} of {max_iter} iterations")
    dev = deviations(got, ref)
    bad = [k for k, v in dev.items() if not v <= lib.rtol]
    n_iter_bad = [i for i, g in enumerate(got) if g.n_iter != ref[i].n_iter]
    note = f"vs {what}: {format_deviations(dev)} (rtol {lib.rtol:g})"
    if n_iter_bad:
        i = n_iter_bad[0]
        note += f"; n_iter {got[i].n_iter} != {ref[i].n_iter} (fit {i})"
    if bad or n_iter_bad:
        return Outcome(None, "mismatch", note)
    return Outcome(None, "ok", note)


def best_peer(outcomes, gaussmix_name="gaussmix"):
    """(name, seconds) of the fastest peer whose result checked out, or (None, None)."""
    timed = [
        (o.seconds, n) for n, o in outcomes.items()
        if n != gaussmix_name and o.seconds is not None and o.status in ("ok", "reference")
    ]
    if not timed:
        return None, None
    t, n = min(timed)
    return n, t


def mixture_cell(o):
    if o is None:
        return "n/a"
    if o.status == "unsupported":
        return "not supported"
    if o.status == "fails":
        return f"fails: {o.short}"
    return format_seconds(o.seconds) + (" (!)" if o.status == "mismatch" else "")


def markdown_table(rows, names, bounds):
    header = (
        ["workload"]
        + [f"{n} per iter" for n in names]
        + ["hw bound", "gaussmix / bound", "scikit-learn / gaussmix", "best peer", "best peer / gaussmix"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for workload, res in rows:
        cells = [f"{workload.name} {workload.describe()}"]
        cells += [mixture_cell(res.get(n)) for n in names]
        gm = res.get("gaussmix")
        t_gm = gm.seconds if gm is not None and gm.status in ("ok", "mismatch") else None
        bound = bounds[workload.name]
        cells += [format_seconds(bound), format_bound(t_gm, bound)]
        sk = res.get("scikit-learn")
        t_sk = sk.seconds if sk is not None else None
        cells.append(f"{t_sk / t_gm:.2f}" if t_gm and t_sk else "n/a")
        name, t_best = best_peer(res)
        if name and t_gm:
            cells += [name, f"{t_best / t_gm:.2f}"]
        else:
            cells += ["n/a", "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------- variational Bayesian mixtures (B1-B2)


def run_bayes_workload(workload, repeats, log, n_jobs):
    """{name: (seconds per iteration, note)} for scikit-learn's and gaussmix's
    BayesianGaussianMixture and, on the same data and start, gaussmix's
    GaussianMixture (the cost of a VB iteration against an EM iteration)."""
    import gaussmix
    from sklearn.mixture import BayesianGaussianMixture as SkBGMM

    X = workload.data()
    extra = {} if n_jobs is None else {"n_jobs": n_jobs}
    em_keys = ("n_components", "covariance_type", "init_params", "random_state", "tol", "max_iter")
    fits = {
        "scikit-learn": lambda p: fit_quietly(SkBGMM, X, p),
        "gaussmix": lambda p: fit_quietly(gaussmix.BayesianGaussianMixture, X, {**p, **extra}),
        "gaussmix EM": lambda p: fit_quietly(
            gaussmix.GaussianMixture, X, {**{k: p[k] for k in em_keys}, **extra}
        ),
    }
    notes = {}
    ref = fits["scikit-learn"](workload.params())
    try:
        check_bayes(fits["gaussmix"](workload.params()), ref, RTOL_GAUSSMIX)
        notes["gaussmix"] = f"vs scikit-learn: agrees (rtol {RTOL_GAUSSMIX:g})"
    except AssertionError as err:
        notes["gaussmix"] = f"(!) vs scikit-learn: {_first_lines(err)}"
    # Each library's initialised model (max_iter=0), untimed; the timed fits
    # resume from copies of it (warm_start), so no initialisation is timed:
    # a k-means start varies from run to run by more than three iterations.
    starts = {name: fit(workload.params(0)) for name, fit in fits.items()}

    def resume(name, max_iter):
        est = copy.deepcopy(starts[name]).set_params(warm_start=True, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X)

    best = {name: [float("inf"), float("inf")] for name in fits}
    for r in range(repeats):
        names = list(fits)
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            for slot, max_iter in enumerate((workload.max_iter, 0)):
                t = _timed_call(lambda: resume(name, max_iter),
                                warm_up=best[name][slot] < WARM_UP_BELOW_SECONDS)
                best[name][slot] = min(best[name][slot], t)
        log(".")
    return {
        name: ((b[0] - b[1]) / workload.max_iter, notes.get(name, ""))
        for name, b in best.items()
    }


def print_bayes_results(out, bayes_rows, repeats, quick):
    print("## Variational Bayesian mixtures: time per iteration" + (" (--quick sizes)" if quick else ""),
          file=out)
    print(file=out)
    header = ["workload", "gaussmix", "scikit-learn", "scikit-learn / gaussmix",
              "gaussmix EM (same data)", "VB / EM"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|"]
    for w, res in bayes_rows:
        t_gm, t_sk, t_em = (res[n][0] for n in ("gaussmix", "scikit-learn", "gaussmix EM"))
        lines.append("| " + " | ".join([
            f"{w.name} {w.describe()}", format_seconds(t_gm), format_seconds(t_sk),
            f"{t_sk / t_gm:.3g}", format_seconds(t_em), f"{t_gm / t_em:.2f}",
        ]) + " |")
    print("\n".join(lines), file=out)
    print(file=out)
    print(
        f"Best of {repeats} interleaved repeats; per iteration = (fit with max_iter iterations - fit "
        "with none) / max_iter, both resumed (warm_start) from the same initialised model (tol=0; "
        "random_from_data, k-means for the overlapping workloads), so the priors and the "
        "initialisation are not counted. VB / EM: a "
        "variational iteration against an EM iteration of gaussmix's GaussianMixture on the same "
        "data from the same start (from random_from_data, EM's first components are narrow and "
        "skip most of their work; VB's are not).",
        file=out,
    )
    for w, res in bayes_rows:
        print(f"- {w.name} gaussmix: {res['gaussmix'][1]}", file=out)
    print(file=out)


# ------------------------------------------------------- kernel density (K1-K4)


class KdeEntry:
    """One library on one KDE workload: a timed call, how it scales, and its check.

    ``run()`` is timed; the full workload takes ``scale`` times the timed call;
    ``units`` queries (K4: rows) make up the full workload, so the time per
    query is best * scale / units. ``check(result)`` gives (status, note) with
    status ok | mismatch | approx. An entry with ``time_of`` set is not timed
    itself: its time is that entry's best call times ``scale``.
    """

    def __init__(self, label, run, check, units, scale=1.0, timed_on=None, counterpart=None,
                 time_of=None, peer=True):
        self.label = label
        self.run = run
        self.check = check
        self.units = units
        self.scale = scale
        self.timed_on = timed_on
        self.counterpart = counterpart  # label of the gaussmix entry it is compared with
        self.time_of = time_of
        self.peer = peer

    @property
    def extrapolated(self):
        return self.scale != 1.0 or self.time_of is not None


def _subset_entry(label, run, check, m, n, unit, counterpart):
    """A peer timed on the first m of n queries (rows), scaled to all n."""
    timed_on = f"all {n:,} {unit}" if m >= n else f"first {m:,} of {n:,} {unit}"
    return KdeEntry(label, run, check, n, scale=n / m, timed_on=timed_on, counterpart=counterpart)


def _try(check):
    try:
        check()
    except AssertionError as err:
        return "mismatch", _first_lines(err, 4)
    return "ok", ""


def _exact(ok_note):
    ok, note = ok_note
    return ("ok", "") if ok else ("mismatch", note)


def density_check(case, indices, exact, offset=0.0):
    """Check of a peer returning densities at case.Q (``offset`` subtracted first).

    Exact peers: rtol 1e-10 on the log-density. Approximate ones: their
    largest relative density error on the checked queries.
    """

    def check(values):
        values = np.asarray(values, dtype=np.float64).reshape(-1) - offset
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(values)
        expected = reference_logpdf(case, "kde", case.Q[indices])
        with np.errstate(over="ignore", invalid="ignore"):
            err = np.abs(np.exp(logs[indices] - expected) - 1.0)
        worst = float(np.max(err)) if np.all(np.isfinite(err)) else float("inf")
        note = f"max rel. density error {worst:.1e} on {len(indices)} queries"
        if not exact:
            return "approx", note
        ok, _ = logpdf_agrees(logs, case, "kde", indices)
        return ("ok", "") if ok else ("mismatch", note)

    return check


@contextlib.contextmanager
def _quiet():
    """No warnings (statsmodels' FutureWarning on its random state default, log(0) in searches)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        yield


def _quietly(fn, *args, **kwargs):
    with _quiet():
        return fn(*args, **kwargs)


def _evaluate_in_chunks(fn, Q, chunk=QUERY_CHUNK):
    return np.concatenate([np.atleast_1d(fn(Q[s:s + chunk])) for s in range(0, len(Q), chunk)])


def discover_kde_peers():
    """The optional KDE peers that import: ({name: module}, {name: version}, skipped notes)."""
    found, versions, skipped = {}, {}, []
    for name, module in (("KDEpy", "KDEpy"), ("statsmodels", "statsmodels")):
        try:
            found[name] = importlib.import_module(module)
            versions[name] = getattr(found[name], "__version__", None) or _dist_version(module)
        except Exception as err:
            skipped.append(f"{name} ({type(err).__name__}: {_first_lines(err, 1)})")
    return found, versions, skipped


def kde_density_entries(case, n_jobs, peers):
    """K1-K3: gaussmix, scikit-learn, SciPy and the optional peers, estimators built (untimed)."""
    import gaussmix
    from scipy.stats import gaussian_kde as ScipyGaussianKDE
    from sklearn.neighbors import KernelDensity as SkKernelDensity

    w = case.workload
    jobs = {} if n_jobs is None else {"n_jobs": n_jobs}
    m, n, d = w.peer_count(), w.n_query, case.X.shape[1]
    X, Q, Qm, h = case.X, case.Q, case.peer_queries(), case.h
    GM_KDE = "gaussmix KernelDensity"
    gm_kde = gaussmix.KernelDensity(bandwidth=h, **jobs).fit(X)
    sk_kde = SkKernelDensity(bandwidth=h).fit(X)
    gm_gkde = gaussmix.gaussian_kde(X.T)
    sp_gkde = ScipyGaussianKDE(X.T)
    all_q = f"all {n:,} queries"
    entries = [
        KdeEntry(GM_KDE, lambda: gm_kde.score_samples(Q),
                 lambda v: _exact(logpdf_agrees(v, case, "kde", case.check)), n, timed_on=all_q, peer=False),
        _subset_entry("scikit-learn KernelDensity", lambda: sk_kde.score_samples(Qm),
                      lambda v: _exact(logpdf_agrees(v, case, "kde", case.peer_check())), m, n, "queries", GM_KDE),
        KdeEntry("gaussmix gaussian_kde", lambda: gm_gkde.logpdf(Q.T),
                 lambda v: _exact(logpdf_agrees(v, case, "gaussian_kde", case.check)), n, timed_on=all_q,
                 peer=False),
        _subset_entry("scipy gaussian_kde", lambda: sp_gkde.logpdf(Qm.T),
                      lambda v: _exact(logpdf_agrees(v, case, "gaussian_kde", case.peer_check())), m, n, "queries",
                      "gaussmix gaussian_kde"),
    ]
    for name, make in (("KDEpy", _kdepy_entries), ("statsmodels", _statsmodels_density_entries)):
        if name in peers:
            entries += _guarded(name, lambda: make(case, GM_KDE))
    return entries


def _guarded(name, make):
    """``make()``'s entries, or one entry that reports why they could not be set up."""
    try:
        return make()
    except Exception as err:
        note = f"error while setting up: {type(err).__name__}: {_first_lines(err)}"
        return [KdeEntry(name, None, lambda _: ("fails", note), 1, timed_on="not run")]


def _kdepy_entries(case, counterpart):
    from KDEpy import FFTKDE, NaiveKDE, TreeKDE

    w = case.workload
    m, n, d = w.peer_count(), w.n_query, case.X.shape[1]
    X, Q, Qm, h, sub = case.X, case.Q, case.peer_queries(), case.h, case.peer_check()
    pts = (lambda A: A[:, 0]) if d == 1 else (lambda A: A)
    naive = NaiveKDE(kernel="gaussian", bw=h).fit(pts(X))
    tree = TreeKDE(kernel="gaussian", bw=h).fit(pts(X))
    eps = KDEPY_OFFSET
    entries = [
        _subset_entry("KDEpy NaiveKDE", lambda: naive.evaluate(pts(Qm)), density_check(case, sub, True, eps),
                      m, n, "queries", counterpart),
        _subset_entry("KDEpy TreeKDE", lambda: tree.evaluate(pts(Qm)), density_check(case, sub, False, eps),
                      m, n, "queries", counterpart),
    ]
    if d <= 2:
        entries.append(KdeEntry(
            f"KDEpy FFTKDE ({FFT_GRID_1D if d == 1 else FFT_GRID_2D} points/axis, interpolated)",
            lambda: _fftkde_at(FFTKDE, X, Q, h), density_check(case, case.check, False, eps), n,
            timed_on=f"all {n:,} queries", counterpart=counterpart,
        ))
    return entries


def _statsmodels_density_entries(case, counterpart):
    w = case.workload
    m, n, d = w.peer_count(), w.n_query, case.X.shape[1]
    X, Q, Qm, h, sub = case.X, case.Q, case.peer_queries(), case.h, case.peer_check()
    if d == 1:
        from statsmodels.nonparametric.kde import KDEUnivariate

        uni = KDEUnivariate(X[:, 0])
        with _quiet():
            uni.fit(kernel="gau", bw=h, fft=False, gridsize=64)  # its grid is N x gridsize; evaluate() is used
        return [
            _subset_entry("statsmodels KDEUnivariate.evaluate",
                          lambda: _evaluate_in_chunks(uni.evaluate, Qm[:, 0]), density_check(case, sub, True),
                          m, n, "queries", counterpart),
            KdeEntry(f"statsmodels KDEUnivariate fft ({FFT_GRID_1D} points, interpolated)",
                     lambda: _statsmodels_fft_at(KDEUnivariate, X[:, 0], Q[:, 0], h),
                     density_check(case, case.check, False), n, timed_on=f"all {n:,} queries",
                     counterpart=counterpart),
        ]
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    with _quiet():
        multi = KDEMultivariate(X, var_type="c" * d, bw=np.full(d, h))
    return [_subset_entry(
        "statsmodels KDEMultivariate.pdf", lambda: multi.pdf(Qm), density_check(case, sub, True),
        m, n, "queries", counterpart,
    )]


def _fftkde_at(FFTKDE, X, Q, h):
    """KDEpy's binned FFT density on its automatic grid, read at Q by linear interpolation."""
    d = X.shape[1]
    if d == 1:
        grid, values = FFTKDE(kernel="gaussian", bw=h).fit(X[:, 0]).evaluate(FFT_GRID_1D)
        return np.interp(Q[:, 0], grid, values, left=0.0, right=0.0)
    from scipy.interpolate import RegularGridInterpolator

    grid, values = FFTKDE(kernel="gaussian", bw=h).fit(X).evaluate(FFT_GRID_2D)
    axes = [np.unique(grid[:, j]) for j in range(d)]
    values = values.reshape([len(a) for a in axes])
    return RegularGridInterpolator(axes, values, bounds_error=False, fill_value=0.0)(Q)


def _statsmodels_fft_at(KDEUnivariate, x, q, h):
    """statsmodels' binned FFT density on its grid, read at q by linear interpolation."""
    kde = KDEUnivariate(x)
    kde.fit(kernel="gau", bw=h, fft=True, gridsize=FFT_GRID_1D)
    return np.interp(q, kde.support, kde.density, left=0.0, right=0.0)


def kde_cv_entries(case, n_jobs, peers):
    """K4: gaussmix.select_bandwidth, the numpy brute force and statsmodels, set up untimed."""
    import gaussmix

    w = case.workload
    jobs = {} if n_jobs is None else {"n_jobs": n_jobs}
    m, n = w.peer_count(), w.n_train
    X = case.X
    d = X.shape[1]
    h_ref, candidates = record_cv_ml_candidates(X, n_jobs)
    rows = np.arange(m)
    GM = "gaussmix select_bandwidth"

    def check_numpy(terms):
        k = int(np.argmin(np.abs(np.log(np.asarray(candidates) / h_ref))))
        return _try(lambda: np.testing.assert_allclose(
            terms[k], engine_loo_terms(X, candidates[k], n_jobs)[rows], rtol=KDE_RTOL))

    entries = [
        KdeEntry(GM, lambda: gaussmix.select_bandwidth(X, **jobs),
                 lambda h: _try(lambda: check_cv_ml(X, h, case.check, n_jobs)), n, timed_on=f"all {n:,} rows",
                 peer=False),
        _subset_entry(f"numpy leave-one-out ({len(candidates)} bandwidths)",
                      lambda: numpy_loo_terms(X, rows, candidates), check_numpy, m, n, "rows", GM),
    ]
    if "statsmodels" in peers:
        entries += _guarded("statsmodels", lambda: statsmodels_cv_entries(X, h_ref, candidates, m, GM))
    return entries


def _exact_loo_objective(X, bw):
    """statsmodels' leave-one-out objective -sum_i log sum_{j != i} prod_d K_{h_d}, by numpy brute force.

    numpy_loo_terms on X / bw with h = 1 gives log of the leave-one-out
    density of the scaled data, divided by (n - 1); statsmodels sums kernels
    without that division and in the original units.
    """
    n = X.shape[0]
    bw = np.asarray(bw, dtype=np.float64)
    terms = numpy_loo_terms(X / bw, np.arange(n), [1.0])[0] - np.sum(np.log(bw))
    return -(float(np.sum(terms)) + n * np.log(n - 1))


def statsmodels_cv_entries(X, h_ref, candidates, m, counterpart):
    """statsmodels' KDEMultivariate on K4: one full-size likelihood, and its own cv_ml search."""
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    n, d = X.shape
    var_type = "c" * d
    calls = [0]

    class Counting(KDEMultivariate):
        def loo_likelihood(self, bw, func=lambda x: x):
            calls[0] += 1
            return super().loo_likelihood(bw, func)

    sub = X[: min(m, n)]
    with _quiet():  # also log(0) warnings at the simplex's wilder steps
        searched = Counting(sub, var_type=var_type, bw="cv_ml")
    n_eval, bw_sm = calls[0], np.asarray(searched.bw, dtype=np.float64)

    def check_search(_):
        # The bandwidths it found maximise the exact leave-one-out likelihood of the subset it searched.
        at = _exact_loo_objective(sub, bw_sm)
        worse = []
        for j in range(d):
            for f in (1 - 1e-2, 1 + 1e-2):
                other = bw_sm.copy()
                other[j] *= f
                if _exact_loo_objective(sub, other) < at - 1e-12 * abs(at):
                    worse.append(f"axis {j} x{f:g}")
        note = f"bw {np.array2string(bw_sm, precision=4)} on {len(sub):,} rows, {n_eval} likelihood evaluations"
        if worse:
            return "mismatch", note + "; not a maximum of the exact leave-one-out likelihood: " + ", ".join(worse)
        return "ok", note

    with _quiet():
        full = KDEMultivariate(X, var_type=var_type, bw=np.full(d, h_ref))
    at_ref = np.full(d, h_ref)

    def check_likelihood(value):
        expected = _exact_loo_objective(X, at_ref)
        return _try(lambda: np.testing.assert_allclose(value, expected, rtol=KDE_RTOL,
                                                       err_msg="loo_likelihood vs numpy brute force"))

    loo_label = f"statsmodels KDEMultivariate.loo_likelihood ({len(candidates)} bandwidths)"
    entries = [KdeEntry(
        loo_label, lambda: _quietly(full.loo_likelihood, at_ref, np.log), check_likelihood, n, scale=len(candidates),
        timed_on=f"1 full-size evaluation x {len(candidates)}", counterpart=counterpart,
    )]
    label = f"statsmodels KDEMultivariate bw='cv_ml' ({n_eval} evaluations, per-axis bw)"
    if len(sub) == n:
        entries.append(KdeEntry(
            label, lambda: _quietly(KDEMultivariate, X, var_type=var_type, bw="cv_ml"), check_search, n,
            timed_on=f"all {n:,} rows", counterpart=counterpart,
        ))
    else:
        entries.append(KdeEntry(
            label, None, check_search, n, scale=n_eval, time_of=loo_label, counterpart=counterpart,
            timed_on=f"search on first {len(sub):,} rows; {n_eval} x 1 full-size evaluation",
        ))
    return entries


def run_kde_workload(workload, repeats, log, n_jobs, peers, limits):
    """Warm-up + checks + interleaved timed repeats: ([(entry, seconds per query or None, status,
    note)], hardware bound of the whole workload)."""
    case = make_kde_case(workload)
    n, d = case.X.shape
    if workload.kind == "cv_ml":
        work = kde_work(n, n, d, n_bandwidths=len(record_cv_ml_candidates(case.X, n_jobs)[1]))
    else:
        work = kde_work(n, len(case.Q), d)
    builder = kde_cv_entries if workload.kind == "cv_ml" else kde_density_entries
    entries = builder(case, n_jobs, peers)
    best, status = {}, {}
    for e in entries:
        try:
            result = e.run() if e.run is not None else None
            status[e.label] = e.check(result)
        except Exception as err:
            status[e.label] = ("fails", f"error: {type(err).__name__}: {_first_lines(err)}")
            continue
        if e.run is not None:
            best[e.label] = float("inf")
    active = [e for e in entries if e.label in best]
    for r in range(repeats):
        shift = r % max(len(active), 1)
        for e in active[shift:] + active[:shift]:
            best[e.label] = min(best[e.label], _timed_call(e.run, best[e.label] < WARM_UP_BELOW_SECONDS))
        log(".")
    out = []
    for e in entries:
        t = best.get(e.time_of or e.label)
        if status[e.label][0] == "fails" or t is None:
            out.append((e, None, *status[e.label]))
        else:
            out.append((e, t * e.scale / e.units, *status[e.label]))
    return out, work.seconds(limits)


def kde_status_cell(status, note):
    if status == "ok":
        return "exact (rtol 1e-10)" if not note else note
    if status == "approx":
        return "approx.: " + note
    if status == "fails":
        return "fails"
    return "(!) disagrees"


def kde_markdown_table(rows, bounds):
    header = ["workload", "library", "timed on", "per query", "full workload", "vs gaussmix", "check"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|---:|---:|---:|---|"]
    for workload, results in rows:
        per = {e.label: t for e, t, _, _ in results}
        bound = bounds[workload.name]
        first = True
        for e, t, status, note in results:
            name = f"{workload.name} {workload.describe()}" if first else ""
            first = False
            full = "n/a" if t is None else format_seconds(t * e.units)
            if t is not None and e.extrapolated:
                full += " (extrapolated)"
            if not e.peer:
                ratio = f"{t * e.units / bound:.2g}x bound" if t is not None else "n/a"
            else:
                base = per.get(e.counterpart)
                ratio = f"{t / base:.3g}x" if t is not None and base else "n/a"
            if status == "ok" and e.label.startswith("statsmodels KDEMultivariate bw="):
                check = "maximum: " + note
            else:
                check = kde_status_cell(status, note if status in ("approx",) else "")
            lines.append("| " + " | ".join(
                [name, e.label, e.timed_on or "", format_seconds(t), full, ratio, check]) + " |")
    return "\n".join(lines)


def kde_summary(workload, results):
    """(gaussmix seconds, scikit-learn ratio, (best exact peer, ratio), (fastest approximate, ratio, error))."""
    per = {e.label: t for e, t, _, _ in results}
    primary = next(e for e, _, _, _ in results if not e.peer)
    t_gm = per.get(primary.label)
    t_sk = per.get("scikit-learn KernelDensity")
    sk_ratio = t_sk / t_gm if t_sk and t_gm else None
    exact, approx = [], []
    for e, t, status, note in results:
        if not e.peer or t is None or not per.get(e.counterpart):
            continue
        ratio = t / per[e.counterpart]
        if status == "ok":
            exact.append((ratio, e.label))
        elif status == "approx":
            approx.append((ratio, e.label, note.replace("max rel. density error ", "").split(" on ")[0]))
    return (
        t_gm * primary.units if t_gm else None,
        sk_ratio,
        min(exact) if exact else None,
        min(approx) if approx else None,
    )


# ----------------------------------------------------------------------- output


def print_machine(out, threads, libraries, skipped, kde_versions, quick, limits):
    f = machine_facts()
    g = f["gaussmix"]
    print("## Machine", file=out)
    print(file=out)
    print(f"- CPU: {f['cpu']}; {f['logical_cpus']} logical CPUs, {f['usable_cpus']} usable", file=out)
    print(
        f"- gaussmix {g['version']} (Python {g['python']}): built with OpenMP: {g['openmp']}, "
        f"default threads: {g['default_threads']}, available cores: {g['available_cores']}, kernels: {g['kernels']}; "
        f"compiled core built {f['core_built']}",
        file=out,
    )
    print(f"- threads for this run: {threads if threads is not None else 'library defaults'}"
          + ("; --quick sizes" if quick else ""), file=out)
    print(f"- measured limits ({limits.describe()})", file=out)
    import scipy

    versions = [f"{lib.name} {lib.version}" for lib in libraries] + [f"scipy {scipy.__version__}"]
    versions += [f"{k} {v}" for k, v in kde_versions.items()]
    print(f"- numpy {f['numpy']}; " + ", ".join(versions), file=out)
    for lib in libraries:
        if lib.note:
            print(f"- {lib.name}: {lib.note}", file=out)
    if f["threadpools"]:
        print(f"- thread pools: {'; '.join(f['threadpools'])}", file=out)
    if skipped:
        print(f"- peers not available: {'; '.join(skipped)}", file=out)
    print(file=out)


def print_mixture_results(out, rows, libraries, repeats, quick, bounds):
    print("## Time per EM iteration" + (" (--quick sizes)" if quick else ""), file=out)
    print(file=out)
    print(markdown_table(rows, [lib.name for lib in libraries], bounds), file=out)
    print(file=out)
    print(
        f"Best of {repeats} interleaved repeats after one checked warm-up fit; max_iter EM iterations "
        "from the same start (tol=0); per iteration = fit time / (iterations run x fits); G5 is per "
        "iteration of one fit. hw bound: from this machine's measured limits (see _hardware.py); gaussmix / bound "
        "with the fraction of the bound reached. best peer: the fastest peer whose result checked out.",
        file=out,
    )
    print("\nChecks (largest deviation over all fits):", file=out)
    for w, res in rows:
        for name, o in res.items():
            mark = {"mismatch": " (!)", "fails": " FAILS"}.get(o.status, "")
            print(f"- {w.name} {name}{mark}: {o.note}", file=out)
    print(file=out)


def print_kde_results(out, kde_rows, repeats, quick, bounds):
    print("## Kernel density: time per query" + (" (--quick sizes)" if quick else ""), file=out)
    print(file=out)
    print(kde_markdown_table(kde_rows, bounds), file=out)
    print(file=out)
    print(
        f"Best of {repeats} interleaved repeats after one untimed, checked call; evaluation only "
        "(estimators built beforehand). K4 is per leave-one-out row. \"extrapolated\": the peer ran on "
        "part of the work (first queries or rows, one of several likelihood evaluations) and its time "
        "is scaled to the full workload. vs gaussmix: peer / its gaussmix counterpart (KernelDensity, "
        "gaussian_kde, select_bandwidth); gaussmix rows: time / measured hardware bound.",
        file=out,
    )
    notes = [
        f"- {w.name} {e.label}: {note}"
        for w, results in kde_rows for e, _, status, note in results if status in ("mismatch", "fails")
    ]
    if notes:
        print("\n(!) disagrees with the brute-force reference, or did not run:", file=out)
        print("\n".join(notes), file=out)
    print(file=out)


def print_summary(out, rows, kde_rows, bounds):
    print("## Summary", file=out)
    print(file=out)
    header = ["workload", "gaussmix", "hw bound", "gaussmix / bound (reached)", "scikit-learn / gaussmix",
              "best exact peer / gaussmix", "fastest approximate peer / gaussmix"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---|---|"]
    for w, res in rows:
        gm, sk = res.get("gaussmix"), res.get("scikit-learn")
        t_gm = gm.seconds if gm is not None and gm.status in ("ok", "mismatch") else None
        t_sk = sk.seconds if sk is not None else None
        bound = bounds[w.name]
        name, t_best = best_peer(res)
        lines.append("| " + " | ".join([
            w.name, format_seconds(t_gm) + " /iter" + (" (!)" if gm is not None and gm.status == "mismatch" else ""),
            format_seconds(bound), format_bound(t_gm, bound),
            f"{t_sk / t_gm:.3g}" if t_gm and t_sk else "n/a",
            f"{t_best / t_gm:.3g} ({name})" if name and t_gm else "n/a", "—",
        ]) + " |")
    for w, results in kde_rows:
        t_gm, sk_ratio, exact, approx = kde_summary(w, results)
        bound = bounds[w.name]
        lines.append("| " + " | ".join([
            w.name, format_seconds(t_gm), format_seconds(bound), format_bound(t_gm, bound),
            f"{sk_ratio:.3g}" if sk_ratio else "n/a",
            f"{exact[0]:.3g} ({exact[1]})" if exact else "n/a",
            f"{approx[0]:.3g} ({approx[1]}, error {approx[2]})" if approx else "n/a",
        ]) + " |")
    print("\n".join(lines), file=out)
    print(file=out)
    print(
        "Ratios above 1: gaussmix is faster. K rows: gaussmix is KernelDensity (K1-K3) or "
        "select_bandwidth (K4), whole workload; peers against their gaussmix counterpart.",
        file=out,
    )
    print(file=out)


def plot_mixture_results(rows, bounds, path):
    """The time per EM iteration of every library that checked out, per
    workload, on a log scale, with the hardware bound marked: a PNG at path
    (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for _, outcomes in rows:
        for name, o in outcomes.items():
            if o.seconds is not None and o.status in ("ok", "reference") and name not in names:
                names.append(name)
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.45 * len(rows) * max(len(names), 1) / 2))
    height = 0.8 / max(len(names), 1)
    labels = []
    for i, (w, outcomes) in enumerate(rows):
        labels.append(w.name)
        for j, name in enumerate(names):
            o = outcomes.get(name)
            if o is not None and o.seconds is not None and o.status in ("ok", "reference"):
                ax.barh(i + (j - (len(names) - 1) / 2) * height, o.seconds, height=height,
                        color=f"C{j}", label=name if i == 0 or name not in ax.get_legend_handles_labels()[1] else None)
        bound = bounds.get(w.name)
        if bound:
            ax.plot([bound, bound], [i - 0.45, i + 0.45], color="black", linewidth=1.5,
                    label="hardware bound" if i == 0 else None)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds per EM iteration (log scale; shorter is faster)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time gaussmix and every installed peer per EM iteration (same data and start) "
        "and per kernel density query (same data and bandwidth), each result checked."
    )
    parser.add_argument("--quick", action="store_true", help="N (or the number of fits, or the KDE sizes) / 10")
    parser.add_argument(
        "--workloads", default=",".join(ALL_WORKLOADS),
        help="comma-separated subset of " + ",".join(ALL_WORKLOADS),
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads for every library (gaussmix n_jobs, BLAS/OpenMP via threadpoolctl, oneDAL, torch)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3, --quick 2)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="also draw the mixture table's times to this PNG file (needs matplotlib)")
    args = parser.parse_args(argv)

    try:
        names = resolve_workloads(args.workloads)  # names in any case
    except ValueError as err:
        parser.error(str(err))
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be a positive integer")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be a positive integer")
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 3)
    workloads = [
        ALL_WORKLOADS[n].quick(QUICK_FACTOR) if args.quick else ALL_WORKLOADS[n] for n in names
    ]
    mixture_workloads = [w for w in workloads if w.name in WORKLOADS]
    bayes_workloads = [w for w in workloads if w.name in BAYES_WORKLOADS]
    kde_workloads = [w for w in workloads if w.name in KDE_WORKLOADS]

    out = sys.stdout

    def log(msg):
        print(msg, end="", file=sys.stderr, flush=True)

    # Import every library first, so that threadpoolctl sees all their thread pools.
    gaussmix_lib = _gaussmix(args.threads)
    libraries = [gaussmix_lib, _gaussmix_batch(args.threads)]
    peers, skipped = discover_peers(args.threads)
    libraries += peers
    kde_peers, kde_versions, kde_skipped = discover_kde_peers()
    skipped += kde_skipped
    limits = contextlib.nullcontext()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=args.threads)

    with limits:
        log("measuring this machine's limits ")
        from gaussmix import _core

        hw = measure_limits(args.threads if args.threads is not None else int(_core.default_threads()))
        log(f"{hw.describe()}\n")
        bounds = {}
        print_machine(out, args.threads, libraries, skipped, kde_versions, args.quick, hw)
        rows = []
        bayes_rows = []
        kde_rows = []
        t_start = time.perf_counter()
        for w in mixture_workloads:
            log(f"{w.name} {w.describe()} ")
            t0 = time.perf_counter()
            outcomes, bounds[w.name] = run_workload(w, libraries, repeats, log, gaussmix_lib, hw)
            rows.append((w, outcomes))
            log(f" {time.perf_counter() - t0:.0f} s\n")
        for w in bayes_workloads:
            log(f"{w.name} {w.describe()} ")
            t0 = time.perf_counter()
            bayes_rows.append((w, run_bayes_workload(w, repeats, log, args.threads)))
            log(f" {time.perf_counter() - t0:.0f} s\n")
        for w in kde_workloads:
            log(f"{w.name} {w.describe()} ")
            t0 = time.perf_counter()
            results, bounds[w.name] = run_kde_workload(w, repeats, log, args.threads, kde_peers, hw)
            kde_rows.append((w, results))
            log(f" {time.perf_counter() - t0:.0f} s\n")

    if rows:
        print_mixture_results(out, rows, libraries, repeats, args.quick, bounds)
        if args.plot:
            plot_mixture_results(rows, bounds, args.plot)
            log(f"figure: {args.plot}\n")
    if bayes_rows:
        print_bayes_results(out, bayes_rows, repeats, args.quick)
    if kde_rows:
        print_kde_results(out, kde_rows, repeats, args.quick, bounds)
    print_summary(out, rows, kde_rows, bounds)
    log(f"total {time.perf_counter() - t_start:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
