"""A/B timing of two gaussmix builds, to catch performance regressions.

    python benchmarks/ab.py A B [--workloads G1,G3o,K1] [--quick] [--pairs 5] [--inner 3]
    python benchmarks/ab.py --a-python OLD/bin/python --b-python NEW/bin/python [...]

A and B are git revisions of this checkout (a sha, branch, tag, HEAD~1, ...)
or ``worktree``, the checkout as it is now, uncommitted changes included.
Each revision is built with this interpreter (``pip install --no-deps
--no-build-isolation --target``), which therefore needs the build
requirements (scikit-build-core, pybind11, CMake and a C++17 compiler), into
a cache folder named by the interpreter and the commit,
``~/.cache/gaussmix-ab/<python>/<sha>`` (``<python>`` as in cpython-311;
``--cache DIR`` for another root). A revision already there is not built
again; ``worktree`` is built every time, into a temporary folder.
Alternatively ``--a-python`` and ``--b-python`` name the python executables
of two environments that each have gaussmix installed, and nothing is built.

Every sample runs in a fresh process (benchmarks/_ab_worker.py): it imports
gaussmix from the build under test, checks which file it imported, builds
the workload's data (benchmarks/_workloads.py of this checkout, the same for
A and B), makes one untimed call, then ``--inner`` timed calls, and keeps the
best. A workload runs ``--pairs`` pairs of samples in alternating order (A B,
then B A, ...), so that a machine drifting faster or slower loads both
sides alike.

Statistics, per workload: each pair gives the log ratio log(t_B / t_A). The
ratio B/A is the geometric mean of the pairs' ratios, exp(mean); its 95%
confidence interval is exp(mean +/- t * s / sqrt(n)), with s the standard
deviation of the n log ratios and t the 97.5% quantile of Student's t
distribution with n - 1 degrees of freedom (SciPy's, or a table of them
where SciPy is missing).

Verdicts, with the band [1 / (1 + threshold), 1 + threshold]:
  slower                    ratio > 1 + threshold and the interval's lower end > 1
  faster                    ratio < 1 / (1 + threshold) and the interval's upper end < 1
  no change                 the interval contains 1, or lies wholly inside the band
  slower, within threshold  the interval lies above 1 and reaches past the band,
                            the ratio inside it
  faster, within threshold  the same below 1

Exit status: 0 when no workload is "slower"; 1 when one is (B is slower than
A by more than the threshold, and significantly); 2 on a usage or build
error (unknown workload or revision, a failed build or worker).
"""

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workloads  # noqa: E402
from _ab_worker import ALL_WORKLOADS  # noqa: E402
from compare import format_seconds  # noqa: E402

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_ab_worker.py"
WORKTREE = "worktree"
BUILD_REQUIREMENTS = ("scikit_build_core", "pybind11")
LOG_TAIL_LINES = 30

SLOWER = "slower"
FASTER = "faster"
NO_CHANGE = "no change"
SLOWER_WITHIN = "slower, within threshold"
FASTER_WITHIN = "faster, within threshold"

# Student's t, 97.5% quantile, for 1 to 30 degrees of freedom (the normal's
# 1.96 beyond): used when SciPy is not installed.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


class AbError(Exception):
    """A usage or build error: reported in one message, exit status 2."""


# ---------------------------------------------------------------- statistics


def t_quantile_975(df):
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    try:
        from scipy.stats import t
    except ImportError:
        return T_975[df - 1] if df <= len(T_975) else 1.96
    return float(t.ppf(0.975, df))


@dataclass(frozen=True)
class Ratio:
    """Geometric-mean ratio B/A of paired times and its 95% confidence interval."""

    ratio: float
    low: float
    high: float
    pairs: int


def paired_ratio(a_times, b_times):
    """Ratio B/A of paired samples: exp of the mean log ratio, t interval on the log ratios.

    With a single pair the interval is (0, inf): nothing is known of the spread.
    """
    if len(a_times) != len(b_times) or not a_times:
        raise ValueError("paired_ratio needs as many B samples as A samples, at least one")
    logs = [math.log(b / a) for a, b in zip(a_times, b_times)]
    n = len(logs)
    mean = math.fsum(logs) / n
    if n < 2:
        return Ratio(math.exp(mean), 0.0, math.inf, n)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in logs) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n)


def verdict(r, threshold):
    """One of SLOWER, FASTER, NO_CHANGE, SLOWER_WITHIN, FASTER_WITHIN (see the module's doc)."""
    upper = 1.0 + threshold
    lower = 1.0 / upper
    if r.ratio > upper and r.low > 1.0:
        return SLOWER
    if r.ratio < lower and r.high < 1.0:
        return FASTER
    if r.low <= 1.0 <= r.high or (lower <= r.low and r.high <= upper):
        return NO_CHANGE
    return SLOWER_WITHIN if r.ratio > 1.0 else FASTER_WITHIN


def exit_status(verdicts):
    """1 when any workload's verdict is SLOWER, else 0."""
    return 1 if SLOWER in verdicts else 0


def pair_orders(pairs):
    """The order of each pair: ("A", "B"), ("B", "A"), ("A", "B"), ..."""
    return [("A", "B") if i % 2 == 0 else ("B", "A") for i in range(pairs)]


# ---------------------------------------------------------------- what to run


def resolve_workloads(spec):
    """Canonical workload names of a comma-separated list, in any case; AbError on unknown ones."""
    try:
        return _workloads.resolve_workloads(spec)
    except ValueError as err:
        raise AbError(str(err)) from None


@dataclass
class Side:
    """One side of the comparison: how to start its workers and where its gaussmix must come from."""

    label: str  # "A" or "B"
    description: str
    python: str
    pythonpath: str = None  # the build under test, put first on the workers' path
    gaussmix_file: str = None  # as the first worker reported it

    def env(self):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if self.pythonpath is not None:
            env["PYTHONPATH"] = self.pythonpath
        return env


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def repository_root(start=HERE):
    proc = _git(start, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise AbError(f"{start} is not in a git checkout, so revisions cannot be built: {_tail(proc.stderr, 3)}")
    return Path(proc.stdout.strip())


def resolve_revision(repo, rev):
    """The full sha of the commit ``rev`` names in ``repo``; AbError if it names none."""
    proc = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AbError(f"unknown revision {rev!r} in {repo}")
    return proc.stdout.strip()


def default_cache():
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gaussmix-ab"


def cached_build_dir(cache, sha):
    """Where the build of commit ``sha`` by this interpreter lives: <cache>/<cpython-311>/<sha>."""
    return Path(cache) / sys.implementation.cache_tag / sha


def is_built(path):
    return (Path(path) / "gaussmix" / "__init__.py").is_file()


def _tail(text, lines=LOG_TAIL_LINES):
    return "\n".join(text.strip().splitlines()[-lines:])


def check_build_requirements():
    import importlib.util

    missing = [m for m in BUILD_REQUIREMENTS if importlib.util.find_spec(m) is None]
    if missing:
        raise AbError(
            f"building a revision needs the build requirements in this interpreter ({sys.executable}), "
            f"and {', '.join(missing)} cannot be imported: pip install scikit-build-core pybind11 "
            "(CMake and a C++17 compiler are needed too), or compare installed environments "
            "with --a-python and --b-python"
        )


def pip_install(source, target, log):
    """Build and install the checkout ``source`` into the folder ``target``; AbError with pip's tail on failure."""
    check_build_requirements()
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(source)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AbError(f"the build of {source} failed (pip exit {proc.returncode}); the end of pip's output:\n"
                      + _tail(proc.stdout + "\n" + proc.stderr))
    log(f"built in {time.perf_counter() - t0:.0f} s\n")


def export_commit(repo, sha, dest):
    """The tree of commit ``sha`` written out to ``dest`` (git archive; no worktree is registered)."""
    proc = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha], capture_output=True)
    if proc.returncode != 0:
        raise AbError(f"git archive {sha} failed: {_tail(proc.stderr.decode(errors='replace'), 5)}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python releases before the extraction filters
            tar.extractall(dest)


def build_revision(repo, sha, cache, log):
    """The folder holding commit ``sha`` built, from the cache or built now."""
    dest = cached_build_dir(cache, sha)
    if is_built(dest):
        log(f"  {sha[:10]}: cached in {dest}\n")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"  {sha[:10]}: building into {dest} (a few minutes) ... ")
    with tempfile.TemporaryDirectory(prefix="gaussmix-ab-src-") as src, \
            tempfile.TemporaryDirectory(prefix=f"{sha[:10]}-", dir=dest.parent) as staging:
        export_commit(repo, sha, src)
        target = Path(staging) / "site"
        pip_install(src, target, log)
        shutil.rmtree(dest, ignore_errors=True)  # a partial folder left by an interrupted run
        target.rename(dest)  # whole or not at all: a cache hit is always a finished build
    return dest


def prepare_sides(args, log, scratch):
    """Sides A and B from the arguments, building revisions as needed (``scratch``: temporary builds)."""
    if args.a_python or args.b_python:
        if args.revisions:
            raise AbError("give either two revisions or --a-python and --b-python, not both")
        if not (args.a_python and args.b_python):
            raise AbError("--a-python and --b-python go together")
        sides = []
        for label, python in (("A", args.a_python), ("B", args.b_python)):
            exe = shutil.which(python)
            if exe is None:
                raise AbError(f"--{label.lower()}-python {python}: not an executable")
            sides.append(Side(label, python, exe))
        return sides
    if len(args.revisions) != 2:
        raise AbError("give two revisions (A and B; 'worktree' for the checkout as it is), "
                      "or --a-python and --b-python")
    repo = repository_root()
    shas = [None if rev == WORKTREE else resolve_revision(repo, rev) for rev in args.revisions]
    sides = []
    for label, rev, sha in zip("AB", args.revisions, shas):
        if sha is None:
            log(f"{label} = {WORKTREE}: building {repo} as it is ... ")
            path = Path(tempfile.mkdtemp(prefix=f"worktree-{label}-", dir=scratch))
            pip_install(repo, path, log)
            description = f"{WORKTREE} of {repo}"
        else:
            log(f"{label} = {rev}\n")
            path = build_revision(repo, sha, args.cache, log)
            description = rev if rev == sha else f"{rev} = {sha[:10]}"
        sides.append(Side(label, description, sys.executable, pythonpath=str(path)))
    return sides


# ---------------------------------------------------------------- running


def check_origin(side, gaussmix_file):
    """AbError unless a worker of ``side`` imported gaussmix from where it must."""
    if side.pythonpath is not None:
        expected = Path(side.pythonpath).resolve()
        if not Path(gaussmix_file).resolve().is_relative_to(expected):
            raise AbError(
                f"side {side.label} imported gaussmix from {gaussmix_file}, not from its build in {expected}: "
                "something on this interpreter's path comes before PYTHONPATH (an editable install of "
                "gaussmix?); use an environment without one, or --a-python and --b-python"
            )
    elif side.gaussmix_file is not None and gaussmix_file != side.gaussmix_file:
        raise AbError(f"side {side.label} imported gaussmix from {gaussmix_file}, "
                      f"earlier from {side.gaussmix_file}")
    side.gaussmix_file = gaussmix_file


def run_sample(side, name, args):
    """One worker process of ``side`` on workload ``name``: its result (a dict, see _ab_worker.py)."""
    cmd = [side.python, str(WORKER), name, "--inner", str(args.inner)]
    if args.quick:
        cmd.append("--quick")
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, env=side.env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise AbError(f"the worker of side {side.label} ({side.description}) failed on {name} "
                      f"(exit {proc.returncode}):\n{_tail(proc.stderr)}")
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AbError(f"the worker of side {side.label} printed no result on {name}:\n"
                      f"{_tail(proc.stdout + proc.stderr)}") from None
    check_origin(side, result["gaussmix"])
    return result


@dataclass
class Row:
    name: str
    describe: str
    a: list  # the best time of each A sample, pair by pair
    b: list
    orders: list
    ratio: Ratio = None
    verdict: str = ""


def run_workload(name, sides, args, log):
    """``args.pairs`` pairs of samples in alternating order: the workload's Row."""
    workload = ALL_WORKLOADS[name]
    if args.quick:
        workload = workload.quick()
    by_label = {s.label: s for s in sides}
    best = {"A": [], "B": []}
    orders = pair_orders(args.pairs)
    log(f"{name} ({workload.describe()}):")
    for order in orders:
        for label in order:
            seconds = run_sample(by_label[label], name, args)["best"]
            best[label].append(seconds)
            log(f" {label} {format_seconds(seconds)}")
        log(" |")
    log("\n")
    row = Row(name, workload.describe(), best["A"], best["B"], ["".join(o) for o in orders])
    row.ratio = paired_ratio(row.a, row.b)
    row.verdict = verdict(row.ratio, args.threshold)
    return row


def format_interval(r):
    return f"[{r.low:.3f}, {r.high:.3f}]"


def print_report(out, sides, rows, args):
    mode = "quick sizes" if args.quick else "full sizes"
    threads = "default threads" if args.threads is None else f"{args.threads} thread{'s' * (args.threads != 1)}"
    for s in sides:
        print(f"{s.label}: {s.description}  (gaussmix from {s.gaussmix_file})", file=out)
    if sides[0].gaussmix_file == sides[1].gaussmix_file:
        print("note: A and B import the same gaussmix", file=out)
    print(f"{args.pairs} pairs per workload (AB, BA, ...), best of {args.inner} calls per sample, "
          f"{mode}, {threads}; slower = B/A > {1 + args.threshold:g} with the 95% CI above 1", file=out)
    print(file=out)
    print("| workload | A best | B best | B/A | 95% CI | verdict |", file=out)
    print("|---|---:|---:|---:|---|---|", file=out)
    for r in rows:
        print(f"| {r.name} {r.describe} | {format_seconds(min(r.a))} | {format_seconds(min(r.b))} "
              f"| {r.ratio.ratio:.3f} | {format_interval(r.ratio)} | {r.verdict} |", file=out)
    print(file=out)
    slower = [r.name for r in rows if r.verdict == SLOWER]
    if slower:
        print(f"B is slower than A beyond {args.threshold:.0%} on {', '.join(slower)}", file=out)
    else:
        print(f"no workload is slower beyond {args.threshold:.0%}", file=out)


def write_json(path, sides, rows, args):
    data = {
        "sides": {s.label: {"description": s.description, "python": s.python, "pythonpath": s.pythonpath,
                            "gaussmix": s.gaussmix_file} for s in sides},
        "settings": {"pairs": args.pairs, "inner": args.inner, "quick": args.quick,
                     "threads": args.threads, "threshold": args.threshold},
        "workloads": {
            r.name: {"describe": r.describe, "orders": r.orders, "a": r.a, "b": r.b,
                     "ratio": r.ratio.ratio, "ci": [r.ratio.low, r.ratio.high], "verdict": r.verdict}
            for r in rows
        },
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


# ---------------------------------------------------------------- command line


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _pairs(text):
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("at least 2 pairs are needed for a confidence interval")
    return value


def _threshold(text):
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative number")
    return value


def make_parser():
    parser = argparse.ArgumentParser(
        prog="ab.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("revisions", nargs="*", metavar="REV",
                        help="two git revisions, A then B ('worktree': the checkout with its uncommitted changes)")
    parser.add_argument("--a-python", metavar="PATH", help="python of an environment with gaussmix installed (side A)")
    parser.add_argument("--b-python", metavar="PATH", help="the same for side B")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                        help="comma-separated subset of " + ", ".join(ALL_WORKLOADS) + "; in any case (default: all)")
    parser.add_argument("--quick", action="store_true", help="each workload's quick() sizes (about 1/100)")
    parser.add_argument("--pairs", type=_pairs, default=5, help="A/B pairs of samples per workload (default 5)")
    parser.add_argument("--inner", type=_positive_int, default=3,
                        help="timed calls per sample, after one untimed; a sample's time is their best (default 3)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="n_jobs of every gaussmix estimator (default: gaussmix's own default)")
    parser.add_argument("--threshold", type=_threshold, default=0.05,
                        help="relative slowdown that fails the run (exit 1) when significant (default 0.05)")
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help="root of the cache of revision builds (default %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="write the raw samples, ratios and verdicts to FILE")
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)

    def log(msg):
        print(msg, end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gaussmix-ab-") as scratch:
        try:
            names = resolve_workloads(args.workloads)
            sides = prepare_sides(args, log, scratch)
            rows = [run_workload(name, sides, args, log) for name in names]
        except AbError as err:
            print(f"ab.py: error: {err}", file=sys.stderr)
            return 2
    print_report(sys.stdout, sides, rows, args)
    if args.json:
        write_json(args.json, sides, rows, args)
    return exit_status([r.verdict for r in rows])


if __name__ == "__main__":
    sys.exit(main())
