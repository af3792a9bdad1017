"""Accuracy of the engine's vector exp (the E-step's and the KDE's), against libm."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gaussmix import _core

# (dtype, smallest input with a normal result, ulp bound)
CASES = [(np.float64, -708.39, 1.5), (np.float32, -87.33, 1.5)]


def _ulp_error(got, exact, dtype):
    """|got - exact| in units of the last place of exact (in dtype)."""
    ulp = np.spacing(exact.astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / ulp


@pytest.mark.parametrize("dtype, lo, bound", CASES)
def test_vector_exp_is_within_two_ulp_over_its_domain(dtype, lo, bound):
    rng = np.random.default_rng(0)
    x = np.concatenate([
        np.linspace(lo, 0.0, 200_001),
        -rng.exponential(1.0, 100_000),  # dense near 0, where responsibilities live
        -np.logspace(-12, 0, 1_001),
    ]).astype(dtype)
    out = np.empty_like(x)
    _core._vector_exp(x, out)
    exact = np.exp(x.astype(np.float64))  # float64 libm: exact enough for float32
    if dtype == np.float64:
        # correct rounding within 0.5 ulp of libm's: compare with long double
        exact = np.exp(x.astype(np.longdouble)).astype(np.float64)
    err = _ulp_error(out, exact, dtype)
    assert err.max() <= bound, f"max error {err.max():.2f} ulp at x = {x[np.argmax(err)]!r}"
    assert out[x == 0].min() == 1.0


@pytest.mark.parametrize("dtype, lo, bound", CASES)
def test_vector_exp_edges(dtype, lo, bound):
    x = np.array([-np.inf, np.nan, -1e30, 2 * lo, lo * 1.001, lo * 0.999, -0.0, 0.0, 1.0, 50.0], dtype=dtype)
    out = np.empty_like(x)
    _core._vector_exp(x, out)
    assert out[0] == 0.0 and np.isnan(out[1])
    assert out[2] == 0.0 and out[3] == 0.0 and out[4] == 0.0  # below the normal range: 0
    assert out[5] > 0 and np.isfinite(out[5])
    assert out[6] == 1.0 and out[7] == 1.0
    # a few positive values are inside the domain too
    exact = np.exp(x[8:].astype(np.float64))
    assert _ulp_error(out[8:], exact, dtype).max() <= bound


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 17, 33])
def test_vector_exp_any_length_and_does_not_touch_its_input(n):
    x = -np.arange(n, dtype=np.float64) / 3
    before = x.copy()
    out = np.full(n, -1.0)
    _core._vector_exp(x, out)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(out, np.exp(x), rtol=4e-16)


def test_vector_exp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same length"):
        _core._vector_exp(np.zeros(4), np.zeros(5))
    with pytest.raises(TypeError):
        _core._vector_exp(np.zeros(4, dtype=np.float32), np.zeros(4))


_ISA_SCRIPT = """
import json, numpy as np
from gaussmix import _core, KernelDensity, GaussianMixture
x = -np.linspace(0, 700, 10_001)
out = np.empty_like(x)
_core._vector_exp(x, out)
exact = np.exp(x.astype(np.longdouble)).astype(np.float64)
ulp = float((np.abs(out - exact) / np.spacing(exact)).max())
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 6])
kde = KernelDensity(bandwidth=0.7).fit(X).score_samples(X[:50])
gm = GaussianMixture(2, covariance_type="full", random_state=0).fit(X)
print(json.dumps({"vb": _core.vector_bytes(), "ulp": ulp, "kde": kde.tolist(),
                  "means": gm.means_.tolist(), "lb": gm.lower_bound_}))
"""


def _run_with_isa(isa):
    env = dict(os.environ)
    env.pop("GAUSSMIX_ISA", None)
    if isa is not None:
        env["GAUSSMIX_ISA"] = isa
    done = subprocess.run([sys.executable, "-c", _ISA_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("isa, width", [("avx2", 32), ("baseline", 16)])
def test_narrower_kernels_give_the_same_answers(isa, width):
    if not _core.isa_dispatch():
        pytest.skip("engine built for one instruction set (e.g. the sanitizer build): nothing to cap")
    native = _run_with_isa(None)
    capped = _run_with_isa(isa)
    assert capped["vb"] == min(width, native["vb"])
    assert capped["ulp"] <= 1.5
    np.testing.assert_allclose(capped["kde"], native["kde"], rtol=1e-13)
    np.testing.assert_allclose(capped["means"], native["means"], rtol=1e-12)
    np.testing.assert_allclose(capped["lb"], native["lb"], rtol=1e-12)
