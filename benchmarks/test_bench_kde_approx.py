"""Kernel sums with a tolerance (A1: 1-D, rtol 1e-8; A3: 5-D clusters,
rtol 1e-3; see kde_approx.py; in quick mode /100 points and queries):
gaussmix's KernelDensity with the tolerance against its exact sum, and
scikit-learn's tree with the same rtol (slow). Every run checks the largest
relative error over all queries against the bound. A4: the cv_ml search."""

import numpy as np
import pytest
from sklearn.neighbors import KernelDensity as SkKernelDensity

import gaussmix

from .kde_approx import case_data, max_rel_error


@pytest.fixture(scope="module", params=["A1", "A3"])
def approx_case(request, bench_quick):
    X, Q, h, rtol = case_data(request.param, 0.01 if bench_quick else 1.0, np.random.default_rng(0))
    exact = gaussmix.KernelDensity(bandwidth=h).fit(X).score_samples(Q)
    return request.param, X, Q, h, rtol, exact


def test_gaussmix_with_tolerance(benchmark, approx_case):
    name, X, Q, h, rtol, exact = approx_case
    kde = gaussmix.KernelDensity(bandwidth=h, rtol=rtol).fit(X)
    got = benchmark.pedantic(kde.score_samples, args=(Q,), rounds=3, iterations=1, warmup_rounds=1)
    err = max_rel_error(got, exact)
    benchmark.extra_info.update(case=name, rtol=rtol, max_rel_error=err)
    assert err <= rtol * (1 + 1e-9)


def test_gaussmix_exact(benchmark, approx_case):
    name, X, Q, h, rtol, exact = approx_case
    kde = gaussmix.KernelDensity(bandwidth=h).fit(X)
    got = benchmark.pedantic(kde.score_samples, args=(Q,), rounds=1, iterations=1)
    np.testing.assert_array_equal(got, exact)


@pytest.mark.slow
def test_sklearn_tree_with_tolerance(benchmark, approx_case):
    name, X, Q, h, rtol, exact = approx_case
    m = min(len(Q), 2000)
    kde = SkKernelDensity(bandwidth=h, rtol=rtol).fit(X)
    got = benchmark.pedantic(kde.score_samples, args=(Q[:m],), rounds=1, iterations=1)
    benchmark.extra_info.update(case=name, queries_timed=m, scale_to_all=len(Q) / m,
                                max_rel_error=max_rel_error(got, exact[:m]))


def test_gaussmix_cv_ml_search(benchmark, bench_quick):
    """A4: the whole cv_ml search on 1e6 1-D points (2e4 in quick mode, where
    the leave-one-out passes start to carry a tolerance). The bandwidth found
    must beat its neighbours 1 % away on the leave-one-out likelihood."""
    from gaussmix import _kde_core

    X, _, _, _ = case_data("A4", 0.02 if bench_quick else 1.0, np.random.default_rng(0))
    kde = benchmark.pedantic(lambda: gaussmix.KernelDensity(bandwidth="cv_ml").fit(X), rounds=1, iterations=1)
    h = kde.bandwidth_
    index = _kde_core.build_index(X, None, np.eye(1), 2)
    rtol = _kde_core.cv_rtol(len(X))

    def loo(b):
        return _kde_core.leave_one_out_log_likelihood(X, None, index, 1.0 / b, "gaussian", 2, rtol)

    best = loo(h)
    benchmark.extra_info.update(case="A4", n=len(X), bandwidth=h, rtol=rtol)
    assert best >= loo(h * 1.01) and best >= loo(h / 1.01)
