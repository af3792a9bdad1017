"""What this machine can do, measured, and what each workload therefore cannot beat.

The engine's probes (``_core._probe_*``) time three things on the threads
and with the vector kernels the engine uses (``GAUSSMIX_ISA`` included):

- multiply-adds: independent chains of vector FMAs (float64 and float32);
- exps: the engine's own vector exp on arguments in L1 (float64 and float32);
- memory reads: a sum over a buffer far larger than the caches.

A workload's bound is the time of the work no exact method can avoid, at
those rates: max(bytes read / bandwidth, multiply-adds / FMA rate + exps /
exp rate) -- the exp's polynomial runs on the same FMA units, so the two
add; reading overlaps with both. The counts (``mixture_work``,
``kde_work``) are the minimum each algorithm needs, not what the engine
happens to do:

Mixtures, per EM iteration, N rows, K components, D features; a pair (i, k)
is live when its responsibility is not exactly zero (the others need their
distance, to know that they are negligible, but neither an exp nor a place
in the statistics):
  full  distances  N K (D (D + 1) / 2 + D)   triangular solve + squared norm
        exps       live pairs
        statistics live (D (D + 1) / 2 + D)  weighted outer product + mean
        M-step     K D^3 / 2                 Cholesky and triangular inverse
  diag  distances  N K 2D                    [x^2, x] against [p, -2 p mu]
        exps       live pairs
        statistics live 2D                   weighted x and x^2
  bytes read       N D 8                     one pass over the data

Kernel densities, M queries against N points in D dimensions, one kernel exp
and D multiply-adds (the cross term of the squared distance) a pair; the
leave-one-out likelihood of a bandwidth needs each unordered pair once:
N (N - 1) / 2 exps.
"""

from dataclasses import dataclass

import numpy as np

# Each probe is repeated until this many seconds of best-of-five remain
# stable; the probes in all take about a second.
PROBE_SECONDS = 0.02
PROBE_REPEATS = 5
READ_BYTES = 512 << 20  # far beyond any L3 cache


@dataclass(frozen=True)
class Limits:
    """Measured rates of this machine on ``threads`` threads."""

    threads: int
    kernels: str
    fma64: float  # multiply-adds per second
    fma32: float
    exp64: float  # exps per second
    exp32: float
    read: float  # bytes per second

    def describe(self):
        return (
            f"{self.threads} threads, {self.kernels} kernels: "
            f"{2 * self.fma64 / 1e9:.3g} GFLOP/s f64 ({2 * self.fma32 / 1e9:.3g} f32) in multiply-adds, "
            f"engine exp {self.exp64 / 1e9:.3g} G/s f64 ({self.exp32 / 1e9:.3g} f32), "
            f"memory read {self.read / 1e9:.3g} GB/s"
        )


@dataclass(frozen=True)
class Work:
    """The unavoidable work of one timed unit (an EM iteration, a whole KDE workload)."""

    madds: float = 0.0
    exps: float = 0.0
    bytes: float = 0.0
    f32: bool = False

    def __add__(self, other):
        return Work(self.madds + other.madds, self.exps + other.exps, self.bytes + other.bytes, self.f32)

    def seconds(self, limits):
        fma = limits.fma32 if self.f32 else limits.fma64
        exp = limits.exp32 if self.f32 else limits.exp64
        return max(self.bytes / limits.read, self.madds / fma + self.exps / exp)


def _best_rate(probe, work_guess):
    """Largest units/second of ``probe(size)`` -> (seconds, units), sized to PROBE_SECONDS."""
    size = work_guess
    seconds, units = probe(size)
    while seconds < PROBE_SECONDS:
        size = int(size * min(max(2.0 * PROBE_SECONDS / max(seconds, 1e-6), 2.0), 64.0))
        seconds, units = probe(size)
    best = units / seconds
    for _ in range(PROBE_REPEATS - 1):
        seconds, units = probe(size)
        best = max(best, units / seconds)
    return best


def measure_limits(threads):
    """Measure FMA, exp and memory-read rates on ``threads`` threads (about a second)."""
    from gaussmix import _core
    from gaussmix._config import _KERNELS

    fma64 = _best_rate(lambda n: _core._probe_fma(threads, n), 10_000)
    fma32 = _best_rate(lambda n: _core._probe_fma32(threads, n), 10_000)
    exp64 = _best_rate(lambda n: _core._probe_exp(threads, n), 100_000)
    exp32 = _best_rate(lambda n: _core._probe_exp32(threads, n), 100_000)
    buffer = _core._ReadProbe(READ_BYTES, threads)
    buffer.read()  # pages already touched; this warms the TLB
    read = max(buffer.bytes / buffer.read() for _ in range(PROBE_REPEATS))
    del buffer
    return Limits(threads, _KERNELS.get(int(_core.vector_bytes()), "unknown"), fma64, fma32, exp64, exp32, read)


def mixture_work(n, d, k, covariance_type, live, f32=False):
    """Work of one EM iteration on n x d data with k components, ``live`` live pairs."""
    if covariance_type == "full":
        per_pair = d * (d + 1) / 2 + d
        return Work(
            madds=n * k * per_pair + live * per_pair + k * d**3 / 2,
            exps=live, bytes=8.0 * n * d, f32=f32,
        )
    if covariance_type == "diag":
        return Work(madds=n * k * 2 * d + live * 2 * d, exps=live, bytes=8.0 * n * d, f32=f32)
    raise ValueError(f"no work count for covariance_type {covariance_type!r}")


def live_pairs(X, params, chunk=65_536):
    """Pairs (row, component) of non-zero responsibility once EM has run ``params`` from its start.

    Responsibilities come from gaussmix's own fit of ``params`` on ``X``,
    counted chunk by chunk (never N x K at once).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from gaussmix import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(**params).fit(X)
    return sum(
        int(np.count_nonzero(model.predict_proba(X[s:s + chunk]))) for s in range(0, len(X), chunk)
    )


def case_work(case):
    """Work of one EM iteration of one fit of a mixture ``case`` (the mean over its fits)."""
    w = case.workload
    total = Work()
    for i, X in enumerate(case.X()):
        live = live_pairs(X, case.params(i))
        total = total + mixture_work(len(X), X.shape[1], w.n_components, w.covariance_type, live)
    n = len(case.Xs)
    return Work(total.madds / n, total.exps / n, total.bytes / n)


def kde_work(n_train, n_query, d, n_bandwidths=None):
    """Work of a KDE evaluation, or of ``n_bandwidths`` leave-one-out likelihoods (n_query ignored)."""
    if n_bandwidths is None:
        pairs = float(n_train) * n_query
    else:
        pairs = n_bandwidths * n_train * (n_train - 1) / 2.0
    return Work(madds=pairs * d, exps=pairs, bytes=8.0 * (n_train + n_query) * d)

