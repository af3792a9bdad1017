"""GaussianMixture and KernelDensity on Dask arrays, on a real distributed cluster.

One module-scoped ``distributed.LocalCluster`` (two single-threaded worker
processes behind nannies) serves every test. Covered:

* ``GaussianMixture.fit`` on a dask array equals the in-memory fit of the same
  rows (weights, means, covariances, lower bound, iteration count, to 1e-8):
  every covariance type and every ``init_params`` (over a small grid, one run
  with ``n_init=2``), uneven row blocks (one of a single row), a chunked column
  axis, rows of unknown block sizes, ``sample_weight`` as numpy or as a dask
  array chunked differently from X, float32 data; with ``init_size`` below the
  number of rows, the fit equals ``fit_chunks`` of the same blocks with the same
  ``init_size`` (the same uniform sample).
* A worker SIGKILLed in the middle of a fit on persisted data: the nanny
  restarts it, the scheduler recomputes the lost blocks and retries the tasks,
  and the fit still equals the in-memory fit.
* The client receives only statistics: for data generated on the workers,
  the pickled size of everything the fit brings back (a validation summary per
  block, the ``init_size`` sample, one O(K D^2) set of statistics per
  iteration) stays within a bound derived from K, D, the number of blocks and
  iterations, far below the data; the graph sent per iteration does not embed
  the data either.
* ``predict``, ``predict_proba`` and ``score_samples`` return lazy dask arrays
  (type, chunks, dtype) equal to the in-memory results; ``score``, ``bic`` and
  ``aic`` equal the in-memory values; a wrong feature count raises at call
  time. ``KernelDensity.score_samples`` likewise.
* ``gaussmix.dask.from_npy``: blocks read by the workers (the graph holds no
  data), fit equal to the in-memory fit, argument errors.
* Errors raised on workers reach the caller: NaN in one block, negative
  sample weights, mismatched weight length, 1-D input.
* Without dask installed, ``gaussmix`` imports and fits, and
  ``import gaussmix.dask`` fails with an ImportError naming ``gaussmix[dask]``.
"""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import gaussmix.dask as gdask  # noqa: E402
from gaussmix import BayesianGaussianMixture, GaussianMixture, GaussianMixtureIC, KernelDensity  # noqa: E402
from gmm_data import make_blobs_data  # noqa: E402

ATOL = 1e-8
K, D = 3, 3


@pytest.fixture(scope="module")
def client():
    # No dashboard; the scheduler still serves its HTTP endpoints, by default
    # on port 8787 (with a warning when another cluster holds it), so they get
    # a free port instead.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs_data(n=600, d=D, k=K, seed=0)
    return X


def assert_same_fit(got, ref, atol=ATOL):
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        a, b = getattr(got, attr), getattr(ref, attr)
        assert a.dtype == b.dtype, attr
        assert a.shape == b.shape, attr
        np.testing.assert_allclose(a, b, rtol=atol, atol=atol, err_msg=attr)
    assert got.n_iter_ == ref.n_iter_
    assert got.converged_ == ref.converged_
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=atol, abs=atol)
    assert got.n_features_in_ == ref.n_features_in_


def _wait_for_replacement(client, dead_pid, timeout=60):
    """Block until the cluster has two live workers again, none of them dead_pid."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = client.run(os.getpid, on_error="ignore")
        except Exception:  # the scheduler may still be removing the dead worker
            pids = {}
        if len(pids) == 2 and dead_pid not in pids.values():
            client.wait_for_workers(2, timeout=timeout)
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster did not recover two workers: {pids}")
        time.sleep(0.1)


# ------------------------------------------------------------------ fit


FIT_GRID = [
    ("full", "kmeans", 1),
    ("full", "random", 1),
    ("tied", "k-means++", 1),
    ("tied", "kmeans", 2),
    ("diag", "random_from_data", 1),
    ("diag", "random", 1),
    ("spherical", "kmeans", 1),
    ("spherical", "random_from_data", 2),
]


@pytest.mark.parametrize("covariance_type, init_params, n_init", FIT_GRID)
def test_fit_equals_in_memory(client, data, covariance_type, init_params, n_init):
    kw = dict(
        n_components=K,
        covariance_type=covariance_type,
        init_params=init_params,
        n_init=n_init,
        random_state=0,
        max_iter=300,
    )
    ref = GaussianMixture(**kw).fit(data)
    Xd = da.from_array(data, chunks=((1, 149, 250, 50, 150), (D,)))
    got = GaussianMixture(**kw).fit(Xd)
    assert_same_fit(got, ref)
    assert got.lower_bounds_ == pytest.approx(ref.lower_bounds_, rel=ATOL, abs=ATOL)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_bayesian_fit_equals_in_memory(client, data, covariance_type):
    # weights are counts for a Bayesian fit: the same on the workers
    w = np.random.default_rng(3).integers(0, 3, data.shape[0]).astype(float)
    # 15 iterations at most, each on Dask a round trip (both fits stop alike)
    kw = dict(n_components=K + 2, covariance_type=covariance_type, random_state=0, max_iter=15)
    Xd = da.from_array(data, chunks=((1, 149, 250, 50, 150), (D,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = BayesianGaussianMixture(**kw).fit(data, sample_weight=w)
        got = BayesianGaussianMixture(**kw).fit(Xd, sample_weight=w)
    assert_same_fit(got, ref)
    for attr in ("mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_"):
        np.testing.assert_allclose(getattr(got, attr), getattr(ref, attr), rtol=ATOL, err_msg=attr)
    np.testing.assert_allclose(got.predict_proba(Xd).compute(), ref.predict_proba(data),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.elbo_, ref.elbo_, rtol=1e-10)
    np.testing.assert_allclose(got.score_samples_predictive(Xd).compute(),
                               ref.score_samples_predictive(data), rtol=1e-10)


def test_fit_column_chunks(client, data):
    kw = dict(n_components=K, covariance_type="full", random_state=1)
    Xd = da.from_array(data, chunks=((200, 300, 100), (1, 2)))
    assert len(Xd.chunks[1]) == 2
    assert_same_fit(GaussianMixture(**kw).fit(Xd), GaussianMixture(**kw).fit(data))


def test_fit_unknown_block_sizes(client, data):
    # Boolean filtering gives blocks of unknown size; the data are sorted so
    # that the first blocks are empty.
    X = data[np.argsort(data[:, 0])]
    threshold = X[250, 0]
    Xd = da.from_array(X, chunks=(100, D))
    filtered = Xd[Xd[:, 0] > threshold]
    assert any(np.isnan(c) for c in filtered.chunks[0])
    ref_X = X[X[:, 0] > threshold]
    kw = dict(n_components=K, covariance_type="diag", random_state=0)
    assert_same_fit(GaussianMixture(**kw).fit(filtered), GaussianMixture(**kw).fit(ref_X))


@pytest.mark.parametrize("weights_as", ["numpy", "dask"])
def test_fit_sample_weight(client, data, weights_as):
    rng = np.random.default_rng(7)
    w = rng.uniform(0.0, 3.0, size=data.shape[0])
    w[rng.choice(data.shape[0], 40, replace=False)] = 0.0
    kw = dict(n_components=K, covariance_type="full", random_state=0)
    ref = GaussianMixture(**kw).fit(data, sample_weight=w)
    unweighted = GaussianMixture(**kw).fit(data)
    sw = w if weights_as == "numpy" else da.from_array(w, chunks=77)
    Xd = da.from_array(data, chunks=((100, 250, 50, 200), (D,)))
    got = GaussianMixture(**kw).fit(Xd, sample_weight=sw)
    assert_same_fit(got, ref)
    # the weights were used at all
    assert np.max(np.abs(got.means_ - unweighted.means_)) > 1e-4


def test_fit_float32(client, data):
    X32 = data.astype(np.float32)
    kw = dict(n_components=K, covariance_type="full", random_state=0)
    ref = GaussianMixture(**kw).fit(X32)
    got = GaussianMixture(**kw).fit(da.from_array(X32, chunks=((100, 250, 50, 200), (D,))))
    assert got.means_.dtype == np.float32
    assert_same_fit(got, ref)


def test_fit_init_sample_equals_fit_chunks(client, data):
    # With init_size below the number of rows, the initialisation runs on a
    # uniform sample drawn with random_state: the same rows as fit_chunks draws.
    chunks = (100, 250, 50, 200)
    bounds = np.cumsum((0,) + chunks)
    blocks = [data[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    kw = dict(n_components=K, covariance_type="tied", n_init=2, random_state=3)
    ref = GaussianMixture(**kw).fit_chunks(blocks, init_size=120)
    got = gdask.fit_dask(
        GaussianMixture(**kw), da.from_array(data, chunks=(chunks, (D,))), init_size=120
    )
    assert_same_fit(got, ref)


def test_fit_predict_returns_dask_labels(client, data):
    kw = dict(n_components=K, random_state=0)
    labels = GaussianMixture(**kw).fit_predict(da.from_array(data, chunks=200))
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), GaussianMixture(**kw).fit_predict(data))


# ---------------------------------------------------------- worker failure


def test_worker_killed_mid_fit(client, monkeypatch):
    X, _ = make_blobs_data(n=6000, d=D, k=K, seed=3, sep=2.5)
    kw = dict(n_components=K, covariance_type="full", random_state=0, tol=1e-5)
    ref = GaussianMixture(**kw).fit(X)
    assert ref.n_iter_ >= 4  # the kill lands before the last iteration

    Xd = da.from_array(X, chunks=500).persist()
    distributed.wait(Xd)
    holders = client.who_has(Xd)
    pids = client.run(os.getpid)
    # kill a worker that holds persisted blocks: they must be recomputed
    counts = {addr: 0 for addr in pids}
    for addrs in holders.values():
        for addr in addrs:
            counts[addr] += 1
    victim_addr = max(counts, key=counts.get)
    assert counts[victim_addr] > 0
    victim = pids[victim_addr]

    calls = []
    original = gdask._compute

    def compute_killing_a_worker(*collections):
        calls.append(None)
        if len(calls) == 3:  # scan, init sample, then the first EM iterations
            os.kill(victim, signal.SIGKILL)
        return original(*collections)

    monkeypatch.setattr(gdask, "_compute", compute_killing_a_worker)
    try:
        got = GaussianMixture(**kw).fit(Xd)
    finally:
        monkeypatch.undo()
        if len(calls) >= 3:
            new_pids = _wait_for_replacement(client, victim)
    assert len(calls) >= 3
    assert victim not in new_pids.values()
    assert len(calls) == got.n_iter_ + 2  # the fit went on after the kill
    assert_same_fit(got, ref)
    np.testing.assert_array_equal(Xd.compute(), X)


# ------------------------------------------------ what reaches the client


def test_fit_returns_only_statistics(client, monkeypatch):
    n, d, k, block = 400_000, 4, 3, 50_000
    n_blocks = n // block
    init_size = 1000
    X = da.random.default_rng(0).normal(size=(n, d), chunks=(block, d))
    X = X + da.where(da.arange(n, chunks=block) % 3 == 0, 5.0, 0.0)[:, None]

    sent, returned = [], []
    original = gdask._compute

    def recording(*collections):
        sent.append(len(pickle.dumps(collections)))
        out = original(*collections)
        returned.append(len(pickle.dumps(out)))
        return out

    monkeypatch.setattr(gdask, "_compute", recording)
    est = gdask.fit_dask(
        GaussianMixture(n_components=k, covariance_type="full", random_state=0),
        X,
        init_size=init_size,
    )
    monkeypatch.undo()

    # one validating scan, one init sample, one reduction per EM iteration
    assert len(returned) == est.n_iter_ + 2
    overhead = 2048  # pickle framing, dict keys, numpy headers
    scan_bound = n_blocks * 3 * 8 * 8 + overhead
    sample_bytes = init_size * d * 8
    stats_bound = 8 * (k + k * d + k * d * d + 2) + overhead
    assert returned[0] <= scan_bound
    assert sample_bytes <= returned[1] <= sample_bytes + overhead
    assert all(r <= stats_bound for r in returned[2:]), returned
    total = sum(returned)
    assert total <= scan_bound + sample_bytes + overhead + est.n_iter_ * stats_bound
    assert total < X.nbytes / 100

    # the graph sent per iteration: parameters and block references only
    graph_bound = n_blocks * 2048 + 8 * (k + k * d + k * d * d) * 4 + 8192
    assert all(s <= graph_bound for s in sent[2:]), sent
    assert max(sent) < block * d * 8 / 10  # not even one block of the data


# ------------------------------------------------------ per-sample outputs


@pytest.fixture(scope="module")
def fitted(data):
    return {
        dt: GaussianMixture(n_components=K, random_state=0).fit(data.astype(dt))
        for dt in (np.float64, np.float32)
    }


@pytest.mark.parametrize(
    "fit_dtype, query_dtype, col_chunks",
    [
        (np.float64, np.float64, (D,)),
        (np.float64, np.float32, (1, 2)),
        (np.float32, np.float32, (D,)),
        (np.float32, np.float64, (2, 1)),
    ],
)
def test_per_sample_outputs(client, fitted, fit_dtype, query_dtype, col_chunks):
    est = fitted[fit_dtype]
    Xq = make_blobs_data(n=500, d=D, k=K, seed=1)[0].astype(query_dtype)
    row_chunks = (120, 1, 279, 100)
    Xd = da.from_array(Xq, chunks=(row_chunks, col_chunks))
    for method in ("predict", "predict_proba", "score_samples"):
        expected = getattr(est, method)(Xq)
        got = getattr(est, method)(Xd)
        assert isinstance(got, da.Array), method
        expected_chunks = (row_chunks,) + ((K,),) if method == "predict_proba" else (row_chunks,)
        assert got.chunks == expected_chunks, method
        assert got.dtype == expected.dtype, method
        values = got.compute()
        assert isinstance(values, np.ndarray)
        assert values.dtype == expected.dtype, method
        if method == "predict":
            np.testing.assert_array_equal(values, expected)
        else:
            np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12, err_msg=method)


@pytest.mark.parametrize("method", ["score", "bic", "aic"])
def test_scalar_scores(client, fitted, method):
    est = fitted[np.float64]
    Xq = make_blobs_data(n=500, d=D, k=K, seed=2)[0]
    Xd = da.from_array(Xq, chunks=((120, 1, 279, 100), (2, 1)))
    got = getattr(est, method)(Xd)
    assert isinstance(got, float)
    assert got == pytest.approx(getattr(est, method)(Xq), rel=1e-10)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "score_samples", "score", "bic", "aic", "kde"]
)
def test_wrong_feature_count_raises_at_call(client, fitted, data, method):
    Xd = da.from_array(np.zeros((50, D + 1)), chunks=20)
    if method == "kde":
        est, method = KernelDensity(bandwidth=0.5).fit(data[:100]), "score_samples"
    else:
        est = fitted[np.float64]
    with pytest.raises(ValueError, match="features"):
        getattr(est, method)(Xd)


@pytest.mark.parametrize(
    "params", [dict(bandwidth=0.7), dict(bandwidth=3.0, kernel="epanechnikov", metric="manhattan")]
)
def test_kde_score_samples(client, data, params):
    kde = KernelDensity(**params).fit(data[:200])
    Xq = data[200:]  # same distribution as the training points
    Xd = da.from_array(Xq, chunks=((150, 1, 249), (1, 2)))
    expected = kde.score_samples(Xq)
    got = kde.score_samples(Xd)
    assert isinstance(got, da.Array)
    assert got.chunks == ((150, 1, 249),)
    assert got.dtype == np.float64
    values = got.compute()
    assert np.isfinite(expected).mean() > 0.5
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------- from_npy


def test_from_npy_fit(client, tmp_path):
    X, _ = make_blobs_data(n=20_000, d=D, k=K, seed=5)
    path = tmp_path / "x.npy"
    np.save(path, X)
    A = gdask.from_npy(path, 6000)
    assert isinstance(A, da.Array)
    assert A.shape == X.shape and A.dtype == X.dtype
    assert A.chunks == ((6000, 6000, 6000, 2000), (D,))
    # the graph names the file and row ranges; it holds none of the data
    assert len(pickle.dumps(A)) < X.nbytes / 20
    np.testing.assert_array_equal(A.compute(), X)
    kw = dict(n_components=K, covariance_type="diag", random_state=0)
    assert_same_fit(GaussianMixture(**kw).fit(A), GaussianMixture(**kw).fit(X))


def test_from_npy_float32(client, tmp_path):
    X = make_blobs_data(n=900, d=D, k=K, seed=6)[0].astype(np.float32)
    path = tmp_path / "x32.npy"
    np.save(path, X)
    A = gdask.from_npy(str(path), 400)
    assert A.dtype == np.float32
    kw = dict(n_components=K, random_state=0)
    assert_same_fit(GaussianMixture(**kw).fit(A), GaussianMixture(**kw).fit(X))


def test_from_npy_rejects_bad_input(tmp_path):
    one_d = tmp_path / "one.npy"
    np.save(one_d, np.arange(10.0))
    with pytest.raises(ValueError, match="2-D"):
        gdask.from_npy(one_d, 5)
    three_d = tmp_path / "three.npy"
    np.save(three_d, np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        gdask.from_npy(three_d, 5)
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((10, 2)))
    for bad in (0, -3, 2.5, None, "4"):
        with pytest.raises(ValueError, match="block_rows"):
            gdask.from_npy(good, bad)


def test_from_npy_rejects_bool_block_rows(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="block_rows"):
        gdask.from_npy(good, True)


def test_from_npy_relative_path(client, tmp_path, monkeypatch):
    """The workers resolve the path as the client did (it is made absolute)."""
    X = np.arange(30.0).reshape(10, 3)
    monkeypatch.chdir(tmp_path)
    np.save("rel.npy", X)
    A = gdask.from_npy("rel.npy", 4)
    np.testing.assert_array_equal(A.compute(), X)


# ------------------------------------------------------------------ errors


def test_nan_in_one_block_raises(client, data):
    X = data.copy()
    X[437, 1] = np.nan
    Xd = da.from_array(X, chunks=100)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(n_components=K, random_state=0).fit(Xd)


@pytest.mark.parametrize("weights_as", ["numpy", "dask"])
def test_negative_sample_weight_raises(client, data, weights_as):
    w = np.ones(data.shape[0])
    w[523] = -0.5
    sw = w if weights_as == "numpy" else da.from_array(w, chunks=90)
    with pytest.raises(ValueError, match="Negative"):
        GaussianMixture(n_components=K, random_state=0).fit(
            da.from_array(data, chunks=100), sample_weight=sw
        )


def test_bad_shapes_raise(client, data):
    Xd = da.from_array(data, chunks=100)
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture(n_components=K).fit(Xd, sample_weight=np.ones(data.shape[0] - 1))
    with pytest.raises(ValueError, match="2D"):
        GaussianMixture(n_components=K).fit(Xd[:, 0])
    with pytest.raises(ValueError, match="non-zero"):
        GaussianMixture(n_components=K).fit(Xd, sample_weight=np.zeros(data.shape[0]))


# ------------------------------------------------- filtered rows


def _filtered_with_empty_blocks(X):
    """X sorted by its first column, as a dask array filtered so early blocks are empty."""
    X = X[np.argsort(X[:, 0])]
    threshold = X[250, 0]
    Xd = da.from_array(X, chunks=(100, X.shape[1]))
    return Xd[Xd[:, 0] > threshold], X[X[:, 0] > threshold]


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "kde"])
def test_per_sample_with_empty_blocks(client, data, fitted, method):
    """Empty row blocks (common after boolean filtering) give empty outputs."""
    filtered, ref_X = _filtered_with_empty_blocks(data)
    assert 0 in filtered.compute_chunk_sizes().chunks[0]
    if method == "kde":
        est, method = KernelDensity(bandwidth=0.5).fit(data[:100]), "score_samples"
    else:
        est = fitted[np.float64]
    expected = getattr(est, method)(ref_X)
    np.testing.assert_allclose(getattr(est, method)(filtered).compute(), expected, rtol=1e-12)


def test_score_with_empty_blocks(client, data, fitted):
    filtered, ref_X = _filtered_with_empty_blocks(data)
    est = fitted[np.float64]
    assert est.score(filtered) == pytest.approx(est.score(ref_X), rel=1e-12)


def test_fit_weights_of_unknown_block_sizes(client, data):
    """Weights filtered like X (unknown block sizes) are aligned with X's rows."""
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=data.shape[0])
    Xd = da.from_array(data, chunks=100)
    wd = da.from_array(w, chunks=100)
    mask = Xd[:, 1] > 0
    keep = data[:, 1] > 0
    kw = dict(n_components=K, random_state=0)
    ref = GaussianMixture(**kw).fit(data[keep], sample_weight=w[keep])
    assert_same_fit(GaussianMixture(**kw).fit(Xd[mask], sample_weight=wd[mask]), ref)


# ------------------------------------------------------- without dask

NO_DASK_SCRIPT = """
import importlib.abc
import sys


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(f"{name} is blocked")
        return None


sys.meta_path.insert(0, Block())

import numpy as np

import gaussmix

X = np.random.default_rng(0).normal(size=(500, 2))
X[:250] += 6.0
gm = gaussmix.GaussianMixture(n_components=2, random_state=0).fit(X)
assert sorted(np.round(gm.means_[:, 0]).tolist()) == [0.0, 6.0], gm.means_
assert (gm.predict(X[:250]) == gm.predict(X[:1])[0]).all()
kde = gaussmix.KernelDensity(bandwidth=0.5).fit(X)
assert np.isfinite(kde.score_samples(X[:5])).all()
assert not any(m.split(".")[0] in ("dask", "distributed") for m in sys.modules)
try:
    import gaussmix.dask
except ImportError as err:
    print("MESSAGE:" + str(err))
else:
    raise SystemExit("gaussmix.dask imported without dask")
"""


def test_works_without_dask(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", NO_DASK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.split("MESSAGE:", 1)[1]
    assert "gaussmix[dask]" in message


def test_model_selection_on_a_dask_array_equals_in_memory(client, data):
    kw = dict(n_components=[1, K], covariance_type="diag", random_state=0, max_iter=300)
    w = np.random.default_rng(4).uniform(0.5, 2.0, data.shape[0])
    ref = GaussianMixtureIC(**kw).fit(data, sample_weight=w)
    Xd = da.from_array(data, chunks=((1, 149, 250, 50, 150), (D,)))
    got = GaussianMixtureIC(**kw).fit(Xd, sample_weight=w)
    for key in ("bic", "aic", "icl", "log_likelihood"):
        np.testing.assert_allclose(got.results_[key], ref.results_[key], rtol=1e-9)
    assert got.best_params_ == ref.best_params_
    assert_same_fit(got.best_estimator_, ref.best_estimator_)


def test_model_selection_on_a_dask_array_records_candidates_that_fail(client):
    X = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 20, axis=0)  # three distinct points
    Xd = da.from_array(X, chunks=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = GaussianMixtureIC([1, 5], covariance_type="full", reg_covar=0.0, random_state=0).fit(Xd)
    assert list(sel.results_["status"]) == ["fitted", "ill-defined covariance"]
    assert sel.best_params_["n_components"] == 1 and np.isinf(sel.results_["bic"][1])
