"""The Prometheus rule files: well-formed, every alert actionable, every alert unit-tested.

`promtool check rules` and `promtool test rules` run here when promtool is on PATH (Debian's
`prometheus` package has it); tests/stack/test_promtool.py runs them in the Prometheus test image
in any case. The coverage test needs no promtool: each alert must have a promtool case where it
fires and one where it must stay silent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "templates" / "monitoring" / "prometheus" / "rules"
PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool"
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")  # level:metric:operations
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+$")
DURATION = re.compile(r"^\d+[smhd]$")


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yml"))


def rules() -> list[dict]:
    found = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def promtool_cases() -> list[tuple[Path, dict]]:
    """(test file, alert_rule_test case) for every case of every promtool test file."""
    cases = []
    for path in sorted(PROMTOOL_TESTS.glob("*.test.yml")):
        for group in yaml.safe_load(path.read_text())["tests"]:
            cases.extend((path, case) for case in group.get("alert_rule_test", []))
    return cases


def test_the_rule_files_are_there():
    assert [path.name for path in rule_files()] == ["error-budgets.yml", "glitchtip.yml"]


def test_names_are_unique_and_follow_prometheus_conventions():
    names = [rule.get("record") or rule.get("alert") for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        if "record" in rule:
            assert RECORD_NAME.match(rule["record"]), rule["record"]
        else:
            assert ALERT_NAME.match(rule["alert"]), rule["alert"]


@pytest.mark.parametrize("alert", alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_says_how_bad_what_happened_and_what_to_check(alert):
    assert alert["labels"]["severity"] in {"critical", "warning"}
    assert set(alert["annotations"]) == {"summary", "description", "runbook"}
    for text in alert["annotations"].values():
        assert len(text.strip()) > 20
    # A one-scrape blip must not page anyone.
    assert DURATION.match(alert["for"]), alert.get("for")


def test_every_alert_has_a_firing_case_and_a_silent_case():
    fires, silent = set(), set()
    for _, case in promtool_cases():
        (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - fires == set(), "alerts without a promtool case where they fire"
    assert names - silent == set(), "alerts without a promtool case where they must not fire"
    assert (fires | silent) - names == set(), "promtool cases for alerts that do not exist"


def test_every_rule_file_is_unit_tested():
    tested = set()
    for path in PROMTOOL_TESTS.glob("*.test.yml"):
        for name in yaml.safe_load(path.read_text())["rule_files"]:
            tested.add((path.parent / name).resolve())
    assert {path.resolve() for path in rule_files()} <= tested


def test_fired_alerts_in_cases_carry_the_rules_severity():
    severity = {alert["alert"]: alert["labels"]["severity"] for alert in alerts()}
    for path, case in promtool_cases():
        for expected in case.get("exp_alerts") or []:
            assert expected["exp_labels"]["severity"] == severity[case["alertname"]], path


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian: apt-get install prometheus); "
    "tests/stack/test_promtool.py runs it in the Prometheus test image",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL or "promtool", *args], capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_promtool_check_rules():
    done = promtool("check", "rules", *map(str, rule_files()))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    done = promtool("test", "rules", *map(str, sorted(PROMTOOL_TESTS.glob("*.test.yml"))))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path):
    """The promtool cases bite: a burn-rate threshold raised past the flood's 21.6 makes the
    "burning fast" case fail."""
    rules_copy = tmp_path / "templates" / "monitoring" / "prometheus" / "rules"
    rules_copy.mkdir(parents=True)
    for path in rule_files():
        text = path.read_text()
        if path.name == "error-budgets.yml":
            text, count = re.subn(r"(burn_rate:\w+) > 14\.4", r"\1 > 30", text)
            assert count == 2
        (rules_copy / path.name).write_text(text)
    tests_copy = tmp_path / "tests" / "monitoring" / "promtool"
    shutil.copytree(PROMTOOL_TESTS, tests_copy)
    done = promtool("test", "rules", str(tests_copy / "error-budgets.test.yml"))
    assert done.returncode != 0
    assert "GlitchTipErrorBudgetBurningFast" in done.stdout + done.stderr
