"""`make mutation`: mutmut on the kit's critical modules, and a score that means something.

mutmut (configured in pyproject.toml, [tool.mutmut]) changes one small thing at a time in the
modules that decide what happens to a user's data and secrets, and runs the fast tests that reach
the changed function. A mutant no test notices "survived"; one no test reaches is "no tests" and
counts as a survivor too. The whole population (about 17,000 mutants) takes hours on 2 cores,
so by default a seeded random sample, stratified by module (tests/mutation/sampling.py), is run:
the script prints the estimated score with its 95% interval, the run time, every sampled
survivor with its diff, and tests/mutation/SURVIVORS.md (the survivors judged equivalent and why).
It exits 1 when the estimated score is below the 90% target, or when a sampled mutant was not
checked (a run cut short never passes); it says too whether the interval's lower bound clears
the target (the same score with 95% confidence). `--all` checks every mutant (the exact score).
The method and its limits: tests/mutation/METHOD.md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sampling  # a sibling module: tests/mutation is no package

ROOT = Path(__file__).resolve().parents[2]
TARGET = 90.0
SAMPLE = 300  # mutants per run by default and in CI (about +-2.5 points): METHOD.md says why
EXPLANATIONS = Path(__file__).with_name("SURVIVORS.md")
# Survivors judged equivalent, each by its function and its exact diff (see the file's header):
# such a sampled mutant is left out of the score (it cannot be killed), and shown as such.
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
MUTMUT = [sys.executable, "-m", "mutmut"]
KILLED = {"killed", "timeout"}  # a mutant that makes a test hang is caught too
MAX_DIFFS = 200  # survivors shown with their diff; the rest by name
UNCHECKED = "not checked"  # an interrupted run: never a pass, and left out of the score
_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+?)\s*$")


def results(cwd: Path) -> dict[str, str]:
    """Every mutant's status from `mutmut results --all true` (name -> status)."""
    done = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"mutmut results failed: {done.stderr.strip()[-500:]}")
    found = {}
    for line in done.stdout.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match["name"]] = match["status"]
    return found


def per_module(statuses: dict[str, str]) -> dict[str, tuple[int, int]]:
    """(killed, total) per module, from names like `provision.dsn.x_parse_dsn__mutmut_3`."""
    found: dict[str, tuple[int, int]] = {}
    for name, status in statuses.items():
        if status in ("skipped", UNCHECKED, "equivalent"):
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        done, count = found.get(module, (0, 0))
        found[module] = (done + (status in KILLED), count + 1)
    return found


def diff_lines(name: str, cwd: Path) -> tuple[str, ...]:
    """The changed lines of one mutant (from `mutmut show`), stripped, without diff headers."""
    done = subprocess.run(
        [*MUTMUT, "show", name], cwd=cwd, capture_output=True, text=True, check=False
    )
    return tuple(
        line[0] + line[1:].strip()  # the sign, then the code without its indentation
        for line in done.stdout.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def diff_of(name: str, cwd: Path) -> str:
    """The changed lines of one mutant, indented for the report."""
    return "\n".join(f"      {line}" for line in diff_lines(name, cwd)) or "      (no diff)"


def function_of(name: str) -> str:
    """`provision.dsn.x_parse_dsn__mutmut_3` -> `provision.dsn.x_parse_dsn`."""
    return name.rsplit("__mutmut_", 1)[0]


def load_equivalents(text: str) -> set[tuple[str, tuple[str, ...]]]:
    """The (function, diff lines) pairs of equivalent.txt: blocks separated by blank lines,
    each the mutated function's name, then the diff's `-` and `+` lines; `#` lines comment.
    A block without a `-` and a `+` line is refused: it would match nothing, or too much."""
    found = set()
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if not line.startswith("#")]
        lines = [line[0] + line[1:].strip() for line in lines if line]
        if not lines:
            continue
        function, diff = lines[0], tuple(lines[1:])
        kinds = {line[:1] for line in diff}
        if "__mutmut_" in function or kinds != {"-", "+"}:
            raise ValueError(f"equivalent.txt: the block of {function} is no function and diff")
        found.add((function, diff))
    return found


def generate(cwd: Path) -> None:
    """mutmut's own first step alone: copy the tree to mutants/ and write every mutant.

    `mutmut run` does this too (and skips unchanged files), but the population must be known
    before the sample is drawn. Same functions, same order as mutmut 3.8.1's `run`.
    """
    code = (
        "import os, sys\n"
        "import mutmut.__main__ as m\n"
        "m.set_mutant_under_test('mutant_generation')\n"
        "os.makedirs('mutants', exist_ok=True)\n"
        "m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths()\n"
        f"m.create_mutants({os.cpu_count() or 2})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"mutant generation failed: {done.stderr.strip()[-800:]}")


def population(cwd: Path) -> dict[str, list[str]]:
    """Every mutant's name per module, from the .meta files mutmut writes beside each mutant."""
    found: dict[str, list[str]] = {}
    for meta in sorted((cwd / "mutants").rglob("*.py.meta")):
        names = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        if names:
            module = meta.relative_to(cwd / "mutants").with_suffix("").with_suffix("")
            found[".".join(module.parts)] = sorted(names)
    return found


def select_modules(everything: dict[str, list[str]], patterns: list[str]) -> dict[str, list[str]]:
    """The modules matching any `--only` pattern (shell-style, e.g. `provision.load.*`), so one
    can measure the modules one works on; all of them without a pattern. ValueError when a
    pattern matches no module (a typo would otherwise measure nothing and say so quietly)."""
    if not patterns:
        return everything
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(module, pattern) for module in everything):
            raise ValueError(f"--only {pattern!r} matches no mutated module")
    return {
        module: names
        for module, names in everything.items()
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)
    }


def default_seed(cwd: Path) -> str:
    """The commit being tested (a new commit draws new mutants), else the date."""
    done = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or time.strftime("%Y-%m-%d")


def run_mutmut(names: list[str], max_children: int) -> int:
    """`mutmut run` on the given mutants (all of them when empty); its exit code."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    # mutmut's copy of the tree (mutants/) is one level deeper than the checkout: the
    # tests that read GlitchTip's recordings from ../shared are told where they are.
    contract = ROOT.parent / "shared" / "glitchtip-contract"
    if not env.get("GLITCHTIP_CONTRACT_DIR") and contract.is_dir():
        env["GLITCHTIP_CONTRACT_DIR"] = str(contract)
    done = subprocess.run(
        [*MUTMUT, "run", "--max-children", str(max_children), *names],
        cwd=ROOT,
        env=env,
        check=False,
    )
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    """Draw the sample, run mutmut on it, print the estimate; exit 1 below the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="report the last run only")
    # Twice the CPUs: many mutants spend their time waiting on the fake GlitchTip's sockets.
    parser.add_argument("--max-children", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument(
        "--fresh", action="store_true", help="forget earlier results (mutants/) and run all"
    )
    parser.add_argument(
        "--sample", type=int, default=SAMPLE, help="mutants to draw (default %(default)s)"
    )
    parser.add_argument("--seed", help="the sample's seed (default: the commit, else the date)")
    parser.add_argument("--all", action="store_true", help="every mutant: the exact score (hours)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only the modules matching this pattern (e.g. 'provision.load.*'; repeatable)",
    )
    parser.add_argument(
        "--floor",
        type=float,
        help=(
            "fail only when the score (the lower bound for a sample) is below this percentage "
            "instead of the target: a regression floor for a tree that does not meet it yet"
        ),
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.fresh and not args.report_only:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    sample_file = ROOT / "mutants" / "sample.json"
    if args.report_only:
        if not sample_file.exists():
            print("no mutation results: run `make mutation` first", file=sys.stderr)
            return 2
        drawn = json.loads(sample_file.read_text(encoding="utf-8"))
    else:
        generate(ROOT)
        try:
            everything = select_modules(population(ROOT), args.only)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        seed = args.seed or default_seed(ROOT)
        size = sum(len(names) for names in everything.values())
        chosen = everything if args.all else sampling.draw(everything, args.sample, seed)
        drawn = {
            "seed": None if args.all else seed,
            "sizes": {module: len(names) for module, names in everything.items()},
            "chosen": chosen,
        }
        sample_file.write_text(json.dumps(drawn, indent=1) + "\n", encoding="utf-8")
        count = sum(len(names) for names in chosen.values())
        what = "every mutant" if args.all else f"a sample of {count} (seed {seed})"
        print(f"{size} mutants in {len(everything)} modules; checking {what}", flush=True)
        # mutmut runs every mutant when given none: only `--all` over every module may say so.
        whole = args.all and not args.only
        names = [] if whole else [name for names in chosen.values() for name in names]
        code = run_mutmut(names, args.max_children)
        if code != 0:
            print(f"mutmut run exited {code}", file=sys.stderr)
            return 2
    elapsed = time.monotonic() - began
    every = results(ROOT)
    wanted = {name for names in drawn["chosen"].values() for name in names}
    statuses = {name: every.get(name, UNCHECKED) for name in wanted}
    if not statuses:
        print("no mutation results: run `make mutation` first", file=sys.stderr)
        return 2
    equivalents = load_equivalents(EQUIVALENT.read_text(encoding="utf-8"))
    for name in sorted(statuses):  # one `mutmut show` per survivor: the sample bounds them
        if statuses[name] == "survived" and (function_of(name), diff_lines(name, ROOT)) in (
            equivalents
        ):
            statuses[name] = "equivalent"
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    unchecked = counts.get(UNCHECKED, 0)
    survivors = sorted(
        name
        for name, status in statuses.items()
        if status not in KILLED | {UNCHECKED, "skipped", "equivalent"}
    )
    print()
    print("Surviving mutants (not killed by any fast test):")
    for index, name in enumerate(survivors):
        print(f"  {name}: {statuses[name]}")
        if index < MAX_DIFFS:  # `mutmut show` is one process per mutant: bounded
            print(diff_of(name, ROOT))
    if len(survivors) > MAX_DIFFS:
        print(f"  (diffs of the first {MAX_DIFFS} only; `mutmut show NAME` shows any other)")
    if EXPLANATIONS.exists():
        print()
        print(f"Why the remaining survivors are left ({EXPLANATIONS.relative_to(ROOT)}):")
        print(EXPLANATIONS.read_text(encoding="utf-8").rstrip())
    modules = per_module(statuses)
    print()
    print("By module (killed / checked of the module's mutants):")
    for module, (done, checked) in sorted(modules.items()):
        size = drawn["sizes"].get(module, checked)
        share = 100.0 * done / checked
        print(f"  {module:<40} {done:>4} / {checked:<4} of {size:<5} {share:5.1f}%")
    print()
    by_status = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
    run_time = "report only" if args.report_only else f"{elapsed:.0f} s"
    killed = sum(done for done, _ in modules.values())
    checked = sum(count for _, count in modules.values())
    try:
        found = sampling.estimate(modules, drawn["sizes"])
    except ValueError as error:
        print(f"no score: {error}")
        return 1
    low, high = 100.0 * found.low, 100.0 * found.high
    score = 100.0 * found.score
    # The gate is the score itself: the exact one, or a sample's unbiased estimate of it.
    passed = score >= TARGET
    if drawn["seed"] is None:
        print(f"mutation score: {killed}/{checked} killed = {score:.1f}% (every mutant)")
    else:
        print(
            f"mutation score: {killed}/{checked} sampled mutants killed; estimated "
            f"{score:.1f}% of all {found.population} "
            f"(95% interval {low:.1f}-{high:.1f}%, seed {drawn['seed']})"
        )
    print(
        f"target: >= {TARGET:.0f}% ({'the estimate' if drawn['seed'] else 'exact'}): "
        f"{'PASS' if passed and not unchecked else 'FAIL'}"
    )
    if drawn["seed"] is not None:
        sure = "clears" if low >= TARGET else "does NOT clear"
        print(f"with 95% confidence: the interval's lower bound {low:.1f}% {sure} the target")
    print(f"by status: {by_status}; run time: {run_time}")
    if unchecked:
        print(f"INCOMPLETE: {unchecked} of {len(statuses)} mutants were not checked (the run")
        print("was cut short); the score above covers the checked ones only and does not pass")
    gate = passed
    if args.floor is not None:
        bound = low if drawn["seed"] else 100.0 * found.score
        gate = bound >= args.floor
        print(
            f"floor: >= {args.floor:.0f}% (the gate of this run, --floor): "
            f"{'PASS' if gate and not unchecked else 'FAIL'}"
            + ("" if passed else f"; the {TARGET:.0f}% target is NOT met")
        )
    summary = {
        "killed": killed,
        "checked": checked,
        "population": found.population,
        "seed": drawn["seed"],
        "score": round(score, 1),
        "interval": [round(low, 1), round(high, 1)],
        "run_time_s": None if args.report_only else round(elapsed),
        "by_status": counts,
        "survivors": survivors,
        "not_checked": unchecked,
        "target_met": passed,
        "target_met_with_95_percent_confidence": low >= TARGET if drawn["seed"] else passed,
        "floor": args.floor,
    }
    (ROOT / "mutants" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if gate and not unchecked else 1


if __name__ == "__main__":
    sys.exit(main())
