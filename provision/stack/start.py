"""Start: `docker compose up --detach --wait`, then wait until GlitchTip answers from the host.

Compose waits for every healthcheck (postgres, valkey, web, worker) and for the one-shot
`migrate` that `web` depends on. Images are never pulled here (`--pull never`): the pull step
already made them present, so an offline host with local images starts the same way.
When `up` fails, the cause names the service that is not healthy and the tail of its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.stack.runner import StepOutcome

HTTP_WAIT = 90.0  # seconds for the published port to answer once the containers are healthy


# One-shot services nothing depends on: `up --wait` reports them as failed once they exit (even
# with 0), so they are left out here and run by their own step.
RUN_LATER = ("partman-setup",)


def waited_services(compose: Any) -> list[str]:
    """The services `up --wait` starts: all (no argument) unless a run-later one-shot exists."""
    services = list(compose.services())
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
        sleep(1.0)


def _http_status(url: str) -> int:
    import httpx

    try:
        return httpx.get(url, timeout=5.0).status_code
    except httpx.HTTPError as exc:
        raise OSError(str(exc)) from None


def start(ctx: StackContext) -> StepOutcome:
    """Bring the stack up and wait for it; resumes a partly started stack as is."""
    settings = ctx.load_settings()
    compose = ctx.compose()
    before = _fingerprint(compose.ps())
    timeout = int(ctx.wait_timeout)
    result = compose.stream(
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        str(timeout),
        "--pull",
        "never",
        *waited_services(compose),
        on_line=lambda line: None,
        timeout=timeout + 120,
    )
    if not result.ok:
        cause = diagnose(compose, result.last_lines(2) or f"compose exited {result.returncode}")
        raise KitError(f"the stack did not become healthy: {cause}")
    after = _fingerprint(compose.ps())
    url = f"{str(settings.internal_url).rstrip('/')}/api/settings/"
    wait_http(url)
    changed = before != after
    running = sum(1 for _, state in after.values() if state == "running")
    verb = "up (created or started now)" if changed else "were already up"
    return StepOutcome(f"{running} running containers {verb}; {url} answers", changed=changed)
