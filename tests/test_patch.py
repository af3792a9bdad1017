"""patch_sklearn: scikit-learn's and SciPy's names rebound to gaussmix's classes.

The judge is the peers' own test files, run unmodified in a process that
patched first; the unit tests below check the patching itself (every module
that defines a name, idempotence, exact restoration, the opt-out, the
warning about names bound earlier, the log of calls).
"""

import logging
import os
import re
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.stats
import sklearn
import sklearn.mixture
import sklearn.mixture._gaussian_mixture
import sklearn.neighbors
from numpy.testing import assert_array_equal

import gaussmix
from gaussmix import _patch

ORIGINALS = {
    ("sklearn.mixture", "GaussianMixture"): sklearn.mixture.GaussianMixture,
    ("sklearn.mixture", "BayesianGaussianMixture"): sklearn.mixture.BayesianGaussianMixture,
    ("sklearn.neighbors", "KernelDensity"): sklearn.neighbors.KernelDensity,
    ("scipy.stats", "gaussian_kde"): scipy.stats.gaussian_kde,
}


@pytest.fixture(autouse=True)
def _unpatched():
    gaussmix.unpatch_sklearn()
    with warnings.catch_warnings():
        # this test module itself holds originals bound before patching
        warnings.filterwarnings("ignore", message="These names were bound before patching")
        yield
    gaussmix.unpatch_sklearn()


def test_patch_rebinds_every_module_and_unpatch_restores_the_originals():
    done = gaussmix.patch_sklearn()
    assert "sklearn.mixture._gaussian_mixture.GaussianMixture" in done
    assert sklearn.mixture.GaussianMixture is gaussmix.GaussianMixture
    assert sklearn.mixture._gaussian_mixture.GaussianMixture is gaussmix.GaussianMixture
    assert sklearn.mixture.BayesianGaussianMixture is gaussmix.BayesianGaussianMixture
    assert sklearn.neighbors.KernelDensity is gaussmix.KernelDensity
    assert sys.modules["sklearn.neighbors._kde"].KernelDensity is gaussmix.KernelDensity
    assert scipy.stats.gaussian_kde is gaussmix.gaussian_kde
    assert sys.modules["scipy.stats._kde"].gaussian_kde is gaussmix.gaussian_kde
    assert gaussmix.sklearn_is_patched()
    gaussmix.patch_sklearn()  # idempotent: the originals are kept, not overwritten
    gaussmix.unpatch_sklearn()
    for (module, name), obj in ORIGINALS.items():
        assert getattr(sys.modules[module], name) is obj
    assert sys.modules["sklearn.mixture._gaussian_mixture"].GaussianMixture is ORIGINALS[
        ("sklearn.mixture", "GaussianMixture")]
    assert not gaussmix.sklearn_is_patched()


def test_patch_a_subset_and_query_it():
    gaussmix.patch_sklearn("KernelDensity")
    state = gaussmix.sklearn_is_patched(return_map=True)
    assert state == {"GaussianMixture": False, "BayesianGaussianMixture": False,
                     "KernelDensity": True, "gaussian_kde": False}
    assert sklearn.mixture.GaussianMixture is ORIGINALS[("sklearn.mixture", "GaussianMixture")]
    with pytest.raises(ValueError, match="Cannot patch .*'KDE'"):
        gaussmix.patch_sklearn(["KDE"])


def test_context_manager_restores_on_error_and_keeps_earlier_patches():
    gaussmix.patch_sklearn("gaussian_kde")
    with pytest.raises(RuntimeError):
        with gaussmix.sklearn_patched():
            assert sklearn.mixture.GaussianMixture is gaussmix.GaussianMixture
            raise RuntimeError
    assert sklearn.mixture.GaussianMixture is ORIGINALS[("sklearn.mixture", "GaussianMixture")]
    assert scipy.stats.gaussian_kde is gaussmix.gaussian_kde  # patched before: still patched


def test_results_through_the_patched_names_are_gaussmixs():
    X = np.random.default_rng(0).normal(size=(300, 2))
    with gaussmix.sklearn_patched():
        gm = sklearn.mixture.GaussianMixture(3, random_state=0).fit(X)
        kde = scipy.stats.gaussian_kde(X.T)
        manhattan = sklearn.neighbors.KernelDensity(metric="manhattan").fit(X)
    ref = gaussmix.GaussianMixture(3, random_state=0).fit(X)
    assert type(gm) is gaussmix.GaussianMixture
    assert_array_equal(gm.means_, ref.means_)
    assert_array_equal(kde(X[:5].T), gaussmix.gaussian_kde(X.T)(X[:5].T))
    # a metric gaussmix does not compute itself still works, through scikit-learn's trees
    theirs = ORIGINALS[("sklearn.neighbors", "KernelDensity")](metric="manhattan").fit(X)
    np.testing.assert_allclose(manhattan.score_samples(X[:5]), theirs.score_samples(X[:5]), rtol=1e-12)


def test_names_bound_before_patching_are_reported():
    early = types.ModuleType("user_code_imported_early")
    early.GM = ORIGINALS[("sklearn.mixture", "GaussianMixture")]
    sys.modules[early.__name__] = early
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gaussmix.patch_sklearn()
        texts = [str(w.message) for w in caught if "bound before patching" in str(w.message)]
        assert texts and "user_code_imported_early.GM (bound to sklearn.mixture.GaussianMixture)" in texts[0]
    finally:
        del sys.modules[early.__name__]


def test_the_environment_opts_out(monkeypatch):
    monkeypatch.setenv("GAUSSMIX_NO_PATCH", "1")
    with pytest.warns(UserWarning, match="GAUSSMIX_NO_PATCH"):
        assert gaussmix.patch_sklearn() == []
    assert sklearn.mixture.GaussianMixture is ORIGINALS[("sklearn.mixture", "GaussianMixture")]


def test_calls_that_ran_on_gaussmix_are_logged(caplog):
    X = np.random.default_rng(1).normal(size=(100, 2))
    with caplog.at_level(logging.INFO, logger="gaussmix.patch"):
        gaussmix.GaussianMixture(2).fit(X)  # not patched: nothing to log
        assert not caplog.records
        with gaussmix.sklearn_patched():
            sklearn.mixture.GaussianMixture(2).fit(X)
            scipy.stats.gaussian_kde(X.T)
            sklearn.neighbors.KernelDensity(metric="manhattan").fit(X)  # scikit-learn's trees
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["sklearn.mixture.GaussianMixture.fit ran on gaussmix",
                        "scipy.stats.gaussian_kde.__init__ ran on gaussmix"]


def test_run_a_script_patched(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(
        "import sys\n"
        "from sklearn.mixture import GaussianMixture\n"
        "print(GaussianMixture.__module__, sys.argv[1:])\n"
    )
    run = subprocess.run([sys.executable, "-m", "gaussmix", "run", str(script), "a", "--b"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "gaussmix._gaussian_mixture ['a', '--b']"


# The peers' tests that fail under the patch, each a deliberate difference.
KNOWN_DIFFERENCES = {
    # reg_covar=0 and a component on one point: gaussmix's centred scatter is
    # exactly 0 (ill-defined, an error); scikit-learn's E[x^2] - E[x]^2 leaves
    # 4e-16 of rounding and goes on
    "test_gaussian_mixture_setting_best_params",
    # mocks scikit-learn's private _estimate_gaussian_parameters, which
    # gaussmix's engine never calls
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters",
    # expects NotImplementedError from sample() for most kernels; gaussmix
    # samples from every kernel
    "test_kernel_density_sampling",
}


def test_peers_test_files_pass_in_a_patched_process(tmp_path):
    files = [
        os.path.join(os.path.dirname(sklearn.__file__), "mixture", "tests", "test_gaussian_mixture.py"),
        os.path.join(os.path.dirname(sklearn.__file__), "neighbors", "tests", "test_kde.py"),
        os.path.join(os.path.dirname(scipy.stats.__file__), "tests", "test_kdeoth.py"),
    ]
    if not all(os.path.exists(f) for f in files):
        pytest.skip("this scikit-learn or SciPy installation ships no tests")
    (tmp_path / "patch_first.py").write_text("import gaussmix\ngaussmix.patch_sklearn()\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GAUSSMIX_NO_PATCH", None)
    env["SCIPY_ARRAY_API"] = "1"  # their array-API tests too (array-api-strict is a test dependency)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-p", "patch_first",
         "-W", "ignore::DeprecationWarning", "--pyargs", "sklearn.mixture.tests.test_gaussian_mixture",
         "sklearn.neighbors.tests.test_kde", "scipy.stats.tests.test_kdeoth"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900,
    )
    failed = {re.sub(r"\[.*", "", m) for m in re.findall(r"^FAILED \S*::(\S+)", run.stdout, re.M)}
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed.group(1)) >= 100, run.stdout[-3000:] + run.stderr[-2000:]
    assert "error" not in run.stdout.splitlines()[-1], run.stdout[-3000:]
    assert failed <= KNOWN_DIFFERENCES, failed - KNOWN_DIFFERENCES
