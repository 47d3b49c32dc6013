"""`make mutation`: run mutmut on the kit's critical modules and print a score that means something.

mutmut (configured in pyproject.toml, [tool.mutmut]) changes one small thing at a time in the
modules that hold secrets, files, DSNs, provisioning and the `up` steps, and runs the fast tests
that reach the changed function. A mutant no test notices "survived". This script prints the
score (killed / total), the run time, every survivor with its diff, and then the explanations in
tests/mutation/SURVIVORS.md for the survivors judged equivalent (a change no caller can observe).
It exits 1 when the score is below the target, so a drop is noticed. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = 90.0
EXPLANATIONS = Path(__file__).with_name("SURVIVORS.md")
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
        if status in ("skipped", UNCHECKED):
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        done, count = found.get(module, (0, 0))
        found[module] = (done + (status in KILLED), count + 1)
    return found


def diff_of(name: str, cwd: Path) -> str:
    """The changed lines of one mutant (from `mutmut show`), without the diff headers."""
    done = subprocess.run(
        [*MUTMUT, "show", name], cwd=cwd, capture_output=True, text=True, check=False
    )
    lines = [
        line
        for line in done.stdout.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "\n".join(f"      {line.strip()}" for line in lines) or "      (no diff)"


def main(argv: list[str] | None = None) -> int:
    """Run mutmut (unless --report-only), then print the summary; exit 1 below the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="report the last run only")
    # Twice the CPUs: most mutants spend their time waiting on the fake GlitchTip's sockets.
    parser.add_argument("--max-children", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument(
        "--fresh", action="store_true", help="forget earlier results (mutants/) and run all"
    )
    parser.add_argument("names", nargs="*", help="mutant name globs (default: every mutant)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.fresh and not args.report_only:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    if not args.report_only:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        # mutmut's copy of the tree (mutants/) is one level deeper than the checkout: the
        # tests that read GlitchTip's recordings from ../shared are told where they are.
        contract = ROOT.parent / "shared" / "glitchtip-contract"
        if not env.get("GLITCHTIP_CONTRACT_DIR") and contract.is_dir():
            env["GLITCHTIP_CONTRACT_DIR"] = str(contract)
        done = subprocess.run(
            [*MUTMUT, "run", "--max-children", str(args.max_children), *args.names],
            cwd=ROOT,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            print(f"mutmut run exited {done.returncode}", file=sys.stderr)
            return 2
    elapsed = time.monotonic() - began
    statuses = results(ROOT)
    if not statuses:
        print("no mutation results: run `make mutation` first", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    skipped = counts.get("skipped", 0)
    unchecked = counts.get(UNCHECKED, 0)
    total = len(statuses) - skipped - unchecked
    killed = sum(counts.get(status, 0) for status in KILLED)
    score = 100.0 * killed / total if total else 0.0
    survivors = sorted(
        name for name, status in statuses.items() if status not in KILLED | {UNCHECKED}
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
    print()
    print("By module (killed / mutants):")
    for module, (done, count) in sorted(per_module(statuses).items()):
        print(f"  {module:<32} {done:>4} / {count:<4} {100.0 * done / count:5.1f}%")
    print()
    by_status = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
    run_time = "report only" if args.report_only else f"{elapsed:.0f} s"
    print(f"mutation score: {killed}/{total} killed = {score:.1f}% (target >= {TARGET:.0f}%)")
    print(f"by status: {by_status}; run time: {run_time}")
    if unchecked:
        print(f"INCOMPLETE: {unchecked} of {len(statuses)} mutants were not checked (the run")
        print("was cut short); the score above covers the checked ones only and does not pass")
    summary = {
        "killed": killed,
        "total": total,
        "score": round(score, 1),
        "run_time_s": None if args.report_only else round(elapsed),
        "by_status": counts,
        "survivors": survivors,
        "not_checked": unchecked,
    }
    (ROOT / "mutants").mkdir(exist_ok=True)
    (ROOT / "mutants" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if score >= TARGET and not unchecked else 1


if __name__ == "__main__":
    sys.exit(main())
