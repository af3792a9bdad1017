"""EM iterations from a fixed start: gaussmix against scikit-learn.

Both libraries get the same data, the same weights_init / means_init /
precisions_init (from the true labels), tol=0 and the same max_iter, so they
run exactly the same EM iterations; each workload is one benchmark group.
Every benchmark checks its fit against scikit-learn's reference fit (means,
lower_bound_, n_iter_): rtol 1e-8 in float64, 1e-3 for float32 input.

Timing covers ``fit`` (validation and the fixed-start set-up included); the
time per EM iteration is the call time divided by max_iter * number of fits,
stored in ``extra_info`` and printed in the terminal summary.
"""

import io

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix

from ._workloads import WORKLOADS, check_models, fit_all, fit_batch

FITTERS = {
    "gaussmix": lambda Xs, params: fit_all(gaussmix.GaussianMixture, Xs, params),
    "sklearn": lambda Xs, params: fit_all(SkGaussianMixture, Xs, params),
    # workloads of many fits: all of them in one fit_many call
    "gaussmix-fit_many": fit_batch,
}
FLOAT32_WORKLOADS = ("G1", "G4")
# scikit-learn needs seconds per EM iteration on the full-size workloads.
FAST_SKLEARN_WORKLOADS = ("G5",)
ROUNDS = {"gaussmix": 5, "sklearn": 3, "gaussmix-fit_many": 5}
WARMUP_ROUNDS = {"gaussmix": 1, "sklearn": 0, "gaussmix-fit_many": 1}  # the reference fit warms scikit-learn up
RTOL = {"float64": 1e-8, "float32": 1e-3}


def _cases():
    for name in WORKLOADS:
        yield pytest.param(name, "gaussmix", "float64", id=f"{name}-gaussmix")
        if WORKLOADS[name].n_fits > 1:
            yield pytest.param(name, "gaussmix-fit_many", "float64", id=f"{name}-gaussmix-fit_many")
        if name in FLOAT32_WORKLOADS:
            yield pytest.param(name, "gaussmix", "float32", id=f"{name}-gaussmix-float32")
        marks = () if name in FAST_SKLEARN_WORKLOADS else (pytest.mark.slow,)
        yield pytest.param(name, "sklearn", "float64", id=f"{name}-sklearn", marks=marks)


@pytest.mark.parametrize(("workload", "library", "dtype"), list(_cases()))
def test_em_fixed_start(benchmark, bench_data, record_per_iteration, workload, library, dtype):
    case = bench_data.case(workload)
    reference = bench_data.reference(workload)
    w = case.workload
    Xs = case.X(np.dtype(dtype))
    params = case.all_params()
    label = library if dtype == "float64" else f"{library}-{dtype}"

    benchmark.group = f"{w.name}: {w.describe()}, max_iter={w.max_iter}"
    benchmark.extra_info.update(
        workload=w.name,
        library=library,
        dtype=dtype,
        n_samples=w.n_samples,
        n_features=w.n_features,
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        n_fits=w.n_fits,
        max_iter=w.max_iter,
        em_iterations_per_call=w.iterations,
        quick=bench_data.quick,
    )
    if library.startswith("gaussmix"):
        config = gaussmix.show_config(file=io.StringIO())
        benchmark.extra_info["threads"] = config["default_threads"]

    models = benchmark.pedantic(
        FITTERS[library],
        args=(Xs, params),
        rounds=ROUNDS[library],
        warmup_rounds=WARMUP_ROUNDS[library],
        iterations=1,
    )

    check_models(models, reference, rtol=RTOL[dtype])
    if library.startswith("gaussmix"):
        assert all(m.means_.dtype == np.dtype(dtype) for m in models)

    if benchmark.stats is not None:  # None when timing is disabled
        stats = benchmark.stats.stats
        per_iter = stats.min / w.iterations
        benchmark.extra_info["seconds_per_iteration_min"] = per_iter
        benchmark.extra_info["seconds_per_iteration_median"] = stats.median / w.iterations
        record_per_iteration(benchmark.group, label, per_iter)

