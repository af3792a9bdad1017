"""Many independent Gaussian mixtures in one call: one fit per group of rows.

``GroupedGaussianMixture`` (and its shorthand ``fit_many``) fits one
``GaussianMixture`` per group of rows: per-pixel, per-patient, per-speaker or
per-cell models, bootstrap replicates. All groups are fitted by one engine
call, spread over the threads, with no Python per group or per iteration.

Each group's fit is the one ``GaussianMixture`` makes on that group's rows
alone, from the same start. With ``init_params`` ``"kmeans"``,
``"k-means++"`` or ``"random"`` the random numbers are those a loop of
``GaussianMixture(..., random_state=rs).fit(X[group])`` over the groups in
order draws from one shared ``rs``, so (float64) the fits equal that loop's.
``"random_from_data"`` picks its rows in a way of its own: one uniform key
per row, and the ``n_components`` rows with the smallest keys start the
components (scikit-learn's ``choice(n, k, replace=False)`` is a shuffle,
which has no batched equivalent); the fit from those rows is again
``GaussianMixture``'s.
"""

import inspect
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _core
from ._gaussian_mixture import (
    GaussianMixture,
    _check_precisions,
    _precision_shape,
    _precisions_from_cholesky,
)
from ._validation import (
    check_float_array,
    check_sample_weight,
    effective_n_threads,
    validate_params,
)

__all__ = ["GroupedGaussianMixture", "fit_many"]

_INIT_CODES = {"kmeans": 0, "k-means++": 1, "random": 2, "random_from_data": 3}
_GIVEN = 4

# the engine's per-group status codes
_STATUS_TEXT = {
    0: "fitted",
    1: "too few samples",
    2: "non-finite values",
    3: "no positive weight",
    4: "ill-defined covariance",
}


class GroupedGaussianMixture(BaseEstimator):
    """One Gaussian mixture per group of rows, all fitted in one engine call.

    Every constructor parameter means what it means for
    :class:`gaussmix.GaussianMixture`, applied to each group; the starting
    values ``weights_init``, ``means_init`` and ``precisions_init`` are
    stacked per group (a leading axis of length n_groups).

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Each group stops when its lower bound changes by less than ``tol``.
    reg_covar : float, default=1e-6
    max_iter : int, default=100
    n_init : int, default=1
        Starts per group; each group keeps its best.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weights_init : array of shape (n_groups, n_components), default=None
    means_init : array of shape (n_groups, n_components, n_features), default=None
    precisions_init : array, default=None
        ``GaussianMixture``'s ``precisions_init`` shape with a leading
        n_groups axis.
    random_state : int, RandomState instance or None, default=None
        The draws are those of a loop over the groups, in order, of
        ``GaussianMixture(random_state=rs)`` sharing one RandomState ``rs``
        (``"random_from_data"`` excepted, see the module's notes).
    errors : {"raise", "skip"}, default="raise"
        What a group that cannot be fitted does (fewer rows than components,
        a NaN or infinity, no positive weight, a covariance that is not
        positive definite): ``"raise"`` raises ValueError naming the group;
        ``"skip"`` records it in ``status_`` (its parameters are NaN and
        ``fitted_`` is False) and keeps every other group's fit.
    n_jobs : int, default=None
        Threads (None: OpenMP's default).

    Attributes
    ----------
    groups_ : ndarray of shape (n_groups,)
        The group labels, sorted (0 .. n_groups - 1 for ``lengths`` or a 3-D
        ``X``); row g of every stacked attribute belongs to ``groups_[g]``.
    n_samples_ : ndarray of shape (n_groups,)
        Rows per group.
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        ``GaussianMixture``'s fitted parameters, stacked per group.
    converged_, n_iter_, lower_bound_ : ndarray of shape (n_groups,)
        Per group, of its best start.
    status_ : ndarray of shape (n_groups,), dtype object
        "fitted", or why the group could not be fitted.
    fitted_ : ndarray of shape (n_groups,), bool
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GroupedGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 2))
    >>> groups = np.repeat(["a", "b", "c"], 200)
    >>> gm = GroupedGaussianMixture(2, random_state=0).fit(X, groups)
    >>> gm.means_.shape
    (3, 2, 2)
    >>> gm.estimator("b").means_.shape
    (2, 2)
    """

    # GaussianMixture's constraints, less what a batch has no use for (warm
    # starts, verbose output, online EM), plus errors
    _parameter_constraints: dict = {
        **{
            name: rule
            for name, rule in GaussianMixture._parameter_constraints.items()
            if name in inspect.signature(GaussianMixture).parameters
            and name not in ("warm_start", "verbose", "verbose_interval", "learning_decay",
                             "learning_offset")
        },
        "init_params": [StrOptions(set(_INIT_CODES))],
        "errors": [StrOptions({"raise", "skip"})],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        errors="raise",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.errors = errors
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit

    def fit(self, X, groups=None, *, lengths=None, sample_weight=None):
        """Fit one mixture per group.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n_groups, n, n_features)
            The rows of every group. A 3-D array is a dense batch: group g
            is ``X[g]`` (then neither ``groups`` nor ``lengths``).
        groups : array-like of shape (n_samples,), default=None
            The group label of each row (any sortable labels, rows in any
            order).
        lengths : array-like of int, default=None
            Instead of ``groups``: consecutive runs of rows, group g the
            next ``lengths[g]`` rows.
        sample_weight : array-like of shape (n_samples,) or (n_groups, n), default=None
            Per-row weights, as ``GaussianMixture.fit`` takes them.

        Returns
        -------
        self
        """
        validate_params(self)
        X, order, offsets, labels = _group_rows(X, groups, lengths, "fit")
        n_samples, n_features = X.shape
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight)
            if sw.ndim == 2 and sw.size == n_samples:
                sw = sw.reshape(-1)
            sw = check_sample_weight(sw, n_samples, normalise=False)
            if order is not None:
                sw = sw[order]
            sw = _scale_per_group(sw, offsets)
        n_threads = effective_n_threads(self.n_jobs)
        k, n_init = self.n_components, self.n_init
        n_groups = offsets.shape[0] - 1
        inits = self._check_initial_parameters(n_groups, n_features)
        init = _GIVEN if all(v is not None for v in inits[:3]) else _INIT_CODES[self.init_params]
        if init == _GIVEN:  # every start would be the same one
            n_init = 1
        # the checks a loop's fit makes before it draws: such groups draw nothing
        checked = _core.check_groups(X, sw, offsets, k, n_threads)
        draws = _draws(
            check_random_state(self.random_state), init, offsets, k, n_init, checked == 0
        )
        weights_init, means_init, prec_chol_init, cov_init = inits
        result = _core.fit_groups(
            X,
            sw,
            offsets,
            self.covariance_type,
            k,
            tol=float(self.tol),
            reg_covar=float(self.reg_covar),
            max_iter=int(self.max_iter),
            n_init=int(n_init),
            init=init,
            weights_init=weights_init,
            means_init=means_init,
            precisions_cholesky_init=prec_chol_init,
            covariances_init=cov_init,
            skip=checked != 0,
            n_threads=n_threads,
            **draws,
        )
        result["status"] = np.where(checked != 0, checked, result["status"])
        self._set_fit(result, labels, offsets, X.dtype, n_features)
        return self

    def _check_initial_parameters(self, n_groups, n_features):
        """The stacked starting values: weights, means, precision factors and
        covariances (each None when not given), checked as GaussianMixture
        checks them."""
        k = self.n_components
        weights = means = chol = cov = None
        if self.weights_init is not None:
            weights = check_float_array(
                self.weights_init, dtype=[np.float64, np.float32], ensure_2d=False,
                input_name="weights_init",
            )
            atol = 1e-6 if weights.dtype == np.float32 else 1e-8  # GaussianMixture's
            _require_shape(weights, (n_groups, k), "weights_init")
            if np.any(weights < 0.0) or np.any(weights > 1.0):
                raise ValueError(
                    "The parameter 'weights_init' should be in the range [0, 1], but got "
                    f"max value {np.max(weights):.5f}, min value {np.min(weights):.5f}"
                )
            sums = weights.sum(axis=1)
            bad = np.flatnonzero(~(np.abs(1.0 - sums) <= atol))
            if bad.size:
                raise ValueError(
                    "The parameter 'weights_init' should be normalized per group, but got "
                    f"sum(weights) = {sums[bad[0]]:.5f} for group {bad[0]}"
                )
            weights = np.ascontiguousarray(weights, dtype=np.float64)
        if self.means_init is not None:
            means = check_float_array(
                self.means_init, dtype=np.float64, ensure_2d=False, allow_nd=True,
                input_name="means_init",
            )
            _require_shape(means, (n_groups, k, n_features), "means_init")
        if self.precisions_init is not None:
            cov_type = self.covariance_type
            shape = (n_groups,) + _precision_shape(cov_type, k, n_features)
            prec = check_float_array(
                self.precisions_init, dtype=np.float64, ensure_2d=False, allow_nd=True,
                input_name="precisions_init",
            )
            _require_shape(prec, shape, "precisions_init")
            # GaussianMixture's checks and factors on all groups' matrices at once
            # as one GaussianMixture's of n_groups * k components (tied: n_groups full)
            flat_type = "full" if cov_type == "tied" else cov_type
            flat = prec.reshape((-1,) + prec.shape[-2:] if cov_type in ("full", "tied") else (-1,) + prec.shape[2:])
            try:
                checked = _check_precisions(np.ascontiguousarray(flat), flat_type, flat.shape[0], n_features)
            except ValueError as err:
                raise ValueError(str(err).replace("'full precision'", f"'{cov_type} precision'")) from None
            chol = np.ascontiguousarray(checked.cholesky, dtype=np.float64).reshape(shape)
            cov = np.ascontiguousarray(checked.covariances, dtype=np.float64).reshape(shape)
        return weights, means, chol, cov

    def _set_fit(self, result, labels, offsets, dtype, n_features):
        status = result["status"]
        fitted = status == 0
        n_groups = offsets.shape[0] - 1
        self.n_features_in_ = n_features
        self.groups_ = labels
        self.n_samples_ = np.diff(offsets)
        texts = np.array([_STATUS_TEXT[c] for c in range(len(_STATUS_TEXT))], dtype=object)
        self.status_ = texts[status]
        self.fitted_ = fitted
        if self.errors == "raise" and not np.all(fitted):
            g = int(np.flatnonzero(~fitted)[0])
            raise ValueError(self._group_error(g, int(status[g]), int(result["component"][g]), dtype))
        self.weights_ = result["weights"].astype(dtype)
        self.means_ = result["means"].astype(dtype)
        self.covariances_ = result["covariances"].astype(dtype)
        self.precisions_cholesky_ = result["precisions_cholesky"].astype(dtype)
        self.precisions_ = _precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)
        self.converged_ = result["converged"] & fitted
        self.n_iter_ = result["n_iter"]
        self.lower_bound_ = result["lower_bound"]
        ends = np.cumsum(np.where(fitted, self.n_iter_, 0))
        self._lower_bounds = (result["lower_bounds"], ends)
        if self.max_iter > 0:
            n_bad = int(np.count_nonzero(fitted & ~result["converged"]))
            if n_bad:
                warnings.warn(
                    f"The best initialization of {n_bad} of {n_groups} groups did not "
                    "converge. Try different init parameters, or increase max_iter, "
                    "tol, or check for degenerate data (converged_ tells which).",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        n_fewer = int(np.count_nonzero(result["fewer_clusters"]))
        if n_fewer:
            warnings.warn(
                f"In {n_fewer} of {n_groups} groups, k-means found fewer distinct clusters "
                f"than n_clusters ({self.n_components}). Possibly due to duplicate points "
                "in X.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _group_error(self, g, status, component, dtype):
        where = f"Group {_plain(self.groups_[g])!r} (position {g}): "
        n = int(self.n_samples_[g])
        if status == 1:
            if n < 2:
                return where + (
                    f"Found array with {n} sample(s) while a minimum of 2 is required by "
                    "GaussianMixture."
                )
            return where + (
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {n}"
            )
        if status == 2:
            return where + "Input X contains infinity or NaN."
        if status == 3:
            return where + "Sample weights must contain at least one non-zero number."
        text = (
            "Fitting the mixture model failed because some components have "
            "ill-defined empirical covariance (for instance caused by singleton "
            "or collapsed samples). Try to decrease the number of components, "
            "increase reg_covar, or scale the input data."
        )
        if dtype == np.float32:
            text += (
                " The numerical accuracy can also be improved by passing float64 data "
                "instead of float32."
            )
        return where + text + f" (The first such component is component {component}.)"

    # ------------------------------------------------------------ per group

    def estimator(self, group):
        """The fit of one group as an ordinary fitted ``GaussianMixture``.

        Parameters
        ----------
        group : a label of ``groups_``

        Returns
        -------
        GaussianMixture
        """
        check_is_fitted(self, "groups_")
        g = self._position(group)
        if not self.fitted_[g]:
            raise ValueError(f"Group {_plain(group)!r} was not fitted: {self.status_[g]}.")
        gm = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            tol=self.tol,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            init_params=self.init_params,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        values, ends = self._lower_bounds
        start = ends[g - 1] if g else 0
        params = {name: getattr(self, name + "_")[g].copy()
                  for name in ("weights", "means", "covariances", "precisions_cholesky")}
        return gm._set_fit(
            params, converged=self.converged_[g], n_iter=self.n_iter_[g], lower_bound=self.lower_bound_[g],
            lower_bounds=values[start : ends[g]], n_features=self.n_features_in_,
        )

    def _position(self, group):
        pos = np.searchsorted(self.groups_, group)
        if pos >= self.groups_.shape[0] or self.groups_[pos] != group:
            raise KeyError(f"No group {_plain(group)!r} was fitted.")
        return int(pos)

    # ------------------------------------------------------ per-sample outputs

    def _e_step(self, X, groups, lengths, **outputs):
        check_is_fitted(self, "groups_")
        X, order, offsets, positions = _group_rows(
            X, groups, lengths, "query", known=self.groups_, n_features=self.n_features_in_
        )
        dtype = np.result_type(X.dtype, self.means_.dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError("Input X contains infinity or NaN.")
        # the models of the groups present, in the order of the offsets
        fitted = self.fitted_[positions]
        missing = positions[~fitted & (np.diff(offsets) > 0)]
        if missing.size:
            g = int(missing[0])
            raise ValueError(f"Group {_plain(self.groups_[g])!r} was not fitted: {self.status_[g]}.")
        n = X.shape[0]
        outs = {}
        for name, width, out_dtype in outputs.values():
            shape = (n,) if width is None else (n, width)
            outs[name] = np.empty(shape, dtype=out_dtype or dtype)
        _core.e_step_groups(
            X,
            offsets,
            self.covariance_type,
            np.ascontiguousarray(self.weights_[positions], dtype=np.float64),
            np.ascontiguousarray(self.means_[positions], dtype=np.float64),
            np.ascontiguousarray(self.precisions_cholesky_[positions], dtype=np.float64),
            np.ascontiguousarray(fitted),
            n_threads=effective_n_threads(self.n_jobs),
            **outs,
        )
        if order is not None:  # back to the caller's row order
            for name, a in outs.items():
                back = np.empty_like(a)
                back[order] = a
                outs[name] = back
        return outs

    def score_samples(self, X, groups=None, *, lengths=None):
        """Log-density of each row under its own group's mixture.

        ``X``, ``groups`` and ``lengths`` as in ``fit`` (the groups must have
        been fitted). Returns an array of shape (n_samples,), or (n_groups, n)
        for a 3-D ``X``.
        """
        out = self._e_step(X, groups, lengths, a=("log_prob_norm", None, None))["log_prob_norm"]
        return _dense_shape(out, X)

    def predict(self, X, groups=None, *, lengths=None):
        """The most likely component of each row under its group's mixture."""
        out = self._e_step(X, groups, lengths, a=("labels", None, np.int64))["labels"]
        return _dense_shape(out, X)

    def predict_proba(self, X, groups=None, *, lengths=None):
        """Each row's responsibilities under its group's mixture."""
        out = self._e_step(X, groups, lengths, a=("resp", self.n_components, None))["resp"]
        return _dense_shape(out, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def fit_many(X, groups=None, *, lengths=None, sample_weight=None, **params):
    """Fit one Gaussian mixture per group of rows in one engine call.

    Shorthand for ``GroupedGaussianMixture(**params).fit(X, groups,
    lengths=lengths, sample_weight=sample_weight)``; see there.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import fit_many
    >>> X = np.random.default_rng(0).normal(size=(200, 400, 2))  # 200 dense groups
    >>> models = fit_many(X, n_components=2, random_state=0)
    >>> models.means_.shape
    (200, 2, 2)
    """
    return GroupedGaussianMixture(**params).fit(
        X, groups, lengths=lengths, sample_weight=sample_weight
    )


# ------------------------------------------------------------------ helpers


def _plain(label):
    """A numpy scalar label as the Python value it holds (for messages)."""
    return label.item() if isinstance(label, np.generic) else label


def _require_shape(a, shape, name):
    if a.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, but got {a.shape}")


def _dense_shape(out, X):
    if getattr(X, "ndim", 2) == 3:
        return out.reshape(X.shape[:2] + out.shape[1:])
    return out


def _group_rows(X, groups, lengths, purpose, known=None, n_features=None):
    """(X sorted by group as a C-contiguous float array, the permutation
    applied (None: none), the G + 1 row offsets, and the labels: sorted
    group labels for a fit, positions in ``known`` for a query)."""
    is_3d = getattr(X, "ndim", None) == 3
    X = check_float_array(
        X, dtype=[np.float64, np.float32], order="C", allow_nd=True, ensure_min_samples=0,
        ensure_all_finite=False, input_name="X",
    )
    if X.ndim == 3:
        if groups is not None or lengths is not None:
            raise ValueError("A 3-D X is a dense batch of groups: pass neither groups nor lengths.")
        n_groups, n, d = X.shape
        X = X.reshape(n_groups * n, d)
        lengths = np.full(n_groups, n, dtype=np.int64)
    elif X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows) or 3-D (a dense batch of groups), got {X.ndim}-D.")
    n_samples, d = X.shape
    if d < 1:
        raise ValueError("X must have at least one feature.")
    if n_features is not None and d != n_features:
        raise ValueError(f"X has {d} features, but the groups were fitted with {n_features} features.")
    if (groups is None) == (lengths is None) and not is_3d:
        raise ValueError("Give exactly one of groups (a label per row) or lengths (runs of rows).")
    order = None
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or not (lengths.size == 0 or np.issubdtype(lengths.dtype, np.integer)):
            raise ValueError("lengths must be a 1-D array of integers.")
        if np.any(lengths < 0):
            raise ValueError("lengths must be non-negative.")
        if int(lengths.sum()) != n_samples:
            raise ValueError(f"lengths add up to {int(lengths.sum())}, but X has {n_samples} rows.")
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        labels = np.arange(lengths.shape[0])
        if known is not None:
            if lengths.shape[0] != known.shape[0]:
                raise ValueError(
                    f"lengths has {lengths.shape[0]} groups, but {known.shape[0]} were fitted."
                )
        return X, None, offsets, labels
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(f"groups must have one label per row of X ({n_samples}), got shape {groups.shape}.")
    if known is None:
        if n_samples == 0:
            raise ValueError("X has no rows.")
        labels, inverse = np.unique(groups, return_inverse=True)
        counts = np.bincount(inverse, minlength=labels.shape[0])
    else:
        pos = np.searchsorted(known, groups)
        pos = np.minimum(pos, max(known.shape[0] - 1, 0))
        unknown = known.shape[0] == 0 or np.any(known[pos] != groups)
        if unknown:
            bad = groups[known[pos] != groups][0] if known.shape[0] else groups[0]
            raise ValueError(f"Group {_plain(bad)!r} was not fitted.")
        inverse = pos
        labels = np.arange(known.shape[0])
        counts = np.bincount(inverse, minlength=known.shape[0])
    if np.any(inverse[1:] < inverse[:-1]):
        order = np.argsort(inverse, kind="stable")
        X = X[order]
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    return X, order, offsets, labels


def _scale_per_group(sw, offsets):
    """Each group's weights scaled as GaussianMixture scales them (a power of
    two bringing their mean near one); all-zero groups are left as they are."""
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    starts = offsets[:-1][nonempty]
    w_max = np.zeros(lengths.shape[0])
    w_max[nonempty] = np.maximum.reduceat(sw, starts)
    positive = w_max > 0
    safe = np.where(positive, w_max, 1.0)
    scaled_sum = np.zeros(lengths.shape[0])
    scaled_sum[nonempty] = np.add.reduceat(sw / np.repeat(safe, lengths), starts)
    # weight_scale_factor, for every group at once
    with np.errstate(divide="ignore"):
        log2_mean = np.log2(scaled_sum) + np.log2(safe) - np.log2(np.maximum(lengths, 1))
    exponent = np.clip(-np.round(log2_mean), -1022, 1023)
    factors = np.where(positive, np.ldexp(1.0, np.where(positive, exponent, 0).astype(np.int64)), 1.0)
    return np.ascontiguousarray(sw * np.repeat(factors, lengths))


def _draws(random_state, init, offsets, k, n_init, drawing):
    """The random numbers of every (group, start), in the order a loop of
    GaussianMixture fits sharing ``random_state`` draws them (none for the
    groups not ``drawing``: a loop's fit of those raises before it draws)."""
    n_groups = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    if init in (0, 1):  # k-means++: one choice, then n_trials uniforms per centre
        per = 1 + (k - 1) * (2 + int(np.log(k)))
        counts = np.full(n_groups * n_init, per, dtype=np.int64)
    elif init == 2:  # uniform responsibilities
        counts = np.repeat(lengths * k, n_init).astype(np.int64)
    elif init == 3:  # a key per row: the k rows with the smallest keys
        counts = np.repeat(lengths, n_init).astype(np.int64)
    else:
        return {}
    counts = counts * np.repeat(drawing, n_init)
    draw_offsets = np.concatenate([[0], np.cumsum(counts)])
    draws = random_state.uniform(size=int(draw_offsets[-1]))
    return {"draws": draws, "draw_offsets": draw_offsets}
