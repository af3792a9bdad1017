"""The measured limits and the work counts behind compare.py's hardware bounds."""

import math

import numpy as np
import pytest

from ._hardware import Limits, Work, kde_work, live_pairs, measure_limits, mixture_work
from ._workloads import Workload, make_case


def test_measured_limits_are_rates_of_this_machine():
    limits = measure_limits(1)
    rates = [limits.fma64, limits.fma32, limits.exp64, limits.exp32, limits.read]
    assert all(math.isfinite(r) and r > 0 for r in rates)
    # float32 vectors hold twice the lanes: more multiply-adds and exps per second.
    assert limits.fma32 > 1.3 * limits.fma64
    assert limits.exp32 > limits.exp64
    # An exp is a polynomial of several multiply-adds; a multiply-add is no
    # slower than an exp.
    assert limits.exp64 < limits.fma64


def test_bound_is_the_larger_of_reading_and_computing():
    limits = Limits(1, "test", fma64=1e9, fma32=2e9, exp64=1e8, exp32=4e8, read=1e9)
    compute = Work(madds=2e9, exps=1e8)
    assert compute.seconds(limits) == pytest.approx(2.0 + 1.0)
    assert Work(madds=1e9, bytes=5e9).seconds(limits) == pytest.approx(5.0)
    assert Work(madds=2e9, exps=4e8, f32=True).seconds(limits) == pytest.approx(1.0 + 1.0)


def test_work_counts():
    n, d, k = 1000, 3, 4
    full = mixture_work(n, d, k, "full", live=n * k)
    per_pair = d * (d + 1) / 2 + d
    assert full.madds == pytest.approx(2 * n * k * per_pair + k * d**3 / 2)
    assert full.exps == n * k and full.bytes == 8 * n * d
    fewer = mixture_work(n, d, k, "full", live=n)
    assert fewer.exps == n and fewer.madds < full.madds
    diag = mixture_work(n, d, k, "diag", live=n * k)
    assert diag.madds == pytest.approx(4 * n * k * d)
    with pytest.raises(ValueError, match="spherical"):
        mixture_work(n, d, k, "spherical", live=n)
    # Leave-one-out: each unordered pair once per bandwidth.
    assert kde_work(100, 100, 2, n_bandwidths=3).exps == pytest.approx(3 * 100 * 99 / 2)
    assert kde_work(100, 50, 2).exps == 5000


@pytest.mark.parametrize(("separation", "all_live"), [(8.0, False), (1.0, True)])
def test_live_pairs_of_separated_and_overlapping_blobs(separation, all_live):
    w = Workload("t", 2000, 2, 4, "full", max_iter=2, separation=separation)
    case = make_case(w)
    live = live_pairs(case.Xs[0], case.params(0))
    if all_live:
        assert live == 2000 * 4
    else:
        # Blobs 8 standard deviations apart: most responsibilities are exactly zero.
        assert 2000 <= live < 2000 * 2
    assert np.isfinite(live)


def test_compare_plot_draws_every_checked_library(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from .compare import Outcome, plot_mixture_results

    rows = [
        (SimpleNamespace(name="G1"), {"gaussmix": Outcome(0.01), "scikit-learn": Outcome(1.5, "reference"),
                                      "oneDAL": Outcome(0.04)}),
        (SimpleNamespace(name="G2"), {"gaussmix": Outcome(0.03), "scikit-learn": Outcome(None, "fails")}),
    ]
    path = tmp_path / "bench.png"
    plot_mixture_results(rows, {"G1": 0.002, "G2": 0.01}, path)
    import matplotlib.pyplot as plt

    image = plt.imread(path)
    assert image.shape[0] > 100 and float(image[..., :3].std()) > 0.05
