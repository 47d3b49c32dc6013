"""`promtool check rules` and `promtool test rules` in the Prometheus test image, for sure.

The fast tests run promtool only when it is on the host's PATH; this tier always has it (the
image's Debian prometheus package), so here the rule files are checked and their unit tests
(tests/monitoring/promtool/*.test.yml: input series in, alerts out, including an error budget
burning fast and one exhausted) run with the promtool of the Prometheus the stack uses. The
directories are mounted read-only at the same relative places, so the test files' relative
`rule_files:` resolve as they do in the checkout. No network, no compose project.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "templates" / "monitoring" / "prometheus" / "rules"
PROMTOOL_TESTS = REPO / "tests" / "monitoring" / "promtool"
KIT = "/kit"


def promtool(image: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in `image` with `root`'s rules and promtool tests mounted under /kit."""
    rules = root / RULES.relative_to(REPO)
    tests = root / PROMTOOL_TESTS.relative_to(REPO)
    argv = [
        "docker", "run", "--rm", "--network", "none", "--entrypoint", "promtool",
        "-v", f"{rules}:{KIT}/{RULES.relative_to(REPO)}:ro",
        "-v", f"{tests}:{KIT}/{PROMTOOL_TESTS.relative_to(REPO)}:ro",
        "-w", f"{KIT}/{PROMTOOL_TESTS.relative_to(REPO)}",
        image, *args,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def rule_paths() -> list[str]:
    return [f"{KIT}/{RULES.relative_to(REPO)}/{path.name}" for path in sorted(RULES.glob("*.yml"))]


def unit_test_files() -> list[str]:
    return [path.name for path in sorted(PROMTOOL_TESTS.glob("*.test.yml"))]


def test_promtool_checks_the_rules_and_passes_their_unit_tests(stack_env):
    image = stack_env.images["prometheus"]
    version = promtool(image, REPO, "--version")
    assert version.returncode == 0, version.stderr
    checked = promtool(image, REPO, "check", "rules", *rule_paths())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("SUCCESS") == len(rule_paths()), checked.stdout
    tested = promtool(image, REPO, "test", "rules", *unit_test_files())
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    assert output.count("SUCCESS") == len(unit_test_files()) and "FAILED" not in output, output
    print(version.stdout.splitlines()[0], "\n", output)  # pytest -s: the closing note's proof


def test_the_unit_tests_fail_when_the_budget_rules_break(stack_env, tmp_path):
    """The same promtool, a copy of the rules whose "exhausted" alert needs 150 % of the budget:
    the exhausted cases must fail, so a green run above means the alerts really fire."""
    shutil.copytree(RULES, tmp_path / RULES.relative_to(REPO))
    shutil.copytree(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.relative_to(REPO))
    broken = tmp_path / RULES.relative_to(REPO) / "error-budgets.yml"
    text, count = re.subn(
        r"expr: project:glitchtip_error_budget_remaining:ratio <= 0",
        "expr: project:glitchtip_error_budget_remaining:ratio <= -0.5",
        broken.read_text(),
    )
    assert count == 1
    broken.write_text(text)
    done = promtool(stack_env.images["prometheus"], tmp_path, "test", "rules", *unit_test_files())
    assert done.returncode != 0
    assert "GlitchTipErrorBudgetExhausted" in done.stdout + done.stderr
