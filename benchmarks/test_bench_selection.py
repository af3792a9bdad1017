"""Model selection (S1: K = 1..10 x four covariance types, N = 100,000,
D = 5; in quick mode /100 rows and K = 1..5): GaussianMixtureIC against the loop of
fits a user writes, scikit-learn's and gaussmix's own. Every run checks
each candidate's BIC against scikit-learn's loop (computed once per data
set), rtol 1e-8."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix

from .selection import COV_TYPES, data, grid_loop

@pytest.fixture(scope="module", params=[("separated", 8.0), ("overlapping", 1.0)], ids=lambda p: p[0])
def s1(request, bench_quick):
    X = data(1_000 if bench_quick else 100_000, sep=request.param[1])
    ks = range(1, 6) if bench_quick else range(1, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bic = np.array(grid_loop(SkGaussianMixture, X, ks))
    return X, bic, ks


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn()


def test_s1_gaussmix_model_selection(benchmark, s1):
    X, bic, ks = s1
    benchmark.group = "S1 model selection"
    sel = benchmark(lambda: _quiet(lambda: gaussmix.GaussianMixtureIC(ks, random_state=0).fit(X)))
    np.testing.assert_allclose(sel.results_["bic"], bic, rtol=1e-8)
    assert list(sel.results_["param_covariance_type"]) == [c for c in COV_TYPES for _ in ks]


def test_s1_gaussmix_loop(benchmark, s1):
    X, bic, ks = s1
    benchmark.group = "S1 model selection"
    got = benchmark(lambda: _quiet(lambda: grid_loop(gaussmix.GaussianMixture, X, ks)))
    np.testing.assert_allclose(got, bic, rtol=1e-8)


@pytest.mark.slow
def test_s1_sklearn_loop(benchmark, s1):
    X, bic, ks = s1
    benchmark.group = "S1 model selection"
    got = benchmark.pedantic(lambda: _quiet(lambda: grid_loop(SkGaussianMixture, X, ks)), rounds=1)
    np.testing.assert_allclose(got, bic, rtol=1e-8)
