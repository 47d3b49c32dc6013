"""Start: `docker compose up --detach --wait`, then wait until GlitchTip answers from the host.

Compose waits for every healthcheck (postgres, valkey, web, worker) and for the one-shot
`migrate` that `web` depends on. Images are never pulled here (`--pull never`): the pull step
already made them present, so an offline host with local images starts the same way.
When `up` fails, the cause names the service that is not healthy and the tail of its log.

On a stack that already runs what the rendered files and images describe, `up` is skipped
altogether (see `provision.stack.drift`): Compose would otherwise start the exited one-shot
`migrate` again and wait for every healthcheck, seconds spent to change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

HTTP_WAIT = 90.0  # seconds for the published port to answer once the containers are healthy
# Compose reports web healthy from inside the container; the host port usually answers at the
# first try, and when not, within a fraction of a second: poll often rather than sleep 1 s.
POLL = 0.2


# One-shot services nothing depends on: `up --wait` reports them as failed once they exit (even
# with 0), so they are left out here and run by their own step.
RUN_LATER = ("partman-setup", "partman-config")

# What the start step leaves in ctx.results for the migrate step, to spare it a `compose ps`.
CURRENT_KEY = "stack_current"  # True: `up` was skipped, every container proven current
PS_KEY = "ps"  # the `compose ps -a` rows taken right after `up`


def waited_services(services: dict[str, dict]) -> list[str]:
    """The services `up --wait` starts: all (no argument) unless a run-later one-shot exists."""
    if not any(name in RUN_LATER for name in services):
        return []
    return [name for name in services if name not in RUN_LATER]


def _fingerprint(rows: list[dict]) -> dict[str, tuple[str, str]]:
    """name -> (id, state), to tell whether `up` created, recreated or started anything."""
    return {
        row.get("Name", ""): (row.get("ID", ""), row.get("State", ""))
        for row in rows
        if row.get("Service") not in RUN_LATER
    }


def failing_services(rows: list[dict]) -> list[str]:
    """Short descriptions of containers that are not running healthy (exited 0 is fine)."""
    bad = []
    for row in rows:
        state, health = row.get("State", ""), row.get("Health", "")
        service = row.get("Service", row.get("Name", "?"))
        if state == "exited":
            if int(row.get("ExitCode", 0) or 0) != 0:
                bad.append(f"{service} exited {row.get('ExitCode')}")
        elif state != "running":
            bad.append(f"{service} {state}")
        elif health and health != "healthy":
            bad.append(f"{service} {health}")
    return bad


def service_log_tail(compose: Any, service: str, lines: int = 3) -> str:
    """The last lines a service logged, redacted, on one line."""
    result = compose.run("logs", "--no-color", "--no-log-prefix", "--tail", str(lines), service)
    return result.last_lines(lines) if result.ok else ""


def diagnose(compose: Any, fallback: str) -> str:
    """One line saying which service keeps the stack from being up, and why."""
    try:
        rows = compose.ps()
    except KitError:
        return fallback
    bad = failing_services(rows)
    if not bad:
        return fallback
    service = bad[0].split()[0]
    tail = service_log_tail(compose, service)
    more = f" (also: {', '.join(bad[1:])})" if len(bad) > 1 else ""
    return f"{bad[0]}{more}" + (f"; its log ends: {tail}" if tail else "")


def wait_http(
    url: str,
    timeout: float = HTTP_WAIT,
    get: Callable[[str], int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Poll `url` until it answers 200; return the attempts; `KitError` after `timeout`."""
    if get is None:
        get = _http_status
    deadline = clock() + timeout
    attempts = 0
    last = "no answer"
    while True:
        attempts += 1
        try:
            status = get(url)
            if status == 200:
                return attempts
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc.__class__.__name__
        if clock() >= deadline:
            raise KitError(
                f"{url} did not answer 200 within {timeout:.0f} s (last: {last})",
                "see `provision logs web` and `provision status`",
            )
        sleep(POLL)


def _http_status(url: str) -> int:
    import httpx

    from provision.api.client import tls_context  # shared: a new one costs ~45 ms

    try:
        return httpx.get(url, timeout=5.0, verify=tls_context()).status_code
    except httpx.HTTPError as exc:
        raise OSError(str(exc)) from None


def compare(ctx: StackContext, compose: Any, services: dict[str, dict]) -> dict[str, list[str]]:
    """service -> why `compose up` would change it now ([] for a current service).

    Any fact that cannot be read becomes a reason against every service: only what is proven
    current is left alone.
    """
    from provision.stack.drift import service_drift

    try:
        engine = ctx.engine()
        hashes = compose.config_hashes()
        images = {str(spec.get("image")) for spec in services.values() if spec.get("image")}
        image_ids = {image: engine.image_id(image) for image in sorted(images)}
        containers = engine.containers(ctx.load_settings().compose_project_name)
    except KitError as error:
        why = f"cannot compare with the running stack ({error.message})"
        return {name: [why] for name in services if name not in RUN_LATER} or {"": [why]}
    found = service_drift(services, hashes, image_ids, containers, ignore=RUN_LATER)
    return found or {"": ["the rendered files name no service to compare"]}


def up_targets(services: dict[str, dict], drift: dict[str, list[str]]) -> list[str]:
    """The arguments after `up ... --pull never`: which services, and whether with their deps.

    A current one-shot (migrate exited 0 for this configuration, image and database) is left
    out with `--no-deps`, so changing web or worker does not run every migration check again.
    """
    from provision.stack.drift import one_shots, rerun_needed

    current = [name for name, reasons in drift.items() if not reasons]
    waited = one_shots(services)
    if not waited or rerun_needed(services, current):
        return waited_services(services)
    return ["--no-deps", *[n for n in services if n not in waited and n not in RUN_LATER]]


def _all_when_fewer(services: dict[str, dict], every: dict[str, dict]) -> list[str]:
    """`up_targets` answers [] for "every service": name them when the files hold more (the
    metrics services, which this step must not start)."""
    if len(services) == len(every):
        return []
    return [name for name in services if name not in RUN_LATER]


def start(ctx: StackContext) -> StepOutcome:
    """Bring the stack up and wait for it, unless it already runs exactly what `up` would start.

    A partly started, stopped, unhealthy or outdated stack goes through `compose up --wait`,
    which recreates what changed (and runs `migrate` again when its container is recreated).
    """
    from provision.profiles import METRICS_SERVICES

    settings = ctx.load_settings()
    compose = ctx.compose()
    # GlitchTip's services only: the metrics step starts the others once the API token exists.
    every = ctx.services()
    services = {name: spec for name, spec in every.items() if name not in METRICS_SERVICES}
    url = f"{str(settings.internal_url).rstrip('/')}/api/settings/"
    drift = compare(ctx, compose, services)
    reasons = [reason for found in drift.values() for reason in found]
    if not reasons:
        wait_http(url)
        ctx.results[CURRENT_KEY] = True
        count = len([name for name in services if name not in RUN_LATER])
        return StepOutcome(
            f"all {count} services already up, healthy and current (compose up skipped); "
            f"{url} answers",
            changed=False,
        )
    if all(found == [f"{name} has no container"] for name, found in drift.items()):
        ctx.note("no container yet: compose up creates them")
        before: dict[str, tuple[str, str]] = {}  # the engine just said so: no `ps` needed
    else:
        more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
        ctx.note(f"compose up because {'; '.join(reasons[:3])}{more}")
        before = _fingerprint(compose.ps())
    if drift.get("valkey") and drift["valkey"] != ["valkey has no container"]:
        # Recreated with the append-only file on: write it from memory first, or the new
        # container starts empty (provision/stack/valkey_aof.py).
        from provision.stack.valkey_aof import enable_aof_in_place

        enable_aof_in_place(compose, ctx.note)
    timeout = int(ctx.wait_timeout)
    result = compose.stream(
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        str(timeout),
        "--pull",
        "never",
        *(up_targets(services, drift) or _all_when_fewer(services, every)),
        on_line=lambda line: None,
        timeout=timeout + 120,
    )
    if not result.ok:
        cause = diagnose(compose, result.last_lines(2) or f"compose exited {result.returncode}")
        raise KitError(f"the stack did not become healthy: {cause}")
    rows = compose.ps()
    ctx.results[PS_KEY] = rows
    after = _fingerprint(rows)
    wait_http(url)
    changed = before != after
    running = sum(1 for _, state in after.values() if state == "running")
    verb = "up (created or started now)" if changed else "were already up"
    return StepOutcome(f"{running} running containers {verb}; {url} answers", changed=changed)
