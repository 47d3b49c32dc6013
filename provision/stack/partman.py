"""Partman (GlitchTip 5, advanced partitioning): pg_partman configured for GlitchTip's tables.

Two one-shots of compose.part.yml: `partman-setup` runs GlitchTip's `setup_advanced_partitions`
(which exits 0 even when pg_partman refused it, and on v5.1.0 can never succeed: contract
NOTES.md), then `partman-config` runs the kit's own idempotent configuration with psql
(provision/partman_sql.py), which checks pg_partman's major and ends with the count of managed
tables. Success is judged from partman-config's exit status and its last line. `provision
partman` runs both again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from provision import partman_sql
from provision.deployment import uses_partman
from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

SERVICE = "partman-setup"
CONFIG_SERVICE = "partman-config"
SERVICES = (SERVICE, CONFIG_SERVICE)
SETUP_TIMEOUT = 300.0
COMMAND = ("./manage.py", "setup_advanced_partitions")
_ERROR = re.compile(r"\b(error|exception|traceback|failed)\b", re.IGNORECASE)
FIX = (
    "partitioning needs the pg_partman 5 Postgres image (partman_image / "
    "GLITCHTIP_KIT_PARTMAN_IMAGE, a ...postgresql-partman:<postgres>-5 tag); fix it, then "
    "`provision partman`"
)


def error_line(output: str) -> str | None:
    """The first line of `output` reporting an error, if any."""
    for line in output.splitlines():
        if _ERROR.search(line):
            return line.strip()
    return None


def judge(returncode: int, output: str) -> str:
    """The summary line of a partman-config run that worked; a `KitError` otherwise.

    It worked when psql exited 0 and printed partman_sql.DONE (the count of managed tables)."""
    done = [line for line in output.splitlines() if partman_sql.DONE in line]
    if returncode != 0 or not done:
        cause = error_line(output) or (output.strip().splitlines() or ["no output"])[-1]
        raise KitError(f"pg_partman configuration failed (exit {returncode}): {cause}", FIX)
    return partman_sql.DONE + done[-1].split(partman_sql.DONE, 1)[1].rstrip()


def applies(ctx: StackContext) -> bool:
    """Only GlitchTip 5 with advanced partitioning has this step."""
    return uses_partman(ctx.load_settings())


def _rows(compose: Any, service: str) -> list[dict]:
    return [row for row in compose.ps(service) if row.get("Service", service) == service]


def _exited(rows: list[dict]) -> bool:
    return bool(rows) and rows[-1].get("State") == "exited"


def _run_one_shot(
    compose: Any, service: str, deadline: float, sleep: Callable[[float], None]
) -> tuple[int, str]:
    """Start `service` alone, wait (bounded) for it to exit; its exit status and its log."""
    started = compose.run("up", "--detach", "--no-deps", service)
    if not started.ok:
        raise KitError(f"cannot start {service}: {started.last_lines(2)}", "see `provision logs`")
    while True:
        rows = _rows(compose, service)
        if _exited(rows):
            break
        if time.monotonic() >= deadline:
            raise KitError(
                f"{service} did not finish within {SETUP_TIMEOUT:.0f} s",
                f"see `provision logs {service}`",
            )
        sleep(0.2)  # the setup takes seconds; a 1 s poll would add up to 1 s
    logs = compose.run("logs", "--no-color", "--no-log-prefix", service)
    return int(rows[-1].get("ExitCode") or 0), logs.output


def check_partman(
    ctx: StackContext,
    timeout: float = SETUP_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> StepOutcome:
    """The partman step: run GlitchTip's setup, then the kit's configuration; judge the latter.

    `up --wait` leaves both one-shots out (Compose counts a one-shot that nothing depends on as
    a failure once it exits); they run here, after migrate. When partman-config already exited 0
    with its summary, nothing runs again, so a second `up` changes nothing.
    """
    compose = ctx.compose()
    if CONFIG_SERVICE not in ctx.services():
        # A compose.part.yml without the kit's services: run both in the containers instead.
        return StepOutcome(run_partman(compose, lambda line: None), changed=True)
    rows = _rows(compose, CONFIG_SERVICE)
    if _exited(rows) and int(rows[-1].get("ExitCode") or 0) == 0:
        logs = compose.run("logs", "--no-color", "--no-log-prefix", CONFIG_SERVICE)
        try:
            return StepOutcome(f"already set up ({judge(0, logs.output)})", changed=False)
        except KitError:
            pass  # a failed earlier attempt: run it again below
    deadline = time.monotonic() + timeout
    code, output = _run_one_shot(compose, SERVICE, deadline, sleep)
    if code != 0:
        cause = error_line(output) or (output.strip().splitlines() or ["no output"])[-1]
        raise KitError(f"setup_advanced_partitions failed (exit {code}): {cause}", FIX)
    code, output = _run_one_shot(compose, CONFIG_SERVICE, deadline, sleep)
    return StepOutcome(f"partitions set up ({judge(code, output)})", changed=True)


def run_partman(compose: Any, on_line: Callable[[str], None]) -> str:
    """`provision partman`: GlitchTip's command in the web container (its output shown, its
    verdict not trusted), then the kit's configuration with psql in the postgres container."""
    compose.stream("exec", "-T", "web", *COMMAND, on_line=on_line)
    result = compose.stream("exec", "-T", "postgres", *_psql_in_postgres(), on_line=on_line)
    return judge(result.returncode, result.output)


def _psql_in_postgres() -> list[str]:
    """partman-config's psql, run inside the postgres container (its socket, user glitchtip)."""
    command = partman_sql.psql()
    return [command[0], "-U", "glitchtip", "-d", "glitchtip", *command[1:]]
