"""Peak memory of the estimators, and no leaks over repeated calls.

Each measurement runs in a fresh interpreter, so that memory freed but kept by
the allocator for earlier tests cannot hide (or fake) an allocation. Inside it
the data are made and a small warm-up call starts the thread team; then the
peak resident set size is reset (/proc/self/clear_refs) and the measured call
runs. The reported figure is VmHWM after the call minus VmRSS before it: the
largest amount of memory the call itself had resident at any moment.

Memory that an engine pass may hold, from cpp/include/gaussmix/estep.hpp,
block.hpp, parallel.hpp and kmeans.hpp (N samples, D features, K components, T threads):

* EM (one fused pass per iteration): one SuffStats partial per chunk,
  n_chunks <= 512, each 8 * (K + 2 K D + M) bytes with M = K D^2 (full),
  D^2 (tied) or K D (diag, spherical); per thread one Workspace of
  ld * ((2 D + K + 2) * sizeof(T) + (2 D + 2) * 8 + 1) bytes, ld <= 256.
  Nothing of size N.
* Initialisation (init_params='kmeans', the default), scikit-learn's KMeans
  (gaussmix/_kmeans.py): on float64 data k-means++ keeps one N-vector of
  float64 (closest distance) and Lloyd's iterations one int64 label per
  sample: at most 16 N bytes at any time. On float32 data k-means++ holds
  what scikit-learn's holds, as its potentials are float32 BLAS sums over
  them: the distances to the n_local_trials = 2 + floor(ln K) candidates,
  the closest distances and the weights, all float32, so
  (n_local_trials + 2) * 4 N bytes (20 N for K = 3).
* sample_weight is copied once (validation): 8 N bytes.

So ``fit`` must stay below
    16 N + [8 N with sample_weight] + 512 * partial + T * workspace + C,
with C = 8 MiB for the interpreter, allocator and thread stacks. For
N = 2e6, D = 4 (X: 64 MB) that is about 40 MiB; one more copy of X, or any
N x K x D temporary (192 MB for K = 3), exceeds it.

The per-sample methods allocate only their output: ``score_samples`` N
values, ``predict`` N int64 labels, ``predict_proba`` N x K values, each plus
C. ``KernelDensity.score_samples`` allocates its output and the whitened
copy of the training set (D x ld values, ld = n_train rounded up to 16).
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest


def _sanitized():
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _peak_reset_supported():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            return "VmHWM" in f.read()
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self"),
    pytest.mark.skipif(
        sys.platform.startswith("linux") and not _peak_reset_supported(),
        reason="peak RSS cannot be reset (/proc/self/clear_refs)",
    ),
    pytest.mark.skipif(
        sys.platform.startswith("linux") and _sanitized(),
        reason="AddressSanitizer's allocator changes resident memory",
    ),
]

MiB = 2**20
SLACK = 8 * MiB

_PRELUDE = """
import gc, json, sys, warnings
import numpy as np
warnings.simplefilter("error")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

def measure(call):
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
    result = call()
    peak = status("VmHWM")
    return peak - before, result
"""


def _run(body, timeout=300):
    code = _PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gmm_scratch(n, d, k, cov, threads, itemsize):
    m = {"full": k * d * d, "tied": d * d}.get(cov, k * d)
    partial = 8 * (k + 2 * k * d + m)
    ld = 256
    workspace = ld * ((2 * d + k + 2) * itemsize + (2 * d + 2) * 8 + 1)
    return 512 * partial + threads * workspace


N, D, K = 2_000_000, 4, 3

_BLOBS = """
from gaussmix import GaussianMixture
rng = np.random.default_rng(0)
N, D, K = {n}, {d}, {k}
X = rng.standard_normal((N, D)).astype({dtype!r}, copy=False)
X[: N // 3] += 6.0
X[N // 3 : 2 * N // 3] -= 6.0
"""


def _threads():
    out = subprocess.run(
        [sys.executable, "-c", "from gaussmix import _core; print(_core.default_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


@pytest.fixture(scope="module")
def threads():
    return _threads()


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_fit_peak_memory(cov, threads):
    body = _BLOBS.format(n=N, d=D, k=K, dtype="float64") + f"""
GaussianMixture(K, covariance_type={cov!r}, random_state=0).fit(X[:5000])
gm = GaussianMixture(K, covariance_type={cov!r}, random_state=0, max_iter=50)
extra, _ = measure(lambda: gm.fit(X))
print(json.dumps({{"extra": extra, "x": X.nbytes, "finite": bool(np.all(np.isfinite(gm.means_)))}}))
"""
    r = _run(body)
    assert r["x"] == N * D * 8
    bound = 16 * N + _gmm_scratch(N, D, K, cov, threads, 8) + SLACK
    assert bound < r["x"]  # a copy of X alone would break the bound
    assert r["extra"] <= bound, (r["extra"] / MiB, bound / MiB)
    assert r["finite"]


def test_fit_peak_memory_float32_weighted(threads):
    # D = 8 so that the bound, with float32 k-means++'s candidate distances,
    # stays below a float64 copy of X
    d = 8
    body = _BLOBS.format(n=N, d=d, k=K, dtype="float32") + """
sw = rng.uniform(0.5, 2.0, size=N)
GaussianMixture(K, random_state=0).fit(X[:5000], sample_weight=sw[:5000])
gm = GaussianMixture(K, random_state=0, max_iter=50)
extra, _ = measure(lambda: gm.fit(X, sample_weight=sw))
print(json.dumps({"extra": extra, "x": X.nbytes, "dtype": str(gm.means_.dtype)}))
"""
    r = _run(body)
    assert r["x"] == N * d * 4
    assert r["dtype"] == "float32"
    n_local_trials = 2 + int(math.log(K))
    init = max(16 * N, (n_local_trials + 2) * 4 * N)
    bound = init + 8 * N + _gmm_scratch(N, d, K, "full", threads, 4) + SLACK
    assert r["extra"] <= bound, (r["extra"] / MiB, bound / MiB)
    # a float64 copy of X (128 MB) would not fit
    assert bound < N * d * 8


@pytest.mark.parametrize(
    "method, out_bytes",
    [
        ("score_samples", 8 * N),
        ("predict", 8 * N),
        ("predict_proba", 8 * N * K),
    ],
)
def test_predict_peak_memory(method, out_bytes):
    body = _BLOBS.format(n=N, d=D, k=K, dtype="float64") + f"""
gm = GaussianMixture(K, random_state=0).fit(X[:20000])
getattr(gm, {method!r})(X[:5000])
extra, out = measure(lambda: getattr(gm, {method!r})(X))
print(json.dumps({{"extra": extra, "out": out.nbytes, "x": X.nbytes}}))
"""
    r = _run(body)
    assert r["out"] == out_bytes
    bound = out_bytes + SLACK
    assert r["extra"] <= bound, (r["extra"] / MiB, bound / MiB)
    # an N x K x D temporary, or a copy of X, would exceed the bound
    assert bound < out_bytes + r["x"]
    assert bound < 8 * N * K * D
    # the output itself is resident: the measurement sees allocations
    assert r["extra"] >= 0.9 * out_bytes


def test_kde_score_samples_peak_memory_many_queries():
    m, n_train = 2_000_000, 200
    body = f"""
from gaussmix import KernelDensity
rng = np.random.default_rng(1)
train = rng.standard_normal(({n_train}, 4))
Q = rng.standard_normal(({m}, 4))
kde = KernelDensity(bandwidth=0.5).fit(train)
kde.score_samples(Q[:1000])
extra, out = measure(lambda: kde.score_samples(Q))
print(json.dumps({{"extra": extra, "out": out.nbytes, "q": Q.nbytes,
                   "finite": bool(np.all(np.isfinite(out)))}}))
"""
    r = _run(body)
    assert r["out"] == 8 * m and r["finite"]
    whitened = 8 * 4 * ((n_train + 15) // 16 * 16)
    bound = r["out"] + whitened + SLACK
    assert r["extra"] <= bound, (r["extra"] / MiB, bound / MiB)
    assert bound < r["out"] + r["q"]  # a copy of the queries would not fit
    assert r["extra"] >= 0.9 * r["out"]


def test_kde_score_samples_peak_memory_large_training_set():
    n_train, m = 1_000_000, 64
    body = f"""
from gaussmix import KernelDensity
rng = np.random.default_rng(2)
train = rng.standard_normal(({n_train}, 4))
Q = rng.standard_normal(({m}, 4))
kde = KernelDensity(bandwidth=0.3).fit(train)
KernelDensity(bandwidth=0.3).fit(train[:1000]).score_samples(Q)
extra, out = measure(lambda: kde.score_samples(Q))
print(json.dumps({{"extra": extra, "train": train.nbytes,
                   "finite": bool(np.all(np.isfinite(out)))}}))
"""
    r = _run(body)
    assert r["finite"]
    whitened = 8 * 4 * ((n_train + 15) // 16 * 16)
    bound = whitened + SLACK
    assert r["extra"] <= bound, (r["extra"] / MiB, bound / MiB)
    assert bound < 2 * r["train"]  # two copies of the training set would not fit


_LEAK_BODY = """
import tracemalloc
from sklearn.exceptions import ConvergenceWarning
from gaussmix import GaussianMixture, KernelDensity
rng = np.random.default_rng(3)
X = np.vstack([rng.normal(-3, 1, (100, 3)), rng.normal(3, 1, (100, 3))])
Xdup = np.repeat(rng.normal(size=(2, 3)), 20, axis=0)
kde = KernelDensity(bandwidth=0.4).fit(X)
Q = rng.normal(size=(300, 3))

def one(i):
    cov = ("full", "tied", "diag", "spherical")[i % 4]
    gm = GaussianMixture(2, covariance_type=cov, random_state=i, n_init=1).fit(X)
    gm.score_samples(X); gm.predict(X); gm.predict_proba(X)
    try:
        with warnings.catch_warnings():
            # k-means finds 2 clusters for 3 components, and says so as scikit-learn's does
            warnings.simplefilter("ignore", ConvergenceWarning)
            GaussianMixture(3, covariance_type=cov, reg_covar=0.0, random_state=i).fit(Xdup)
    except ValueError:
        pass
    kde.score_samples(Q)

def loop(n):
    for i in range(n):
        one(i)
    gc.collect()

loop(200)
rss0 = status("VmRSS")
loop(1000)
rss1 = status("VmRSS")

tracemalloc.start()
loop(50)
py0 = tracemalloc.get_traced_memory()[0]
loop(1000)
py1 = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
print(json.dumps({"rss": rss1 - rss0, "py": py1 - py0}))
"""


def test_no_leak_over_repeated_calls():
    r = _run(_LEAK_BODY, timeout=600)
    assert r["rss"] < 4 * MiB, r["rss"] / MiB
    assert r["py"] < 64 * 1024, r["py"]
