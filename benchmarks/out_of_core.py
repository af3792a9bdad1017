"""Out-of-core fitting: a mixture fitted on a .npy file through a memory map and on Dask.

    python benchmarks/out_of_core.py [--quick] [--n N] [--small-n N] [--dir PATH]
        [--max-iter M] [--block-rows R] [--workers W] [--repeats R] [--keep] [--cold]

1. Writes an N x 8 float64 .npy file (default N = 5e7: 3.2 GB) of a mixture of
   8 rotated Gaussian blobs (fixed seed), piece by piece through
   ``np.lib.format.open_memmap``, in its own process, whose peak RSS is
   reported: the writer never holds more than one piece. A file of the right
   shape and dtype already in --dir is reused (it is written under a
   temporary name and renamed when complete, so a file of that name is whole;
   the rows are a function of the seed and the row index only, so the rows
   of the N = 5e6 file are the first 5e6 rows of the N = 5e7 one).
2. Fits ``GaussianMixture(n_components=8, covariance_type='full',
   max_iter=M, tol=0, random_state=0)`` on ``np.load(path, mmap_mode='r')``.
3. Fits the same on a Dask LocalCluster (2 worker processes, 1 thread each)
   on ``gaussmix.dask.from_npy(path, block_rows=R)``: the workers read the
   file, the client sees only the initialisation sample and O(K D^2)
   statistics per block.
4. For a size that fits in memory (--small-n, default 5e6; in --quick mode
   the same N), the in-memory fit ``fit(np.load(path))`` against the memory
   map fit.

Each fit runs in a fresh interpreter. Its peak RSS is VmHWM after the fit
minus VmRSS after the imports (the peak is reset there through
/proc/self/clear_refs); for Dask, of the client process (which also runs the
scheduler) and, separately, of each worker (reset and read with
``Client.run``). In-memory fits include ``np.load`` in the measured region: the
peak is what it takes to go from the file to a model.

Phases are timed inside the fitting process by wrapping the library's own
methods for the duration of the fit (no library file is changed): ``scan``
(the validating pass over the data), ``draw`` (drawing the initialisation
sample's row indices), ``sample`` (reading those rows), ``init`` (k-means on
the sample), and every EM iteration (one pass
over the data for the sufficient statistics plus the M-step). The time per
EM iteration is the median of the M timed iterations; an in-memory fit runs
its M iterations in one engine call, timed as a whole and divided by M.
"other" is the rest of the fit (validation of an in-memory array, set-up).
With --repeats R every configuration is fitted R times in its process
(Dask: on the same cluster): the table shows the fastest fit (and its
breakdown) and the lowest time per iteration; the peak RSS is the first fit's
(the one in a fresh process); the repeats must give identical models.
Default: 3. Absolute times on a shared machine are noise (the load average
is printed); read the ratios.

Fits start from the default k-means initialisation (the memory map and Dask
run k-means on a uniform random sample of min(N, 64 MiB of rows) rows drawn
with random_state, so those two must agree to rounding; an in-memory fit runs
it on all rows) or from a fixed start (the generating mixture's weights,
means and precisions via ``weights_init``/``means_init``/``precisions_init``),
where every data path runs exactly the same M EM iterations and must agree to
rounding. The large file is fitted through the memory map (both starts) and
Dask (k-means), and in memory only from the fixed start (k-means on all N
rows is not what is being measured) and only when the file takes less than
half of the available memory; the small one in memory and through the
memory map, from both starts.

The file is read through the page cache: on a machine whose RAM holds the
file, every pass after the first reads memory, not disk. --cold evicts the
file's pages from the page cache (posix_fadvise DONTNEED) before every fit, so
that each fit's first pass reads the disk.

--quick: N = 2e5 (12.8 MB), in well under a minute.
The file is deleted at the end unless --keep.
"""

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workloads import _centers, cpu_model  # noqa: E402

N_FEATURES = 8
N_COMPONENTS = 8
SEED = 0
# Rows generated and written at a time (32 MiB of float64 rows). The data are a
# function of (SEED, piece index, row in piece), so a shorter file holds the
# first rows of a longer one.
PIECE_ROWS = 2**19
DEFAULT_N = 50_000_000
DEFAULT_SMALL_N = 5_000_000
QUICK_N = 200_000
DEFAULT_MAX_ITER = 5
RESULT_PREFIX = "OUT_OF_CORE_RESULT "
MiB = 2**20


# ------------------------------------------------------------------ data


def mixture(seed=SEED, k=N_COMPONENTS, d=N_FEATURES):
    """The generating mixture: weights, centres, per-axis scales, rotations, covariances.

    A row of component j is ``(z * scales[j]) @ rotations[j] + centers[j]``
    with z standard normal, so its covariance is R^T diag(scales^2) R.
    Centres are at least 8 largest standard deviations apart.
    """
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    centers = _centers(rng, k, d, min_dist=8.0 * 1.5)
    weights = 0.5 / k + 0.5 * rng.dirichlet(np.ones(k))
    weights /= weights.sum()
    rotations = np.stack([np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(k)])
    covariances = np.einsum("kji,kj,kjl->kil", rotations, scales**2, rotations)
    return {
        "weights": weights,
        "centers": centers,
        "scales": scales,
        "rotations": rotations,
        "covariances": covariances,
    }


def fixed_start(mix):
    """weights_init, means_init, precisions_init: the generating mixture."""
    prec = np.linalg.inv(mix["covariances"])
    prec = 0.5 * (prec + np.swapaxes(prec, 1, 2))
    return {"weights_init": mix["weights"], "means_init": mix["centers"], "precisions_init": prec}


def make_piece(mix, index, rows, seed=SEED):
    """Rows [index * PIECE_ROWS, index * PIECE_ROWS + rows) of the data set.

    A whole piece is made and cut to ``rows``, so a row does not depend on
    the length of the file (not even in the last bit).
    """
    rng = np.random.default_rng([seed, 1, index])
    k = len(mix["weights"])
    labels = rng.choice(k, size=PIECE_ROWS, p=mix["weights"])
    z = rng.standard_normal((PIECE_ROWS, mix["centers"].shape[1]))
    z *= mix["scales"][labels]
    out = np.empty_like(z)
    for j in range(k):
        mask = labels == j
        out[mask] = z[mask] @ mix["rotations"][j]
    out += mix["centers"][labels]
    return out[:rows]


def data_path(directory, n):
    return Path(directory) / f"gaussmix_out_of_core_{n}x{N_FEATURES}_seed{SEED}.npy"


def existing_shape(path):
    """(shape, dtype) of a complete .npy file, or None."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    expected = arr.offset + arr.nbytes if isinstance(arr, np.memmap) else None
    shape, dtype = arr.shape, arr.dtype
    del arr
    if expected is not None and os.path.getsize(path) != expected:
        return None
    return shape, dtype


def write_file(path, n):
    """Write the n-row data set to path (through open_memmap, one piece at a time)."""
    mix = mixture()
    tmp = Path(str(path) + ".partial")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(n, N_FEATURES))
    del out
    for index in range(math.ceil(n / PIECE_ROWS)):
        start = index * PIECE_ROWS
        rows = min(PIECE_ROWS, n - start)
        piece = make_piece(mix, index, rows)
        # A fresh mapping per piece: unmapping it drops its pages from this
        # process (they stay in the page cache), so the writer's RSS stays at
        # about one piece.
        out = np.lib.format.open_memmap(tmp, mode="r+")
        out[start : start + rows] = piece
        out.flush()
        del out, piece
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def evict_from_page_cache(path):
    """Drop the file's clean pages from the page cache (Linux; best effort)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


# ------------------------------------------------- measurement (child side)


def status(key):
    """A /proc/self/status value in bytes (VmRSS, VmHWM, ...)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak():
    """Reset VmHWM to the current RSS; returns (VmRSS now, whether the reset worked)."""
    gc.collect()
    ok = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        ok = False
    return status("VmRSS"), ok


class PhaseTimer:
    """Times the fit's phases by wrapping library methods while active."""

    def __init__(self):
        self.times = {}
        self._undo = []

    def _add(self, key, seconds):
        self.times.setdefault(key, []).append(seconds)

    def wrap(self, owner, name, key):
        original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if original is None:
            return
        add = self._add

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(key, time.perf_counter() - t0)

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def wrap_iterations(self, cls):
        """Time each EM step that _iterate runs (one pass + M-step)."""
        original = cls.__dict__.get("_iterate")
        if original is None:
            return
        add = self._add

        def _iterate(est, step, params, lower_bound):
            def timed_step(p):
                t0 = time.perf_counter()
                result = step(p)
                add("em", time.perf_counter() - t0)
                return result

            return original(est, timed_step, params, lower_bound)

        cls._iterate = _iterate
        self._undo.append((cls, "_iterate", original))

    def restore(self):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def instrument(mode):
    from gaussmix import _base, _core, _streaming

    timer = PhaseTimer()
    cls = _base.BaseMixture  # where the fit flow lives
    timer.wrap(cls, "_initial_parameters", "init")
    if mode == "memory":
        timer.wrap(_core, "em_fit", "em_engine")
    else:
        timer.wrap_iterations(cls)
        if mode == "memmap":
            source = _streaming.ArraySource
        else:
            from gaussmix.dask import DaskSource as source
        timer.wrap(source, "scan", "scan")
        timer.wrap(_streaming, "sample_indices", "draw")
        timer.wrap(source, "take", "sample")
    return timer


def _worker_reset_peak():
    return reset_peak()[0]


def _worker_peak():
    return status("VmHWM")


def _worker_threads():
    from gaussmix import _core

    return int(_core.default_threads())


def run_child(spec):
    """One fit (or the file writer) in this fresh interpreter; prints a JSON result."""
    from sklearn.exceptions import ConvergenceWarning

    import gaussmix
    from gaussmix import GaussianMixture

    warnings.simplefilter("ignore", ConvergenceWarning)
    mode = spec["mode"]
    result = {"mode": mode}

    if mode == "write":
        baseline, reset_ok = reset_peak()
        t0 = time.perf_counter()
        write_file(spec["path"], spec["n"])
        result["seconds"] = time.perf_counter() - t0
        result.update(baseline=baseline, peak=status("VmHWM"), peak_reset=reset_ok)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return

    client = cluster = None
    if mode == "dask":
        import logging

        import dask
        import distributed
        from distributed import Client, LocalCluster

        import gaussmix.dask as gdask

        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=spec["n_workers"],
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        result["cluster_start"] = time.perf_counter() - t0
        result["versions"] = {"dask": dask.__version__, "distributed": distributed.__version__}
        result["worker_threads"] = sorted(client.run(_worker_threads).values())

    kwargs = dict(
        n_components=N_COMPONENTS,
        covariance_type="full",
        max_iter=spec["max_iter"],
        tol=0.0,
        random_state=0,
    )
    if spec["start"] == "fixed":
        kwargs.update(fixed_start(mixture()))

    runs = []
    for repeat in range(spec["repeats"]):
        if spec.get("cold"):
            evict_from_page_cache(spec["path"])
        est = GaussianMixture(**kwargs)
        timer = instrument(mode)
        first = repeat == 0
        if first and client is not None:
            worker_base = client.run(_worker_reset_peak)
        baseline, reset_ok = reset_peak()
        t0 = time.perf_counter()
        if mode == "memory":
            X = np.load(spec["path"])
        elif mode == "memmap":
            X = np.load(spec["path"], mmap_mode="r")
        else:
            X = gdask.from_npy(spec["path"], block_rows=spec["block_rows"])
        t_load = time.perf_counter() - t0
        est.fit(X)
        t_fit = time.perf_counter() - t0 - t_load
        peak = status("VmHWM")
        timer.restore()
        run = {"mode": mode}
        if first:
            # Only the first fit runs in a fresh process: its peak is the one reported.
            run.update(baseline=baseline, peak=peak, peak_reset=reset_ok)
            if client is not None:
                worker_peak = client.run(_worker_peak)
                run["workers"] = [
                    {"baseline": worker_base[w], "peak": worker_peak[w]} for w in sorted(worker_peak)
                ]
        if client is not None:
            run["n_blocks"] = len(X.chunks[0])
            run["n_workers"] = len(client.scheduler_info()["workers"])

        phases = dict(timer.times)
        em = phases.pop("em", None)
        engine = phases.pop("em_engine", None)
        if em is not None:
            iterations = em
        elif engine is not None:
            iterations = [sum(engine) / max(est.n_iter_, 1)] * est.n_iter_
        else:
            iterations = []
        run.update(
            load=t_load,
            fit=t_fit,
            phases={k: sum(v) for k, v in phases.items()},
            iterations=iterations,
            means=est.means_.tolist(),
            weights=est.weights_.tolist(),
            lower_bound=float(est.lower_bound_),
            n_iter=int(est.n_iter_),
        )
        runs.append(run)
        del X, est
    result.update(aggregate(runs))
    result["threads"] = gaussmix.show_config(file=open(os.devnull, "w"))["default_threads"]
    if client is not None:
        client.close()
        cluster.close()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ------------------------------------------------------- driver (parent side)


def spawn(spec, log):
    """Run one child; its parsed result, or {'error': ...}."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    log(f"\n  child failed (exit {proc.returncode}):\n{tail}\n")
    return {"error": f"exit {proc.returncode}: " + (tail.splitlines() or [""])[-1]}


def loadavg():
    """The 1-minute load average (other processes share the cores), or None."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def meminfo(key):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fmt_seconds(s):
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_bytes(b):
    if b is None:
        return "n/a"
    if abs(b) >= 2**30:
        return f"{b / 2**30:.2f} GiB"
    return f"{b / MiB:.1f} MiB"


def per_iteration(r):
    """Median EM iteration of a run; of an aggregate, the best repeat's."""
    if "per_iteration" in r:
        return r["per_iteration"]
    it = r.get("iterations") or []
    return float(np.median(it)) if it else None


def total_time(r):
    if "total" in r:
        return r["total"]
    return r["load"] + r["fit"]


def aggregate(runs):
    """One row from repeated fits in one process: best time, best per-iteration time.

    The breakdown is the fastest fit's; the peak RSS and the fitted model the
    first fit's (the repeats must agree exactly: same data, seed and threads).
    """
    best = min(runs, key=total_time)
    first = runs[0]
    out = dict(best)
    for key in ("baseline", "peak", "peak_reset", "workers", "means", "weights", "lower_bound", "n_iter"):
        if key in first:
            out[key] = first[key]
    out["total"] = total_time(best)
    times = [t for t in (per_iteration(r) for r in runs) if t is not None]
    out["per_iteration"] = min(times) if times else None
    out["repeats"] = len(runs)
    out["repeats_identical"] = all(
        r["means"] == first["means"] and r["lower_bound"] == first["lower_bound"] for r in runs
    )
    return out


def breakdown(r):
    phases = r.get("phases", {})
    parts = []
    if r["mode"] == "memory":
        parts.append(f"load {fmt_seconds(r['load'])}")
    for key in ("scan", "draw", "sample", "init"):
        if key in phases and (key != "init" or phases[key] >= 1e-3):
            parts.append(f"{key} {fmt_seconds(phases[key])}")
    em = sum(r.get("iterations") or [])
    parts.append(f"EM {fmt_seconds(em)}")
    other = total_time(r) - em - sum(phases.values()) - (r["load"] if r["mode"] == "memory" else 0)
    parts.append(f"other {fmt_seconds(max(other, 0.0))}")
    return " · ".join(parts)


MODE_LABEL = {
    "memory": "in-memory `fit(np.load(path))`",
    "memmap": "memory map `fit(np.load(path, mmap_mode='r'))`",
    "dask": "Dask `fit(from_npy(path))`",
}
START_LABEL = {"kmeans": "k-means init", "fixed": "fixed start"}


def peak_cell(r, file_bytes):
    above = r["peak"] - r["baseline"]
    cell = f"{fmt_bytes(above)} ({100 * above / file_bytes:.1f}% of file)"
    if r["mode"] == "dask":
        worst = max(w["peak"] - w["baseline"] for w in r["workers"])
        cell = f"client {cell}; each worker ≤ {fmt_bytes(worst)}"
    return cell


def markdown_table(rows, results, file_sizes, max_iter):
    header = [
        "workload",
        f"time (load + fit, {max_iter} EM iterations)",
        "of which",
        "per EM iteration",
        "peak RSS above baseline",
        "vs in-memory: time / per iteration",
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|---:|---|---:|"]
    for key in rows:
        n, mode, start = key
        r = results[key]
        name = f"N={n:,}: {MODE_LABEL[mode]}, {START_LABEL[start]}"
        if mode == "dask":
            name += f" ({r['n_workers']} workers x 1 thread)" if "error" not in r else ""
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | |")
            continue
        ref_same = results.get((n, "memory", start))
        ref_any = ref_same or results.get((n, "memory", "kmeans" if start == "fixed" else "fixed"))
        ratio_t = ratio_i = "n/a"
        if mode == "memory":
            ratio_t = ratio_i = "1"
        else:
            if ref_same and "error" not in ref_same:
                ratio_t = f"{total_time(r) / total_time(ref_same):.2f}"
            if ref_any and "error" not in ref_any and per_iteration(ref_any) and per_iteration(r):
                ratio_i = f"{per_iteration(r) / per_iteration(ref_any):.2f}"
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    fmt_seconds(total_time(r)),
                    breakdown(r),
                    fmt_seconds(per_iteration(r)),
                    peak_cell(r, file_sizes[n]),
                    f"{ratio_t} / {ratio_i}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def match_components(a, b):
    """Permutation p of b's rows that best matches a's (Hungarian on distances)."""
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    _, p = linear_sum_assignment(cost)
    return p


def compare(r1, r2):
    """(max |Δ means|, after matching components or None, |Δ lower bound|, max |Δ weights|)."""
    m1, m2 = np.array(r1["means"]), np.array(r2["means"])
    raw = float(np.max(np.abs(m1 - m2)))
    p = match_components(m1, m2)
    matched = None
    if np.any(p != np.arange(len(p))):
        matched = float(np.max(np.abs(m1 - m2[p])))
        w2 = np.array(r2["weights"])[p]
    else:
        w2 = np.array(r2["weights"])
    dw = float(np.max(np.abs(np.array(r1["weights"]) - w2)))
    return raw, matched, abs(r1["lower_bound"] - r2["lower_bound"]), dw


def agreement_lines(pairs, results, init_rows):
    lines = [
        "| fits compared | max abs Δ means | relative to max abs mean | max abs Δ weights "
        "| abs Δ lower_bound_ | expected |",
        "|---|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for a, b, expect_exact in pairs:
        ra, rb = results.get(a), results.get(b)
        label = (
            f"N={a[0]:,} {START_LABEL[a[2]]}: {a[1]} vs {b[1]}"
        )
        if not ra or not rb or "error" in ra or "error" in rb:
            lines.append(f"| {label} | n/a | | | | |")
            continue
        raw, matched, dlb, dw = compare(ra, rb)
        scale = float(np.max(np.abs(ra["means"])))
        d = raw if matched is None else matched
        cell = f"{raw:.3g}" + ("" if matched is None else f" ({matched:.3g} after matching components)")
        expect = "≤ 1e-8 (same start, same iterations)" if expect_exact else (
            f"need not agree: different starts (in-memory k-means on all {a[0]:,} rows, "
            f"{b[1]} on a {init_rows(a[0]):,}-row sample)"
        )
        lines.append(
            f"| {label} | {cell} | {d / scale:.3g} | {dw:.3g} | {dlb:.3g} | {expect} |"
        )
        if expect_exact:
            ok = raw <= 1e-8 * max(scale, 1.0) and dlb <= 1e-8 * max(abs(ra["lower_bound"]), 1.0)
            if not ok:
                verdicts.append(f"(!) {label}: max abs Δ means {raw:.3g}, Δ lower bound {dlb:.3g}")
    return "\n".join(lines), verdicts


def default_init_rows(n):
    from gaussmix import _streaming

    return _streaming.default_init_size(n, N_FEATURES, N_COMPONENTS)


def build_plan(n, small_n, big_in_memory):
    """[(n, mode, start)] in the order they run."""
    plan = []
    sizes = [n] if small_n == n else [n, small_n]
    for size in sizes:
        small = size == small_n
        big = size == n
        if small:
            plan.append((size, "memory", "kmeans"))
        plan.append((size, "memmap", "kmeans"))
        if big:
            plan.append((size, "dask", "kmeans"))
        if small or big_in_memory:
            plan.append((size, "memory", "fixed"))
        plan.append((size, "memmap", "fixed"))
    return plan


def agreement_pairs(plan, init_rows):
    keys = set(plan)
    pairs = []
    for n in sorted({k[0] for k in plan}, reverse=True):
        if (n, "dask", "kmeans") in keys and (n, "memmap", "kmeans") in keys:
            pairs.append(((n, "memmap", "kmeans"), (n, "dask", "kmeans"), True))
        if (n, "memory", "kmeans") in keys and (n, "memmap", "kmeans") in keys:
            pairs.append(((n, "memory", "kmeans"), (n, "memmap", "kmeans"), init_rows(n) >= n))
        if (n, "memory", "fixed") in keys and (n, "memmap", "fixed") in keys:
            pairs.append(((n, "memory", "fixed"), (n, "memmap", "fixed"), True))
    return pairs


def parse_count(text):
    value = float(text)
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(value)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fit a Gaussian mixture on a .npy file through a memory map and on Dask: "
        "time, time per EM iteration, peak RSS."
    )
    parser.add_argument("--quick", action="store_true", help=f"N = {QUICK_N:,} (under a minute)")
    parser.add_argument("--n", type=parse_count, default=None, help=f"rows of the file (default {DEFAULT_N:.0e})")
    parser.add_argument(
        "--small-n", type=parse_count, default=None,
        help=f"rows for the in-memory comparison (default min(N, {DEFAULT_SMALL_N:.0e}); --quick: N)",
    )
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the .npy files go (default: temp dir)")
    parser.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER, help="EM iterations per fit (default 5)")
    parser.add_argument(
        "--block-rows", type=parse_count, default=None,
        help="rows per Dask block (default min(1e6, ceil(N / 8)))",
    )
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes, 1 thread each (default 2)")
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="fits per configuration (in its process); the best time is reported, the "
        "first fit's peak RSS (default 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the .npy files")
    parser.add_argument("--cold", action="store_true", help="evict the file from the page cache before each fit")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child is not None:
        run_child(json.loads(args._child))
        return 0

    if args.max_iter < 1:
        parser.error("--max-iter must be a positive integer")
    n = args.n if args.n is not None else (QUICK_N if args.quick else DEFAULT_N)
    if args.small_n is not None:
        small_n = min(args.small_n, n)
    else:
        small_n = n if args.quick else min(DEFAULT_SMALL_N, n)
    repeats = args.repeats if args.repeats is not None else 3
    if repeats < 1:
        parser.error("--repeats must be a positive integer")
    block_rows = args.block_rows or min(1_000_000, max(1, math.ceil(n / 8)))
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, end="", file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    load_start = loadavg()
    paths, file_sizes, writes = {}, {}, {}
    for size in sorted({n, small_n}, reverse=True):
        path = data_path(directory, size)
        paths[size] = path
        found = existing_shape(path) if path.exists() else None
        if found == ((size, N_FEATURES), np.dtype(np.float64)):
            log(f"reusing {path}\n")
            writes[size] = None
        else:
            need = size * N_FEATURES * 8
            free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
            if need > 0.9 * free:
                parser.error(f"{path} needs {fmt_bytes(need)}; {fmt_bytes(free)} free in {directory}")
            log(f"writing {path} ({fmt_bytes(need)}) ... ")
            writes[size] = spawn({"mode": "write", "path": str(path), "n": size}, log)
            if "error" in writes[size]:
                log("failed\n")
                return 1
            log(f"{writes[size]['seconds']:.1f} s\n")
        file_sizes[size] = os.path.getsize(path)

    available = meminfo("MemAvailable")
    big_in_memory = small_n == n or (available is not None and file_sizes[n] < 0.5 * available)
    plan = build_plan(n, small_n, big_in_memory)

    results = {}
    try:
        for key in plan:
            size, mode, start = key
            spec = {
                "mode": mode,
                "start": start,
                "path": str(paths[size]),
                "max_iter": args.max_iter,
                "block_rows": block_rows,
                "n_workers": args.workers,
                "repeats": repeats,
                "cold": args.cold,
            }
            log(f"N={size:,} {mode} {start} ... ")
            t0 = time.perf_counter()
            results[key] = spawn(spec, log)
            log(f"{time.perf_counter() - t0:.1f} s\n")
    finally:
        if not args.keep:
            for path in paths.values():
                for p in (path, Path(str(path) + ".partial")):
                    if p.exists():
                        p.unlink()

    out = sys.stdout
    import gaussmix

    cfg = gaussmix.show_config(file=open(os.devnull, "w"))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    print("## Machine", file=out)
    print(file=out)
    print(f"- CPU: {cpu_model()}; {os.cpu_count()} logical CPUs, {usable} usable", file=out)
    print(
        f"- RAM: {fmt_bytes(meminfo('MemTotal'))} total, {fmt_bytes(available)} available "
        f"before the fits; swap {fmt_bytes(meminfo('SwapTotal'))}",
        file=out,
    )
    from datetime import datetime

    from gaussmix import _core

    built = datetime.fromtimestamp(os.path.getmtime(_core.__file__)).isoformat(sep=" ", timespec="seconds")
    print(
        f"- gaussmix {cfg['version']} (Python {cfg['python']}), OpenMP {cfg['openmp']}, "
        f"default threads {cfg['default_threads']}, compiled core built {built}; numpy {np.__version__}",
        file=out,
    )
    print(f"- load average (1 min): {load_start} before the run, {loadavg()} after", file=out)
    dask_r = next((r for k, r in results.items() if k[1] == "dask" and "versions" in r), None)
    if dask_r:
        v = dask_r["versions"]
        print(
            f"- dask {v['dask']}, distributed {v['distributed']}: LocalCluster of {args.workers} "
            f"worker processes, 1 thread each (engine threads per worker: "
            f"{', '.join(map(str, dask_r['worker_threads']))}); {dask_r['n_blocks']} blocks of "
            f"{block_rows:,} rows; cluster start {dask_r['cluster_start']:.1f} s (not in the times)",
            file=out,
        )
    for size in sorted(paths, reverse=True):
        w = writes[size]
        how = "reused" if w is None else (
            f"written in {w['seconds']:.1f} s, writer peak RSS {fmt_bytes(w['peak'] - w['baseline'])} "
            "above baseline"
        )
        print(f"- data: {paths[size]}: {size:,} x {N_FEATURES} float64, {fmt_bytes(file_sizes[size])} ({how})", file=out)
    print(
        "- page cache: "
        + ("evicted before every fit (--cold)" if args.cold else
           "warm (not evicted; with RAM larger than the file, passes after the first read memory)"),
        file=out,
    )
    print(file=out)
    title = f"## GaussianMixture(n_components={N_COMPONENTS}, covariance_type='full', max_iter={args.max_iter}, tol=0, random_state=0)"
    print(title + (" (--quick)" if args.quick else ""), file=out)
    print(file=out)
    print(markdown_table(plan, results, file_sizes, args.max_iter), file=out)
    print(file=out)
    init_rows = default_init_rows
    print(
        f"{repeats} fit(s) per row in one fresh process: time is the fastest fit's (its "
        "breakdown shown), per EM iteration the lowest median, peak RSS the first fit's. "
        "Per EM iteration: median of the timed EM steps (one pass over the data plus the "
        "M-step; an in-memory fit: its single engine call / iterations). scan: the validating "
        "pass; draw: drawing the sample's row indices; sample: reading the initialisation sample "
        + ", ".join(f"({init_rows(s):,} rows of {s:,})" for s in sorted(paths, reverse=True))
        + "; init: k-means on it. Peak RSS: VmHWM - VmRSS after the imports, "
        "np.load included; the % is of the file's size. Ratios to the in-memory fit: time "
        "against the in-memory fit from the same start; per iteration against the in-memory "
        "fit of the same N (from the other start where there is none from the same: an "
        "iteration costs the same from either).",
        file=out,
    )
    print(file=out)
    table, verdicts = agreement_lines(agreement_pairs(plan, init_rows), results, init_rows)
    print("## Agreement of the fitted models", file=out)
    print(file=out)
    print(table, file=out)
    for key, r in results.items():
        if "error" not in r and not r["repeats_identical"]:
            verdicts.append(f"(!) N={key[0]:,} {key[1]} {START_LABEL[key[2]]}: repeated fits differ")
    if verdicts:
        print(file=out)
        print("\n".join(verdicts), file=out)
    errors = [k for k, r in results.items() if "error" in r]
    log(f"total {time.perf_counter() - t_start:.0f} s\n")
    return 1 if errors or verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
