"""Array-API input (gaussmix._array_api): with array_api_dispatch on, a
GaussianMixture fits arrays of another namespace and answers in it, with the
numpy fit's values; kmeans starts are refused as scikit-learn refuses them.

Dispatch needs SCIPY_ARRAY_API=1 before SciPy is imported, so the checks run
in a fresh process."""

import os
import subprocess
import sys
import textwrap

import pytest

from gaussmix import GaussianMixture

SCRIPT = textwrap.dedent('''
    import numpy as np
    import sklearn
    import array_api_strict as xp
    from numpy.testing import assert_allclose
    from gaussmix import GaussianMixture

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
    means_init = np.array([[-2.0, -2.0], [2.0, 2.0]])
    for cov in ("full", "tied", "diag", "spherical"):
        ref = GaussianMixture(2, covariance_type=cov, init_params="random_from_data",
                              means_init=means_init, random_state=0).fit(X)
        with sklearn.config_context(array_api_dispatch=True):
            gm = GaussianMixture(2, covariance_type=cov, init_params="random_from_data",
                                 means_init=xp.asarray(means_init), random_state=0)
            gm.fit(xp.asarray(X))
            Xq = xp.asarray(X[:7])
            outputs = [gm.predict(Xq), gm.predict_proba(Xq), gm.score_samples(Xq), *gm.sample(3)]
            assert all(type(o).__module__.startswith("array_api_strict") for o in outputs), outputs
            for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
                value = getattr(gm, name)
                assert type(value).__module__.startswith("array_api_strict"), (name, type(value))
                assert_allclose(np.asarray(value), getattr(ref, name), rtol=1e-12)
            assert_allclose(np.asarray(outputs[2]), ref.score_samples(X[:7]), rtol=1e-12)
            assert isinstance(gm.score(Xq), float) and isinstance(gm.bic(Xq), float)
            assert gm.means_init is not None and not isinstance(gm.means_init, np.ndarray)
            try:
                GaussianMixture(2).fit(X)
            except NotImplementedError as err:
                assert "Allowed `init_params`" in str(err)
            else:
                raise AssertionError("kmeans with dispatch on was not refused")
    print("ok")
''')


def test_array_api_input_round_trips_in_its_namespace():
    pytest.importorskip("array_api_strict")
    pytest.importorskip("array_api_compat")
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout[-2000:] + run.stderr[-3000:]


@pytest.mark.parametrize(
    "params, supported",
    [({}, False), ({"init_params": "random"}, True), ({"init_params": "random_from_data"}, True),
     ({"init_params": "random", "warm_start": True}, False), ({"init_params": "hierarchical"}, False)],
)
def test_tags_say_what_scikit_learn_says(params, supported):
    assert GaussianMixture(**params).__sklearn_tags__().array_api_support is supported
