"""Choosing a mixture: the number of components and the covariance structure
by an information criterion, every candidate fitted in one engine call.

``GaussianMixtureIC`` fits ``GaussianMixture(n_components=k,
covariance_type=c)`` for every ``k`` and ``c`` asked for and keeps the one with
the lowest criterion, as R's ``mclust`` does for its models (with
scikit-learn's sign: lower is better).

Criteria, with L the log-likelihood at the fitted parameters, p the number of
free parameters and n the number of samples:

* ``"bic"``: -2 L + p log n (Schwarz 1978), scikit-learn's ``bic(X)``;
* ``"aic"``: -2 L + 2 p (Akaike 1974), scikit-learn's ``aic(X)``;
* ``"icl"``: BIC - 2 sum_i log max_k r_ik, the integrated completed
  likelihood (Biernacki, Celeux & Govaert 2000) as mclust computes it: BIC
  plus twice the entropy of the hard classification, which favours well
  separated components. mclust reports -BIC and -ICL (higher is better);
  here both are on scikit-learn's scale.

With ``sample_weight``, L and the classification term are weighted sums with
the weights scaled to sum to n.

Every candidate's fit is the one ``GaussianMixture`` makes alone with the same
parameters and ``random_state`` (an int; any other ``random_state`` is turned
into one int seed that every candidate uses, recorded on
``best_estimator_``). All candidates run in one engine call, across threads;
the starting partitions that do not depend on the covariance type (k-means,
a hierarchical tree's cuts) are found once per number of components and
shared.
"""

import math
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _core, _hierarchical
from ._gaussian_mixture import GaussianMixture, n_parameters
from ._grouped import _INIT_CODES, _STATUS_TEXT, _draws
from ._sources import FLOAT_DTYPES
from ._validation import (
    check_sample_weight,
    effective_n_threads,
    is_dask_collection,
    validate,
    validate_params,
)

__all__ = ["GaussianMixtureIC"]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_PARTITION = 5  # the engine's code for partitions the caller gives
_SHARED = ("tol", "reg_covar", "max_iter", "n_init", "init_params", "random_state", "n_jobs")


class GaussianMixtureIC(DensityMixin, BaseEstimator):
    """Gaussian mixture model selection by BIC, AIC or ICL.

    Fits a ``GaussianMixture`` for every number of components in
    ``n_components`` and every covariance type in ``covariance_type``, all in
    one engine call, and keeps the candidate with the lowest criterion.

    Parameters
    ----------
    n_components : int or iterable of int, default=range(1, 11)
        The numbers of components to try (an int n: 1 .. n).
    covariance_type : str or iterable of str, default=("full", "tied", "diag", "spherical")
        The covariance types to try.
    criterion : {"bic", "aic", "icl"}, default="bic"
        What chooses the model (lower is better; see the module's notes).
    tol, reg_covar, max_iter, n_init : as ``GaussianMixture``'s
    init_params : {"kmeans", "k-means++", "random", "random_from_data", \
            "hierarchical"}, default="kmeans"
        As ``GaussianMixture``'s; ``"hierarchical"`` cuts one model-based
        hierarchical tree for every number of components (mclust's start).
    random_state : int, RandomState instance or None, default=None
        The seed of every candidate (each starts from a fresh RandomState
        with it, as a ``GaussianMixture`` of its own would); a RandomState or
        None gives one int seed drawn from it.
    n_jobs : int, default=None
        Threads (None: OpenMP's default).

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The chosen candidate, fitted (its ``random_state`` is the seed used).
    best_params_ : dict
        Its ``n_components`` and ``covariance_type``.
    best_index_ : int
        Its row in ``results_``.
    results_ : dict of arrays
        One entry per candidate (``pandas.DataFrame(results_)`` makes a table):
        ``param_n_components``, ``param_covariance_type``, ``params``,
        ``bic``, ``aic``, ``icl``, ``log_likelihood``, ``n_parameters``,
        ``converged``, ``n_iter``, ``lower_bound``, ``status`` ("fitted" or
        why not; such candidates have infinite criteria) and ``rank`` (1: the
        best by ``criterion``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixtureIC
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-4, 1, (300, 2)), rng.normal(4, 1, (300, 2))])
    >>> sel = GaussianMixtureIC(n_components=range(1, 5), random_state=0).fit(X)
    >>> sel.best_params_["n_components"]
    2
    """

    _parameter_constraints: dict = {
        "n_components": [Integral, "array-like"],
        "covariance_type": [str, list, tuple],
        "criterion": [StrOptions({"bic", "aic", "icl"})],
        **{name: GaussianMixture._parameter_constraints[name] for name in _SHARED},
    }

    def __init__(
        self,
        n_components=range(1, 11),
        *,
        covariance_type=_COVARIANCE_TYPES,
        criterion="bic",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit

    def _grid(self):
        """The distinct numbers of components (ascending) and covariance types (in order)."""
        ks = self.n_components
        if isinstance(ks, Integral):
            if ks < 1:
                raise ValueError(f"n_components must be >= 1, got {ks}")
            ks = range(1, int(ks) + 1)
        ks = np.asarray(list(ks) if isinstance(ks, range) else ks)
        if ks.ndim != 1 or ks.size == 0 or not np.issubdtype(ks.dtype, np.integer):
            raise ValueError(
                "n_components must be an int or a non-empty list of ints, got "
                f"{self.n_components!r}"
            )
        if np.any(ks < 1):
            raise ValueError(f"Every n_components must be >= 1, got {ks.min()}")
        covs = [self.covariance_type] if isinstance(self.covariance_type, str) else list(self.covariance_type)
        bad = [c for c in covs if c not in _COVARIANCE_TYPES]
        if bad or not covs:
            raise ValueError(
                f"covariance_type must be one of {_COVARIANCE_TYPES} or a non-empty list of "
                f"them, got {self.covariance_type!r}"
            )
        return np.unique(ks).astype(np.int64), list(dict.fromkeys(covs))

    def fit(self, X, y=None, sample_weight=None):
        """Fit every candidate and keep the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            As ``GaussianMixture.fit`` takes them.

        Returns
        -------
        self
        """
        validate_params(self)
        ks, covs = self._grid()
        if is_dask_collection(X):
            return self._fit_each(X, sample_weight, ks, covs)
        X = validate(self, X, dtype=FLOAT_DTYPES, ensure_min_samples=2, order="C", reset=True)
        n_samples, n_features = X.shape
        if ks[-1] > n_samples:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {ks[-1]}, n_samples = {n_samples}"
            )
        sw = check_sample_weight(sample_weight, n_samples)
        seed = _seed(self.random_state)
        n_threads = effective_n_threads(self.n_jobs)
        cands = [(c, q) for c in covs for q in range(ks.shape[0])]  # scikit-learn's grid order
        results = _core.fit_grid(
            X,
            sw,
            ks,
            np.array([q for _, q in cands], dtype=np.int64),
            [c for c, _ in cands],
            tol=float(self.tol),
            reg_covar=float(self.reg_covar),
            max_iter=int(self.max_iter),
            n_init=int(self.n_init),
            n_threads=n_threads,
            **self._starts(X, sw, ks, seed),
        )
        self._set_results(n_samples, n_features, X.dtype, sw, ks, cands, results, seed)
        return self

    def _fit_each(self, X, sample_weight, ks, covs):
        """A Dask array: each candidate is a GaussianMixture fit of its own (the
        workers compute each iteration's statistics), then one scoring pass."""
        import dask

        seed = _seed(self.random_state)
        cands = [(c, q) for c in covs for q in range(ks.shape[0])]
        results, dtype = [], None
        for c, q in cands:
            params = {name: getattr(self, name) for name in _SHARED}
            params.update(n_components=int(ks[q]), covariance_type=c, random_state=seed)
            gm = GaussianMixture(**params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                try:
                    gm.fit(X, sample_weight=sample_weight)
                except ValueError as err:
                    if "ill-defined empirical covariance" not in str(err):
                        raise
                    results.append({
                        "status": 4, "component": -1, "log_likelihood": np.nan, "map_log_resp": np.nan,
                        "n_iter": 0, "converged": False, "lower_bound": np.nan,
                        "lower_bounds": np.empty(0), "fewer_clusters": False,
                    })
                    continue
            w = 1.0 if sample_weight is None else sample_weight
            ll = (w * gm.score_samples(X)).sum()
            log_map = (w * np.log(gm.predict_proba(X).max(axis=1))).sum()
            ll, log_map = dask.compute(ll, log_map)
            result = {name: getattr(gm, name + "_") for name in
                      ("weights", "means", "covariances", "precisions_cholesky")}
            result.update(
                status=0, lower_bounds=np.asarray(gm.lower_bounds_), lower_bound=gm.lower_bound_,
                n_iter=gm.n_iter_, converged=gm.converged_, log_likelihood=float(ll),
                map_log_resp=float(log_map),
            )
            results.append(result)
            dtype = gm.means_.dtype
        n_samples = int(X.shape[0])
        sw = None if sample_weight is None else np.asarray(dask.compute(sample_weight)[0], dtype=np.float64)
        self._set_results(n_samples, int(X.shape[1]), dtype, sw, ks, cands, results, seed)
        return self

    def _starts(self, X, sw, ks, seed):
        """The engine's init code and the draws or partitions of every (k, start):
        those of a GaussianMixture of its own seeded with ``seed``."""
        n_samples = X.shape[0]
        n_init = int(self.n_init)
        if self.init_params == "hierarchical":
            # the rows a start draws do not depend on k: one tree per start
            rs = check_random_state(seed)
            per_start = [_hierarchical.partitions(X, sw, ks, rs) for _ in range(n_init)]
            labels = np.stack([p[0] for p in per_start], axis=1).reshape(-1, n_samples)
            shifts = [p[1][q] for q in range(ks.shape[0]) for p in per_start]
            return self._partition_args(labels, shifts)
        if self.init_params == "random_from_data":  # GaussianMixture's own choice of rows
            labels, shifts = [], []
            for k in ks:
                rs = check_random_state(seed)
                for _ in range(n_init):
                    rows = rs.choice(n_samples, size=int(k), replace=False)
                    lab = np.full(n_samples, -1, dtype=np.int64)
                    lab[rows] = np.arange(k)
                    labels.append(lab)
                    shifts.append(X[rows].astype(np.float64))
            return self._partition_args(np.stack(labels), shifts)
        init = _INIT_CODES[self.init_params]
        offsets = np.array([0, n_samples], dtype=np.int64)
        draws, draw_offsets = [], [np.zeros(1, dtype=np.int64)]
        for k in ks:
            d = _draws(check_random_state(seed), init, offsets, int(k), n_init, np.array([True]))
            draws.append(d["draws"])
            draw_offsets.append(d["draw_offsets"][1:] + draw_offsets[-1][-1])
        return {
            "init": init,
            "draws": np.concatenate(draws),
            "draw_offsets": np.concatenate(draw_offsets),
        }

    @staticmethod
    def _partition_args(labels, shifts):
        sizes = np.array([s.size for s in shifts], dtype=np.int64)
        return {
            "init": _PARTITION,
            "labels": np.ascontiguousarray(labels, dtype=np.int64),
            "shifts": np.concatenate([s.ravel() for s in shifts]),
            "shift_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        }

    def _set_results(self, n_samples, n_features, dtype, sw, ks, cands, results, seed):
        scale = 1.0 if sw is None else n_samples / float(np.sum(sw))
        fitted = np.array([r["status"] == 0 for r in results])
        if not np.any(fitted):
            raise ValueError(
                "No candidate could be fitted: " + _failure(results[0])
            )
        n_par = np.array([n_parameters(c, int(ks[q]), n_features) for c, q in cands])
        ll = np.array([r["log_likelihood"] for r in results]) * scale
        ent = -np.array([r["map_log_resp"] for r in results]) * scale
        with np.errstate(invalid="ignore"):
            bic = np.where(fitted, -2.0 * ll + n_par * math.log(n_samples), np.inf)
            aic = np.where(fitted, -2.0 * ll + 2.0 * n_par, np.inf)
            icl = np.where(fitted, bic + 2.0 * ent, np.inf)
        crit = {"bic": bic, "aic": aic, "icl": icl}[self.criterion]
        order = np.argsort(crit, kind="stable")
        rank = np.empty(len(cands), dtype=np.int64)
        rank[order] = np.arange(1, len(cands) + 1)
        self.results_ = {
            "param_n_components": np.array([int(ks[q]) for _, q in cands]),
            "param_covariance_type": np.array([c for c, _ in cands], dtype=object),
            "params": [{"covariance_type": c, "n_components": int(ks[q])} for c, q in cands],
            "bic": bic,
            "aic": aic,
            "icl": icl,
            "log_likelihood": np.where(fitted, ll, np.nan),
            "n_parameters": n_par,
            "converged": np.array([bool(r["converged"]) for r in results]) & fitted,
            "n_iter": np.array([int(r["n_iter"]) for r in results]),
            "lower_bound": np.array([r["lower_bound"] if f else np.nan for r, f in zip(results, fitted)]),
            "status": np.array(
                [_STATUS_TEXT[r["status"]] for r in results], dtype=object
            ),
            "rank": rank,
        }
        failed = [f"{p['covariance_type']}/{p['n_components']}" for p, f in zip(self.results_["params"], fitted) if not f]
        if failed:
            warnings.warn(
                f"{len(failed)} of {len(cands)} candidates could not be fitted ({', '.join(failed)}); "
                "results_['status'] says why. Increasing reg_covar may help.",
                UserWarning,
                stacklevel=3,
            )
        n_fewer = sum(bool(r.get("fewer_clusters")) for r in results)
        if n_fewer:
            warnings.warn(
                f"In {n_fewer} of {len(cands)} candidates, k-means found fewer distinct clusters "
                "than n_components. Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )
        best = int(order[0])
        self.best_index_ = best
        self.best_params_ = dict(self.results_["params"][best])
        self.n_features_in_ = n_features
        self.best_estimator_ = self._estimator(results[best], seed, dtype)
        if self.max_iter > 0 and not self.best_estimator_.converged_:
            warnings.warn(
                "The best candidate's best initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _estimator(self, result, seed, dtype):
        params = {name: getattr(self, name) for name in _SHARED}
        params.update(self.best_params_, random_state=seed)
        return GaussianMixture(**params)._set_fit(
            result, converged=result["converged"], n_iter=result["n_iter"],
            lower_bound=result["lower_bound"], lower_bounds=result["lower_bounds"],
            n_features=self.n_features_in_, dtype=dtype,
            feature_names=getattr(self, "feature_names_in_", None),
        )

    # --------------------------------------------- the best model's outputs

    def _best(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def predict(self, X):
        """Component labels of X under the best model."""
        return self._best().predict(X)

    def predict_proba(self, X):
        """Responsibilities of X under the best model."""
        return self._best().predict_proba(X)

    def score_samples(self, X):
        """Log-density of each row of X under the best model."""
        return self._best().score_samples(X)

    def score(self, X, y=None):
        """Mean log-density of X under the best model."""
        return self._best().score(X)

    def sample(self, n_samples=1):
        """Draws from the best model: (X, component labels)."""
        return self._best().sample(n_samples)

    def bic(self, X):
        """The best model's BIC on X."""
        return self._best().bic(X)

    def aic(self, X):
        """The best model's AIC on X."""
        return self._best().aic(X)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the best model's labels of X."""
        return self.fit(X, sample_weight=sample_weight).predict(X)


def _seed(random_state):
    """The int seed every candidate starts from."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _failure(result):
    status = result["status"]
    if status == 2:
        return "Input X contains infinity or NaN."
    if status == 3:
        return "Sample weights must contain at least one non-zero number."
    return (
        "Fitting the mixture model failed because some components have ill-defined "
        "empirical covariance (for instance caused by singleton or collapsed samples). "
        "Try to decrease the number of components, increase reg_covar, or scale the "
        "input data."
    )
