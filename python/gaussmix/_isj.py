"""The improved Sheather-Jones bandwidth (ISJ) for 1-D data.

Botev, Grotowski & Kroese (2010), "Kernel density estimation via diffusion",
Annals of Statistics 38(5), as their reference implementation computes it:

* the data are binned (counts, weights summed) on a grid of 2^14 points
  spanning the data's range padded by a tenth of it on each side, of length
  R, and the type-II discrete cosine transform a_k of the normalised bin
  masses is taken;
* with |f^(j)|^2 estimated from the transform as
  2 pi^(2j) sum_k k^(2j) (a_k / 2)^2 exp(-k^2 pi^2 t), the fixed point
  t = xi gamma^[l](t) is iterated down from l = 7 (five stages), each stage's
  time t_j = (2 c_j K_j / (N |f^(j+1)|^2))^(2/(3+2j)) with
  c_j = (1 + 2^-(j+1/2)) / 3 and K_j = (2j-1)!! / sqrt(2 pi), and the last
  gives t* = (2 N sqrt(pi) |f''|^2)^(-2/5);
* the smallest root t of t - t*(t) is found in [0, tol] (tol doubled until
  the root is bracketed, 0.1 at most; else the minimiser of |t - t*(t)|),
  and the Gaussian kernel's bandwidth is sqrt(t) R.

N is the number of distinct data values (the reference's choice, which keeps
ties from rounding from inflating it); with weights, the Kish effective
sample size (sum w)^2 / sum w^2 of the positive weights, at most that.

For the other kernels of ``KernelDensity`` the Gaussian bandwidth is carried
over by the kernels' canonical scales (Marron & Nolan 1988): the asymptotically
optimal bandwidths of kernels K and L satisfy h_K / h_L = delta_K / delta_L,
delta = (R(K) / mu_2(K)^2)^(1/5) for the kernel as ``KernelDensity`` scales it.
"""

import math

import numpy as np
from scipy import fft, optimize

GRID_POINTS = 2**14

# delta_K = (R(K) / mu_2(K)^2)^(1/5) of each kernel at unit bandwidth
CANONICAL_SCALE = {
    "gaussian": (1.0 / (2.0 * math.sqrt(math.pi))) ** 0.2,
    "tophat": (0.5 / (1.0 / 3.0) ** 2) ** 0.2,
    "epanechnikov": (0.6 / 0.2**2) ** 0.2,
    "exponential": (0.25 / 2.0**2) ** 0.2,
    "linear": ((2.0 / 3.0) / (1.0 / 6.0) ** 2) ** 0.2,
    "cosine": ((math.pi**2 / 16.0) / (1.0 - 8.0 / math.pi**2) ** 2) ** 0.2,
}


def fixed_point(t, n_eff, k_sq, a2):
    """t - xi gamma^[7](t): the function whose smallest root is t*
    (k_sq: k^2 for k = 1 .. n-1; a2: (a_k / 2)^2)."""
    ell = 7
    with np.errstate(over="ignore", invalid="ignore"):
        f = 2.0 * math.pi ** (2 * ell) * np.sum(k_sq**ell * a2 * np.exp(-k_sq * math.pi**2 * t))
        for s in range(ell - 1, 1, -1):
            k0 = np.prod(np.arange(1, 2 * s, 2, dtype=np.float64)) / math.sqrt(2.0 * math.pi)
            const = (1.0 + 0.5 ** (s + 0.5)) / 3.0
            time = (2.0 * const * k0 / (n_eff * f)) ** (2.0 / (3.0 + 2.0 * s))
            f = 2.0 * math.pi ** (2 * s) * np.sum(k_sq**s * a2 * np.exp(-k_sq * math.pi**2 * time))
        return t - (2.0 * n_eff * math.sqrt(math.pi) * f) ** (-0.4)


def _smallest_root(fn, n_eff):
    n = max(min(1050.0, n_eff), 50.0)
    tol = 1e-12 + 0.01 * (n - 50.0) / 1000.0
    while True:
        lo, hi = fn(0.0), fn(tol)
        if np.isfinite(lo) and np.isfinite(hi) and lo * hi < 0:
            return optimize.brentq(fn, 0.0, tol, xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=500)
        if tol >= 0.1:
            res = optimize.minimize_scalar(lambda t: abs(fn(t)), bounds=(0.0, 0.1), method="bounded",
                                           options={"xatol": 1e-14})
            return res.x
        tol = min(2.0 * tol, 0.1)


def isj_bandwidth(x, weights=None, kernel="gaussian"):
    """The ISJ bandwidth of 1-D data x (weights: non-negative, optional),
    for ``kernel`` as ``KernelDensity`` scales it."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).ravel()
        x, w = x[w > 0], w[w > 0]
    else:
        w = None
    distinct = np.unique(x).shape[0]
    if distinct < 2:
        raise ValueError("bandwidth 'isj' needs at least two distinct data values")
    n_eff = float(distinct) if w is None else min(float(distinct), w.sum() ** 2 / np.sum(w * w))
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    grid_min, grid_max = lo - span / 10.0, hi + span / 10.0
    R = grid_max - grid_min
    n = GRID_POINTS
    dx = R / (n - 1)
    bins = np.minimum(np.floor((x - grid_min) / dx).astype(np.int64), n - 1)
    mass = np.bincount(bins, weights=w, minlength=n).astype(np.float64)
    mass /= mass.sum()
    a = fft.dct(mass, type=2)
    k_sq = np.arange(1, n, dtype=np.float64) ** 2
    a2 = (a[1:] / 2.0) ** 2
    t_star = _smallest_root(lambda t: fixed_point(t, n_eff, k_sq, a2), n_eff)
    h = math.sqrt(t_star) * R
    return h * CANONICAL_SCALE[kernel] / CANONICAL_SCALE["gaussian"]
