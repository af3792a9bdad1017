"""k-means++ seeding and Lloyd's k-means as scikit-learn computes them.

``kmeans_plusplus_indices`` returns what
``sklearn.cluster.kmeans_plusplus(X, n_clusters, sample_weight=w,
random_state=rs)[1]`` returns, and ``kmeans`` what
``sklearn.cluster.KMeans(n_clusters, n_init=1, random_state=rs).fit(X,
sample_weight=w)`` fits (labels, centres, iterations); both leave ``rs`` in
the state scikit-learn leaves it in. scikit-learn's GaussianMixture
initialises with these two calls, so a mixture fitted from them starts where
scikit-learn's starts.

Identical results need the same random numbers and the same arithmetic
wherever a rounding can change a decision:

* The random draws are scikit-learn's calls on the caller's RandomState,
  made here in the same order: ``choice(n, p=w / w.sum())`` for the first
  centre, then ``uniform(size=n_local_trials)`` for each further centre.
  KMeans.fit draws nothing else.
* Which rows the uniforms pick is decided by a cumulative sum of w_i d_i and
  by the potential sum_i w_i d_i that scales them, and the best candidate by
  the candidates' potentials. In float32 these sums are rounded in float32
  along the way (the potential by BLAS), so their last bits, and with them
  the picks, depend on the exact order of the additions. They are therefore
  the same numpy expressions scikit-learn evaluates, on distance arrays of
  the same type and layout.
* The O(N D) work per centre (the distances to the candidates) and the whole
  Lloyd loop (nearest centre, per-cluster sums, new centres, convergence
  tests) run in the engine, on all threads with the GIL released. Distances
  there are summed in double; where scikit-learn's differ from them in the
  last bits a decision can differ only for a point equidistant from two
  centres to that precision. The centre shift that is compared with ``tol``
  is numpy's ``np.sum((centers_new - centers) ** 2)``, reproduced bit for bit.
* KMeans centres the data on its mean and scales ``tol`` by the mean of the
  per-feature variances, both in the data's type; the engine reproduces
  numpy's summation order for those (kmeans.hpp), and shifts each row by the
  mean as numpy's ``X - X_mean`` rounds it, without copying X.
* Empty clusters (rare) are relocated with scikit-learn's numpy steps, as the
  rows picked by ``argpartition`` depend on its exact inputs: the engine's
  Lloyd loop hands such an iteration back to finish here.

Sample weights matter only up to a common factor, and scaling them by a
power of two (as ``check_sample_weight`` does) changes no bit of any of the
sums above.
"""

import warnings
from numbers import Integral

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _core

__all__ = ["kmeans", "kmeans_plusplus_indices"]

# why _core.kmeans_lloyd returned (its `stop`)
_LLOYD_STRICT = 1  # an assignment changed no label
_LLOYD_EMPTY = 3  # an assignment left a cluster with zero weight


def _check_input(X, sample_weight, n_clusters):
    """(X, weights in X's dtype or None for unit weights) as scikit-learn
    prepares them."""
    if not isinstance(X, np.ndarray) or X.dtype not in (np.float32, np.float64):
        raise TypeError("X must be a float32 or float64 numpy array.")
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"X must be a 2-D array with at least one feature, got shape {X.shape}.")
    X = np.ascontiguousarray(X)
    n_samples = X.shape[0]
    if not isinstance(n_clusters, Integral) or isinstance(n_clusters, bool) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}.")
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.shape != (n_samples,):
            raise ValueError(
                f"sample_weight.shape == {sw.shape}, expected ({n_samples},)!"
            )
        sw = np.ascontiguousarray(sw, dtype=X.dtype)
        if not np.all(np.isfinite(sw)) or np.any(sw < 0) or not np.any(sw > 0):
            raise ValueError(
                "sample_weight must be finite and non-negative, with at least one "
                "positive value."
            )
    return X, sw


def _unit_or(sw, X):
    return np.ones(X.shape[0], dtype=X.dtype) if sw is None else sw


def _plusplus(X, sw, n_clusters, random_state, shift, n_threads):
    """scikit-learn's _kmeans_plusplus with its draws; X shifted by `shift`."""
    n_samples = X.shape[0]
    n_local_trials = 2 + int(np.log(n_clusters))
    # choice(n, p=...) takes one uniform double of the legacy RandomState's
    # stream and each uniform(size=m) the next m; the values and the state
    # after are those of one draw of them all.
    draws = random_state.uniform(size=1 + (n_clusters - 1) * n_local_trials)
    if X.dtype == np.float64:
        # Sums in double: the engine's order differs from BLAS's only in
        # rounding, which moves a pick only at a tie to the last bits.
        w_sum = float(n_samples) if sw is None else float(sw.sum())
        return _core.kmeans_plusplus(
            X, sw, shift, w_sum, n_clusters, n_local_trials, draws, n_threads
        )

    # float32: scikit-learn's potentials are float32 BLAS sums, whose last
    # bits scale the draws and pick among the candidates; they are made here
    # by the same numpy expressions on float32 distance arrays of the same
    # layout. The running sums are numpy's order, reproduced by the engine.
    sw = _unit_or(sw, X)
    indices = np.full(n_clusters, -1, dtype=int)
    indices[0] = _core.kmeans_choice(sw, float(sw.sum()), draws[0])
    closest_dist_sq = np.empty((1, n_samples), dtype=X.dtype)
    _core.kmeans_sq_dists(
        X, shift, indices[:1].astype(np.int64), None, closest_dist_sq, n_threads
    )
    current_pot = closest_dist_sq @ sw
    closest_dist_sq = closest_dist_sq[0]
    distance_to_candidates = np.empty((n_local_trials, n_samples), dtype=X.dtype)
    for c in range(1, n_clusters):
        rand_vals = draws[1 + (c - 1) * n_local_trials : 1 + c * n_local_trials] * current_pot
        candidate_ids = _core.kmeans_cumsum_search(closest_dist_sq, sw, rand_vals)
        _core.kmeans_sq_dists(
            X, shift, candidate_ids, closest_dist_sq, distance_to_candidates, n_threads
        )
        candidates_pot = distance_to_candidates @ sw.reshape(-1, 1)
        best_candidate = np.argmin(candidates_pot)
        current_pot = candidates_pot[best_candidate]
        closest_dist_sq[:] = distance_to_candidates[best_candidate]
        indices[c] = candidate_ids[best_candidate]
    return indices


def kmeans_plusplus_indices(X, sample_weight, n_clusters, random_state, n_threads=1):
    """Row indices of greedy k-means++ seeds, as scikit-learn picks them.

    Equal to ``sklearn.cluster.kmeans_plusplus(X, n_clusters,
    sample_weight=sample_weight, random_state=random_state)[1]``, with the
    same draws from ``random_state``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) or None
    n_clusters : int
    random_state : None, int or numpy.random.RandomState
    n_threads : int, default=1

    Returns
    -------
    indices : ndarray of shape (n_clusters,), int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> kmeans_plusplus_indices(X, None, 2, 0)
    array([3, 2])
    """
    X, sw = _check_input(X, sample_weight, n_clusters)
    random_state = check_random_state(random_state)
    with np.errstate(over="ignore", invalid="ignore"):
        return _plusplus(X, sw, n_clusters, random_state, None, n_threads)


def _column_stats(X):
    """numpy's X.mean(axis=0) and X.var(axis=0), bit for bit."""
    if X.shape[1] == 1:  # numpy sums a single column pairwise
        return X.mean(axis=0), np.var(X, axis=0)
    return _core.kmeans_column_stats(X)


def _relocate_empty_clusters(X, sw, shift, centers_old, sums, weight_in_clusters, labels):
    """scikit-learn's relocation of empty clusters to the farthest points."""
    empty_clusters = np.flatnonzero(weight_in_clusters == 0)
    n_empty = empty_clusters.shape[0]
    if n_empty == 0:
        return
    Xc = X - shift
    distances = ((Xc - centers_old.astype(X.dtype)[labels]) ** 2).sum(axis=1)
    far_from_centers = np.argpartition(distances, -n_empty)[: -n_empty - 1 : -1]
    if np.max(distances) == 0:
        # more clusters than distinct points: nothing to move
        return
    for new_cluster_id, far_idx in zip(empty_clusters, far_from_centers):
        weight = 1.0 if sw is None else float(sw[far_idx])
        old_cluster_id = labels[far_idx]
        row = Xc[far_idx].astype(np.float64) * weight
        sums[old_cluster_id] -= row
        sums[new_cluster_id] = row
        weight_in_clusters[new_cluster_id] = weight
        weight_in_clusters[old_cluster_id] -= weight


def _average_centers(sums, weight_in_clusters):
    """scikit-learn's _average_centers: an empty cluster takes the row of the
    heaviest one as that row is at that moment (in place, in order)."""
    centers = sums
    argmax_weight = np.argmax(weight_in_clusters)
    for j in range(centers.shape[0]):
        if weight_in_clusters[j] > 0:
            centers[j] *= 1.0 / weight_in_clusters[j]
        else:
            centers[j] = centers[argmax_weight]
    return centers


def kmeans(X, sample_weight, n_clusters, random_state, n_threads=1, *, max_iter=300, tol=1e-4):
    """Lloyd's k-means from k-means++ seeds, as scikit-learn's KMeans fits.

    Equal to ``KMeans(n_clusters, n_init=1, max_iter=max_iter, tol=tol,
    random_state=random_state).fit(X, sample_weight=sample_weight)``: the
    same labels, the same number of iterations, the same draws from
    ``random_state``, and centres equal to scikit-learn's up to rounding.
    Warns with ConvergenceWarning, as KMeans does, when fewer distinct
    clusters than ``n_clusters`` are found.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) or None
    n_clusters : int
    random_state : None, int or numpy.random.RandomState
    n_threads : int, default=1
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative to the mean of the per-feature variances of X.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    centers : ndarray of shape (n_clusters, n_features), float64
    n_iter : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> labels, centers, n_iter = kmeans(X, None, 2, 0)
    >>> labels
    array([1, 1, 1, 0, 0, 0])
    """
    X, sw = _check_input(X, sample_weight, n_clusters)
    if not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
    random_state = check_random_state(random_state)
    with np.errstate(over="ignore", invalid="ignore"):
        return _lloyd(X, sw, n_clusters, random_state, n_threads, max_iter, tol)


def _lloyd(X, sw, n_clusters, random_state, n_threads, max_iter, tol):
    mean, variances = _column_stats(X)
    tol = 0 if tol == 0 else np.mean(variances) * tol

    indices = _plusplus(X, sw, n_clusters, random_state, mean, n_threads)
    centers = (X[indices] - mean).astype(np.float64)

    n_samples, n_features = X.shape
    labels = np.full(n_samples, -1, dtype=np.int64)
    sums = np.empty((n_clusters, n_features))
    weight_in_clusters = np.empty(n_clusters)
    strict_convergence = False
    n_iter = 0
    while n_iter < max_iter:
        # iterations in the engine until one stops it; only an emptied
        # cluster hands one back unfinished
        n_run, stop, n_changed = _core.kmeans_lloyd(
            X, sw, mean, centers, labels, sums, weight_in_clusters,
            max_iter - n_iter, float(tol), n_threads,
        )
        n_iter += n_run
        if stop != _LLOYD_EMPTY:
            strict_convergence = stop == _LLOYD_STRICT
            break
        _relocate_empty_clusters(X, sw, mean, centers, sums, weight_in_clusters, labels)
        centers_new = _average_centers(sums.copy(), weight_in_clusters)
        center_shift_tot = np.sum((centers_new - centers) ** 2)
        centers = centers_new
        if n_changed == 0:
            strict_convergence = True
            break
        if center_shift_tot <= tol:
            break
    if not strict_convergence:
        # labels consistent with the final centres
        _core.kmeans_assign(X, sw, mean, centers, labels, None, None, n_threads)

    distinct = np.count_nonzero(np.bincount(labels, minlength=n_clusters))
    if distinct < n_clusters:
        warnings.warn(
            "Number of distinct clusters ({}) found smaller than "
            "n_clusters ({}). Possibly due to duplicate points "
            "in X.".format(distinct, n_clusters),
            ConvergenceWarning,
            stacklevel=3,
        )
    return labels, centers + mean.astype(np.float64), n_iter
