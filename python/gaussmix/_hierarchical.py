"""Starting partitions from model-based hierarchical clustering.

``init_params="hierarchical"`` starts EM from a cut of one agglomerative
tree, as mclust does (Fraley 1998, "Algorithms for model-based Gaussian
hierarchical clustering"; Scrucca et al. 2016). Each step merges the two
clusters whose union lowers the classification likelihood least: first
under the equal-volume spherical model (Ward's criterion) down to 50
clusters, then under the unconstrained model, whose clusters may have any
shape, on the 16 leading principal axes (``_core.hierarchical_partitions``). As mclust does by default
(``hcUse = "SVD"``), the tree is built on the data sphered by their
principal axes, so that a shared elongation of the clusters does not
mislead it as it misleads k-means.

The tree costs O(n^2) time, so for more than ``TREE_ROWS`` rows (of positive
weight) it is built on that many rows drawn at random without replacement;
the starting parameters are then those of the drawn rows' partition. One
tree serves every number of components: ``partitions`` cuts it for each.
"""

import numpy as np

from . import _core

# Rows the tree is built on at most (mclust's default subset for large data).
TREE_ROWS = 2000


def tree_rows(sample_weight, n_samples, random_state):
    """The sorted rows the tree is built on: those of positive weight, at most
    TREE_ROWS of them drawn from ``random_state`` (nothing is drawn when all fit)."""
    rows = np.arange(n_samples) if sample_weight is None else np.flatnonzero(sample_weight > 0)
    if rows.shape[0] > TREE_ROWS:
        rows = np.sort(random_state.choice(rows, size=TREE_ROWS, replace=False))
    return rows


def _sphered(X):
    """X centred and scaled to a common spread along each of its principal
    axes, the leading axis first (its rank's worth of them; one zero column
    for identical rows)."""
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > s[0] * 1e-10 if s.size and s[0] > 0 else np.zeros(s.shape, dtype=bool)
    if not np.any(keep):
        return np.zeros((X.shape[0], 1))
    return np.ascontiguousarray((Xc @ vt[keep].T) / s[keep])


def partitions(X, sample_weight, ks, random_state):
    """Hierarchical starting partitions of X for each number of components in ks.

    Returns ``labels`` of shape (len(ks), n_samples), each row's part (-1 for
    rows the tree was not built on), and ``shifts``, a list of (k, n_features)
    arrays: each part's weighted mean, the point its statistics are taken
    around.
    """
    n_samples = X.shape[0]
    rows = tree_rows(sample_weight, n_samples, random_state)
    Xs = np.asarray(X[rows], dtype=np.float64)
    ws = None
    if sample_weight is not None:  # to mean one: the tree's prior counts as one row
        ws = np.ascontiguousarray(sample_weight[rows], dtype=np.float64)
        ws /= ws.mean()
    ks = np.asarray(ks, dtype=np.int64)
    if rows.shape[0] < ks.max():
        raise ValueError(
            f"init_params='hierarchical' needs at least n_components = {ks.max()} rows of "
            f"positive weight, got {rows.shape[0]}"
        )
    part = _core.hierarchical_partitions(_sphered(Xs), ws, ks)
    labels = np.full((ks.shape[0], n_samples), -1, dtype=np.int64)
    labels[:, rows] = part
    w = np.ones(rows.shape[0]) if ws is None else ws
    shifts = []
    for k, lab in zip(ks, part):
        onehot = np.zeros((int(k), rows.shape[0]))
        onehot[lab, np.arange(rows.shape[0])] = w
        shifts.append(onehot @ Xs / onehot.sum(axis=1)[:, np.newaxis])
    return labels, shifts
