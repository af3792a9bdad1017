"""Coverage-guided fuzzing of the raw binding's array entry points (atheris).

Coverage guides the harness's own branches (which entry point, which shape,
dtype, order and kind of values); the engine is built with gcc, so its native
code is not instrumented for coverage -- run this under the sanitizer build
(.ci/sanitize does) to catch out-of-bounds reads and undefined behaviour.

Every call into gaussmix._core gets arrays of fuzzed shape, dtype, memory
order and content, with fuzzed parameters. A call may succeed or raise
ValueError/TypeError (wrong shapes, dtypes, orders, values) or the engine's
ill-defined-covariance ValueError; anything else -- another exception, a
crash, a sanitizer report -- is a finding. Run for a fixed number of inputs:

    python tests/fuzz_core.py -runs=20000
"""

import sys
import warnings

import atheris

import numpy as np

from gaussmix import _core

COV_TYPES = ["full", "tied", "diag", "spherical", "bogus"]
KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine", "bogus"]
DTYPES = [np.float64, np.float32, np.int64, np.float16]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, 1e300, -1e300, np.inf, -np.inf, np.nan]


@atheris.instrument_func
def _array(fdp, shape, dtype=np.float64):
    """An array of the given shape: fuzzed dtype, order, contiguity and values.

    Mostly of the expected dtype, C-ordered and writable, so that most calls
    get past the binding's checks into the engine; sometimes anything else.
    """
    n = int(np.prod(shape)) if shape else 1
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        values = np.array(fdp.ConsumeFloatListInRange(n, -1e3, 1e3), dtype=np.float64)
    elif kind == 1:
        values = np.array(fdp.ConsumeRegularFloatList(n), dtype=np.float64) if n else np.zeros(0)
    elif kind == 2:
        values = np.array([SPECIAL[fdp.ConsumeIntInRange(0, len(SPECIAL) - 1)] for _ in range(n)])
    else:
        values = np.zeros(n)
    if values.size < n:
        values = np.resize(values, n) if values.size else np.zeros(n)
    if fdp.ConsumeIntInRange(0, 4) == 0:
        dtype = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)]
    with np.errstate(all="ignore"):
        a = values.reshape(shape).astype(dtype)
    layout = fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeIntInRange(0, 3) == 0 else 0
    if layout == 1 and a.ndim >= 2:
        a = np.asfortranarray(a)
    elif layout == 2 and a.ndim >= 1 and a.shape[0] > 0:
        a = np.repeat(a, 2, axis=0)[::2]  # non-contiguous view
    elif layout == 3:
        a.setflags(write=False)
    return a


def _shape(fdp, ndim_max=3, dim_max=6):
    ndim = fdp.ConsumeIntInRange(0, ndim_max)
    return tuple(fdp.ConsumeIntInRange(0, dim_max) for _ in range(ndim))


def _maybe(fdp, make):
    return make() if fdp.ConsumeBool() else None


@atheris.instrument_func
def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 9)
    n = fdp.ConsumeIntInRange(0, 40)
    d = fdp.ConsumeIntInRange(0, 5)
    k = fdp.ConsumeIntInRange(0, 4)
    cov = COV_TYPES[fdp.ConsumeIntInRange(0, len(COV_TYPES) - 1)]
    xdtype = np.float32 if fdp.ConsumeBool() else np.float64
    X = _array(fdp, (n, d) if fdp.ConsumeIntInRange(0, 4) else _shape(fdp), xdtype)
    sw = _maybe(fdp, lambda: _array(fdp, (n,) if fdp.ConsumeBool() else _shape(fdp, 2)))
    threads = fdp.ConsumeIntInRange(1, 3) if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeIntInRange(-1, 0)
    prec_shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}.get(cov, (k,))
    if not fdp.ConsumeIntInRange(0, 4):
        prec_shape = _shape(fdp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if which == 0:
                out = {}
                if fdp.ConsumeBool():
                    out["log_prob_norm"] = _array(fdp, (n,), xdtype)
                if fdp.ConsumeBool():
                    out["resp"] = _array(fdp, (n, k), xdtype)
                if fdp.ConsumeBool():
                    out["labels"] = np.zeros(fdp.ConsumeIntInRange(0, 41), dtype=np.int64)
                _core.e_step(X, sw, cov, _array(fdp, (k,)), _array(fdp, (k, d)),
                             _array(fdp, prec_shape), n_threads=threads, **out)
            elif which == 1:
                _core.em_fit(X, sw, cov, _array(fdp, (k,)), _array(fdp, (k, d)),
                             _array(fdp, prec_shape), tol=fdp.ConsumeFloat(),
                             max_iter=fdp.ConsumeIntInRange(-1, 5),
                             reg_covar=fdp.ConsumeFloat(),
                             prev_lower_bound=fdp.ConsumeFloat(), n_threads=threads)
            elif which == 2:
                m = fdp.ConsumeIntInRange(0, 4)
                cand = np.array([fdp.ConsumeIntInRange(-1, n) for _ in range(m)], dtype=np.int64)
                closest = _array(fdp, (n,), xdtype) if fdp.ConsumeBool() else None
                shift = _array(fdp, (d,), xdtype) if fdp.ConsumeBool() else None
                _core.kmeans_sq_dists(X, shift, cand, closest, _array(fdp, (m, n), xdtype), threads)
            elif which == 3:
                shift = _array(fdp, (d,), xdtype) if fdp.ConsumeBool() else None
                labels = np.zeros(n, dtype=np.int64)
                sw = None if sw is None else sw.astype(xdtype)
                if fdp.ConsumeBool():
                    _core.kmeans_assign(X, sw, shift, _array(fdp, (k, d)), labels,
                                        _array(fdp, (k, d)), _array(fdp, (k,)), threads)
                elif fdp.ConsumeBool():
                    _core.kmeans_assign(X, sw, shift, _array(fdp, (k, d)), labels, n_threads=threads)
                else:
                    centers = _array(fdp, (k, d))
                    sums = centers if fdp.ConsumeIntInRange(0, 7) == 0 else _array(fdp, (k, d))
                    _core.kmeans_lloyd(X, sw, shift, centers, labels, sums, _array(fdp, (k,)),
                                       fdp.ConsumeIntInRange(-1, 4), fdp.ConsumeFloat(), threads)
            elif which == 4:
                labels = np.array([fdp.ConsumeIntInRange(-2, 5) for _ in range(n)], dtype=np.int64)
                stats = _core.stats_from_labels(X, sw, labels, _array(fdp, (k, d)), cov, threads)
                stats.centred().blend(stats.centred(), fdp.ConsumeFloat())
                stats.m_step(fdp.ConsumeFloat(), initial=fdp.ConsumeBool())
            elif which == 5:
                stats = _core.stats_from_resp(X, sw, _array(fdp, (n, k), xdtype), cov, threads)
                (stats + stats).normalised().m_step(fdp.ConsumeFloat())
                prior_cov = {"full": (d, d), "tied": (d, d), "diag": (d,)}.get(cov, (1,))
                vb = _core.VariationalBayes(
                    cov, "dirichlet_process" if fdp.ConsumeBool() else "dirichlet_distribution",
                    fdp.ConsumeFloat(), fdp.ConsumeFloat(), _array(fdp, (d,)), fdp.ConsumeFloat(),
                    _array(fdp, prior_cov), reg_covar=fdp.ConsumeFloat())
                params = vb.posterior(stats)
                vb.log_constants(params)
                vb.fit(X, sw, params, tol=0.0, max_iter=fdp.ConsumeIntInRange(-1, 3),
                       prev_lower_bound=-np.inf, n_threads=threads)
            elif which == 6:
                g = fdp.ConsumeIntInRange(0, 4)
                cuts = sorted(fdp.ConsumeIntInRange(-1, n + 1) for _ in range(max(g - 1, 0)))
                offsets = np.array([0, *cuts, n] if g else [0], dtype=np.int64)
                n_init = fdp.ConsumeIntInRange(0, 2)
                init = fdp.ConsumeIntInRange(-1, 5)
                slots = max(g, 0) * max(n_init, 0)
                cuts_u = np.array(
                    [0, *sorted(fdp.ConsumeIntInRange(0, 60) for _ in range(slots))], dtype=np.int64
                )
                draws = np.abs(_array(fdp, (fdp.ConsumeIntInRange(0, 80),))) % 1.0
                stack = lambda shape: _maybe(fdp, lambda: _array(fdp, (g, *shape)))  # noqa: E731
                res = _core.fit_groups(
                    X, sw, offsets, cov, k, tol=fdp.ConsumeFloat(), reg_covar=fdp.ConsumeFloat(),
                    max_iter=fdp.ConsumeIntInRange(-1, 4), n_init=n_init, init=init,
                    draws=draws, draw_offsets=cuts_u, weights_init=stack((k,)),
                    means_init=stack((k, d)), precisions_cholesky_init=stack(prec_shape),
                    covariances_init=stack(prec_shape), n_threads=threads,
                )
                out = {"log_prob_norm": _array(fdp, (n,), xdtype)} if fdp.ConsumeBool() else {}
                _core.e_step_groups(X, offsets, cov, res["weights"], res["means"],
                                    res["precisions_cholesky"], res["status"] == 0,
                                    n_threads=threads, **out)
            elif which == 7 and fdp.ConsumeBool():  # model selection: many candidates
                n_k = fdp.ConsumeIntInRange(0, 3)
                ks = np.array([fdp.ConsumeIntInRange(-1, 5) for _ in range(n_k)], dtype=np.int64)
                n_c = fdp.ConsumeIntInRange(0, 4)
                k_index = np.array([fdp.ConsumeIntInRange(-1, n_k) for _ in range(n_c)], dtype=np.int64)
                covs = [COV_TYPES[fdp.ConsumeIntInRange(0, len(COV_TYPES) - 1)] for _ in range(n_c)]
                n_init = fdp.ConsumeIntInRange(0, 2)
                slots = n_k * max(n_init, 0)
                init = fdp.ConsumeIntInRange(-1, 6)
                cuts = np.array([0, *sorted(fdp.ConsumeIntInRange(0, 60) for _ in range(slots))], dtype=np.int64)
                draws = np.abs(_array(fdp, (fdp.ConsumeIntInRange(0, 80),))) % 1.0
                labels = np.array(
                    [fdp.ConsumeIntInRange(-2, 5) for _ in range(slots * n)], dtype=np.int64
                ).reshape(slots, n)
                res = _core.fit_grid(
                    X, sw, ks, k_index, covs, tol=fdp.ConsumeFloat(), reg_covar=fdp.ConsumeFloat(),
                    max_iter=fdp.ConsumeIntInRange(-1, 4), n_init=n_init, init=init, draws=draws,
                    draw_offsets=cuts, labels=labels, shifts=_array(fdp, (fdp.ConsumeIntInRange(0, 60),)),
                    shift_offsets=cuts, n_threads=threads,
                )
                assert len(res) == n_c
            elif which == 7:  # hierarchical starting partitions
                ks = np.array([fdp.ConsumeIntInRange(-1, n + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))],
                              dtype=np.int64)
                Z = _array(fdp, (n, d))
                call = _core.hierarchical_partitions if fdp.ConsumeBool() else _core.ward_partitions
                labels = call(Z, sw, ks)
                assert labels.shape == (len(ks), n)
                assert all(len(np.unique(row)) == k for row, k in zip(labels, ks))
            elif which == 9:  # the fitted KDE index: exact, on its tree and on its grid
                m = fdp.ConsumeIntInRange(0, 20)
                index = _core.KdeIndex(X, sw, _array(fdp, (d, d)), fdp.ConsumeIntInRange(0, 4), threads)
                index.log_sum(_array(fdp, (m, d), xdtype), KERNELS[fdp.ConsumeIntInRange(0, len(KERNELS) - 1)],
                              fdp.ConsumeFloat(), fdp.ConsumeFloat(), fdp.ConsumeFloat(), fdp.ConsumeBool(),
                              fdp.ConsumeIntInRange(-1, 4), _array(fdp, (m,), xdtype), threads)
            else:
                m = fdp.ConsumeIntInRange(0, 20)
                _core.kde_log_sum(X, sw, _array(fdp, (m, d), xdtype), _array(fdp, (d, d)),
                                  KERNELS[fdp.ConsumeIntInRange(0, len(KERNELS) - 1)],
                                  fdp.ConsumeBool(), _array(fdp, (m,), xdtype), threads)
    except (ValueError, TypeError):
        pass


def main():
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
