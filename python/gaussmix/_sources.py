"""The one door between a mixture estimator and its data.

An estimator never looks at what kind of data it was given: it asks
`fit_source` (or `chunk_source`, `query_source`) for a *source* and talks to
it through the same few methods, whatever the data is: one in-memory array
(`MemorySource`), a memory map read in blocks (``_streaming.ArraySource``),
an iterable of chunks (``_streaming.ChunkSource``) or a Dask array
(``gaussmix.dask.DaskSource``, imported here and only here, when a Dask array
arrives).

The protocol:

``scan()``
    One validating pass (nothing for an in-memory array, which was validated
    when the source was made): sets ``n_samples``, ``n_features``, ``dtype``
    and the sample weights' scale.
``take(indices)``
    ``(X, sample_weight)`` of the rows at sorted global indices (None: all).
``map_reduce(fn)``
    ``sum(fn(X_block, w_block, n_threads=...))`` over the blocks, for dicts of
    arrays and floats (an E-step's sufficient statistics).
``per_sample(fn, width, dtype)``
    ``fn(X_block, n_threads=..., out=..., check_finite=...)`` for every block,
    gathered into one per-sample output of that dtype and width (None: one
    value per row): an ndarray, or a Dask array for Dask input.

``in_memory`` tells whether the whole array is at hand, so that an estimator
may hand it to the engine in one call (EM iterations inside the engine).
"""

import numpy as np

from . import _streaming
from ._validation import (
    check_sample_weight,
    engine_pass,
    is_dask_collection,
    validate,
    validate_deferred,
)

FLOAT_DTYPES = [np.float64, np.float32]


class MemorySource:
    """One validated in-memory array.

    ``check`` is its finiteness check when the engine's first pass is to make
    it (see ``validate_deferred``), else None.
    """

    in_memory = True
    remote = False

    def __init__(self, X, sample_weight, n_threads, check=None, normalise_weights=True):
        self.X = X
        self.normalise_weights = normalise_weights
        self.raw_weight = sample_weight
        self.sample_weight = None
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype.type
        self.n_threads = n_threads
        self.check = check

    def scan(self):
        self.sample_weight = check_sample_weight(
            self.raw_weight, self.n_samples, self.normalise_weights
        )
        return self

    def take(self, indices):
        if indices is None:
            return self.X, self.sample_weight
        w = None if self.sample_weight is None else self.sample_weight[indices]
        return self.X[indices], w

    def map_reduce(self, fn):
        if self.check is not None:
            self.check.settle()
        return fn(self.X, self.sample_weight, n_threads=self.n_threads)

    def per_sample(self, fn, width, dtype):
        return engine_pass(
            self.check,
            lambda check_finite: fn(self.X, n_threads=self.n_threads, check_finite=check_finite),
        )


def fit_source(estimator, X, sample_weight, n_threads, normalise_weights=True):
    """The source a fit reads ``X`` (and ``sample_weight``) through.

    An in-memory array is validated here, as scikit-learn's ``fit`` validates
    it (setting ``n_features_in_`` and ``feature_names_in_``); its finiteness
    check may be left to the engine's first pass (``source.check``).
    ``normalise_weights``: scale the weights to mean one (else they are counts).
    """
    if is_dask_collection(X):
        from .dask import DaskSource

        return DaskSource(X, sample_weight, normalise_weights=normalise_weights)
    if isinstance(X, np.memmap):
        return _streaming.ArraySource(
            X, sample_weight, n_threads=n_threads, normalise_weights=normalise_weights
        )
    X, check = validate_deferred(
        estimator, X, dtype=FLOAT_DTYPES, ensure_min_samples=2, order="C"
    )
    return MemorySource(X, sample_weight, n_threads, check, normalise_weights)


def chunk_source(chunks, n_threads, normalise_weights=True):
    """The source of a fit over an iterable of chunks (``fit_chunks``)."""
    return _streaming.ChunkSource(
        chunks, n_threads=n_threads, normalise_weights=normalise_weights
    )


def query_source(estimator, X, model_dtype, n_threads):
    """The source of a fitted estimator's per-sample outputs for ``X``.

    ``X`` is checked against what the estimator was fitted on (feature count
    and names) and read in ``result_type(X's dtype, model_dtype)``.
    """
    if is_dask_collection(X):
        from .dask import DaskSource

        return DaskSource.for_query(estimator, X, model_dtype)
    if isinstance(X, np.memmap):
        validate(estimator, X[:1], reset=False, dtype=FLOAT_DTYPES)  # feature count and names
        return _streaming.ArraySource(X, None, n_threads=n_threads, compute_dtype=model_dtype)
    X, check = validate_deferred(estimator, X, reset=False, dtype=FLOAT_DTYPES, order="C")
    dtype = np.result_type(X.dtype, model_dtype)
    if X.dtype != dtype:
        if check is not None:  # the engine reads the copy, which may overflow
            check.settle()
            check = None
        X = X.astype(dtype)
    return MemorySource(X, None, n_threads, check)
