"""Migrate: the one-shot `migrate` service (./bin/run-migrate.sh) must have exited 0.

`up` starts it before `web` (web depends on its successful completion); this step reads its exit
status so a failed migration is reported as such, with the end of its log. `run_migrations`
runs it again on request (`provision migrate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.stack.start import CURRENT_KEY, PS_KEY, service_log_tail
from provision.steps import StepOutcome

SERVICE = "migrate"


def check_migrate(ctx: StackContext) -> StepOutcome:
    """The migrate step: succeed when the migrate container exited 0.

    It reads what the start step already learned (the container proven current, or the
    `compose ps` rows taken after `up`) before asking Compose again.
    """
    if ctx.results.get(CURRENT_KEY):
        # The start step skipped `up` only after reading this very container: exited 0, created
        # from the current configuration and image.
        return StepOutcome("migrate exited 0 for the current configuration", changed=False)
    compose = ctx.compose()
    listed = ctx.results.get(PS_KEY)
    if listed is None:
        listed = compose.ps(SERVICE)
    rows = [row for row in listed if row.get("Service", SERVICE) == SERVICE]
    if not rows:
        raise KitError(
            "the one-shot migrate container does not exist",
            "check compose.yml has a `migrate` service (`provision render --check`)",
        )
    row = rows[-1]
    state = row.get("State", "")
    code = row.get("ExitCode")
    if state != "exited":
        raise KitError(f"migrate is still {state or 'not started'}", "see `provision logs migrate`")
    if int(code or 0) != 0:
        tail = service_log_tail(compose, SERVICE)
        raise KitError(f"migrate exited {code}" + (f"; its log ends: {tail}" if tail else ""))
    return StepOutcome("migrate exited 0", changed=False)


def run_migrations(compose: Any, on_line: Callable[[str], None]) -> None:
    """Run ./bin/run-migrate.sh once more in a fresh migrate container; raise if it fails."""
    result = compose.stream("run", "--rm", "-T", SERVICE, on_line=on_line)
    if not result.ok:
        raise KitError(
            f"migrations failed (exit {result.returncode}): {result.last_lines(1)}",
            "fix the cause above, then run `provision migrate` again",
        )
