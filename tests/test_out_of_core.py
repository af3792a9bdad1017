"""GaussianMixture on data that is not one in-memory array.

Covered here:

* ``fit(np.memmap)``: the memory map is streamed block by block (the block size,
  ``_streaming._BLOCK_BYTES``, is made small so that every fit reads many
  blocks). The result equals ``fit(np.asarray(X))`` to 1e-10 (parameters,
  ``lower_bound_``, ``n_iter_``) for every covariance type and every
  ``init_params`` when the initialisation sees all rows, and with explicit
  ``*_init`` parameters also when it sees only a random sample
  (``_streaming._INIT_BYTES`` made small). The engine receives blocks, never
  the whole array: float64/float32 C-ordered blocks are views of the map
  (float32 stays float32), integer and Fortran-ordered maps are converted one
  block at a time. The file is never written to, and the pages of a shared
  mapping are released as the fit goes (measured from /proc/self/smaps).
* ``fit_chunks``: equal to the fit of the concatenated chunks (with and
  without sample weights, unequal chunks, a chunk of one row); its errors;
  ``init_size`` (a random sample of that many rows initialises, and the fit
  ends within 1e-6 nats/sample of the in-memory fit on separated blobs).
* ``predict``, ``predict_proba``, ``score_samples``, ``score``, ``bic``, ``aic``
  and ``fit_predict`` on a memory map, against their in-memory results.
* Peak resident memory of a fit on a ~400 MB memory-mapped file, in a fresh
  interpreter (as tests/test_memory.py measures it).
* ``partial_fit`` (stepwise EM): the exact update rule (the blend of the
  running statistics with the batch's, step size
  ``(t + learning_offset) ** -learning_decay``), its first call, its restart
  after ``fit``, sample weights, parameter validation, and convergence on a
  stationary stream to the batch fit's held-out log-likelihood (1e-3
  nats/sample).
"""

import hashlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, KernelDensity, _streaming

from gmm_data import make_blobs_data

COV_TYPES = ["full", "tied", "diag", "spherical"]
INIT_PARAMS = ["kmeans", "k-means++", "random", "random_from_data"]
PARAMS = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
KiB, MiB = 2**10, 2**20
SMALL_BLOCK = 64 * KiB

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self"
)


# ----------------------------------------------------------------- helpers


def assert_same_fit(a, b, atol=1e-10, rtol=0.0):
    for name in PARAMS:
        assert_allclose(getattr(a, name), getattr(b, name), atol=atol, rtol=rtol, err_msg=name)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, abs=atol, rel=rtol)
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_


def write_memmap(path, A, mode="r", order="C"):
    """Write A to `path` and return a fresh memory map of it in `mode`."""
    mm = np.memmap(path, dtype=A.dtype, mode="w+", shape=A.shape, order=order)
    mm[:] = A
    mm.flush()
    del mm
    return np.memmap(path, dtype=A.dtype, mode=mode, shape=A.shape, order=order)


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def block_rows(M):
    """Rows per streamed block (C order or not): about _BLOCK_BYTES of data."""
    itemsize = max(M.dtype.itemsize, 4)
    return max(1024, _streaming._BLOCK_BYTES // (itemsize * M.shape[1]))


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_streaming, "_BLOCK_BYTES", SMALL_BLOCK)
    return SMALL_BLOCK


@pytest.fixture
def engine_blocks(monkeypatch):
    """Every data block that an EM pass hands to the engine."""
    seen = []
    original = _streaming.em_block_stats

    def spy(X, w, **kwargs):
        seen.append(X)
        return original(X, w, **kwargs)

    monkeypatch.setattr(_streaming, "em_block_stats", spy)
    return seen


@pytest.fixture
def init_samples(monkeypatch):
    """The data that each initialisation runs on."""
    seen = []
    original = GaussianMixture._initial_parameters

    def spy(self, X, sw, random_state, inits, n_threads):
        seen.append(np.array(X))
        return original(self, X, sw, random_state, inits, n_threads)

    monkeypatch.setattr(GaussianMixture, "_initial_parameters", spy)
    return seen


def explicit_init(X, k, cov, seed=0):
    """Weights, means and precisions of a rough fit on a few rows, means shifted."""
    rough = GaussianMixture(k, covariance_type=cov, random_state=seed, max_iter=5, tol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        rough.fit(X[:500])
    return dict(
        weights_init=rough.weights_,
        means_init=rough.means_ + 0.3,
        precisions_init=rough.precisions_,
    )


def mapping_rss(array):
    """Resident bytes of the mapping (VMA) that holds `array`'s first element."""
    address = array.__array_interface__["data"][0]
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            head = fields[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "Rss:":
                return int(fields[1]) * 1024
    raise LookupError("no mapping holds the array")


# --------------------------------------------------------- fit(np.memmap)

N_MM, D_MM, K_MM = 20_000, 4, 3


@pytest.fixture(scope="module")
def mm_data():
    X, _ = make_blobs_data(n=N_MM, d=D_MM, k=K_MM, seed=1)
    return X


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_memmap_fit_equals_in_memory_fit(
    cov, init_params, mm_data, tmp_path, small_blocks, engine_blocks
):
    path = tmp_path / "x.dat"
    M = write_memmap(path, mm_data, mode="r+")
    digest = file_digest(path)
    rows = block_rows(M)
    n_blocks = -(-N_MM // rows)
    assert n_blocks >= 8

    streamed = GaussianMixture(
        K_MM, covariance_type=cov, init_params=init_params, random_state=0
    ).fit(M)
    in_memory = GaussianMixture(
        K_MM, covariance_type=cov, init_params=init_params, random_state=0
    ).fit(np.asarray(M))
    assert_same_fit(streamed, in_memory)
    assert streamed.n_features_in_ == D_MM

    # One pass over the blocks per EM iteration; each block is a view of the
    # map (float64, C order: nothing to convert, nothing copied).
    assert len(engine_blocks) == streamed.n_iter_ * n_blocks
    assert all(b.shape[0] <= rows for b in engine_blocks)
    assert sum(b.shape[0] for b in engine_blocks[:n_blocks]) == N_MM
    assert all(np.may_share_memory(b, M) for b in engine_blocks)

    assert file_digest(path) == digest
    assert_array_equal(M, mm_data)


@pytest.mark.parametrize(
    "kind", ["float32", "int32", "float64-fortran", "float32-fortran"]
)
def test_memmap_fit_converts_block_by_block(kind, mm_data, tmp_path, small_blocks, engine_blocks):
    dtype = np.dtype(kind.split("-")[0])
    order = "F" if kind.endswith("fortran") else "C"
    A = np.round(mm_data * 100) if dtype.kind == "i" else mm_data
    path = tmp_path / "x.dat"
    M = write_memmap(path, A.astype(dtype), mode="r+", order=order)
    digest = file_digest(path)
    rows = block_rows(M)

    streamed = GaussianMixture(K_MM, random_state=0).fit(M)
    in_memory = GaussianMixture(K_MM, random_state=0).fit(np.array(M, order="C"))

    expected = np.float32 if dtype == np.float32 else np.float64
    assert streamed.means_.dtype == expected
    assert streamed.covariances_.dtype == expected
    if expected == np.float32:
        assert_same_fit(streamed, in_memory, atol=1e-6, rtol=1e-5)
    else:
        assert_same_fit(streamed, in_memory)

    assert engine_blocks
    for b in engine_blocks:
        assert b.dtype == expected  # float32 is not widened
        assert b.flags.c_contiguous
        assert b.shape[0] <= rows
    # A C-ordered float map needs no conversion (its blocks are views);
    # integer and Fortran-ordered maps are converted a block at a time.
    views = [np.may_share_memory(b, M) for b in engine_blocks]
    if order == "C" and dtype.kind == "f":
        assert all(views)
    else:
        assert not any(views)

    assert file_digest(path) == digest


@ignore_convergence
@pytest.mark.parametrize("cov", COV_TYPES)
def test_memmap_fit_small_init_sample_with_explicit_init(
    cov, mm_data, tmp_path, small_blocks, monkeypatch
):
    monkeypatch.setattr(_streaming, "_INIT_BYTES", 64 * KiB)
    assert _streaming.default_init_size(N_MM, D_MM, K_MM) < N_MM
    M = write_memmap(tmp_path / "x.dat", mm_data)
    init = explicit_init(mm_data, K_MM, cov)
    streamed = GaussianMixture(K_MM, covariance_type=cov, **init).fit(M)
    in_memory = GaussianMixture(K_MM, covariance_type=cov, **init).fit(np.asarray(M))
    assert_same_fit(streamed, in_memory)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_memmap_fit_small_init_sample_is_a_random_subsample(
    cov, tmp_path, small_blocks, monkeypatch, init_samples
):
    monkeypatch.setattr(_streaming, "_INIT_BYTES", 64 * KiB)
    X, _ = make_blobs_data(n=N_MM, d=D_MM, k=K_MM, seed=1, sep=8.0)  # well separated
    M = write_memmap(tmp_path / "x.dat", X)
    kw = dict(covariance_type=cov, random_state=0, tol=1e-6, max_iter=500)
    streamed = GaussianMixture(K_MM, **kw).fit(M)
    sample = init_samples[-1]
    # "64 MiB worth" of float64 rows, here 64 KiB worth
    assert sample.shape == (64 * KiB // (8 * D_MM), D_MM)
    index = {row.tobytes(): i for i, row in enumerate(X)}
    picked = [index[row.tobytes()] for row in sample]  # KeyError: not a row of X
    assert len(set(picked)) == len(picked)
    assert max(picked) > N_MM // 2  # not just the first rows

    in_memory = GaussianMixture(K_MM, **kw).fit(X)
    assert init_samples[-1].shape[0] == N_MM
    assert streamed.converged_
    # Same optimum on separated blobs: mean log-likelihoods within 1e-6.
    assert abs(streamed.score(X) - in_memory.score(X)) < 1e-6


@linux_only
@pytest.mark.parametrize(
    "order, dtype, mode",
    [
        ("C", np.float64, "r"),
        ("C", np.float64, "r+"),
        ("C", np.int32, "r"),
        ("F", np.float64, "r"),
    ],
)
@ignore_convergence
def test_memmap_fit_releases_pages_of_shared_mapping(order, dtype, mode, tmp_path, small_blocks):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((250_000, 4)) * 100
    M = write_memmap(tmp_path / "x.dat", A.astype(dtype), mode=mode, order=order)
    assert mapping_rss(M) == 0
    gm = GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2).fit(M)
    after_fit = mapping_rss(M)
    gm.predict(M)
    after_predict = mapping_rss(M)
    # Every page was read (several times); at most a few remain mapped.
    assert after_fit < M.nbytes // 20, after_fit / MiB
    assert after_predict < M.nbytes // 20, after_predict / MiB
    # The measurement sees resident pages: reading the whole map makes it so.
    float(np.asarray(M).sum())
    assert mapping_rss(M) >= 0.9 * M.nbytes


@linux_only
@ignore_convergence
def test_memmap_fit_copy_on_write_mapping_keeps_its_pages(tmp_path, small_blocks):
    # Mode 'c' pages may hold the only copy of changes: they are not dropped.
    rng = np.random.default_rng(3)
    M = write_memmap(tmp_path / "x.dat", rng.standard_normal((250_000, 4)), mode="c")
    M[0, 0] = 1e3  # a private change, not in the file
    GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2).fit(M)
    assert mapping_rss(M) >= 0.9 * M.nbytes
    assert M[0, 0] == 1e3


_REVERSED_VIEW = """
import json, mmap, os, sys, warnings
import numpy as np
from gaussmix import GaussianMixture, _streaming
warnings.simplefilter("ignore")
_streaming._BLOCK_BYTES = 64 * 1024
path = sys.argv[1]
X = np.random.default_rng(0).standard_normal((20000, 4))
X.tofile(path)
A = np.ones(2_000_000)  # an unrelated array (its own anonymous mapping)
M = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
page = mmap.PAGESIZE
m_end = -(-(M.ctypes.data + M.nbytes) // page) * page
adjacent = m_end == A.ctypes.data // page * page
if adjacent:
    GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2).fit(M[::-1])
print(json.dumps({"adjacent": bool(adjacent), "changed": int(np.count_nonzero(A != 1.0))}))
sys.stdout.flush()
os._exit(0)  # the damage can include malloc's headers: skip the teardown
"""


@linux_only
def test_memmap_fit_reversed_view_leaves_other_memory_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _REVERSED_VIEW, str(tmp_path / "x.dat")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if not r["adjacent"]:
        pytest.skip("the array is not mapped right after the memory map here")
    assert r["changed"] == 0, f"{r['changed']} values of an unrelated array were zeroed"


# ------------------------------------------------------------- fit_chunks

N_CH = 3001
CUTS = [0, 1, 700, 701, 1900, 2500, N_CH]  # unequal chunks, two of one row


@pytest.fixture(scope="module")
def chunk_data():
    X, _ = make_blobs_data(n=N_CH, d=3, k=3, seed=2)
    w = np.random.default_rng(0).uniform(0.1, 3.0, size=N_CH)
    return X, w


def split(A):
    return [A[a:b] for a, b in zip(CUTS[:-1], CUTS[1:])]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_fit_chunks_equals_fit_of_concatenation(cov, init_params, weighted, chunk_data):
    X, w = chunk_data
    kw = dict(covariance_type=cov, init_params=init_params, random_state=0)
    if weighted:
        chunks = list(zip(split(X), split(w)))  # a list of (X_chunk, w_chunk)
        expected = GaussianMixture(3, **kw).fit(
            np.concatenate(split(X)), sample_weight=np.concatenate(split(w))
        )
    else:
        parts = split(X)
        chunks = lambda: (p for p in parts)  # noqa: E731 - a fresh generator per pass
        expected = GaussianMixture(3, **kw).fit(np.concatenate(parts))
    got = GaussianMixture(3, **kw).fit_chunks(chunks)
    assert_same_fit(got, expected)


def test_fit_chunks_tuple_of_arrays(chunk_data):
    X, _ = chunk_data
    got = GaussianMixture(3, random_state=0).fit_chunks(tuple(split(X)))
    assert_same_fit(got, GaussianMixture(3, random_state=0).fit(X))


def test_fit_chunks_fitted_attributes_and_predict(chunk_data):
    X, _ = chunk_data
    gm = GaussianMixture(3, random_state=0).fit_chunks(split(X))
    assert gm.n_features_in_ == 3
    assert not hasattr(gm, "feature_names_in_")
    ref = GaussianMixture(3, random_state=0).fit(X)
    assert_array_equal(gm.predict(X), ref.predict(X))
    assert_allclose(gm.predict_proba(X), ref.predict_proba(X), rtol=1e-10, atol=1e-12)
    assert_allclose(gm.score_samples(X), ref.score_samples(X), rtol=1e-10)
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(X[:, :2])


def test_fit_chunks_float32_source(chunk_data):
    X, _ = chunk_data
    X32 = X.astype(np.float32)
    gm = GaussianMixture(3, random_state=0).fit_chunks(lambda: iter(split(X32)))
    for name in PARAMS:
        assert getattr(gm, name).dtype == np.float32, name
    assert_same_fit(gm, GaussianMixture(3, random_state=0).fit(X32), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("make", [lambda c: (x for x in c), iter], ids=["generator", "iterator"])
def test_fit_chunks_rejects_one_shot_iterators(make, chunk_data):
    X, _ = chunk_data
    with pytest.raises(TypeError, match="read only once"):
        GaussianMixture(3).fit_chunks(make(split(X)))


@pytest.mark.parametrize(
    "case, exc, match",
    [
        ("columns", ValueError, "features"),
        ("weighted-then-not", ValueError, "sample weights"),
        ("not-then-weighted", ValueError, "sample weights"),
        ("nan", ValueError, "NaN"),
        ("too-few-rows", ValueError, "n_samples >= n_components"),
        ("negative-weight", ValueError, "Negative"),
        ("strings", (ValueError, TypeError), None),
        ("empty", ValueError, None),
    ],
)
def test_fit_chunks_errors(case, exc, match, chunk_data):
    X, w = chunk_data
    a, b = X[:100], X[100:300]
    bad_nan = b.copy()
    bad_nan[5, 1] = np.nan
    chunks = {
        "columns": [a, b[:, :2]],
        "weighted-then-not": [(a, w[:100]), b],
        "not-then-weighted": [a, (b, w[100:300])],
        "nan": [a, bad_nan],
        "too-few-rows": [X[:1], X[1:2]],
        "negative-weight": [(a, w[:100]), (b, -w[100:300])],
        "strings": [np.array([["a", "b", "c"]] * 5)],
        "empty": [],
    }[case]
    with pytest.raises(exc, match=match):
        GaussianMixture(3).fit_chunks(chunks)


@pytest.mark.parametrize("init_size", [0, -1, 1.5])
def test_fit_chunks_invalid_init_size(init_size, chunk_data):
    X, _ = chunk_data
    with pytest.raises(ValueError, match="init_size"):
        GaussianMixture(3).fit_chunks(split(X), init_size=init_size)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
@pytest.mark.parametrize("cov", COV_TYPES)
def test_fit_chunks_init_size_initialises_on_a_sample(cov, init_params, init_samples):
    X, _ = make_blobs_data(n=30_000, d=3, k=3, seed=3)
    kw = dict(covariance_type=cov, init_params=init_params, random_state=0, tol=1e-6,
              max_iter=500)
    sampled = GaussianMixture(3, **kw).fit_chunks(np.array_split(X, 7), init_size=500)
    assert init_samples[-1].shape == (500, 3)
    full = GaussianMixture(3, **kw).fit(X)
    assert init_samples[-1].shape == (30_000, 3)
    assert sampled.converged_
    # Well-separated blobs: the same optimum, mean log-likelihood within 1e-6.
    assert abs(sampled.score(X) - full.score(X)) < 1e-6
    assert abs(sampled.lower_bound_ - full.lower_bound_) < 1e-6


# ------------------------------------------- per-sample methods on a memmap


@pytest.mark.parametrize("cov", COV_TYPES)
def test_memmap_per_sample_methods_equal_in_memory(cov, mm_data, tmp_path, small_blocks,
                                                   monkeypatch):
    gm = GaussianMixture(K_MM, covariance_type=cov, random_state=0).fit(mm_data)
    M = write_memmap(tmp_path / "x.dat", mm_data)
    expected = {m: getattr(gm, m)(mm_data) for m in
                ("predict", "predict_proba", "score_samples", "score", "bic", "aic")}

    calls = []
    original = _streaming.e_step_block

    def spy(X, **kwargs):
        calls.append(X.shape[0])
        return original(X, **kwargs)

    monkeypatch.setattr(_streaming, "e_step_block", spy)
    got = {m: getattr(gm, m)(M) for m in expected}
    rows = block_rows(M)
    # predict, predict_proba, score_samples, and score, bic and aic through it
    assert len(calls) == 6 * -(-N_MM // rows)
    assert max(calls) <= rows

    for m in ("predict", "predict_proba", "score_samples"):
        assert type(got[m]) is np.ndarray
        assert got[m].dtype == expected[m].dtype
        assert_array_equal(got[m], expected[m], err_msg=m)
    assert got["score"] == expected["score"]
    # bic and aic: see test_memmap_bic_aic_bitwise_equal_in_memory
    assert got["bic"] == pytest.approx(expected["bic"], rel=1e-14, abs=0)
    assert got["aic"] == pytest.approx(expected["aic"], rel=1e-14, abs=0)


def test_memmap_bic_aic_bitwise_equal_in_memory(mm_data, tmp_path):
    gm = GaussianMixture(K_MM, random_state=0).fit(mm_data)
    differing = []
    for n in range(5000, 5040):
        M = write_memmap(tmp_path / f"x{n}.dat", mm_data[:n])
        if gm.bic(M) != gm.bic(mm_data[:n]) or gm.aic(M) != gm.aic(mm_data[:n]):
            differing.append(n)
        assert gm.score(M) == gm.score(mm_data[:n])
    assert differing == []


def test_memmap_per_sample_wrong_feature_count(mm_data, tmp_path):
    gm = GaussianMixture(K_MM, random_state=0).fit(mm_data)
    Y = mm_data[:300, :3]
    M = write_memmap(tmp_path / "y.dat", np.ascontiguousarray(Y))
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError) as from_array:
            getattr(gm, method)(Y)
        with pytest.raises(ValueError) as from_memmap:
            getattr(gm, method)(M)
        assert str(from_memmap.value) == str(from_array.value), method
        assert "X has 3 features" in str(from_array.value)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_memmap_fit_predict(cov, mm_data, tmp_path, small_blocks):
    M = write_memmap(tmp_path / "x.dat", mm_data)
    kw = dict(covariance_type=cov, random_state=0)
    labels = GaussianMixture(K_MM, **kw).fit_predict(M)
    assert_array_equal(labels, GaussianMixture(K_MM, **kw).fit(M).predict(M))
    assert_array_equal(labels, GaussianMixture(K_MM, **kw).fit_predict(mm_data))
    assert np.unique(labels).size == K_MM


# ------------------------------------------------------------- peak memory


def _peak_reset_supported():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            return "VmHWM" in f.read()
    except OSError:
        return False


def _sanitized():
    """True under AddressSanitizer, whose allocator keeps freed memory resident
    (its quarantine): resident sizes then measure the sanitizer, not the fit."""
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


_PEAK = """
import gc, json, os, sys, warnings
import numpy as np
warnings.simplefilter("error")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

from gaussmix import GaussianMixture

path, dtype, order, N, D = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
piece = 500_000
with open(path, "wb") as f:  # written in pieces: never in this process at once
    if order == "C":
        for start in range(0, N, piece):
            x = rng.standard_normal((min(piece, N - start), D))
            x[np.arange(start, start + x.shape[0]) < N // 3] += 6.0
            f.write(x.astype(dtype).tobytes())
    else:
        for j in range(D):
            for start in range(0, N, piece):
                x = rng.standard_normal(min(piece, N - start))
                x[np.arange(start, start + x.shape[0]) < N // 3] += 6.0
                f.write(x.astype(dtype).tobytes())
X = np.memmap(path, dtype=dtype, mode="r", shape=(N, D), order=order)
# warm-up: the thread team and lazily loaded code
GaussianMixture(3, covariance_type="diag", random_state=0).fit(np.array(X[:3000]))
gm = GaussianMixture(3, covariance_type="diag", random_state=0, max_iter=3)
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # 3 iterations do not converge
    gm.fit(X)
extra = status("VmHWM") - before
means = np.sort(gm.means_[:, 0])
print(json.dumps({"extra": extra, "file": os.path.getsize(path), "n_iter": gm.n_iter_,
                  "dtype": str(gm.means_.dtype), "means": means.tolist()}))
"""


@linux_only
@pytest.mark.skipif(
    sys.platform.startswith("linux") and not _peak_reset_supported(),
    reason="peak RSS cannot be reset (/proc/self/clear_refs)",
)
@pytest.mark.skipif(
    sys.platform.startswith("linux") and _sanitized(),
    reason="AddressSanitizer's allocator changes resident memory",
)
@pytest.mark.parametrize(
    "dtype, order, n",
    [
        ("float64", "C", 6_250_000),
        ("float32", "F", 12_500_000),
    ],
)
def test_memmap_fit_peak_memory(dtype, order, n, tmp_path):
    """Peak RSS of a fit on a ~400 MB file stays far below the file's size.

    With the default sizes (a block is _BLOCK_BYTES = 32 MiB of data, the
    initialisation sample _INIT_BYTES = 64 MiB worth of float64 rows, N x 8 here
    1,048,576 rows) the fit holds at most: while the sample is gathered, its
    pieces plus the current block's mapped pages and (for a map that needs
    converting) the block's converted copy; then the pieces and the
    concatenated sample (2 x 64 MiB for float64, 2 x 32 MiB for float32); an
    int64 index per sampled row (8 MiB); during EM one block, mapped and
    converted (at most 2 x 32 MiB), and the engine's small statistics. With
    8 MiB for the interpreter and allocator that is below 150 MiB for both
    files; either copy of the file, or its pages left mapped, is 381 MiB.
    """
    d = 8
    path = tmp_path / "big.dat"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK, str(path), dtype, order, str(n), str(d)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    finally:
        if path.exists():
            path.unlink()
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["file"] == n * d * np.dtype(dtype).itemsize
    assert r["file"] > 380 * MiB
    assert r["dtype"] == dtype
    assert r["n_iter"] == 3
    assert r["means"][-1] > 4.0 and r["means"][0] < 2.0  # found the shifted blob
    bound = 150 * MiB
    assert bound < 0.4 * r["file"]
    assert r["extra"] < bound, (r["extra"] / MiB, bound / MiB)


# ---------------------------------------------------------------- partial_fit

MIX_MEANS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
MIX_COVS = np.array(
    [[[1.0, 0.3], [0.3, 0.6]], [[0.5, 0.0], [0.0, 1.5]], [[0.8, -0.2], [-0.2, 0.8]]]
)
MIX_WEIGHTS = np.array([0.5, 0.3, 0.2])


def draw_mixture(rng, n):
    z = rng.choice(3, size=n, p=MIX_WEIGHTS)
    chol = np.linalg.cholesky(MIX_COVS)
    return MIX_MEANS[z] + np.einsum("nij,nj->ni", chol[z], rng.standard_normal((n, 2)))


@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_stationary_stream_approaches_batch_fit(cov):
    rng = np.random.default_rng(10)
    train, held_out = draw_mixture(rng, 200_000), draw_mixture(rng, 100_000)
    batch = GaussianMixture(3, covariance_type=cov, random_state=0, tol=1e-8, max_iter=1000)
    batch.fit(train)
    online = GaussianMixture(3, covariance_type=cov, random_state=0)
    stream = np.random.default_rng(11)
    n_batches = 300
    for _ in range(n_batches):
        online.partial_fit(draw_mixture(stream, 1000))
    assert online.n_iter_ == n_batches
    assert online.converged_ is False
    # Held-out mean log-likelihood within 1e-3 nats/sample of the batch fit.
    gap = batch.score(held_out) - online.score(held_out)
    assert abs(gap) < 1e-3, gap


@pytest.fixture(scope="module")
def pf_batches():
    X, _ = make_blobs_data(n=5000, d=3, k=3, seed=4)
    rng = np.random.default_rng(5)
    return np.array_split(X[rng.permutation(len(X))], 10)


def one_em_step(prev, batch, cov, reg_covar=1e-6):
    """The M-step from the batch's statistics under `prev`'s parameters."""
    gm = GaussianMixture(
        prev.n_components,
        covariance_type=cov,
        reg_covar=reg_covar,
        max_iter=1,
        weights_init=prev.weights_,
        means_init=prev.means_,
        precisions_init=prev.precisions_,
    )
    with pytest.warns(ConvergenceWarning):  # one iteration never converges
        gm.fit(batch)
    return gm


def blended(prev, step, eta, cov, reg=1e-6):
    """Parameters from (1 - eta) prev's statistics + eta the batch's (Chan's merge).

    prev's normalised statistics are (w, mu, w (C - reg)) per component (tied:
    C - reg); the batch's are those of the one-step fit `step` (its weights are
    the batch's normalised responsibility sums).
    """
    a1 = (1.0 - eta) * prev.weights_
    a2 = eta * step.weights_
    n = a1 + a2
    means = (a1[:, None] * prev.means_ + a2[:, None] * step.means_) / n[:, None]
    d = prev.means_ - step.means_
    c = a1 * a2 / n
    if cov == "full":
        eye = reg * np.eye(d.shape[1])
        s = (a1[:, None, None] * (prev.covariances_ - eye)
             + a2[:, None, None] * (step.covariances_ - eye)
             + c[:, None, None] * d[:, :, None] * d[:, None, :])
        covariances = s / n[:, None, None] + eye
    elif cov == "tied":
        eye = reg * np.eye(d.shape[1])
        s = ((1 - eta) * (prev.covariances_ - eye) + eta * (step.covariances_ - eye)
             + np.einsum("k,ki,kj->ij", c, d, d))
        covariances = s / n.sum() + eye
    elif cov == "diag":
        s = a1[:, None] * (prev.covariances_ - reg) + a2[:, None] * (step.covariances_ - reg)
        covariances = (s + c[:, None] * d * d) / n[:, None] + reg
    else:
        s = a1 * (prev.covariances_ - reg) + a2 * (step.covariances_ - reg)
        covariances = (s + c * np.mean(d * d, axis=1)) / n + reg
    return n / n.sum(), means, covariances


def snapshot(gm):
    copy = GaussianMixture(gm.n_components, covariance_type=gm.covariance_type)
    for name in PARAMS:
        setattr(copy, name, np.array(getattr(gm, name)))
    return copy


@ignore_convergence
@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_first_call_is_init_plus_one_em_step(cov, pf_batches):
    X = pf_batches[0]
    online = GaussianMixture(3, covariance_type=cov, random_state=0).partial_fit(X)
    ref = GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=1).fit(X)
    for name in PARAMS:
        assert_allclose(getattr(online, name), getattr(ref, name), atol=1e-10, rtol=0)
    assert online.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    assert online.n_features_in_ == 3
    assert online.n_iter_ == 1
    assert online.converged_ is False


@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_zero_decay_is_one_em_step_on_each_batch(cov, pf_batches):
    online = GaussianMixture(3, covariance_type=cov, random_state=0, learning_decay=0)
    online.partial_fit(pf_batches[0])
    for i, batch in enumerate(pf_batches[1:], start=2):
        prev = snapshot(online)
        online.partial_fit(batch)
        step = one_em_step(prev, batch, cov)
        for name in PARAMS:
            assert_allclose(getattr(online, name), getattr(step, name), atol=1e-10, rtol=0,
                            err_msg=f"{name}, call {i}")
        assert online.lower_bound_ == pytest.approx(step.lower_bound_, abs=1e-12)
        assert online.n_iter_ == i
        assert online.converged_ is False


@pytest.mark.parametrize(
    "decay, offset", [(0.7, 10.0), (0.55, 2.0), (1.0, 0.0), (0.9, 3.5)]
)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_step_size_schedule(cov, decay, offset, pf_batches):
    """Call t + 1 blends with eta_t = (t + learning_offset) ** -learning_decay."""
    online = GaussianMixture(
        3, covariance_type=cov, random_state=0, learning_decay=decay, learning_offset=offset
    )
    online.partial_fit(pf_batches[0])
    for t, batch in enumerate(pf_batches[1:], start=1):
        prev = snapshot(online)
        online.partial_fit(batch)
        eta = (t + offset) ** -decay
        weights, means, covariances = blended(prev, one_em_step(prev, batch, cov), eta, cov)
        assert_allclose(online.weights_, weights, atol=1e-10, rtol=0)
        assert_allclose(online.means_, means, atol=1e-10, rtol=0)
        assert_allclose(online.covariances_, covariances, atol=1e-10, rtol=0)
        assert online.n_iter_ == t + 1


@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_after_fit_blends_from_fitted_parameters(cov, pf_batches):
    X = np.concatenate(pf_batches[:4])
    fitted = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    prev = snapshot(fitted)
    batch = pf_batches[6]
    step = one_em_step(prev, batch, cov)
    fitted.partial_fit(batch)

    eta = (1 + 10.0) ** -0.7  # the first online step, default decay and offset
    weights, means, covariances = blended(prev, step, eta, cov)
    assert_allclose(fitted.weights_, weights, atol=1e-10, rtol=0)
    assert_allclose(fitted.means_, means, atol=1e-10, rtol=0)
    assert_allclose(fitted.covariances_, covariances, atol=1e-10, rtol=0)
    # Each new mean is strictly between the fitted mean and the batch-only step's.
    for k in range(3):
        u, v = prev.means_[k], step.means_[k]
        lam = np.dot(fitted.means_[k] - v, u - v) / np.dot(u - v, u - v)
        assert 0.0 < lam < 1.0
        assert_allclose(fitted.means_[k], v + lam * (u - v), atol=1e-10)
    assert fitted.n_iter_ == 1
    assert fitted.converged_ is False


@pytest.mark.parametrize("cov", COV_TYPES)
def test_fit_after_partial_fit_resets_online_state(cov, pf_batches):
    X = np.concatenate(pf_batches[:4])
    gm = GaussianMixture(3, covariance_type=cov, random_state=0)
    for batch in pf_batches[:5]:
        gm.partial_fit(batch)
    gm.fit(X)
    gm.partial_fit(pf_batches[7])
    fresh = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    fresh.partial_fit(pf_batches[7])
    for name in PARAMS:
        assert_allclose(getattr(gm, name), getattr(fresh, name), atol=1e-10, rtol=0)
    assert gm.n_iter_ == 1


def test_partial_fit_feature_count_change(pf_batches):
    gm = GaussianMixture(3, random_state=0).partial_fit(pf_batches[0])
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(pf_batches[1][:, :2])
    assert gm.n_features_in_ == 3 and gm.n_iter_ == 1


@pytest.mark.parametrize(
    "params",
    [
        {"learning_decay": 1.5},
        {"learning_decay": -0.1},
        {"learning_offset": -1.0},
    ],
)
def test_partial_fit_invalid_learning_parameters(params, pf_batches):
    with pytest.raises(InvalidParameterError, match=next(iter(params))) as info:
        GaussianMixture(3, random_state=0, **params).partial_fit(pf_batches[0])
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_partial_fit_integer_weights_equal_repeated_rows(cov, pf_batches):
    X = np.concatenate(pf_batches)
    init = explicit_init(X, 3, cov)
    batch = pf_batches[2][:300]
    counts = np.random.default_rng(6).integers(0, 4, size=len(batch))
    assert (counts == 0).any() and (counts > 1).any()
    weighted = GaussianMixture(3, covariance_type=cov, **init).partial_fit(
        batch, sample_weight=counts
    )
    repeated = GaussianMixture(3, covariance_type=cov, **init).partial_fit(
        np.repeat(batch, counts, axis=0)
    )
    for name in PARAMS:
        assert_allclose(getattr(weighted, name), getattr(repeated, name), atol=1e-10, rtol=0)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, abs=1e-10)


# ------------------------------------------------------------ misaligned data


def _misaligned_copy(X):
    """X's values in a buffer at an odd byte offset (as an unpickled frame can be)."""
    buf = bytearray(X.nbytes + 1)
    out = np.frombuffer(buf, dtype=X.dtype, count=X.size, offset=1).reshape(X.shape)
    out[...] = X
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def test_misaligned_arrays_fit_and_score_like_aligned_ones(tmp_path):
    X, _ = make_blobs_data(n=2000, d=3, k=3, seed=11)
    ref = GaussianMixture(3, random_state=0).fit(X)
    got = GaussianMixture(3, random_state=0).fit(_misaligned_copy(X))
    np.testing.assert_array_equal(got.means_, ref.means_)
    np.testing.assert_array_equal(got.score_samples(_misaligned_copy(X)), ref.score_samples(X))
    # a memory map at an odd offset into its file
    path = tmp_path / "odd.dat"
    with open(path, "wb") as f:
        f.write(b"\0" * 3)
        f.write(X.tobytes())
    M = np.memmap(path, dtype=np.float64, mode="r", offset=3, shape=X.shape)
    assert not M.flags.aligned
    from_map = GaussianMixture(3, random_state=0).fit(M)
    np.testing.assert_array_equal(from_map.means_, ref.means_)
    np.testing.assert_array_equal(from_map.predict(M), ref.predict(X))
    kde = KernelDensity(bandwidth=0.7).fit(_misaligned_copy(X))
    np.testing.assert_array_equal(
        kde.score_samples(_misaligned_copy(X[:50])),
        KernelDensity(bandwidth=0.7).fit(X).score_samples(X[:50]),
    )
