"""Distributed fitting and scoring on Dask arrays.

``GaussianMixture.fit``, ``predict``, ``predict_proba``, ``score_samples``,
``score``, ``bic`` and ``aic``, and ``KernelDensity.score_samples`` accept a
``dask.array.Array`` directly and call into this module; it needs the
optional dependencies ``dask[array]`` and ``distributed``
(``pip install "gaussmix[dask]"``).

A fit runs where the data lives. Each EM iteration maps the engine's E-step
over the row blocks on the workers, each returning its sufficient statistics
around the current means (O(K D^2) numbers, never responsibilities or rows),
sums them in a tree, and takes the M-step on the client, which sends the new
parameters (again O(K D^2)) with the next iteration's tasks. The
initialisation runs on the client on a uniform random sample of rows (all rows
when they fit in 64 MiB; see ``GaussianMixture.fit_chunks``'s ``init_size``),
so a fit of data small enough to sample whole equals the in-memory fit.

Tasks are pure functions of their block and the parameters: when a worker
dies, the scheduler recomputes what it held and retries its tasks, and the fit
goes on with identical numbers.

Persist the data first (``X = X.persist()``) when it fits in the cluster's
memory; otherwise every iteration recomputes it from its source.
"""

import os

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "gaussmix.dask needs the optional dependencies dask[array] and distributed: "
        'pip install "gaussmix[dask]"'
    ) from err

from . import _streaming
from ._validation import aligned

__all__ = ["DaskSource", "fit_dask", "kde_score_samples_dask", "from_npy"]

# Blocks whose statistics one reduction task sums.
_SPLIT_EVERY = 8


def _compute(*collections):
    """Every result the fit brings to the client passes here (tests check its size)."""
    return dask.compute(*collections)


def _rows_chunked(X, name="X"):
    """X as a 2-D dask array with one block per row range (all columns in a block)."""
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead for {name}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _as_weight_blocks(sample_weight, X):
    """Weights as delayed blocks aligned with X's row blocks, or Nones."""
    n_blocks = len(X.chunks[0])
    if sample_weight is None:
        return [None] * n_blocks
    if not hasattr(sample_weight, "__dask_graph__"):
        sample_weight = np.asarray(sample_weight)
    if not any(np.isnan(s) for s in sample_weight.shape) and tuple(sample_weight.shape) != (X.shape[0],):
        raise ValueError(
            f"sample_weight.shape == {tuple(sample_weight.shape)}, expected ({X.shape[0]},)!"
        )
    w = da.asarray(sample_weight)
    if any(np.isnan(c) for c in w.chunks[0]):
        w = w.compute_chunk_sizes()
    if tuple(w.shape) != (X.shape[0],):
        raise ValueError(f"sample_weight.shape == {tuple(w.shape)}, expected ({X.shape[0]},)!")
    w = w.rechunk((X.chunks[0],))
    return list(w.to_delayed().ravel())


def _validated_block(X, w, scale, dtype):
    xb = aligned(X, dtype)  # a block unpickled from a frame may be misaligned
    wb = None if w is None else np.asarray(w, dtype=np.float64) * scale
    return xb, wb


def _scan_task(X, w, n_features):
    xb = _streaming.check_block(X, n_features)
    wb = None if w is None else _streaming.check_weight_block(w, xb.shape[0])
    return _streaming._scan_block(xb, wb)


def _stats_task(X, w, scale, dtype, fn):
    xb, wb = _validated_block(X, w, scale, dtype)
    return fn(xb, wb)


def _take_task(X, w, local, scale, dtype):
    xb, wb = _validated_block(X, w, scale, dtype)
    return xb[local], (None if wb is None else wb[local])


def _tree_sum(parts):
    parts = list(parts)
    while len(parts) > 1:
        parts = [
            dask.delayed(_streaming.add_stats)(parts[i : i + _SPLIT_EVERY])
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    return parts[0]


class DaskSource:
    """A source (see ``gaussmix._sources``) over a dask array's row blocks.

    Blocks are processed on the workers, with the workers' own thread counts.
    """

    in_memory = False
    remote = True
    n_threads = None

    def __init__(self, X, sample_weight=None, compute_dtype=None, normalise_weights=True):
        X = _rows_chunked(X)
        self.X = X
        self.n_samples, self.n_features = int(X.shape[0]), int(X.shape[1])
        self.dtype = np.float32 if X.dtype == np.float32 else np.float64
        self._blocks = list(X.to_delayed().ravel())
        self._weights = _as_weight_blocks(sample_weight, X)
        self._weighted = sample_weight is not None
        self._starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.weight_scale = None
        self.normalise_weights = normalise_weights
        self.compute_dtype = np.result_type(self.dtype, compute_dtype or self.dtype)

    @classmethod
    def for_query(cls, estimator, X, model_dtype):
        """The source of a fitted estimator's per-sample outputs for X."""
        return cls(_checked_query(estimator, X), compute_dtype=model_dtype)

    def scan(self):
        parts = [
            dask.delayed(_scan_task)(b, w, self.n_features)
            for b, w in zip(self._blocks, self._weights)
        ]
        (summaries,) = _compute(parts)
        n, w_sum, w_max = _streaming.combine_scans(summaries)
        scale = _streaming.weight_scale(n, w_sum, w_max, self._weighted)
        self.weight_scale = scale if self.normalise_weights else None
        return self

    def _scale(self):
        return 1.0 if self.weight_scale is None else self.weight_scale

    def map_reduce(self, fn):
        parts = [
            dask.delayed(_stats_task)(b, w, self._scale(), self.dtype, fn)
            for b, w in zip(self._blocks, self._weights)
        ]
        (total,) = _compute(_tree_sum(parts))
        return total

    def take(self, indices):
        if indices is None:
            indices = np.arange(self.n_samples)
        tasks = []
        for i, (b, w) in enumerate(zip(self._blocks, self._weights)):
            lo, hi = np.searchsorted(indices, self._starts[i : i + 2])
            if hi > lo:
                local = indices[lo:hi] - self._starts[i]
                tasks.append(dask.delayed(_take_task)(b, w, local, self._scale(), self.dtype))
        (pieces,) = _compute(tasks)
        X = np.concatenate([p[0] for p in pieces], axis=0)
        w = np.concatenate([p[1] for p in pieces]) if self._weighted else None
        return aligned(X, self.dtype), w

    def per_sample(self, fn, width, dtype):
        """fn's per-sample output as a dask array, one task per row block."""
        args = (fn, self.n_features, self.compute_dtype, width, dtype)
        if width is None:
            return self.X.map_blocks(
                _per_sample_task, *args, dtype=dtype, drop_axis=1, chunks=(self.X.chunks[0],)
            )
        return self.X.map_blocks(
            _per_sample_task, *args, dtype=dtype, chunks=(self.X.chunks[0], (width,))
        )


def fit_dask(estimator, X, sample_weight=None, init_size=None):
    """``estimator.fit(X, sample_weight=sample_weight, init_size=init_size)``
    for a dask array X: the fit runs where the data lives (see above)."""
    return estimator.fit(X, sample_weight=sample_weight, init_size=init_size)


def _checked_query(estimator, X):
    """X row-chunked, after the checks a fitted estimator makes of its input."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    X = _rows_chunked(X)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input."
        )
    return X


def _per_sample_task(X, fn, n_features, compute_dtype, width, dtype):
    """One block's per-sample output: the block validated as an in-memory
    query is (finite, numeric), converted, then ``fn``."""
    xb = _streaming.check_block(aligned(np.asarray(X)), n_features)
    if xb.shape[0] == 0:  # an empty block (e.g. after filtering rows)
        return np.empty((0,) if width is None else (0, width), dtype=dtype)
    return fn(aligned(xb, compute_dtype))


def _kde_task(X, estimator):
    X = aligned(np.asarray(X))
    if X.shape[0] == 0:  # an empty block (e.g. after filtering rows)
        return np.empty(0, dtype=np.float64)
    return estimator.score_samples(X)


def kde_score_samples_dask(estimator, X):
    """KernelDensity.score_samples for a dask array, as a dask array."""
    X = _checked_query(estimator, X)
    return X.map_blocks(
        _kde_task, estimator, dtype=np.float64, drop_axis=1, chunks=(X.chunks[0],)
    )


def _load_rows(path, start, stop):
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def from_npy(path, block_rows=1_000_000):
    """A dask array over a ``.npy`` file's rows, each block read by the worker.

    The workers open the file themselves (it must be on a file system they
    see); nothing of the data passes through the client.
    """
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}.")
    # The workers resolve the path themselves: make it absolute here.
    path = os.path.abspath(os.fspath(path))
    header = np.load(path, mmap_mode="r")
    if header.ndim != 2:
        raise ValueError(f"{path} holds a {header.ndim}-D array; a 2-D array is needed.")
    n, d = header.shape
    dtype = header.dtype
    del header
    blocks = [
        da.from_delayed(
            dask.delayed(_load_rows)(path, start, min(start + block_rows, n)),
            shape=(min(start + block_rows, n) - start, d),
            dtype=dtype,
        )
        for start in range(0, n, block_rows)
    ]
    return da.concatenate(blocks, axis=0)
