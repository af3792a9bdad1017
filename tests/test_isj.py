"""The improved Sheather-Jones bandwidth (gaussmix._isj): against a port of
Botev et al.'s reference code (kde-diffusion), its risk against Silverman's
rule, and its three entry points."""

import numpy as np
import pytest
from scipy.stats import norm

from gaussmix import KernelDensity, gaussian_kde, select_bandwidth
from gaussmix._isj import CANONICAL_SCALE, isj_bandwidth

DENSITIES = {
    "normal": lambda rng, n: rng.normal(size=n),
    "bimodal": lambda rng, n: np.r_[rng.normal(-2, 0.3, n // 2), rng.normal(1.5, 1.0, n - n // 2)],
    "skewed": lambda rng, n: rng.lognormal(size=n),
    "heavy-tailed": lambda rng, n: rng.standard_t(3, size=n),
}


@pytest.mark.parametrize("name", list(DENSITIES))
@pytest.mark.parametrize("n", [80, 3000])
def test_isj_is_the_reference_codes_bandwidth(name, n):
    kde_diffusion = pytest.importorskip("kde_diffusion")
    x = DENSITIES[name](np.random.default_rng(n), n)
    _, _, reference = kde_diffusion.kde1d(x, n=2**14)
    assert isj_bandwidth(x) == pytest.approx(reference, rel=1e-3)


def _ise(x, h, weights, means, sds):
    """Integrated squared error of a Gaussian KDE (bandwidth h) against a
    Gaussian mixture, in closed form."""
    n = x.shape[0]
    d = x[:, None] - x[None, :]
    kk = norm.pdf(d, scale=np.sqrt(2) * h).sum() / n**2
    kf = sum(w * norm.pdf(x - m, scale=np.sqrt(h**2 + s**2)).sum() / n for w, m, s in zip(weights, means, sds))
    ff = sum(wa * wb * norm.pdf(ma - mb, scale=np.hypot(sa, sb))
             for wa, ma, sa in zip(weights, means, sds) for wb, mb, sb in zip(weights, means, sds))
    return kk - 2 * kf + ff


def test_isj_beats_silvermans_rule_on_a_multimodal_density():
    weights, means, sds = (0.5, 0.3, 0.2), (-3.0, 0.0, 2.5), (0.4, 1.0, 0.3)
    rng = np.random.default_rng(5)
    ise = {"isj": [], "silverman": []}
    for _ in range(20):
        comp = rng.choice(3, size=500, p=weights)
        x = rng.normal(np.take(means, comp), np.take(sds, comp))
        for method in ise:
            kde = gaussian_kde(x, bw_method=method)
            ise[method].append(_ise(x, float(np.sqrt(kde.covariance[0, 0])), weights, means, sds))
    assert np.mean(ise["isj"]) < 0.5 * np.mean(ise["silverman"])


def test_entry_points_agree_and_scale_to_other_kernels():
    x = DENSITIES["bimodal"](np.random.default_rng(0), 1000)
    h = isj_bandwidth(x)
    assert KernelDensity(bandwidth="isj").fit(x[:, None]).bandwidth_ == h
    assert select_bandwidth(x[:, None], "isj") == h
    kde = gaussian_kde(x, bw_method="isj")
    assert np.sqrt(kde.covariance[0, 0]) == pytest.approx(h, rel=1e-12)
    # canonical scales: the Epanechnikov bandwidth is 2.214 times the Gaussian (Marron & Nolan 1988)
    epa = KernelDensity(kernel="epanechnikov", bandwidth="isj").fit(x[:, None]).bandwidth_
    assert epa / h == pytest.approx(2.2138, abs=1e-4)
    assert CANONICAL_SCALE["tophat"] / CANONICAL_SCALE["gaussian"] == pytest.approx(1.7400, abs=1e-4)


def test_weights_and_zero_weights():
    rng = np.random.default_rng(1)
    x = DENSITIES["skewed"](rng, 600)
    w = rng.uniform(0.5, 2.0, 600)
    w[::4] = 0.0
    assert isj_bandwidth(x, w) == isj_bandwidth(x[w > 0], w[w > 0])
    kde = gaussian_kde(x, bw_method="isj", weights=w)
    assert np.sqrt(kde.covariance[0, 0]) == pytest.approx(isj_bandwidth(x, w), rel=1e-12)


def test_isj_needs_one_dimensional_data_with_spread():
    X = np.random.default_rng(2).normal(size=(100, 2))
    with pytest.raises(ValueError, match="'isj' is defined for 1-D data"):
        KernelDensity(bandwidth="isj").fit(X)
    with pytest.raises(ValueError, match="'isj' is defined for 1-D data"):
        select_bandwidth(X, "isj")
    with pytest.raises(ValueError, match="'isj' is defined for 1-D data"):
        gaussian_kde(X.T, bw_method="isj")
    with pytest.raises(ValueError, match="two distinct"):
        isj_bandwidth(np.ones(10))
