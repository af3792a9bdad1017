"""Interruption and concurrency: the engine under Ctrl-C and many Python threads."""

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gaussmix import GaussianMixture, KernelDensity
from gmm_data import make_blobs_data

INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import _thread, signal, threading, warnings
    import numpy as np
    from gaussmix import GaussianMixture, KernelDensity

    # A process started in the background inherits SIGINT ignored, and then
    # interrupt_main does nothing: install Python's handler as a terminal would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 6))
    what = {what!r}

    if what == "fit":
        est = GaussianMixture(8, max_iter=10**9, tol=0, init_params="random_from_data",
                              random_state=0)
        call = lambda: est.fit(X)
    elif what == "refit":
        est = GaussianMixture(8, max_iter=3, tol=0, init_params="random_from_data",
                              random_state=0).fit(X[:1000])
        before = est.means_.copy()
        est.set_params(max_iter=10**9)
        call = lambda: est.fit(X)
    else:
        est = KernelDensity(bandwidth=0.3).fit(X[:, :1])
        call = lambda: [est.score_samples(X[:, :1]) for _ in range(10**6)]

    threading.Timer(0.5, _thread.interrupt_main).start()
    try:
        call()
        print("COMPLETED")
    except KeyboardInterrupt:
        if what == "fit":
            print("INTERRUPTED", hasattr(est, "means_"))
        elif what == "refit":
            print("INTERRUPTED", bool(np.array_equal(est.means_, before)))
        else:
            print("INTERRUPTED", True)
    """
)


@pytest.mark.parametrize("what", ["fit", "refit", "kde"])
def test_ctrl_c_interrupts_and_leaves_the_estimator_as_it_was(what):
    # Without interruption each call would run for days; the subprocess
    # timeout turns a missed interrupt into a failure instead of a hang.
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT.format(what=what)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "INTERRUPTED", result.stdout
    if what == "fit":
        assert lines[1] == "False"  # a first fit that was interrupted leaves no fitted state
    else:
        assert lines[1] == "True"  # a refit leaves the previous parameters


def _fit_and_score(args):
    covariance_type, seed, X = args
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=seed, n_jobs=2)
    gm.fit(X)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    return gm.means_, gm.score_samples(X), kde.score_samples(X[:200])


def test_many_python_threads_give_the_serial_results():
    X, _ = make_blobs_data(n=5000, d=3, k=3, seed=3)
    jobs = [(ct, seed, X) for ct in ("full", "tied", "diag", "spherical") for seed in range(4)]
    serial = [_fit_and_score(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(_fit_and_score, jobs))
    for a, b in zip(serial, threaded):
        for x, y in zip(a, b):
            assert_array_equal(x, y)
