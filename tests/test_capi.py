"""The engine from compiled code: a Cython extension built against the
installed package (gaussmix/capi.pxd, gaussmix.get_include()) gives the
Python API's answers."""

import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import gaussmix
from gaussmix import GaussianMixture, KernelDensity

EXTENSION = '''
# distutils: language = c++
import numpy as np
from gaussmix cimport capi


def e_step(double[:, ::1] X, int cov, double[::1] weights, double[:, ::1] means, double[::1] prec_chol):
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = weights.shape[0]
    logp = np.empty(n)
    resp = np.empty((n, k))
    cdef double[::1] lp = logp
    cdef double[:, ::1] r = resp
    cdef int status
    with nogil:
        status = capi.mixture_e_step(&X[0, 0], n, d, cov, k, &weights[0], &means[0, 0],
                                     &prec_chol[0], &lp[0], &r[0, 0], 2)
    return status, logp, resp


def kde_log_sum(double[:, ::1] train, double[:, ::1] queries, double[:, ::1] whiten, int kernel):
    cdef Py_ssize_t n = train.shape[0], d = train.shape[1], m = queries.shape[0]
    out = np.empty(m)
    cdef double[::1] o = out
    cdef int status
    with nogil:
        status = capi.kde_log_sum(&train[0, 0], NULL, n, d, &queries[0, 0], m, &whiten[0, 0],
                                  kernel, &o[0], 1)
    return status, out
'''


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    cython = pytest.importorskip("Cython")
    compiler = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    build = tmp_path_factory.mktemp("capi")
    (build / "gm_ext.pyx").write_text(EXTENSION)
    packages = os.path.dirname(os.path.dirname(gaussmix.__file__))
    subprocess.run([sys.executable, "-m", "cython", "--cplus", "-3", "-I", packages, "gm_ext.pyx",
                    "-o", "gm_ext.cpp"], cwd=build, check=True, capture_output=True)
    target = "gm_ext" + sysconfig.get_config_var("EXT_SUFFIX")
    # the baseline kernels only, unoptimised: this checks the interface, and builds in seconds
    run = subprocess.run(
        [compiler, "-O0", "-DGAUSSMIX_NO_MULTIVERSION", "-Wno-psabi", "-std=c++17", "-shared", "-fPIC",
         "-I", sysconfig.get_paths()["include"], "-I", gaussmix.get_include(), "gm_ext.cpp", "-o", target],
        cwd=build, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sys.path.insert(0, str(build))
    try:
        import gm_ext
    finally:
        sys.path.remove(str(build))
    assert cython.__version__
    return gm_ext


def test_headers_and_declarations_ship_with_the_package():
    assert os.path.exists(os.path.join(gaussmix.get_include(), "gaussmix", "capi.hpp"))
    assert os.path.exists(os.path.join(os.path.dirname(gaussmix.__file__), "capi.pxd"))


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_mixture_e_step_from_cython(extension, cov):
    X = np.random.default_rng(0).normal(size=(400, 3))
    gm = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    code = ["full", "tied", "diag", "spherical"].index(cov)
    status, logp, resp = extension.e_step(X, code, gm.weights_, gm.means_,
                                          np.ascontiguousarray(gm.precisions_cholesky_).ravel())
    assert status == 0
    np.testing.assert_allclose(logp, gm.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(resp, gm.predict_proba(X), rtol=1e-10, atol=1e-14)
    X[5, 1] = np.nan
    assert extension.e_step(X, code, gm.weights_, gm.means_,
                            np.ascontiguousarray(gm.precisions_cholesky_).ravel())[0] == 2
    assert extension.e_step(X, 7, gm.weights_, gm.means_,
                            np.ascontiguousarray(gm.precisions_cholesky_).ravel())[0] == 1


def test_kde_log_sum_from_cython(extension):
    rng = np.random.default_rng(1)
    train, queries = rng.normal(size=(300, 2)), rng.normal(size=(50, 2))
    h = 0.4
    status, sums = extension.kde_log_sum(train, queries, np.eye(2) / h, 0)
    assert status == 0
    # log sum_i exp(-|q - x_i|^2 / 2h^2) = log(n) + score_samples + log((2 pi)^(d/2) h^d)
    kde = KernelDensity(bandwidth=h).fit(train)
    expected = kde.score_samples(queries) + np.log(300) + np.log(2 * np.pi * h * h)
    np.testing.assert_allclose(sums, expected, rtol=1e-12)
