"""Shared pieces of the kernel density estimators: normalisation, engine calls,
leave-one-out likelihood and the bandwidth search (no loops over samples)."""

import functools
import math

import numpy as np

from . import _core
from ._validation import aligned

KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")


def _log_unit_ball_volume(d):
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)


def _log_unit_sphere_surface(d):
    # surface of the unit sphere in R^(d+1)
    return math.log(2 * math.pi) + _log_unit_ball_volume(d - 1)


@functools.lru_cache(maxsize=None)
def _cosine_radial_integral(d):
    """int_0^1 r^(d-1) cos(pi r / 2) dr.

    For odd d this is scikit-learn's series; for even d scikit-learn's series
    drops the boundary term at r = 0 (its density then integrates to 1 - 2/pi
    in 2-D), so the integral is computed by adaptive quadrature, to ~1e-14.
    """
    from scipy.integrate import quad

    value, _ = quad(lambda r: r ** (d - 1) * math.cos(0.5 * math.pi * r), 0.0, 1.0,
                    epsabs=0.0, epsrel=1e-13, limit=200)
    return value


def log_kernel_norm(kernel, d):
    """log of the normalising constant of the unit-bandwidth kernel in R^d.

    The density of a kernel centred at 0 is ``exp(log_kernel_norm) * k(||x||)``
    with ``k`` as in :mod:`gaussmix`'s engine (gaussian ``exp(-r^2/2)``,
    tophat ``[r<1]``, epanechnikov ``1-r^2``, exponential ``exp(-r)``, linear
    ``1-r``, cosine ``cos(pi r/2)``). These are the constants scikit-learn's
    KernelDensity uses (its ``_log_kernel_norm`` with h = 1), except for the
    cosine kernel in even dimensions, where scikit-learn's constant is wrong
    and the density it gives does not integrate to one.
    """
    if kernel == "gaussian":
        factor = 0.5 * d * math.log(2 * math.pi)
    elif kernel == "tophat":
        factor = _log_unit_ball_volume(d)
    elif kernel == "epanechnikov":
        factor = _log_unit_ball_volume(d) + math.log(2.0 / (d + 2.0))
    elif kernel == "exponential":
        factor = _log_unit_sphere_surface(d - 1) + math.lgamma(d)
    elif kernel == "linear":
        factor = _log_unit_ball_volume(d) - math.log(d + 1.0)
    elif kernel == "cosine":
        factor = math.log(_cosine_radial_integral(d)) + _log_unit_sphere_surface(d - 1)
    else:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return -factor


# Points per leaf of the engine's k-d tree: larger leaves trade a few exact
# kernel evaluations (vectorised) for fewer node bounds (each costing about as
# much as a hundred evaluations).
LEAF_SIZE = 256

_METHODS = {"exact": 0, "tree": 1, "auto": 2, "grid": 3}

# From this many points, the bandwidth searches' leave-one-out sums run on the
# tree with this relative tolerance: every log-likelihood term is then within
# 1e-10 of the exact one, far below the differences between the bandwidths the
# searches compare, so they choose the exact search's bandwidth.
CV_TREE_MIN_N = 20_000
CV_RTOL = 1e-10


def check_tolerance(value, name):
    """A tolerance as a float: a non-negative finite real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a non-negative real number, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}.")
    return value


def build_index(train, train_weight, whiten, n_threads):
    """The engine's fitted index over ``train`` (C-contiguous, aligned; kept
    by reference), distances measured with the whitening factor ``whiten``."""
    return _core.KdeIndex(
        train,
        None if train_weight is None else aligned(train_weight, np.float64),
        aligned(whiten, np.float64),
        LEAF_SIZE,
        n_threads,
    )


def prepare_index(index, kernel):
    """Builds, at fit, what sums with a tolerance will use: the grid's
    coordinates for Gaussian kernels in one or two dimensions, else the tree."""
    if kernel == "gaussian" and index.train.shape[1] <= 2:
        index.build_grid()
    else:
        index.build_tree()


def index_log_sums(index, queries, kernel, n_threads, *, scale=1.0, log_norm=0.0, atol=0.0, rtol=0.0,
                   exclude_self=False, method="auto"):
    """log sum_i w_i k(scale ||(q_j - x_i) U||) for every query row, from a
    fitted index.

    With ``atol`` or ``rtol`` positive the sums may be approximate, each
    within the bound |f - f_exact| <= atol + rtol * f_exact on the density
    f = exp(log_norm) * sum; otherwise (and with ``method="exact"``) they are
    the exact sums. The engine picks the tree or the exact sum by the work a
    pilot of the queries took (``method="auto"``).
    """
    out = np.empty(queries.shape[0], dtype=index.train.dtype)
    log_atol = math.log(atol) - log_norm if atol > 0 else -math.inf
    code = _METHODS[method] if (atol > 0 or rtol > 0 or method in ("tree", "grid")) else 0
    index.log_sum(aligned(queries, index.train.dtype), kernel, float(scale), log_atol, float(rtol), bool(exclude_self), code, out,
                  n_threads)
    return out


def log_kernel_sums(train, train_weight, queries, whiten, kernel, n_threads, exclude_self=False):
    """log sum_i w_i k(||(q_j - x_i) U||) for every query row, U = ``whiten``.

    ``train`` and ``queries`` are C-contiguous float64 or float32 arrays of the
    same dtype; ``whiten`` is the upper-triangular (D, D) float64 factor.
    """
    out = np.empty(queries.shape[0], dtype=train.dtype)
    _core.kde_log_sum(
        aligned(train),  # an estimator unpickled on a Dask worker may hold misaligned arrays
        aligned(train_weight),
        aligned(queries),
        aligned(whiten, np.float64),
        kernel,
        bool(exclude_self),
        out,
        n_threads,
    )
    return out


def cv_rtol(n):
    """The tolerance of the leave-one-out sums of a bandwidth search over n points."""
    return CV_RTOL if n >= CV_TREE_MIN_N else 0.0


def leave_one_out_log_likelihood(X, weights, index, scale, kernel, n_threads, rtol=0.0):
    """Weighted leave-one-out log-likelihood of a KDE over a fitted index.

        sum_i w_i log( sum_{j != i} w_j K(x_i - x_j) / sum_{j != i} w_j ),
        K(x) = |det(scale U)| c_k k(scale ||x U||),

    with U the whitening factor ``index`` was built with. With unit weights
    this is the plain leave-one-out log-likelihood. Returns -inf when some
    sample has no neighbour inside a compact kernel. With ``rtol`` > 0 each
    sum may come from the grid or the tree, within ``rtol`` relative of the
    exact one.
    """
    n, d = X.shape
    sums = index_log_sums(index, X, kernel, n_threads, scale=scale, rtol=rtol, exclude_self=True,
                          method="auto" if rtol > 0 else "exact")
    log_det = float(np.sum(np.log(np.abs(np.diag(index.whiten))))) + d * math.log(scale)
    if weights is None:  # every term has the same normaliser: one pass over the sums
        if n < 2:
            return -np.inf
        total = float(np.sum(sums, dtype=np.float64))
        if not np.isfinite(total):  # -inf: a sample without neighbours
            return -np.inf
        return total + n * (log_det + log_kernel_norm(kernel, d) - math.log(n - 1))
    w = weights
    total = float(np.sum(w))
    # Zero-weight samples are neither scored (0 * -inf would be NaN) nor,
    # inside the engine, counted as anyone's neighbour.
    scored = w > 0
    rest = total - w[scored]
    if np.any(rest <= 0):
        return -np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = sums[scored].astype(np.float64) - np.log(rest) + log_det + log_kernel_norm(kernel, d)
    if np.any(np.isneginf(terms)):
        return -np.inf
    return float(np.dot(w[scored], terms))


def maximize_over_log_grid(objective, h0, span=1e3, points=49, zoom=17, keep=3, rtol=1e-4):
    """Maximise a non-smooth ``objective(h)`` (h > 0) by nested grids in log h.

    The leave-one-out likelihood of a compact kernel jumps up each time a
    neighbour enters a sample's support and decays in between, so it has
    many local maxima. A log-spaced grid of ``points`` over h0/span .. h0*span
    (moved up until some value is finite) finds where the likelihood is
    finite and roughly where it peaks; that stretch is scanned in steps of
    1 %, and around the ``keep`` best points grids of ``zoom`` points, 8
    times narrower at each level, refine to ``rtol``. Costs a few hundred
    likelihood passes. Returns (h, objective(h), at_edge).
    """
    cache = {}

    def f(t):
        t = float(t)
        if t not in cache:
            v = objective(math.exp(t))
            cache[t] = v if np.isfinite(v) else -np.inf
        return cache[t]

    lo = math.log(h0 / span)
    hi = math.log(h0 * span)
    ts = np.linspace(lo, hi, points)
    vals = np.array([f(t) for t in ts])
    for _ in range(10):
        if np.any(np.isfinite(vals)):
            break
        lo, hi = hi, hi + (hi - lo)
        ts = np.linspace(lo, hi, points)
        vals = np.array([f(t) for t in ts])
    if not np.any(np.isfinite(vals)):
        return h0, -np.inf, True
    # The maxima lie between the smallest h with a finite value and a little
    # past the best coarse point: scan that stretch with steps of 1 %.
    step = ts[1] - ts[0]
    first = ts[int(np.argmax(np.isfinite(vals)))]
    best = ts[int(np.argmax(vals))]
    fine = np.arange(first - step, best + 2 * step, math.log(1.01))
    fine_vals = np.array([f(t) for t in fine])
    step = math.log(1.01)
    for start in fine[np.argsort(fine_vals)[::-1][:keep]]:
        centre, half = start, step
        while half > math.log1p(rtol) / 2:
            grid = np.linspace(centre - half, centre + half, zoom)
            centre = grid[int(np.argmax([f(t) for t in grid]))]
            half /= 8
    t_best = max(cache, key=lambda t: cache[t])
    at_edge = t_best <= ts[0] + 1e-12 or t_best >= ts[-1] - 1e-12
    return math.exp(t_best), cache[t_best], at_edge


def maximize_over_log_scale(objective, h0, step=1.0, rtol=1e-4, max_evals=60, max_ratio=1e8):
    """Maximise ``objective(h)`` over h > 0 by a search in t = log h.

    Starting from t0 = log h0, the points t0 - step, t0, t0 + step are
    evaluated and the triple is moved downhill (each new step 1.618 times
    longer) until its middle point is the highest; Brent's method
    (scipy.optimize.minimize_scalar) then refines it to about ``rtol``
    relative in h. A -inf or NaN objective (a compact kernel leaving a
    sample without neighbours) is treated as a very low value. The search
    stays within h0 / max_ratio .. h0 * max_ratio; when the maximum is not
    inside, the best value found is at that edge and ``at_edge`` is True.
    Every value is computed once. Returns (h, objective(h), at_edge).
    """
    from scipy.optimize import minimize_scalar

    cache = {}

    def f(t):
        t = float(t)
        if t not in cache:
            cache[t] = objective(math.exp(t))
        return cache[t]

    def loss(t):
        v = f(min(max(t, t_lo), t_hi))
        return -v if np.isfinite(v) else 1e300

    grow = (1 + math.sqrt(5)) / 2
    t0 = math.log(h0)
    t_lo, t_hi = t0 - math.log(max_ratio), t0 + math.log(max_ratio)
    a, b, c = t0 - step, t0, t0 + step
    width = step
    while len(cache) < max_evals:
        fa, fb, fc = loss(a), loss(b), loss(c)
        if fb <= fa and fb <= fc and fb < 1e300:
            break
        if fb >= 1e300 and fc >= 1e300:  # no finite value yet: larger h
            if c >= t_hi:
                break
            width *= grow
            a, b, c = b, c, min(c + width, t_hi)
            continue
        width *= grow
        if fa < fc:  # the maximum lies towards smaller h
            if a <= t_lo:
                break
            a, b, c = max(a - width, t_lo), a, b
        else:
            if c >= t_hi:
                break
            a, b, c = b, c, min(c + width, t_hi)
    fa, fb, fc = loss(a), loss(b), loss(c)
    if fb <= fa and fb <= fc and fb < 1e300:
        minimize_scalar(
            loss,
            bracket=(a, b, c),
            method="brent",
            options={"xtol": rtol, "maxiter": max(1, max_evals - len(cache))},
        )
    finite = {t: v for t, v in cache.items() if not np.isnan(v)}
    if not finite:
        return h0, -np.inf, True
    t_best = max(finite, key=lambda t: finite[t])
    at_edge = t_best <= t_lo + 1e-12 or t_best >= t_hi - 1e-12
    return math.exp(t_best), finite[t_best], at_edge
