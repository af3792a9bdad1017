"""EM on data that is not one in-memory array: memory maps, chunk lists, Dask.

Workload O1 (N=1,000,000 x 8, K=8 full, max_iter=3; N / 100 at quick sizes)
is a data set of well-separated blobs with a fixed start from the true
labels, as in test_bench_gmm.py, written once per test run to a .npy file in
a temporary directory. The same fit (same start, tol=0, so exactly max_iter
EM iterations) runs on:

- ``in-memory``: ``fit(X)`` on the array (label ``gaussmix``, the base of the
  ratios in the terminal summary);
- ``memmap``: ``fit(np.load(path, mmap_mode="r"))``, streamed block by block;
- ``fit_chunks``: ``fit_chunks`` over a list of 8 row blocks of the array;
- ``dask`` (marked ``slow``; skipped without ``distributed``):
  ``fit(gaussmix.dask.from_npy(path, block_rows=N / 8))`` on a LocalCluster
  of 2 single-threaded worker processes, the workers reading the file.

Timing covers ``fit`` / ``fit_chunks`` (the memory map and chunk fits
include their validating pass over the data, the Dask fit its scheduling);
the time per EM iteration is the call time / max_iter, stored in
``extra_info`` and printed in the terminal summary. Every benchmark checks its
fit against scikit-learn's fit of the same array from the same start (means,
lower_bound_, n_iter_: rtol 1e-8) and against the in-memory gaussmix fit.

benchmarks/out_of_core.py measures the same paths on a multi-gigabyte file,
with peak memory.
"""

import io
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import gaussmix

from ._workloads import Workload, check_models, fit_all, make_case, reference_fit

WORKLOAD = Workload("O1", 1_000_000, 8, 8, "full", max_iter=3)
N_CHUNKS = 8
ROUNDS = 5
WARMUP_ROUNDS = 1
RTOL = 1e-8
LABELS = {
    "in-memory": "gaussmix",
    "memmap": "gaussmix-memmap",
    "fit_chunks": "gaussmix-fit_chunks",
    "dask": "gaussmix-dask",
}


class OutOfCoreData:
    """The workload's data, its .npy file, and the reference fits."""

    def __init__(self, quick, directory):
        self.quick = quick
        self.workload = WORKLOAD.quick() if quick else WORKLOAD
        self.case = make_case(self.workload)
        self.X = self.case.X()[0]
        self.params = self.case.params()
        self.path = directory / "o1.npy"
        np.save(self.path, self.X)
        self.reference = reference_fit(self.case)
        self.in_memory = fit_all(gaussmix.GaussianMixture, [self.X], [self.params])

    def chunks(self):
        return np.array_split(self.X, N_CHUNKS)

    def block_rows(self):
        return -(-self.workload.n_samples // N_CHUNKS)


@pytest.fixture(scope="module")
def ooc_data(bench_quick, tmp_path_factory):
    return OutOfCoreData(bench_quick, tmp_path_factory.mktemp("out_of_core"))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.array")
    # No dashboard; the scheduler's HTTP server on a free port (the default,
    # 8787, may be taken by another cluster, which is only a warning).
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
    ) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


def _fit(estimator_params, X):
    return fit_all(gaussmix.GaussianMixture, [X], [estimator_params])


def _fit_chunks(estimator_params, chunks):
    """Like fit_all, for fit_chunks (tol=0: the ConvergenceWarning is by design)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [gaussmix.GaussianMixture(**estimator_params).fit_chunks(chunks)]


def _run(benchmark, record_per_iteration, data, path_name, fn, args):
    w = data.workload
    benchmark.group = f"{w.name}: {w.describe()}, max_iter={w.max_iter}, out of core"
    benchmark.extra_info.update(
        workload=w.name,
        data=path_name,
        n_samples=w.n_samples,
        n_features=w.n_features,
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        max_iter=w.max_iter,
        em_iterations_per_call=w.iterations,
        threads=gaussmix.show_config(file=io.StringIO())["default_threads"],
        quick=data.quick,
    )
    models = benchmark.pedantic(
        fn, args=args, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )
    check_models(models, data.reference, rtol=RTOL)
    np.testing.assert_allclose(
        models[0].means_, data.in_memory[0].means_, rtol=RTOL, atol=RTOL,
        err_msg="means_ against the in-memory gaussmix fit",
    )
    np.testing.assert_allclose(
        models[0].covariances_, data.in_memory[0].covariances_, rtol=RTOL, atol=RTOL,
        err_msg="covariances_ against the in-memory gaussmix fit",
    )
    assert models[0].n_features_in_ == w.n_features
    if benchmark.stats is not None:  # None when timing is disabled
        stats = benchmark.stats.stats
        per_iter = stats.min / w.iterations
        benchmark.extra_info["seconds_per_iteration_min"] = per_iter
        benchmark.extra_info["seconds_per_iteration_median"] = stats.median / w.iterations
        record_per_iteration(benchmark.group, LABELS[path_name], per_iter)
    return models


def test_out_of_core_in_memory(benchmark, ooc_data, record_per_iteration):
    _run(benchmark, record_per_iteration, ooc_data, "in-memory", _fit, (ooc_data.params, ooc_data.X))


def test_out_of_core_memmap(benchmark, ooc_data, record_per_iteration):
    X = np.load(ooc_data.path, mmap_mode="r")
    assert isinstance(X, np.memmap)
    _run(benchmark, record_per_iteration, ooc_data, "memmap", _fit, (ooc_data.params, X))


def test_out_of_core_fit_chunks(benchmark, ooc_data, record_per_iteration):
    chunks = ooc_data.chunks()
    assert len(chunks) == N_CHUNKS
    _run(
        benchmark, record_per_iteration, ooc_data, "fit_chunks", _fit_chunks,
        (ooc_data.params, chunks),
    )


@pytest.mark.slow
def test_out_of_core_dask(benchmark, ooc_data, record_per_iteration, dask_client):
    import gaussmix.dask as gdask

    X = gdask.from_npy(ooc_data.path, block_rows=ooc_data.block_rows())
    assert len(X.chunks[0]) == N_CHUNKS
    _run(benchmark, record_per_iteration, ooc_data, "dask", _fit, (ooc_data.params, X))
