"""Switching a running deployment from profile standard to minimal: retire what minimal drops.

`compose up` leaves containers of services no longer in compose.yml running as orphans: after a
switch to minimal the standard `worker` (and, on GlitchTip 6, `valkey`) would keep running on
the old configuration. This step, between preflight and render, removes them, and first makes
sure no accepted event is lost with them:

- GlitchTip 6's minimal runs without Valkey: tasks still queued there would never be processed
  (the all-in-one takes its tasks from Postgres). So the old web is stopped (no new events),
  the old worker drains the queue (`LLEN` of `Major.task_queue_keys` reaches 0, then one more
  batch interval, since the worker pops a batch before storing it), and only then are worker
  and valkey stopped and removed. Without a running worker a non-empty queue is refused before
  anything changes.
- GlitchTip 5's minimal keeps Valkey: its all-in-one consumes the same queue, only the worker
  container goes.

Volumes are kept (`valkey-data` too: a switch back to standard finds what it held). The
reverse switch (minimal to standard) needs nothing here: Compose adds worker and valkey.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

DRAIN_TIMEOUT = 120.0  # seconds the old worker gets to empty Valkey's queue
POLL = 1.0
# After the queue reads empty: GlitchTip's workers store a batch at least every 2 s (see
# majors.Major.ingest_batch_size), so one interval and a margin let the last batch land.
SETTLE = 3.0
STOP_TIMEOUT = 30  # seconds for a container to stop on SIGTERM (a worker finishes its batch)


@dataclass
class SwitchOps:
    """What the step asks of the engine; `engine_ops` wires the real one, tests fake it."""

    containers: Callable[[], list[Any]]  # ContainerState-like: name, service, state, oneoff
    llen: Callable[[str, str], int]  # (container name, key) -> length; KitError if unreadable
    stop: Callable[[str], None]
    remove: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    stopped: list[str] = field(default_factory=list)


def engine_ops(engine: Any, project: str) -> SwitchOps:
    """SwitchOps on the Docker engine (the kit's `Engine` wrapper and its docker SDK client)."""

    def llen(container: str, key: str) -> int:
        try:
            code, output = engine.client.containers.get(container).exec_run(
                ["valkey-cli", "LLEN", key]
            )
        except Exception as exc:  # docker SDK errors: the container vanished, engine gone
            raise KitError(
                f"cannot read Valkey's queue in {container} ({type(exc).__name__})",
                "check the stack with `provision status`",
            ) from None
        text = (output or b"").decode("utf-8", "replace").strip()
        if code != 0 or not text.isdigit():
            raise KitError(
                f"cannot read Valkey's queue in {container} (valkey-cli: {text[:80]!r})",
                "check the stack with `provision status`",
            )
        return int(text)

    return SwitchOps(
        containers=lambda: engine.containers(project),
        llen=llen,
        stop=lambda name: engine.client.api.stop(name, timeout=STOP_TIMEOUT),
        remove=lambda name: engine.client.api.remove_container(name),
    )


def backlog(ops: SwitchOps, container: str, keys: tuple[str, ...]) -> int:
    """Tasks queued in Valkey for the worker (sum of `LLEN` of each queue key)."""
    return sum(ops.llen(container, key) for key in keys)


def retire(settings: Any, ops: SwitchOps, say: Callable[[str], None]) -> StepOutcome:
    """Remove the containers of the services the settings' profile does not run, without
    losing a queued event; see the module docstring."""
    from provision.profiles import retired_services

    retired = retired_services(settings)
    if not retired:
        return StepOutcome(f"profile {settings.profile}: nothing to retire", changed=False)
    rows = [row for row in ops.containers() if not getattr(row, "oneoff", False)]
    found = [row for row in rows if row.service in retired]
    if not found:
        return StepOutcome(
            f"profile minimal: no {' or '.join(retired)} container of profile standard",
            changed=False,
        )
    valkey = next((r for r in found if r.service == "valkey" and r.state == "running"), None)
    if valkey is not None:
        _drain(settings, ops, rows, valkey.name, say)
    names = []
    for row in found:
        if row.state in ("running", "restarting", "paused"):
            ops.stop(row.name)
        ops.remove(row.name)
        names.append(row.service)
    return StepOutcome(
        f"profile minimal: removed {' and '.join(sorted(set(names)))} of profile standard "
        "(volumes kept)",
        changed=True,
    )


def _drain(
    settings: Any, ops: SwitchOps, rows: list[Any], valkey: str, say: Callable[[str], None]
) -> None:
    """Stop new events (the old web), let the old worker empty Valkey's queue; refuse first
    when nothing could empty it."""
    keys = tuple(settings.major.task_queue_keys)
    queued = backlog(ops, valkey, keys)
    worker_runs = any(r.service == "worker" and r.state == "running" for r in rows)
    if queued and not worker_runs:
        raise KitError(
            f"{queued} task(s) are queued in Valkey and no worker runs to process them; profile "
            "minimal runs without Valkey, so they would be lost",
            "switch back to profile standard and `provision up` until the worker has processed "
            "them (`provision logs worker`), then switch to minimal",
        )
    for row in rows:  # no new events into Valkey from here on
        if row.service == "web" and row.state == "running":
            ops.stop(row.name)
            say(f"stopped {row.name}: no new events while the worker empties Valkey's queue")
    deadline = ops.clock() + DRAIN_TIMEOUT
    while queued:
        if ops.clock() >= deadline:
            raise KitError(
                f"the worker did not empty Valkey's queue within {DRAIN_TIMEOUT:g} s ({queued} "
                "task(s) left); web is stopped",
                "switch back to profile standard and `provision up`, check `provision logs "
                "worker`, then switch to minimal again",
            )
        ops.sleep(POLL)
        queued = backlog(ops, valkey, keys)
    ops.sleep(SETTLE)


def retire_step(ctx: StackContext) -> StepOutcome:
    """The `up` step: retire the other profile's containers (see `retire`)."""
    settings = ctx.load_settings()
    from provision.profiles import retired_services

    if not retired_services(settings):
        return StepOutcome(f"profile {settings.profile}: nothing to retire", changed=False)
    ops = engine_ops(ctx.engine(), settings.compose_project_name)
    notes: list[str] = []
    outcome = retire(settings, ops, notes.append)
    detail = "; ".join([*notes, outcome.detail])
    return StepOutcome(detail, changed=outcome.changed)
