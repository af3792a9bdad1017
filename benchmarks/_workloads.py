"""Benchmark workloads shared by the pytest-benchmark suites and compare.py.

Gaussian mixtures (G1-G5): each workload is a data set of well-separated
Gaussian blobs and a fixed EM starting point computed from the true labels
(weights, means and inverse covariances plus a small ridge), so that every
library runs exactly the same ``max_iter`` EM iterations (``tol=0``) from
exactly the same place. G1o-G4o are their overlapping twins: the same sizes
on blobs one standard deviation apart, where no responsibility is exactly
zero and no work can be skipped.

Kernel densities (K1-K4): a training set and queries from one mixture, the
same bandwidth for every library, results checked against a brute-force
numpy reference (see the section at the end).
"""

import os
import types
import warnings
from dataclasses import dataclass, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning

QUICK_ENV = "GAUSSMIX_BENCH_QUICK"
QUICK_FACTOR = 100
START_REG = 1e-6


@dataclass(frozen=True)
class Workload:
    """One benchmark case: ``n_fits`` data sets of ``n_samples`` x ``n_features``."""

    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    max_iter: int
    n_fits: int = 1
    seed: int = 0
    separation: float = 8.0  # centre distances, in largest standard deviations (make_blobs)

    @property
    def iterations(self):
        """EM iterations per timed call (all fits together)."""
        return self.max_iter * self.n_fits

    def describe(self):
        fits = f"{self.n_fits} fits of " if self.n_fits > 1 else ""
        overlap = ", overlapping" if self.separation < 2.0 else ""
        return (
            f"{fits}N={self.n_samples:,} D={self.n_features} K={self.n_components} "
            f"{self.covariance_type}{overlap}"
        )

    def quick(self, factor=QUICK_FACTOR):
        """The same workload, about ``factor`` times cheaper.

        A workload of many fits keeps its data size and runs fewer fits;
        a single fit gets N divided by ``factor``, but never below 4*K*D (so
        every component keeps a well-conditioned covariance) nor 200 rows.
        """
        if self.n_fits > 1:
            return replace(self, n_fits=max(1, self.n_fits // factor))
        floor = max(4 * self.n_components * self.n_features, 200)
        n = min(self.n_samples, max(self.n_samples // factor, floor))
        return replace(self, n_samples=n)


WORKLOADS = {
    "G1": Workload("G1", 1_000_000, 2, 8, "full", max_iter=3),
    "G2": Workload("G2", 200_000, 16, 16, "full", max_iter=3),
    "G3": Workload("G3", 50_000, 64, 32, "full", max_iter=3),
    "G4": Workload("G4", 1_000_000, 8, 16, "diag", max_iter=3),
    "G5": Workload("G5", 1_000, 2, 3, "full", max_iter=5, n_fits=200),
    "G1o": Workload("G1o", 1_000_000, 2, 8, "full", max_iter=3, separation=1.0),
    "G2o": Workload("G2o", 200_000, 16, 16, "full", max_iter=3, separation=1.0),
    "G3o": Workload("G3o", 50_000, 64, 32, "full", max_iter=3, separation=1.0),
    "G4o": Workload("G4o", 1_000_000, 8, 16, "diag", max_iter=3, separation=1.0),
}


def quick_from_env():
    """True when GAUSSMIX_BENCH_QUICK is set to a true value."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _centers(rng, k, d, min_dist):
    """K centres drawn in a box, each at least ``min_dist`` from the others."""
    side = min_dist * max(2.0, 2.0 * k ** (1.0 / d))
    centers = np.empty((k, d))
    for j in range(k):
        for _ in range(10_000):
            c = rng.uniform(-side, side, size=d)
            if j == 0 or np.min(np.linalg.norm(centers[:j] - c, axis=1)) >= min_dist:
                break
        else:  # pragma: no cover - only with an impossible packing
            raise RuntimeError("could not place well-separated centres")
        centers[j] = c
    return centers


def make_blobs(n, d, k, covariance_type, seed, separation=8.0):
    """Gaussian blobs and their true labels (float64).

    Scales are uniform in [0.5, 1.5] per axis; 'full' blobs are randomly
    rotated, 'diag' blobs are axis-aligned. Centres are at least
    ``separation`` largest standard deviations apart (8: well separated, most
    responsibilities exactly zero; 1: overlapping, none). Component weights
    are uneven but not tiny.
    """
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    centers = _centers(rng, k, d, min_dist=separation * 1.5)
    weights = 0.5 / k + 0.5 * rng.dirichlet(np.ones(k))
    labels = rng.choice(k, size=n, p=weights / weights.sum())
    X = rng.standard_normal((n, d))
    X *= scales[labels]
    if covariance_type == "full":
        for j in range(k):
            rot = np.linalg.qr(rng.standard_normal((d, d)))[0]
            mask = labels == j
            X[mask] = X[mask] @ rot
    X += centers[labels]
    return X, labels


def start_from_labels(X, labels, k, covariance_type, reg=START_REG):
    """weights_init, means_init, precisions_init of the partition ``labels``."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    nk = np.bincount(labels, minlength=k).astype(np.float64)
    means = np.empty((k, d))
    covs = np.empty((k, d, d)) if covariance_type == "full" else np.empty((k, d))
    for j in range(k):
        diff = X[labels == j]
        means[j] = diff.mean(axis=0)
        diff = diff - means[j]
        if covariance_type == "full":
            covs[j] = diff.T @ diff / nk[j] + reg * np.eye(d)
        else:
            covs[j] = np.einsum("ij,ij->j", diff, diff) / nk[j] + reg
    if covariance_type == "full":
        prec = np.linalg.inv(covs)
        prec = 0.5 * (prec + np.swapaxes(prec, 1, 2))
    elif covariance_type == "diag":
        prec = 1.0 / covs
    else:
        raise ValueError(f"unsupported covariance_type {covariance_type!r}")
    return {"weights_init": nk / nk.sum(), "means_init": means, "precisions_init": prec}


@dataclass
class Case:
    """Generated data of a workload: one (X, start) pair per fit."""

    workload: Workload
    Xs: list
    starts: list
    _f32: list = None

    def params(self, i=0):
        """Constructor keywords shared by every library for fit ``i``."""
        w = self.workload
        return dict(
            n_components=w.n_components,
            covariance_type=w.covariance_type,
            tol=0.0,
            max_iter=w.max_iter,
            **self.starts[i],
        )

    def all_params(self):
        return [self.params(i) for i in range(len(self.Xs))]

    def X(self, dtype=np.float64):
        if np.dtype(dtype) == np.float64:
            return self.Xs
        if self._f32 is None:
            self._f32 = [x.astype(np.float32) for x in self.Xs]
        return self._f32


def make_case(workload):
    """Data and starting points for ``workload`` (deterministic in its seed)."""
    w = workload
    Xs, starts = [], []
    for i in range(w.n_fits):
        X, labels = make_blobs(
            w.n_samples, w.n_features, w.n_components, w.covariance_type, w.seed + i, w.separation
        )
        Xs.append(X)
        starts.append(start_from_labels(X, labels, w.n_components, w.covariance_type))
    return Case(w, Xs, starts)


def fit_all(estimator_cls, Xs, params, **extra):
    """Fit ``estimator_cls(**params[i], **extra)`` on ``Xs[i]``; the fitted models.

    EM runs with tol=0, so every fit ends with a ConvergenceWarning by design;
    it is silenced here.
    """
    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for X, p in zip(Xs, params):
            models.append(estimator_cls(**p, **extra).fit(X))
    return models


def fit_batch(Xs, params, **extra):
    """All fits of ``params`` (same keywords but the starting values) in one
    ``gaussmix.fit_many`` call, each from its own start; per data set, its
    fitted attributes (sliced from the stacked ones)."""
    import gaussmix

    shared = {k: v for k, v in params[0].items() if not k.endswith("_init")}
    starts = {
        key: np.stack([np.asarray(p[key], dtype=np.float64) for p in params])
        for key in ("weights_init", "means_init", "precisions_init")
    }
    X = np.concatenate(Xs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = gaussmix.fit_many(X, lengths=[x.shape[0] for x in Xs], **shared, **starts, **extra)
    names = ("weights_", "means_", "covariances_", "n_iter_", "lower_bound_")
    return [
        types.SimpleNamespace(**{name: getattr(batch, name)[g] for name in names})
        for g in range(len(Xs))
    ]


@dataclass(frozen=True)
class Reference:
    """Fitted means and lower bounds of one fit per data set."""

    means: tuple
    lower_bounds: tuple
    n_iter: tuple

    @classmethod
    def from_models(cls, models):
        return cls(
            tuple(np.asarray(m.means_, dtype=np.float64) for m in models),
            tuple(float(m.lower_bound_) for m in models),
            tuple(int(m.n_iter_) for m in models),
        )


def reference_fit(case):
    """scikit-learn's fit of ``case``: the ground truth every result is checked against."""
    from sklearn.mixture import GaussianMixture

    return Reference.from_models(fit_all(GaussianMixture, case.X(), case.all_params()))


def check_models(models, ref, rtol, means_only=False):
    """Raise AssertionError unless ``models`` match the reference.

    Means are compared at ``rtol`` relative to the largest mean magnitude of
    the data set (a mean near zero has no meaningful relative error); lower
    bounds at ``rtol`` relative to themselves; iteration counts exactly.
    ``means_only`` skips the last two (for peers with other conventions).
    """
    assert len(models) == len(ref.means), "number of fits"
    for i, m in enumerate(models):
        ref_means = ref.means[i]
        scale = np.max(np.abs(ref_means))
        np.testing.assert_allclose(
            np.asarray(m.means_, dtype=np.float64),
            ref_means,
            rtol=rtol,
            atol=rtol * scale,
            err_msg=f"means_ of fit {i}",
        )
        if means_only:
            continue
        np.testing.assert_allclose(
            float(m.lower_bound_), ref.lower_bounds[i], rtol=rtol, err_msg=f"lower_bound_ of fit {i}"
        )
        assert int(m.n_iter_) == ref.n_iter[i], f"n_iter_ of fit {i}"


def models_agree(models, ref, rtol, means_only=False):
    """check_models as (bool, first line of the failure message)."""
    try:
        check_models(models, ref, rtol, means_only)
    except AssertionError as err:
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        return False, " ".join(lines[:3])
    return True, ""


def cpu_model():
    """The CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def machine_facts():
    """CPU, cores, gaussmix's build/threading facts and library versions."""
    import io
    from datetime import datetime

    import sklearn

    import gaussmix
    from gaussmix import _core

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    facts = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "gaussmix": gaussmix.show_config(file=io.StringIO()),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "core_built": datetime.fromtimestamp(os.path.getmtime(_core.__file__)).isoformat(
            sep=" ", timespec="seconds"
        ),
    }
    try:
        from threadpoolctl import threadpool_info

        facts["threadpools"] = [
            f"{p['internal_api']} {p.get('version') or ''}".strip()
            + f" ({p['num_threads']} threads)"
            for p in threadpool_info()
        ]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        facts["threadpools"] = []
    return facts


# ---------------------------------------------------------------------------
# Variational Bayesian mixtures (B1-B2)
#
# The data of make_blobs; every library starts from the same random draws
# (one random_state: scikit-learn's and gaussmix's draws are the same) and
# runs max_iter iterations (tol=0). B1 and B2 start from random_from_data on
# separated blobs, so EM's first components, one sample each, are narrow and
# most of its responsibilities exactly zero, while VB's prior keeps them
# broad; their overlapping twins B1o and B2o start both from k-means, where
# neither has zeros to skip: the like-for-like VB / EM comparison.
# The time per iteration is (t(max_iter) - t(0)) / max_iter, so the priors
# and the initialisation, paid once per fit, are not in it.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BayesWorkload:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    prior_type: str
    overlapping: bool = False
    max_iter: int = 3
    seed: int = 0

    def describe(self):
        prior = "DP" if self.prior_type == "dirichlet_process" else "Dirichlet"
        data = ", overlapping, k-means start" if self.overlapping else ""
        return (
            f"N={self.n_samples:,} D={self.n_features} K={self.n_components} "
            f"{self.covariance_type}, {prior}{data}"
        )

    def quick(self, factor=QUICK_FACTOR):
        floor = max(4 * self.n_components * self.n_features, 200)
        return replace(self, n_samples=min(self.n_samples, max(self.n_samples // factor, floor)))

    def data(self):
        X, _ = make_blobs(self.n_samples, self.n_features, self.n_components,
                          "full" if self.covariance_type == "full" else "diag", self.seed,
                          separation=1.0 if self.overlapping else 8.0)
        return X

    def params(self, max_iter=None):
        return dict(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.prior_type,
            init_params="kmeans" if self.overlapping else "random_from_data",
            random_state=self.seed,
            tol=0.0,
            max_iter=self.max_iter if max_iter is None else max_iter,
        )


BAYES_WORKLOADS = {
    "B1": BayesWorkload("B1", 200_000, 16, 16, "full", "dirichlet_process"),
    "B2": BayesWorkload("B2", 1_000_000, 8, 16, "diag", "dirichlet_distribution"),
    "B1o": BayesWorkload("B1o", 200_000, 16, 16, "full", "dirichlet_process", overlapping=True),
    "B2o": BayesWorkload("B2o", 1_000_000, 8, 16, "diag", "dirichlet_distribution", overlapping=True),
}


def fit_quietly(estimator_cls, X, params):
    """estimator_cls(**params).fit(X) with the ConvergenceWarning of tol=0 silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator_cls(**params).fit(X)


def check_bayes(got, ref, rtol):
    """Raise AssertionError unless two variational fits agree (means relative
    to their largest magnitude, degrees of freedom, lower bound, iterations)."""
    scale = np.max(np.abs(ref.means_))
    np.testing.assert_allclose(got.means_, ref.means_, rtol=rtol, atol=rtol * scale, err_msg="means_")
    np.testing.assert_allclose(got.degrees_of_freedom_, ref.degrees_of_freedom_, rtol=rtol,
                               err_msg="degrees_of_freedom_")
    np.testing.assert_allclose(float(np.ravel(got.lower_bound_)[0]), float(np.ravel(ref.lower_bound_)[0]),
                               rtol=rtol, err_msg="lower_bound_")
    assert got.n_iter_ == ref.n_iter_, "n_iter_"


# ---------------------------------------------------------------------------
# Kernel density workloads (K1-K4)
#
# Each is a training set and a query set drawn from the same mixture of four
# overlapping Gaussian blobs (float64). The isotropic bandwidth of
# KernelDensity is Scott's factor times the data's spread,
# h = sqrt(mean per-axis variance) * n**(-1/(d+4)); gaussian_kde-style
# evaluation (gaussmix.gaussian_kde and scipy.stats.gaussian_kde) uses SciPy's
# default, the data covariance times Scott's factor squared. The peers
# (scikit-learn's tree KDE, scipy.stats.gaussian_kde, a numpy leave-one-out)
# need minutes at full size, so they are timed on the first ``peer_queries``
# queries (K4: leave-one-out rows) and their time is scaled to the full
# workload.
# ---------------------------------------------------------------------------

KDE_CHECK_QUERIES = 200
KDE_RTOL = 1e-10


@dataclass(frozen=True)
class KdeWorkload:
    """One KDE benchmark case: ``n_train`` points, ``n_query`` queries, D features.

    kind "density" evaluates log-densities at the queries; kind "cv_ml" selects
    the bandwidth by leave-one-out likelihood (the training points are the
    queries: n_query == n_train).
    """

    name: str
    n_train: int
    n_query: int
    n_features: int
    kind: str = "density"
    peer_queries: int = 500
    seed: int = 0

    def describe(self):
        if self.kind == "cv_ml":
            return f"cv_ml bandwidth, N={self.n_train:,} D={self.n_features}"
        return f"train {self.n_train:,} / query {self.n_query:,} D={self.n_features}"

    def quick(self, factor=QUICK_FACTOR):
        """The same workload with N and the queries divided by ``factor`` (at least 100)."""
        n_train = max(self.n_train // factor, 100)
        n_query = n_train if self.kind == "cv_ml" else max(self.n_query // factor, 100)
        return replace(self, n_train=n_train, n_query=n_query)

    def peer_count(self):
        """Queries (K4: leave-one-out rows) the slow peers are timed on."""
        return min(self.peer_queries, self.n_query)


KDE_WORKLOADS = {
    "K1": KdeWorkload("K1", 100_000, 100_000, 1, peer_queries=400),
    "K2": KdeWorkload("K2", 100_000, 10_000, 2, peer_queries=400),
    "K3": KdeWorkload("K3", 20_000, 20_000, 10, peer_queries=1_000),
    "K4": KdeWorkload("K4", 20_000, 20_000, 2, kind="cv_ml", peer_queries=1_000),
}


def all_workloads():
    """Every workload, mixtures, variational mixtures and kernel densities, by name."""
    return {**WORKLOADS, **BAYES_WORKLOADS, **KDE_WORKLOADS}


def resolve_workloads(spec):
    """Canonical names of a comma-separated list of workloads, in any case, each once.

    ValueError names the unknown ones (or an empty list) and the choices.
    """
    known = all_workloads()
    by_key = {name.upper(): name for name in known}
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    unknown = [w for w in wanted if w.upper() not in by_key]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if not wanted:
        raise ValueError(f"no workload named; choose from {', '.join(known)}")
    return list(dict.fromkeys(by_key[w.upper()] for w in wanted))


def make_kde_points(n, d, seed):
    """n points of a mixture of four overlapping Gaussian blobs in R^d (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    layout = np.random.default_rng(12345 + d)  # the same mixture for train and queries
    centers = layout.normal(scale=3.0, size=(4, d))
    scales = layout.uniform(0.5, 1.5, size=(4, d))
    labels = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    return centers[labels] + scales[labels] * rng.standard_normal((n, d))


def _upper_whitening(cov):
    """Upper-triangular U with U U^T = inv(cov), so ||x U|| is the Mahalanobis norm."""
    lower = np.linalg.cholesky(cov)
    return np.linalg.solve(lower, np.eye(len(cov))).T


@dataclass
class KdeCase:
    """Generated data of a KDE workload, its bandwidths and the queries checked."""

    workload: KdeWorkload
    X: np.ndarray
    Q: np.ndarray
    h: float
    covariance: np.ndarray
    check: np.ndarray  # indices into Q compared with the brute-force reference

    @property
    def whiten(self):
        return _upper_whitening(self.covariance)

    def peer_queries(self):
        return self.Q[: self.workload.peer_count()]

    def peer_check(self):
        """Checked indices that fall inside the peers' subset (at least a few)."""
        m = self.workload.peer_count()
        inside = self.check[self.check < m]
        return inside if len(inside) >= 20 else np.arange(min(m, KDE_CHECK_QUERIES))


def make_kde_case(workload):
    """Data, queries and bandwidths for ``workload`` (deterministic in its seed)."""
    w = workload
    X = make_kde_points(w.n_train, w.n_features, w.seed)
    Q = X if w.kind == "cv_ml" else make_kde_points(w.n_query, w.n_features, w.seed + 1)
    n, d = X.shape
    factor = n ** (-1.0 / (d + 4))
    h = float(np.sqrt(np.mean(np.var(X, axis=0))) * factor)
    covariance = scipy_kde_covariance(X)
    rng = np.random.default_rng(w.seed + 2)
    check = np.sort(rng.choice(len(Q), size=min(KDE_CHECK_QUERIES, len(Q)), replace=False))
    return KdeCase(w, X, Q, h, covariance, check)


def scipy_kde_covariance(X):
    """The kernel covariance of scipy.stats.gaussian_kde(X.T) (Scott's factor), as SciPy computes it."""
    from scipy.stats import gaussian_kde

    return gaussian_kde(X.T).covariance


def gaussian_log_norm(whiten):
    """log of the Gaussian kernel's constant for whitening factor U: -D/2 log 2 pi + log det U."""
    d = whiten.shape[0]
    return -0.5 * d * np.log(2 * np.pi) + float(np.sum(np.log(np.diag(whiten))))


def reference_gaussian_logpdf(X, Q, whiten, chunk=8):
    """Brute force: log mean_i N(q | x_i, (U U^T)^-1) over every pair, in log space."""
    from scipy.special import logsumexp

    out = np.empty(len(Q))
    for start in range(0, len(Q), chunk):
        diff = (Q[start:start + chunk, None, :] - X[None, :, :]) @ whiten
        out[start:start + chunk] = logsumexp(-0.5 * np.einsum("qnd,qnd->qn", diff, diff), axis=1)
    return out + gaussian_log_norm(whiten) - np.log(X.shape[0])


def reference_logpdf(case, which, Q):
    """Brute-force log-density at Q for the isotropic ('kde') or covariance ('gaussian_kde') bandwidth."""
    d = case.X.shape[1]
    whiten = np.eye(d) / case.h if which == "kde" else case.whiten
    return reference_gaussian_logpdf(case.X, Q, whiten)


def check_logpdf(values, case, which, indices, rtol=KDE_RTOL):
    """Raise AssertionError unless values[indices] match the brute-force reference at rtol."""
    expected = reference_logpdf(case, which, case.Q[indices])
    np.testing.assert_allclose(
        np.asarray(values)[indices], expected, rtol=rtol, err_msg=f"{case.workload.name} log-density ({which})"
    )


def logpdf_agrees(values, case, which, indices, rtol=KDE_RTOL):
    """check_logpdf as (bool, short failure note)."""
    try:
        check_logpdf(values, case, which, indices, rtol)
    except AssertionError as err:
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        return False, " ".join(lines[:4])
    return True, ""


def record_cv_ml_candidates(X, n_jobs=None):
    """select_bandwidth(X) and the bandwidths it evaluated, in order: (h, [h_1, h_2, ...])."""
    from unittest import mock

    import gaussmix
    from gaussmix import _kde

    seen = []
    inner = _kde.leave_one_out_log_likelihood

    def counting(X_, weights, index, scale, *rest):
        seen.append(1.0 / float(scale))
        return inner(X_, weights, index, scale, *rest)

    with mock.patch.object(_kde, "leave_one_out_log_likelihood", counting):
        h = gaussmix.select_bandwidth(X, n_jobs=n_jobs)
    return h, seen


def numpy_loo_terms(X, rows, bandwidths, chunk=256):
    """Brute-force leave-one-out terms of the Gaussian KDE, numpy only.

    For each bandwidth h and each row i in ``rows``:
    log(sum_{j != i} N(x_i | x_j, h^2 I) / (n - 1)). Squared distances are
    computed once per chunk of rows (``chunk`` x n doubles) and reused for
    every bandwidth. Returns an array (len(bandwidths), len(rows)).
    """
    from scipy.special import logsumexp

    n, d = X.shape
    hs = np.asarray(bandwidths, dtype=np.float64)
    out = np.empty((len(hs), len(rows)))
    for start in range(0, len(rows), chunk):
        idx = np.asarray(rows[start:start + chunk])
        diff_sq = np.zeros((len(idx), n))
        for axis in range(d):  # exact differences, one feature at a time
            diff_sq += (X[idx, axis, None] - X[None, :, axis]) ** 2
        diff_sq[np.arange(len(idx)), idx] = np.inf
        for k, h in enumerate(hs):
            out[k, start:start + len(idx)] = (
                logsumexp(-0.5 * diff_sq / (h * h), axis=1)
                - 0.5 * d * np.log(2 * np.pi * h * h)
                - np.log(n - 1)
            )
    return out


def engine_loo_terms(X, h, n_jobs=None):
    """gaussmix's leave-one-out terms at bandwidth h (every row), as numpy_loo_terms defines them."""
    from gaussmix._kde_core import log_kernel_sums
    from gaussmix._validation import effective_n_threads

    n, d = X.shape
    sums = log_kernel_sums(X, None, X, np.eye(d) / h, "gaussian", effective_n_threads(n_jobs), exclude_self=True)
    return sums - 0.5 * d * np.log(2 * np.pi * h * h) - np.log(n - 1)


def check_cv_ml(X, h, rows, n_jobs=None, rtol=KDE_RTOL):
    """Raise AssertionError unless h is a maximum of the leave-one-out likelihood.

    The engine's leave-one-out terms at h equal the numpy brute force on
    ``rows`` (rtol), and the likelihood at h*(1 +/- 1e-2) is not larger.
    """
    from gaussmix._kde_core import build_index, leave_one_out_log_likelihood
    from gaussmix._validation import effective_n_threads

    d = X.shape[1]
    np.testing.assert_allclose(
        engine_loo_terms(X, h, n_jobs)[rows], numpy_loo_terms(X, rows, [h])[0], rtol=rtol,
        err_msg="leave-one-out terms",
    )
    t = effective_n_threads(n_jobs)
    index = build_index(np.ascontiguousarray(X, dtype=np.float64), None, np.eye(d), t)
    at = leave_one_out_log_likelihood(X, None, index, 1.0 / h, "gaussian", t)
    for other in (h * (1 - 1e-2), h * (1 + 1e-2)):
        value = leave_one_out_log_likelihood(X, None, index, 1.0 / other, "gaussian", t)
        assert value <= at + 1e-12 * abs(at), f"likelihood at {other:.6g} exceeds the one at h={h:.6g}"
