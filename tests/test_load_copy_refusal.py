"""`provision load` copying a report file out of Locust's stopped master: the call it makes, and
a failed copy as one line naming the file, the last two lines Compose printed and the fix.

What a real `docker compose cp` prints for a missing file is not recorded (the load tier's fake
Compose prints one line); the Compose here answers with three lines of its own so the line
shows which of them it keeps (the last two, as the kit's other one-line causes)."""

from __future__ import annotations

import pytest

from provision.errors import KitError
from provision.load import run as load_run
from provision.runtime.process import ProcessResult


class Compose:
    def __init__(self, returncode: int, stdout: str = "", stderr: str = "") -> None:
        self.answer = (returncode, stdout, stderr)
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def run(self, *args: str, timeout: float = 600) -> ProcessResult:
        self.calls.append((args, timeout))
        return ProcessResult(("docker", "compose", *args), *self.answer)


def test_a_report_file_is_copied_from_the_headless_master(tmp_path):
    compose = Compose(0)
    load_run._copy(compose, "locust_stats_history.csv", tmp_path)
    load_run._copy(compose, "report.html", tmp_path)
    assert compose.calls == [
        (("cp", "locust-headless:/tmp/locust_stats_history.csv",
          str(tmp_path / "locust_stats_history.csv")), 120),
        (("cp", "locust-headless:/tmp/report.html", str(tmp_path / "report.html")), 120),
    ]  # fmt: skip


def test_a_failed_copy_is_one_line_with_the_last_two_lines_compose_printed(tmp_path):
    compose = Compose(
        1,
        stdout="copying from container\n",
        stderr="first problem\n\nError response from daemon: Could not find the file "
        "/tmp/report.html in container x-locust-headless-1\n",
    )
    with pytest.raises(KitError) as failed:
        load_run._copy(compose, "report.html", tmp_path)
    assert failed.value.line() == (
        "cannot copy Locust's report.html out of its container (first problem | Error response "
        "from daemon: Could not find the file /tmp/report.html in container "
        "x-locust-headless-1): run the load again; `docker compose cp` needs the stopped "
        "container"
    )
