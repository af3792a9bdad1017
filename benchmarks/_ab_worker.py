"""One sample of an A/B comparison: one workload, timed in this process.

    python benchmarks/_ab_worker.py WORKLOAD [--quick] [--inner 3] [--threads N]

ab.py starts this script in a fresh interpreter for every sample, so that the
two builds compared never share a process. The data comes from the
_workloads.py beside this file (the checkout running ab.py, the same for both
sides); gaussmix is whatever this interpreter imports (the build under test,
put first on the path by ab.py through PYTHONPATH, or the one installed in
the environment of the given python).

The workload's data is built once, the call is run once untimed (the
warm-up), then ``--inner`` times timed. One JSON line on stdout tells which
gaussmix ran (its ``__file__``, so that ab.py can check it is the build it
meant) and the times, in seconds.

Mixtures (G*) fit ``GaussianMixture`` on each data set of the workload from
its fixed start (tol=0, so every fit runs max_iter iterations);
variational mixtures (B*) fit ``BayesianGaussianMixture``, initialisation
included; kernel densities (K1-K3) fit ``KernelDensity`` and score every
query; K4 runs ``select_bandwidth``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workloads import (  # noqa: E402
    BAYES_WORKLOADS,
    WORKLOADS,
    all_workloads,
    fit_all,
    fit_quietly,
    make_case,
    make_kde_case,
)

ALL_WORKLOADS = all_workloads()


def workload_call(workload, n_jobs=None):
    """The timed call of ``workload``, its data built: a function of no arguments."""
    import gaussmix

    jobs = {} if n_jobs is None else {"n_jobs": n_jobs}
    name = workload.name
    if name in WORKLOADS:
        case = make_case(workload)
        Xs, params = case.X(), case.all_params()
        return lambda: fit_all(gaussmix.GaussianMixture, Xs, params, **jobs)
    if name in BAYES_WORKLOADS:
        X, params = workload.data(), {**workload.params(), **jobs}
        return lambda: fit_quietly(gaussmix.BayesianGaussianMixture, X, params)
    case = make_kde_case(workload)
    if workload.kind == "cv_ml":
        return lambda: gaussmix.select_bandwidth(case.X, **jobs)
    return lambda: gaussmix.KernelDensity(bandwidth=case.h, **jobs).fit(case.X).score_samples(case.Q)


def time_calls(fn, inner):
    """One untimed call, then ``inner`` timed ones: their times in seconds."""
    fn()
    times = []
    for _ in range(inner):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time one workload with the gaussmix this interpreter imports.")
    parser.add_argument("workload", choices=list(ALL_WORKLOADS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import gaussmix

    workload = ALL_WORKLOADS[args.workload]
    if args.quick:
        workload = workload.quick()
    times = time_calls(workload_call(workload, args.threads), args.inner)
    result = {
        "gaussmix": gaussmix.__file__,
        "version": gaussmix.__version__,
        "workload": workload.name,
        "times": times,
        "best": min(times),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
