"""Variational Bayesian mixtures (B1, B2 and their overlapping twins B1o,
B2o): gaussmix against scikit-learn.

Both libraries fit the same data from the same random draws
(``init_params="random_from_data"``, k-means for the overlapping twins; one
``random_state``), ``tol=0`` and
the same ``max_iter``; each workload is one benchmark group. Every
benchmark checks its fit against scikit-learn's (means, degrees of freedom,
lower bound and iterations, rtol 1e-8).

Timing covers ``fit`` with the priors and the initialisation; the time per
iteration stored in ``extra_info`` is the call time divided by max_iter (so
it includes that set-up: ``benchmarks/compare.py`` subtracts it).
"""

import pytest
from sklearn.mixture import BayesianGaussianMixture as SkBGMM

import gaussmix

from ._workloads import BAYES_WORKLOADS, check_bayes, fit_quietly

ESTIMATORS = {"gaussmix": gaussmix.BayesianGaussianMixture, "sklearn": SkBGMM}
ROUNDS = {"gaussmix": 5, "sklearn": 2}


@pytest.fixture(scope="module")
def bayes_cases(bench_quick):
    cache = {}

    def case(name):
        if name not in cache:
            w = BAYES_WORKLOADS[name]
            w = w.quick() if bench_quick else w
            X = w.data()
            cache[name] = (w, X, fit_quietly(SkBGMM, X, w.params()))
        return cache[name]

    return case


def _cases():
    for name in BAYES_WORKLOADS:
        yield pytest.param(name, "gaussmix", id=f"{name}-gaussmix")
        yield pytest.param(name, "sklearn", id=f"{name}-sklearn", marks=(pytest.mark.slow,))


@pytest.mark.parametrize(("workload", "library"), list(_cases()))
def test_variational_fit(benchmark, bayes_cases, record_per_iteration, workload, library):
    w, X, reference = bayes_cases(workload)
    benchmark.group = f"{w.name}: {w.describe()}, max_iter={w.max_iter}"
    benchmark.extra_info.update(workload=w.name, library=library, max_iter=w.max_iter,
                                n_samples=w.n_samples)
    model = benchmark.pedantic(
        fit_quietly, args=(ESTIMATORS[library], X, w.params()),
        rounds=ROUNDS[library], warmup_rounds=1 if library == "gaussmix" else 0, iterations=1,
    )
    check_bayes(model, reference, rtol=1e-8)
    if benchmark.stats is not None:  # None when timing is disabled
        per_iter = benchmark.stats.stats.min / w.max_iter
        benchmark.extra_info["seconds_per_iteration_min"] = per_iter
        record_per_iteration(benchmark.group, library, per_iter)
