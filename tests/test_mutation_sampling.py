"""`make mutation`'s sample (tests/mutation/sampling.py): who gets drawn, and what the score claims.

The CI gate trusts these numbers: a sample that skips a module, a draw that changes between
two runs of one commit, or an interval that claims more than the sample shows would let the
mutation score pass while the tests got worse.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "mutation"))
import sampling  # tests/mutation is no package: run.py imports it the same way


def test_allocation_is_proportional_and_adds_up() -> None:
    counts = sampling.allocate({"big": 900, "mid": 90, "small": 10}, 100)
    assert counts == {"big": 90, "mid": 9, "small": 1}
    assert sum(sampling.allocate({"a": 7, "b": 5, "c": 3}, 10).values()) == 10


def test_every_module_gets_at_least_one_and_none_more_than_it_has() -> None:
    counts = sampling.allocate({"huge": 10_000, "tiny": 1, "empty": 0, "two": 2}, 20)
    assert counts["tiny"] == 1 and counts["two"] >= 1
    assert "empty" not in counts
    assert sum(counts.values()) == 20
    assert sampling.allocate({"a": 3, "b": 2}, 50) == {"a": 3, "b": 2}


def test_a_sample_smaller_than_the_modules_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot reach all 3 modules"):
        sampling.allocate({"a": 5, "b": 5, "c": 5}, 2)


def test_the_draw_repeats_for_one_seed_and_changes_with_another() -> None:
    population = {"m1": [f"m1_{i}" for i in range(500)], "m2": [f"m2_{i}" for i in range(50)]}
    first = sampling.draw(population, 55, "abc123")
    assert first == sampling.draw(population, 55, "abc123")
    assert first != sampling.draw(population, 55, "def456")
    assert len(first["m1"]) == 50 and len(first["m2"]) == 5
    assert set(first["m1"]) <= set(population["m1"])
    assert len(set(first["m1"])) == 50  # without replacement


def test_one_module_growing_leaves_another_modules_draw_alone() -> None:
    before = {"m1": [f"a{i}" for i in range(100)], "m2": [f"b{i}" for i in range(100)]}
    after = {**before, "m1": [*before["m1"], "a_new"]}
    assert sampling.draw(before, 20, "s")["m2"] == sampling.draw(after, 20, "s")["m2"]


def test_wilson_interval_matches_the_textbook_and_never_reaches_past_the_sample() -> None:
    low, high = sampling.wilson(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-4) and high == pytest.approx(0.9448, abs=1e-4)
    low, high = sampling.wilson(100, 100)  # all killed: still not "100% for sure"
    assert low == pytest.approx(0.9630, abs=1e-4) and high == 1.0
    assert sampling.wilson(0, 0) == (0.0, 1.0)


def test_the_estimate_weighs_modules_by_their_size() -> None:
    found = sampling.estimate({"big": (45, 50), "small": (1, 10)}, {"big": 1000, "small": 100})
    # Stratified: 1000/1100 * 0.9 + 100/1100 * 0.1, not the pooled 46/60.
    assert found.score == pytest.approx((900 + 10) / 1100)
    assert found.low < found.score < found.high
    assert found.sampled == 60 and found.population == 1100


def test_a_sample_at_90_percent_does_not_pass_a_90_percent_gate() -> None:
    found = sampling.estimate({"m": (360, 400)}, {"m": 16_000})
    assert found.score == pytest.approx(0.9)
    assert found.low < 0.9 < found.high
    assert found.low > 0.86  # 400 mutants: about +-3 points


def test_checking_every_mutant_leaves_no_doubt_about_the_population() -> None:
    found = sampling.estimate({"m": (95, 100)}, {"m": 100})  # a census: nothing unseen
    assert found.score == pytest.approx(0.95)
    assert found.low == pytest.approx(0.95) and found.high == pytest.approx(0.95)


def test_a_module_with_nothing_checked_gives_no_score() -> None:
    with pytest.raises(ValueError, match="no mutant of m2 was checked"):
        sampling.estimate({"m1": (5, 5), "m2": (0, 0)}, {"m1": 10, "m2": 10})
    with pytest.raises(ValueError, match="no mutant was checked"):
        sampling.estimate({}, {})


def test_the_interval_covers_the_true_score_about_95_times_in_100() -> None:
    """Coverage, simulated: a population at 88% killed, sampled 200 times with 300 mutants."""
    rng = random.Random(7)
    sizes = {"a": 6000, "b": 3000, "c": 1000}
    rates = {"a": 0.95, "b": 0.80, "c": 0.75}
    truth = sum(sizes[m] * rates[m] for m in sizes) / sum(sizes.values())
    population = {m: [i < sizes[m] * rates[m] for i in range(sizes[m])] for m in sizes}
    counts = sampling.allocate(sizes, 300)
    covered = 0
    for _ in range(200):
        results = {}
        for module, count in counts.items():
            picked = rng.sample(population[module], count)
            results[module] = (sum(picked), count)
        found = sampling.estimate(results, sizes)
        covered += found.low <= truth <= found.high
    assert 180 <= covered <= 200  # 95% nominal; the lower bound alone fails below 2.5%


def test_equivalent_ledger_matches_only_its_function_and_exact_diff() -> None:
    """equivalent.txt leaves a survivor out of the score: only for the very change judged,
    in that very function; a malformed block is refused rather than matching too much."""
    import run

    ledger = run.load_equivalents(
        "# a comment\n\nprovision.x.x_f\n-    a = 1\n+    a = 2\n\n\nprovision.y.x_g\n-b\n+c\n"
    )
    assert ledger == {("provision.x.x_f", ("-a = 1", "+a = 2")), ("provision.y.x_g", ("-b", "+c"))}
    assert run.function_of("provision.x.x_f__mutmut_12") == "provision.x.x_f"
    assert run.function_of("provision.x.xǁCǁm__mutmut_3") == "provision.x.xǁCǁm"
    assert (run.function_of("provision.x.x_f__mutmut_3"), ("-a = 1", "+a = 3")) not in ledger
    assert (run.function_of("provision.z.x_f__mutmut_1"), ("-a = 1", "+a = 2")) not in ledger
    for bad in ("provision.x.x_f\n-a = 1\n", "provision.x.x_f__mutmut_1\n-a\n+b\n"):
        with pytest.raises(ValueError, match="no function and diff"):
            run.load_equivalents(bad)


def test_every_committed_equivalent_is_explained_in_survivors_md() -> None:
    import run

    explained = run.EXPLANATIONS.read_text(encoding="utf-8")
    for function, _diff in run.load_equivalents(run.EQUIVALENT.read_text(encoding="utf-8")):
        short = function.split(".x_")[-1].split(".xǁ")[-1].split("ǁ")[-1]
        assert short in explained, function


def test_a_sample_of_one_per_module_claims_no_more_than_its_size() -> None:
    """60 modules sampled once each: no stratum can show its spread, so the interval must be
    at least as wide as a simple random sample of 60 would give, not near zero."""
    sizes = {f"m{i}": 300 for i in range(60)}
    results = {f"m{i}": (1 if i < 36 else 0, 1) for i in range(60)}
    results["m0"] = (1, 2)  # one module with two, so some variance is seen
    sizes["m0"] = 300
    found = sampling.estimate(results, sizes)
    low, high = sampling.wilson(36, 61)
    assert found.high - found.low >= (high - low) * 0.95


def _report(tmp_path, monkeypatch, killed: int, survived: int, *extra: str) -> int:
    """run.py --report-only over a fake sample of one module: `killed` + `survived` mutants."""
    import json

    import run

    names = [f"provision.dsn.x_parse_dsn__mutmut_{i}" for i in range(killed + survived)]
    statuses = {name: "killed" if i < killed else "survived" for i, name in enumerate(names)}
    (tmp_path / "mutants").mkdir(parents=True)
    drawn = {"seed": "s", "sizes": {"provision.dsn": 1000}, "chosen": {"provision.dsn": names}}
    (tmp_path / "mutants" / "sample.json").write_text(json.dumps(drawn))
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "results", lambda cwd: statuses)
    monkeypatch.setattr(run, "diff_of", lambda name, cwd: "")
    monkeypatch.setattr(run, "diff_lines", lambda name, cwd: ())
    monkeypatch.setattr(run, "EXPLANATIONS", tmp_path / "SURVIVORS.md")  # absent: not printed
    return run.main(["--report-only", *extra])


def test_the_floor_gates_ci_below_the_target_and_still_fails_a_drop(tmp_path, monkeypatch, capsys):
    """CI gates on --floor while the 90% target is not met: 70 of 100 killed passes a 50% floor
    (saying the target is not met) and fails the target; 40 of 100 fails the floor."""
    assert _report(tmp_path / "a", monkeypatch, 70, 30) == 1
    assert _report(tmp_path / "b", monkeypatch, 70, 30, "--floor", "50") == 0
    out = capsys.readouterr().out
    assert "floor: >= 50% (the gate of this run, --floor): PASS; the 90% target is NOT met" in out
    assert _report(tmp_path / "c", monkeypatch, 40, 60, "--floor", "50") == 1
    assert "floor: >= 50% (the gate of this run, --floor): FAIL" in capsys.readouterr().out


def test_the_target_gates_on_the_estimate_and_says_whether_its_lower_bound_clears_it(
    tmp_path, monkeypatch, capsys
):
    """The issue's threshold is the score: a sample passes when its estimate reaches 90% (94 of
    100 killed, whose interval reaches below 90%, says so but passes) and fails below it (89 of
    100); an interval wholly above 90% (99 of 100) clears it with 95% confidence."""
    assert _report(tmp_path / "a", monkeypatch, 94, 6) == 0
    out = capsys.readouterr().out
    assert "target: >= 90% (the estimate): PASS\n" in out
    assert "with 95% confidence: the interval's lower bound 87.5% does NOT clear the target\n" in (
        out
    )
    assert _report(tmp_path / "b", monkeypatch, 89, 11) == 1
    assert "target: >= 90% (the estimate): FAIL\n" in capsys.readouterr().out
    assert _report(tmp_path / "c", monkeypatch, 99, 1) == 0
    out = capsys.readouterr().out
    assert "with 95% confidence: the interval's lower bound 94.6% clears the target\n" in out
    import json

    summary = json.loads((tmp_path / "c" / "mutants" / "summary.json").read_text())
    assert (summary["target_met"], summary["target_met_with_95_percent_confidence"]) == (True, True)


def test_only_keeps_the_modules_a_pattern_names_and_refuses_a_pattern_matching_none() -> None:
    import run

    everything = {
        "provision.load.run": ["a"],
        "provision.load.report": ["b"],
        "provision.dsn": ["c"],
        "provision.ops.verify": ["d"],
    }
    assert run.select_modules(everything, []) == everything
    assert run.select_modules(everything, ["provision.load.*", "provision.dsn"]) == {
        "provision.load.run": ["a"],
        "provision.load.report": ["b"],
        "provision.dsn": ["c"],
    }
    with pytest.raises(ValueError) as refused:
        run.select_modules(everything, ["provision.load.*", "provision.lod.*"])
    assert str(refused.value) == "--only 'provision.lod.*' matches no mutated module"


def test_all_with_only_runs_the_matching_modules_mutants_and_nothing_else(tmp_path, monkeypatch):
    """`--all --only M` checks every mutant of M: mutmut is given their names, never an empty
    list (which mutmut reads as every one of the 17,000); `--all` alone gives it none."""
    import run

    everything = {
        "provision.load.locustfile": ["provision.load.locustfile.x_f__mutmut_1"],
        "provision.dsn": ["provision.dsn.x_g__mutmut_1", "provision.dsn.x_g__mutmut_2"],
    }
    given: list[list[str]] = []
    (tmp_path / "mutants").mkdir()
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "generate", lambda cwd: None)
    monkeypatch.setattr(run, "population", lambda cwd: everything)
    monkeypatch.setattr(run, "run_mutmut", lambda names, children: given.append(names) or 0)
    monkeypatch.setattr(run, "results", lambda cwd: {})  # nothing checked: the runs fail
    monkeypatch.setattr(run, "EXPLANATIONS", tmp_path / "SURVIVORS.md")  # absent: not printed
    assert run.main(["--all", "--only", "provision.load.*"]) == 1
    assert run.main(["--all"]) == 1
    assert given == [["provision.load.locustfile.x_f__mutmut_1"], []]
