"""Partman (GlitchTip 5, advanced partitioning): pg_partman set up by `setup_advanced_partitions`.

GlitchTip's command exits 0 even when pg_partman refused the configuration (it only prints "An
error occurred during table configuration"), so success is judged from its output as well as its
exit status. `up` runs the one-shot `partman-setup` service of compose.part.yml and reads its
log; `provision partman` runs the command again in the web container.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from provision.errors import KitError
from provision.stack.compose import uses_partman
from provision.stack.context import StackContext
from provision.stack.runner import StepOutcome

SERVICE = "partman-setup"
SETUP_TIMEOUT = 300.0
COMMAND = ("./manage.py", "setup_advanced_partitions")
_ERROR = re.compile(r"\b(error|exception|traceback|failed)\b", re.IGNORECASE)


def error_line(output: str) -> str | None:
    """The first line of `output` reporting an error, if any."""
    for line in output.splitlines():
        if _ERROR.search(line):
            return line.strip()
    return None


def judge(returncode: int, output: str) -> str:
    """A one-line summary if setup worked; a `KitError` when the exit or the output says no."""
    bad = error_line(output)
    if returncode != 0 or bad:
        cause = bad or (output.strip().splitlines() or ["no output"])[-1]
        raise KitError(
            f"setup_advanced_partitions failed (exit {returncode}): {cause}",
            "partitioning needs a Postgres image with pg_partman >= 5 "
            "(partman_image / GLITCHTIP_KIT_PARTMAN_IMAGE); fix it, then `provision partman`",
        )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def applies(ctx: StackContext) -> bool:
    """Only GlitchTip 5 with advanced partitioning has this step."""
    return uses_partman(ctx.load_settings())


def _setup_rows(compose: Any) -> list[dict]:
    return [row for row in compose.ps(SERVICE) if row.get("Service", SERVICE) == SERVICE]


def check_partman(
    ctx: StackContext,
    timeout: float = SETUP_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> StepOutcome:
    """The partman step: run the one-shot partman-setup and judge its exit and its log.

    `up --wait` leaves partman-setup out (Compose counts a one-shot that nothing depends on as a
    failure once it exits); it runs here, after migrate. A setup container that already exited
    0 with a clean log is not run again, so a second `up` changes nothing.
    """
    compose = ctx.compose()
    if SERVICE not in ctx.services():
        # compose.part.yml without the one-shot service: run the command in web instead.
        return StepOutcome(run_partman(compose, lambda line: None), changed=True)
    rows = _setup_rows(compose)
    if rows and rows[-1].get("State") == "exited" and int(rows[-1].get("ExitCode") or 0) == 0:
        logs = compose.run("logs", "--no-color", "--no-log-prefix", SERVICE)
        try:
            return StepOutcome(f"already set up ({judge(0, logs.output)})", changed=False)
        except KitError:
            pass  # a failed earlier attempt: run it again below
    started = compose.run("up", "--detach", "--no-deps", SERVICE)
    if not started.ok:
        raise KitError(f"cannot start {SERVICE}: {started.last_lines(2)}", "see `provision logs`")
    deadline = time.monotonic() + timeout
    while True:
        rows = _setup_rows(compose)
        if rows and rows[-1].get("State") == "exited":
            break
        if time.monotonic() >= deadline:
            raise KitError(
                f"{SERVICE} did not finish within {timeout:.0f} s",
                f"see `provision logs {SERVICE}`",
            )
        sleep(0.2)  # the setup takes seconds; a 1 s poll would add up to 1 s
    logs = compose.run("logs", "--no-color", "--no-log-prefix", SERVICE)
    detail = judge(int(rows[-1].get("ExitCode") or 0), logs.output)
    return StepOutcome(f"partitions set up ({detail})", changed=True)


def run_partman(compose: Any, on_line: Callable[[str], None]) -> str:
    """Run setup_advanced_partitions in the web container; judge its exit and its output."""
    result = compose.stream("exec", "-T", "web", *COMMAND, on_line=on_line)
    return judge(result.returncode, result.output)
