"""The Makefile documents itself: every target a user may type shows up in `make help`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
PROMISED = {
    "start",
    "stop",
    "restart",
    "status",
    "logs",
    "migrate",
    "partman-start",
    "metrics-start",
    "metrics-stop",
    "clean",
    "init",
    "render",
    "test",
    "test-stack",
    "lint",
    "help",
}


def _phony_targets() -> set[str]:
    return {name for line in re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.M) for name in line.split()}


def test_every_promised_target_exists():
    assert _phony_targets() >= PROMISED


def test_every_phony_target_has_a_help_line():
    documented = set(re.findall(r"^([a-zA-Z_-]+):.*## ", MAKEFILE, re.M))
    assert _phony_targets() <= documented, _phony_targets() - documented


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target():
    done = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    listed = {line.split()[0] for line in plain.splitlines() if line.strip()}
    assert listed >= PROMISED, PROMISED - listed
