"""ab.py: its statistics, verdicts, argument checks and one end-to-end run (no builds)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from . import ab

AB = Path(ab.__file__).resolve()


def ratio(r, low, high, pairs=5):
    return ab.Ratio(r, low, high, pairs)


def test_identical_samples_give_ratio_one_and_a_zero_width_interval():
    times = [0.011, 0.013, 0.012, 0.02]
    r = ab.paired_ratio(times, list(times))
    assert (r.ratio, r.low, r.high, r.pairs) == (1.0, 1.0, 1.0, 4)
    assert ab.verdict(r, 0.05) == ab.NO_CHANGE


def test_ratio_and_interval_from_known_log_ratios():
    # Log ratios 0.1, 0.2, 0.3: mean 0.2, standard deviation 0.1, t(0.975, 2) = 4.303.
    a = [1.0, 2.0, 0.5]
    b = [a[0] * math.exp(0.1), a[1] * math.exp(0.2), a[2] * math.exp(0.3)]
    r = ab.paired_ratio(a, b)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert r.ratio == pytest.approx(math.exp(0.2), rel=1e-12)
    assert r.low == pytest.approx(math.exp(0.2 - half), rel=1e-5)
    assert r.high == pytest.approx(math.exp(0.2 + half), rel=1e-5)
    # The interval contains 1 (0.2 - 0.248 < 0): significant it is not.
    assert r.low < 1 < r.high
    assert ab.verdict(r, 0.05) == ab.NO_CHANGE


def test_a_constant_factor_gives_that_ratio_and_a_point_interval():
    a = [0.5, 0.7, 0.6]
    r = ab.paired_ratio(a, [1.2 * t for t in a])
    assert r.ratio == pytest.approx(1.2, rel=1e-12)
    assert r.high - r.low < 1e-9
    assert ab.verdict(r, 0.05) == ab.SLOWER


def test_one_pair_has_an_unbounded_interval():
    r = ab.paired_ratio([1.0], [2.0])
    assert (r.ratio, r.low, r.high) == (pytest.approx(2.0), 0.0, math.inf)
    with pytest.raises(ValueError):
        ab.paired_ratio([1.0, 2.0], [1.0])


def test_t_table_matches_scipy():
    from scipy.stats import t

    for df, q in enumerate(ab.T_975, start=1):
        assert q == pytest.approx(t.ppf(0.975, df), abs=6e-4), df
    assert ab.t_quantile_975(4) == pytest.approx(2.776445, rel=1e-6)


@pytest.mark.parametrize(
    "r, expected",
    [
        (ratio(1.10, 1.02, 1.18), ab.SLOWER),  # significant and beyond 5%
        (ratio(1.10, 0.98, 1.22), ab.NO_CHANGE),  # beyond 5% but the interval holds 1
        (ratio(1.04, 1.01, 1.08), ab.SLOWER_WITHIN),  # significant, ratio inside the band
        (ratio(1.02, 1.01, 1.03), ab.NO_CHANGE),  # significant, interval inside the band
        (ratio(0.90, 0.85, 0.94), ab.FASTER),
        (ratio(0.97, 0.93, 0.99), ab.FASTER_WITHIN),
        (ratio(0.98, 0.97, 0.99), ab.NO_CHANGE),
        (ratio(1.0, 0.5, 2.0), ab.NO_CHANGE),
    ],
)
def test_verdicts_at_a_five_percent_threshold(r, expected):
    assert ab.verdict(r, 0.05) == expected


def test_threshold_moves_the_verdict_and_only_slower_fails_the_run():
    r = ratio(1.10, 1.02, 1.18)
    assert ab.verdict(r, 0.05) == ab.SLOWER
    assert ab.verdict(r, 0.15) == ab.SLOWER_WITHIN
    assert ab.verdict(r, 0.0) == ab.SLOWER
    assert ab.exit_status([ab.NO_CHANGE, ab.SLOWER, ab.FASTER]) == 1
    assert ab.exit_status([ab.NO_CHANGE, ab.SLOWER_WITHIN, ab.FASTER, ab.FASTER_WITHIN]) == 0
    assert ab.exit_status([]) == 0


def test_pairs_alternate_their_order():
    assert ab.pair_orders(4) == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]


def test_workload_names_in_any_case_once_each():
    assert ab.resolve_workloads("g1, G3O,k1,G1") == ["G1", "G3o", "K1"]


@pytest.mark.parametrize("spec", ["G1,G9", "g1o,kde", " , "])
def test_unknown_workloads_are_named_with_the_valid_ones(spec):
    with pytest.raises(ab.AbError) as err:
        ab.resolve_workloads(spec)
    message = str(err.value)
    assert "G1, G2" in message and "K4" in message
    for bad in ("G9", "kde"):
        assert (bad in message) == (bad in spec)


def test_usage_errors_exit_2(capsys):
    python = sys.executable
    assert ab.main(["--a-python", python, "--b-python", python, "--workloads", "G9"]) == 2
    assert "unknown workload(s) G9; choose from G1" in capsys.readouterr().err
    assert ab.main(["--a-python", python, "--workloads", "G5"]) == 2
    assert "--a-python and --b-python go together" in capsys.readouterr().err
    assert ab.main(["--a-python", python, "--b-python", "/no/such/python", "--workloads", "G5"]) == 2
    assert "not an executable" in capsys.readouterr().err
    assert ab.main(["HEAD", "--workloads", "G5"]) == 2
    assert "give two revisions" in capsys.readouterr().err


def test_revisions_resolve_to_commits():
    try:
        repo = ab.repository_root()
    except ab.AbError:
        pytest.skip("not a git checkout")
    sha = ab.resolve_revision(repo, "HEAD")
    assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha)
    with pytest.raises(ab.AbError, match="unknown revision 'no-such-rev-'"):
        ab.resolve_revision(repo, "no-such-rev-")


def test_a_cached_build_is_not_built_again(tmp_path, monkeypatch):
    sha = "0" * 40
    dest = ab.cached_build_dir(tmp_path, sha)
    assert not ab.is_built(dest)
    (dest / "gaussmix").mkdir(parents=True)
    (dest / "gaussmix" / "__init__.py").write_text("")

    def no_build(*args):
        raise AssertionError("a cached revision was built again")

    monkeypatch.setattr(ab, "pip_install", no_build)
    assert ab.build_revision(tmp_path, sha, tmp_path, lambda msg: None) == dest


def test_a_worker_must_import_the_build_under_test(tmp_path):
    side = ab.Side("A", "test", sys.executable, pythonpath=str(tmp_path / "build"))
    ab.check_origin(side, str(tmp_path / "build" / "gaussmix" / "__init__.py"))
    with pytest.raises(ab.AbError, match="not from its build"):
        ab.check_origin(side, str(tmp_path / "site-packages" / "gaussmix" / "__init__.py"))
    installed = ab.Side("B", "test", sys.executable)
    ab.check_origin(installed, "/env/gaussmix/__init__.py")
    with pytest.raises(ab.AbError, match="earlier from"):
        ab.check_origin(installed, "/other/gaussmix/__init__.py")


def test_end_to_end_with_two_installed_environments(tmp_path):
    import gaussmix

    raw = tmp_path / "raw.json"
    python = sys.executable
    proc = subprocess.run(
        [python, str(AB), "--a-python", python, "--b-python", python, "--quick", "--workloads", "g5",
         "--pairs", "2", "--inner", "1", "--json", str(raw)],
        capture_output=True, text=True, cwd=AB.parent.parent, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "| G5 2 fits of N=1,000 D=2 K=3 full |" in proc.stdout
    assert "note: A and B import the same gaussmix" in proc.stdout
    data = json.loads(raw.read_text())
    g5 = data["workloads"]["G5"]
    assert g5["orders"] == ["AB", "BA"]
    assert len(g5["a"]) == len(g5["b"]) == 2 and all(t > 0 for t in g5["a"] + g5["b"])
    assert g5["ci"][0] <= g5["ratio"] <= g5["ci"][1]
    assert data["sides"]["A"]["gaussmix"] == gaussmix.__file__


def test_a_failed_build_shows_the_end_of_pips_output(tmp_path, monkeypatch):
    monkeypatch.setattr(ab, "check_build_requirements", lambda: None)
    empty = tmp_path / "not-a-project"
    empty.mkdir()
    with pytest.raises(ab.AbError, match="the end of pip's output:\n") as err:
        ab.pip_install(empty, tmp_path / "target", lambda msg: None)
    assert str(empty) in str(err.value).split("output:", 1)[1]


def test_building_without_the_build_requirements_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(ab, "BUILD_REQUIREMENTS", ("pybind11", "no_such_build_backend"))
    with pytest.raises(ab.AbError, match="no_such_build_backend cannot be imported") as err:
        ab.check_build_requirements()
    assert "--a-python and --b-python" in str(err.value)
