"""Data read in blocks: memory maps and chunk iterables, and the block functions.

EM needs, per iteration, only the sufficient statistics of the data under the
current parameters (``_core.em_stats``), and statistics of disjoint blocks
around the same shifts add up. A block source therefore only has to map a
function over its blocks and sum the results (the protocol is described in
``_sources``, which chooses the source for the data at hand; Dask's is in
``gaussmix.dask``). The block functions here (`em_block_stats`,
`e_step_block`) are module-level, so that Dask can send them to its workers.
"""

import functools
import math
import mmap
import operator
import sys
from numbers import Integral

import numpy as np

from . import _core
from ._validation import aligned, check_float_array, weight_scale_factor

# Rows per block when streaming an array: about this many bytes of data.
_BLOCK_BYTES = 32 * 2**20
# Initialisation runs on at most this many bytes of rows (all rows when the
# data is smaller): a uniform random sample of an out-of-core data set.
_INIT_BYTES = 64 * 2**20


def default_init_size(n_samples, n_features, n_components):
    """Rows the initialisation sees: all of them when they fit in 64 MiB."""
    rows = max(_INIT_BYTES // (8 * max(n_features, 1)), 20 * n_components)
    return int(min(n_samples, rows))


def sample_indices(random_state, n_samples, size):
    """`size` distinct sorted row indices, uniformly at random, in O(size) memory."""
    if size >= n_samples:
        return np.arange(n_samples)
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < size:
        draw = random_state.randint(0, n_samples, size=size + size // 8 + 16)
        chosen = np.sort(np.concatenate([chosen, draw.astype(np.int64)]))
        chosen = chosen[np.concatenate([[True], chosen[1:] != chosen[:-1]])]
    if chosen.size > size:
        keep = random_state.choice(chosen.size, size=size, replace=False)
        chosen = chosen[np.sort(keep)]
    return chosen


def add_stats(parts):
    """The sum, in order, of sufficient statistics (``_core.SuffStats``) of
    disjoint blocks taken around the same shifts."""
    return functools.reduce(operator.add, parts)


def check_block(X, n_features=None, input_name="X"):
    """A validated 2-D float block (float32 stays float32), C order.

    The same errors as an in-memory fit's validation (non-numeric data, NaN,
    infinity), raised for the block that has them.
    """
    X = check_float_array(
        X,
        dtype=[np.float64, np.float32],
        order="C",
        ensure_min_samples=0,
        input_name=input_name,
    )
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{input_name} has {X.shape[1]} features in one block but "
            f"{n_features} in the first; every block needs the same columns."
        )
    return X


def _scan_block(X, w):
    """Per-block summary for scan(): rows, and the weights' scaled sum and max."""
    n = X.shape[0]
    if w is None:
        return {"n": float(n), "w_max": 1.0 if n else 0.0, "w_sum_scaled": float(n)}
    w_max = float(np.max(w)) if n else 0.0
    scaled = float(np.sum(w / w_max)) if w_max > 0 else 0.0
    return {"n": float(n), "w_max": w_max, "w_sum_scaled": scaled}


def combine_scans(parts):
    """Totals of _scan_block summaries: (n, sum of w / max w, max w)."""
    n = sum(p["n"] for p in parts)
    w_max = max((p["w_max"] for p in parts), default=0.0)
    total = 0.0
    if w_max > 0:
        total = sum(p["w_sum_scaled"] * (p["w_max"] / w_max) for p in parts)
    return int(n), total, w_max


def check_weight_block(w, n_rows):
    """A validated float64 weight block of n_rows entries."""
    w = check_float_array(
        w, ensure_2d=False, dtype=np.float64, order="C", ensure_min_samples=0,
        input_name="sample_weight",
    )
    if w.ndim != 1 or w.shape[0] != n_rows:
        raise ValueError(
            f"sample_weight has shape {w.shape} for a block of {n_rows} rows; "
            "it needs one weight per row."
        )
    if np.any(w < 0):
        raise ValueError("Negative values in data passed to sample_weight.")
    return w


def weight_scale(n_samples, w_sum_scaled, w_max, weighted):
    """The factor check_sample_weight scales the weights by (a power of two)."""
    if not weighted:
        return None
    if not w_max > 0:
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weight_scale_factor(n_samples, w_sum_scaled, w_max)


# ----------------------------------------------------------- memory maps

# Linux's default fault-around window: a page fault on a file mapping also maps
# the cached pages within this many bytes around it.
_FAULT_AROUND = 64 * 1024

try:  # NumPy >= 2
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # pragma: no cover - NumPy 1.x
    _byte_bounds = np.byte_bounds


def _page_release(array):
    """A function that drops a memory-mapped block's pages from this process.

    Streaming a file through a shared mapping would otherwise leave every page
    read so far resident in the process (the file's size in RSS). Dropping
    them (madvise MADV_DONTNEED) keeps them in the page cache, so reading them
    again is cheap, and loses nothing: a shared mapping's pages are the file's.
    Copy-on-write mappings (mode 'c') keep their pages, which may hold the
    only copy of changes.
    """
    if not sys.platform.startswith("linux") or not isinstance(array, np.memmap):
        return None
    if getattr(array, "mode", "c") not in ("r", "r+", "w+"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):  # pragma: no cover - platform without madvise
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    page = mmap.PAGESIZE
    advice = getattr(mmap, "MADV_DONTNEED", 4)

    # The array's own memory, widened to whole pages: those pages belong to
    # the mapping (it starts on a page and is a whole number of pages long),
    # so releasing any of them is safe; nothing outside is ever touched.
    lo, hi = _byte_bounds(array)
    lo_page = lo // page * page
    hi_page = -(-hi // page) * page

    def drop(start, end):
        # Round outwards: a page shared with the next block is read back from
        # the page cache if needed again. Reach back a further 64 KiB: a page
        # fault maps the cached pages around it too ("fault-around", 64 KiB by
        # default), which brings back pages of the previous block.
        first = max((start - _FAULT_AROUND) // page * page, lo_page)
        last = min(-(-end // page) * page, hi_page)
        if last > first:
            madvise(first, last - first, advice)

    def release(block):
        if block.size == 0:
            return
        if block.ndim == 2 and block.strides[0] == block.itemsize and block.strides[1] > 0:
            # Fortran order: one contiguous range per column.
            start = block.__array_interface__["data"][0]
            rows, cols = block.shape
            for col in range(cols):
                first = start + col * block.strides[1]
                drop(first, first + rows * block.itemsize)
        else:
            drop(*_byte_bounds(block))

    return release


class ArraySource:
    """Row blocks of one array (a np.memmap, typically), converted per block.

    ``compute_dtype``: the dtype per-sample outputs are computed in (a fitted
    model's and X's common type); blocks are converted to it one at a time.
    """

    in_memory = False
    remote = False

    def __init__(self, X, sample_weight=None, block_rows=None, n_threads=None, compute_dtype=None,
                 normalise_weights=True):
        if getattr(X, "ndim", None) != 2:
            raise ValueError(
                "Expected 2D array, got %s instead" % ("an array of %d dimensions" % X.ndim
                                                     if hasattr(X, "ndim") else type(X).__name__)
            )
        self.X = X
        self.sample_weight = sample_weight
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        itemsize = max(np.dtype(X.dtype).itemsize, 4)
        if block_rows is None:
            block_rows = max(1024, _BLOCK_BYTES // (itemsize * max(self.n_features, 1)))
        self.block_rows = int(block_rows)
        self.dtype = np.float32 if X.dtype == np.float32 else np.float64
        self.compute_dtype = np.result_type(self.dtype, compute_dtype or self.dtype)
        self.n_threads = n_threads
        self.normalise_weights = normalise_weights
        self.weight_scale = None
        self._release = _page_release(X)
        self._release_w = _page_release(sample_weight) if sample_weight is not None else None
        if sample_weight is not None:
            shape = getattr(sample_weight, "shape", None)
            if shape is None:
                sample_weight = np.asarray(sample_weight)
                self.sample_weight = sample_weight
                shape = sample_weight.shape
            if tuple(shape) != (self.n_samples,):
                raise ValueError(
                    f"sample_weight.shape == {tuple(shape)}, expected ({self.n_samples},)!"
                )

    def blocks(self, validate=False):
        """(start, X_block, w_block) with converted, scaled blocks."""
        for start in range(0, self.n_samples, self.block_rows):
            stop = min(start + self.block_rows, self.n_samples)
            raw = self.X[start:stop]
            if validate:
                xb = check_block(raw, self.n_features)
            else:
                xb = aligned(raw, self.dtype)
            wb = None
            if self.sample_weight is not None:
                raw_w = self.sample_weight[start:stop]
                wb = check_weight_block(raw_w, stop - start) if validate else np.array(
                    raw_w, dtype=np.float64
                )
                if self.weight_scale is not None:
                    wb = wb * self.weight_scale
            yield start, xb, wb
            del xb, wb
            if self._release is not None:
                self._release(raw)
            if self._release_w is not None:
                self._release_w(raw_w)

    def scan(self):
        parts = [_scan_block(xb, wb) for _, xb, wb in self.blocks(validate=True)]
        n, w_sum, w_max = combine_scans(parts)
        scale = weight_scale(n, w_sum, w_max, self.sample_weight is not None)
        self.weight_scale = scale if self.normalise_weights else None
        return self

    def map_reduce(self, fn):
        return add_stats(fn(xb, wb, n_threads=self.n_threads) for _, xb, wb in self.blocks())

    def per_sample(self, fn, width, dtype):
        """fn's per-sample output for every row, one validated block at a time."""
        shape = (self.n_samples,) if width is None else (self.n_samples, width)
        result = np.empty(shape, dtype=dtype)
        for start, xb, _ in self.blocks(validate=True):
            stop = start + xb.shape[0]
            fn(xb.astype(self.compute_dtype, copy=False), n_threads=self.n_threads,
               out=result[start:stop])
        return result

    def take(self, indices):
        """Rows at sorted `indices` (None: all), copied straight into one array.

        Only the selected rows of each block are read and converted.
        """
        if indices is None:
            indices = np.arange(self.n_samples)
        weighted = self.sample_weight is not None
        X = np.empty((len(indices), self.n_features), dtype=self.dtype)
        w = np.empty(len(indices)) if weighted else None
        for start in range(0, self.n_samples, self.block_rows):
            stop = min(start + self.block_rows, self.n_samples)
            lo, hi = np.searchsorted(indices, [start, stop])
            if hi == lo:
                continue
            local = indices[lo:hi] - start
            raw = self.X[start:stop]
            X[lo:hi] = raw[local]
            if self._release is not None:
                self._release(raw)
            if weighted:
                raw_w = self.sample_weight[start:stop]
                w[lo:hi] = raw_w[local]
                if self.weight_scale is not None:
                    w[lo:hi] *= self.weight_scale
                if self._release_w is not None:
                    self._release_w(raw_w)
        return X, w


def _take_from_blocks(blocks, indices, dtype, weighted):
    """Rows at sorted global `indices` (None: all rows) from (start, X, w) blocks."""
    rows, weights = [], []
    for start, xb, wb in blocks:
        if indices is None:
            sel = slice(None)
        else:
            lo, hi = np.searchsorted(indices, [start, start + xb.shape[0]])
            sel = indices[lo:hi] - start
        rows.append(np.array(xb[sel], dtype=dtype, order="C"))
        if weighted:
            weights.append(np.array(wb[sel], dtype=np.float64))
    X = np.concatenate(rows, axis=0) if rows else np.empty((0, 0), dtype=dtype)
    w = np.concatenate(weights) if weighted else None
    return X, w


# ------------------------------------------------------------ iterables


class ChunkSource:
    """Blocks from a re-iterable collection of chunks, or a callable returning one.

    Each chunk is an array of rows, or a tuple ``(X_chunk, sample_weight_chunk)``.
    """

    in_memory = False
    remote = False

    def __init__(self, chunks, n_threads=None, normalise_weights=True):
        if callable(chunks):
            self._factory = chunks
        elif hasattr(chunks, "__iter__") and iter(chunks) is not chunks:
            self._factory = lambda: chunks
        elif hasattr(chunks, "__iter__"):
            raise TypeError(
                "chunks is an iterator, which can be read only once, and EM reads the "
                "data once per iteration: pass a function that returns a new iterator "
                "(e.g. lambda: read_chunks(path)) or a list of arrays."
            )
        else:
            raise TypeError(
                "chunks must be a callable returning an iterable of arrays, or a "
                f"re-iterable collection of arrays; got {type(chunks).__name__}."
            )
        self.n_samples = self.n_features = None
        self.n_threads = n_threads
        self.normalise_weights = normalise_weights
        self.dtype = None
        self.weighted = None
        self.weight_scale = None

    def blocks(self, validate=False):
        start = 0
        for chunk in self._factory():
            if isinstance(chunk, tuple):
                if len(chunk) != 2:
                    raise ValueError(
                        "A chunk given as a tuple must be (X_chunk, sample_weight_chunk), "
                        f"got a tuple of {len(chunk)} items."
                    )
                xc, wc = chunk
            else:
                xc, wc = chunk, None
            if validate:
                xb = check_block(xc, self.n_features)
                if self.n_features is None:
                    self.n_features = xb.shape[1]
                    self.dtype = xb.dtype.type
                    self.weighted = wc is not None
                if (wc is not None) != self.weighted:
                    raise ValueError(
                        "Either every chunk carries sample weights or none does."
                    )
                if xb.dtype != self.dtype:
                    xb = xb.astype(self.dtype)
            else:
                xb = aligned(xc, self.dtype)
                if xb.ndim != 2 or xb.shape[1] != self.n_features:
                    raise ValueError(
                        "The chunks changed between passes: a chunk of shape "
                        f"{xb.shape} where {self.n_features} columns were seen before."
                    )
            wb = None
            if self.weighted:
                if validate:
                    wb = check_weight_block(wc, xb.shape[0])
                else:
                    wb = np.array(wc, dtype=np.float64)
                if self.weight_scale is not None:
                    wb = wb * self.weight_scale
            yield start, xb, wb
            start += xb.shape[0]
        if not validate and self.n_samples is not None and start != self.n_samples:
            raise ValueError(
                f"The chunks changed between passes: {start} rows where "
                f"{self.n_samples} were seen before."
            )

    def scan(self):
        parts = [_scan_block(xb, wb) for _, xb, wb in self.blocks(validate=True)]
        if self.n_features is None:
            raise ValueError("chunks yielded no data.")
        n, w_sum, w_max = combine_scans(parts)
        self.n_samples = n
        scale = weight_scale(n, w_sum, w_max, self.weighted)
        self.weight_scale = scale if self.normalise_weights else None
        return self

    def map_reduce(self, fn):
        return add_stats(fn(xb, wb, n_threads=self.n_threads) for _, xb, wb in self.blocks())

    def take(self, indices):
        return _take_from_blocks(self.blocks(), indices, self.dtype, self.weighted)


def check_init_size(init_size):
    if init_size is None:
        return None
    if not isinstance(init_size, Integral) or isinstance(init_size, bool) or init_size < 1:
        raise ValueError(f"init_size must be a positive integer or None, got {init_size!r}.")
    return int(init_size)


def step_size(step, decay, offset):
    """Stepwise EM's eta_t = (t + offset) ** -decay."""
    return math.pow(step + offset, -decay)


def _threads(n_threads):
    """None (a Dask worker's block): the worker's own default thread count."""
    return max(1, int(_core.default_threads())) if n_threads is None else n_threads


def _constants(log_constants):
    """The optional per-component constants of an E-step, as the engine takes them."""
    if log_constants is None:
        return {}
    return {"log_constants": aligned(log_constants, np.float64)}


def em_block_stats(X, w, *, covariance_type, weights, means, precisions_cholesky,
                   log_constants=None, n_threads=None):
    """One block's E-step statistics (a module-level function: Dask pickles it).

    ``log_constants``: the K constants c_k of the log-densities (None: those
    of a maximum-likelihood mixture with these weights).
    """
    n_threads = _threads(n_threads)
    # Arrays unpickled on a Dask worker may sit at any offset of a frame.
    return _core.em_stats(
        aligned(X, X.dtype),
        None if w is None else aligned(w, np.float64),
        covariance_type,
        aligned(weights, np.float64),
        aligned(means, np.float64),
        aligned(precisions_cholesky, np.float64),
        n_threads=n_threads,
        **_constants(log_constants),
    )


def moment_block_stats(X, w, *, shift, covariance_type, n_threads=None):
    """A block's statistics as those of one component holding every row,
    around ``shift`` (1 x D): its weighted mean and scatter, summed over
    blocks (a module-level function: Dask pickles it)."""
    return _core.stats_from_labels(
        aligned(X, X.dtype),
        None if w is None else aligned(w, np.float64),
        np.zeros(X.shape[0], dtype=np.int64),
        shift,
        covariance_type,
        _threads(n_threads),
    )


def e_step_block(X, *, output, covariance_type, weights, means, precisions_cholesky,
                 log_constants=None, n_threads=None, out=None, check_finite=False):
    """One per-sample output of an E-step on a block of rows, in X's dtype.

    ``output``: 'log_prob_norm', 'resp' or 'labels'; written into ``out`` when
    given, else into a new array. ``check_finite``: the engine checks X
    (``_core.NonFiniteInput`` otherwise).
    """
    if out is None:
        n = X.shape[0]
        if output == "resp":
            out = np.empty((n, weights.shape[0]), dtype=X.dtype)
        else:
            out = np.empty(n, dtype=np.int64 if output == "labels" else X.dtype)
    _core.e_step(
        aligned(X, X.dtype),
        None,
        covariance_type,
        aligned(weights, np.float64),
        aligned(means, np.float64),
        aligned(precisions_cholesky, np.float64),
        n_threads=_threads(n_threads),
        check_finite=check_finite,
        **_constants(log_constants),
        **{output: out},
    )
    return out
