"""Configuration of the gaussmix benchmark suites.

Run with timing (a few minutes; scikit-learn dominates, and gaussmix's own
K1 kernel density workload takes several seconds a round)::

    pytest benchmarks --benchmark-json=bench.json

The scikit-learn side of the large workloads and every kernel density peer
(scikit-learn, SciPy, numpy) are marked ``slow``. Run quickly,
timing off, gaussmix only (what CI does)::

    pytest benchmarks --benchmark-disable -m "not slow" -k "not sklearn"

Sizes shrink (N, or the number of fits, / 100) when timing is disabled or
GAUSSMIX_BENCH_QUICK=1.
Every mixture benchmark checks its fit against scikit-learn's fit of the same
data from the same start, and every kernel density benchmark checks its
log-densities (or bandwidth) against a brute-force numpy reference, whatever
the mode.
"""

import pytest

from ._workloads import (
    KDE_WORKLOADS,
    QUICK_ENV,
    WORKLOADS,
    machine_facts,
    make_case,
    make_kde_case,
    quick_from_env,
    record_cv_ml_candidates,
    reference_fit,
)

_RESULTS = pytest.StashKey[list]()
_KDE_RESULTS = pytest.StashKey[list]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running test (deselect with -m 'not slow')"
    )
    config.stash[_RESULTS] = []
    config.stash[_KDE_RESULTS] = []


def _quick_mode(config):
    return quick_from_env() or bool(config.getoption("benchmark_disable", default=False))


def pytest_report_header(config):
    f = machine_facts()
    g = f["gaussmix"]
    mode = (
        f"quick sizes (N, or the number of fits, / 100; {QUICK_ENV}=1 or --benchmark-disable)"
        if _quick_mode(config)
        else "full sizes"
    )
    return [
        f"machine: {f['cpu']}, {f['logical_cpus']} logical CPUs ({f['usable_cpus']} usable)",
        f"gaussmix {g['version']}: OpenMP {'on' if g['openmp'] else 'OFF'}, "
        f"default threads {g['default_threads']}, kernels {g['kernels']}, core built {f['core_built']}; "
        f"scikit-learn {f['scikit-learn']}, numpy {f['numpy']}",
        f"benchmark sizes: {mode}",
    ]


class BenchData:
    """Per-session cache of workload data and reference results."""

    def __init__(self, quick):
        self.quick = quick
        self._cases = {}
        self._refs = {}
        self._kde_cases = {}
        self._candidates = {}

    def workload(self, name):
        w = WORKLOADS[name]
        return w.quick() if self.quick else w

    def case(self, name):
        if name not in self._cases:
            self._cases[name] = make_case(self.workload(name))
        return self._cases[name]

    def reference(self, name):
        if name not in self._refs:
            self._refs[name] = reference_fit(self.case(name))
        return self._refs[name]

    def kde_workload(self, name):
        w = KDE_WORKLOADS[name]
        return w.quick() if self.quick else w

    def kde_case(self, name):
        if name not in self._kde_cases:
            self._kde_cases[name] = make_kde_case(self.kde_workload(name))
        return self._kde_cases[name]

    def cv_ml_candidates(self, name):
        """(h, bandwidths evaluated) of gaussmix.select_bandwidth on the workload's data."""
        if name not in self._candidates:
            self._candidates[name] = record_cv_ml_candidates(self.kde_case(name).X)
        return self._candidates[name]


@pytest.fixture(scope="session")
def bench_quick(pytestconfig):
    """True when the suite runs with reduced sizes."""
    return _quick_mode(pytestconfig)


@pytest.fixture(scope="session")
def bench_data(bench_quick):
    """Workload data (generated once) and reference fits (computed once)."""
    return BenchData(bench_quick)


@pytest.fixture
def record_per_iteration(pytestconfig):
    """Collects (group, library, seconds per EM iteration) for the summary."""

    def record(group, label, seconds):
        pytestconfig.stash[_RESULTS].append((group, label, seconds))

    return record


@pytest.fixture
def record_kde(pytestconfig):
    """Collects (group, library, seconds per query, counterpart library, note) for the summary."""

    def record(group, label, seconds, counterpart=None, note=""):
        pytestconfig.stash[_KDE_RESULTS].append((group, label, seconds, counterpart, note))

    return record


def _kde_summary(tr, rows):
    tr.section("kernel density: time per query (best round) and ratio to gaussmix")
    by_group = {}
    for group, label, seconds, counterpart, note in rows:
        by_group.setdefault(group, {})[label] = (seconds, counterpart, note)
    for group, times in by_group.items():
        parts = []
        for label, (seconds, counterpart, note) in times.items():
            part = f"{label} {seconds * 1e6:.3g} us"
            base = times.get(counterpart, (None,))[0] if counterpart else None
            if base:
                part += f" ({seconds / base:.3g}x {counterpart})"
            if note:
                part += f" [{note}]"
            parts.append(part)
        tr.write_line(f"{group}: " + "; ".join(parts))


def pytest_terminal_summary(terminalreporter, config):
    kde_rows = config.stash.get(_KDE_RESULTS, [])
    if kde_rows:
        _kde_summary(terminalreporter, kde_rows)
    rows = config.stash.get(_RESULTS, [])
    if not rows:
        return
    tr = terminalreporter
    tr.section("time per EM iteration (best round) and ratio to gaussmix float64")
    by_group = {}
    for group, label, seconds in rows:
        by_group.setdefault(group, {})[label] = seconds
    for group, times in by_group.items():
        base = times.get("gaussmix")
        parts = []
        for label, seconds in times.items():
            part = f"{label} {seconds * 1e3:.3g} ms"
            if base and label != "gaussmix":
                part += f" ({seconds / base:.3g}x)"
            parts.append(part)
        tr.write_line(f"{group}: " + "; ".join(parts))
