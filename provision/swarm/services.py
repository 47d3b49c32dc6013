"""The stack's services as Swarm reports them, and waiting for them to converge.

`docker service ls` gives the running/desired replicas; `docker service inspect` gives the spec
(image, replicas), when it last changed and the rolling update's state. A service has converged
when every desired task runs (Swarm counts a task as running only once its healthcheck passes)
and no update is in flight; an update Swarm rolled back (a new task never became healthy) is a
failure with Swarm's own message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provision.errors import KitError

STACK_LABEL = "com.docker.stack.namespace"
JOB_SERVICES = ("migrate",)
FAILED_UPDATES = (
    "rollback_completed",
    "rollback_paused",
    "paused",
)  # one-shot: converged when its task completed
SWARM_FIX = "see `docker service ps --no-trunc <service>` and `docker service logs <service>`"


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times with nanoseconds (Python reads at most microseconds)."""
    if not text:
        return None
    main, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        return datetime.fromisoformat(f"{main}.{fraction or '0'}")
    except ValueError:
        return None


@dataclass(frozen=True)
class ServiceState:
    """One service of the stack."""

    name: str  # full Swarm name, <stack>_<service>
    service: str  # the name in the stack file
    running: int
    desired: int
    image: str
    update_state: str | None  # updating, completed, rollback_completed, paused, ... or None
    update_message: str
    ports: str

    @property
    def converged(self) -> bool:
        if self.service in JOB_SERVICES:
            return True  # judged by its task (`wait_for_job`), not by replicas
        idle = self.update_state not in ("updating", "rollback_started")
        return idle and self.running == self.desired

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "running": self.running,
            "desired": self.desired,
            "image": self.image,
            "update": self.update_state,
            "ports": self.ports,
        }


def _replicas(text: str) -> tuple[int, int]:
    running, _, desired = str(text).partition("/")
    desired = desired.split()[0] if desired else "0"  # "1/1 (max 1 per node)"
    try:
        return int(running), int(desired)
    except ValueError:
        return 0, 0


def _image(spec: dict[str, Any]) -> str:
    image = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
    return image.split("@", 1)[0]


def _update(service: dict[str, Any]) -> tuple[str | None, str]:
    """The rolling update's state and Swarm's message (None: no update ever ran)."""
    status = service.get("UpdateStatus") or {}
    return status.get("State"), status.get("Message", "")


def stack_services(docker, stack: str) -> list[ServiceState]:
    """The services of `stack` (empty when it is not deployed)."""
    fix = "make this host a Swarm manager (`docker swarm init`) or run the command on one"
    rows = docker.json_lines(
        "service", "ls", "--filter", f"label={STACK_LABEL}={stack}", "--format", "{{json .}}",
        fix=fix,
    )  # fmt: skip
    if not rows:
        return []
    specs = {
        item["Spec"]["Name"]: item
        for item in docker.inspect("service", "inspect", *[row["ID"] for row in rows], fix=fix)
    }
    found = []
    for row in rows:
        name = row["Name"]
        service = specs.get(name, {})
        running, desired = _replicas(row.get("Replicas", "0/0"))
        state, message = _update(service)
        short = name[len(stack) + 1 :] if name.startswith(f"{stack}_") else name
        found.append(
            ServiceState(
                name, short, running, desired, _image(service.get("Spec", {})) or row["Image"],
                state, message, row.get("Ports", ""),
            )
        )  # fmt: skip
    return sorted(found, key=lambda item: item.service)


def wait_converged(
    docker,
    stack: str,
    services: tuple[str, ...],
    timeout: float,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 2.0,
) -> list[ServiceState]:
    """Wait until `services` run all their replicas with no update in flight; progress lines
    whenever the picture changes. A rolled-back update or the timeout is a `KitError`."""
    deadline = clock() + timeout
    last = ""
    initial: dict[str, str | None] | None = None
    active: set[str] = set()  # services seen updating during this wait
    while True:
        states = {state.service: state for state in stack_services(docker, stack)}
        missing = [name for name in services if name not in states]
        if initial is None:
            initial = {name: state.update_state for name, state in states.items()}
        for name in services:
            state = states.get(name)
            if state and state.update_state in ("updating", "rollback_started"):
                active.add(name)
            # A rollback left from an earlier deploy is history, unless this one rolled back too.
            fresh = name in active or initial.get(name) != (state and state.update_state)
            if state and fresh and state.update_state in FAILED_UPDATES:
                raise KitError(
                    f"the update of {state.name} failed "
                    f"({state.update_state}): {state.update_message or 'no message'}",
                    SWARM_FIX.replace("<service>", state.name),
                )
        picture = ", ".join(
            f"{name} {states[name].running}/{states[name].desired}"
            + (
                f" ({states[name].update_state})"
                if states[name].update_state not in (None, "completed")
                else ""
            )
            for name in services
            if name in states
        )
        if picture != last:
            note(picture)
            last = picture
        if not missing and all(states[name].converged for name in services):
            return [states[name] for name in services]
        if clock() >= deadline:
            late = missing + [
                name for name in services if name in states and not states[name].converged
            ]
            raise KitError(
                f"{', '.join(late)} did not converge within {timeout:.0f} s "
                f"({picture or 'no services'})",
                SWARM_FIX.replace("<service>", f"{stack}_{late[0]}"),
            )
        sleep(interval)


def _tasks(docker, service: str) -> list[dict[str, Any]]:
    ids = docker.check(
        "service",
        "ps",
        "--quiet",
        "--no-trunc",
        service,
        fix=SWARM_FIX.replace("<service>", service),
    ).stdout.split()
    if not ids:
        return []
    return docker.inspect("inspect", *ids, fix=SWARM_FIX.replace("<service>", service))


def job_state(docker, service: str) -> tuple[str, str]:
    """(state, error) of the job's newest task: complete, failed, rejected, running, ... or
    ("pending", "") before Swarm created it (`docker stack deploy` returns before it does)."""
    tasks = _tasks(docker, service)
    if not tasks:
        return "pending", ""
    newest = max(tasks, key=lambda task: parse_time(task.get("CreatedAt")) or datetime.min)
    status = newest.get("Status", {})
    error = status.get("Err", "")
    code = status.get("ContainerStatus", {}).get("ExitCode")
    if code not in (None, 0):
        error = f"exit status {code}" + (f", {error}" if error else "")
    return status.get("State", "pending"), error


def wait_for_job(
    docker,
    service: str,
    timeout: float,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 2.0,
) -> str:
    """Wait for the one-shot `service` (created anew by this run) to complete with exit 0."""
    deadline = clock() + timeout
    state, error = job_state(docker, service)
    last = ""
    while True:
        if state != last:
            note(f"{service}: {state}")
            last = state
        if state == "complete":
            return state
        if state in ("failed", "rejected", "shutdown", "orphaned", "remove"):
            raise KitError(
                f"{service} {state}: {error or 'no error given'}",
                f"see `docker service logs {service}` for the cause",
            )
        if clock() >= deadline:
            raise KitError(
                f"{service} did not complete within {timeout:.0f} s (last state: {state})",
                f"see `docker service logs {service}`",
            )
        sleep(interval)
        state, error = job_state(docker, service)


@dataclass(frozen=True)
class StackHealth:
    """The stack's services and what keeps it from being healthy (nothing: healthy)."""

    services: list[ServiceState]
    jobs: dict[str, str]  # service name -> the migrate job's state
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def stack_health(settings, docker) -> StackHealth:
    """The one rule of a healthy Swarm stack, for `status` and `verify`: every service the
    deployment runs is in the stack (no postgres with an external database), every replica
    runs (Swarm counts a task only once its healthcheck passes) with no update in flight, and
    the migrate job completed."""
    from provision.profiles import core_services

    stack = settings.compose_project_name
    services = stack_services(docker, stack)
    jobs: dict[str, str] = {}
    names = {state.service for state in services}
    problems = [f"{name} missing" for name in core_services(settings) if name not in names]
    problems += [f"{s.service} {s.running}/{s.desired}" for s in services if not s.converged]
    for state in services:
        if state.service == "migrate":
            jobs[state.name], _error = job_state(docker, state.name)
            if jobs[state.name] != "complete":
                problems.append(f"migrate {jobs[state.name]}")
    return StackHealth(services, jobs, problems)
