"""One load run through compose.locust.yml, and the Locust web UI (`make locust-start`).

`run_load` is what `provision load` (and `bench/bench_ingest.py`) call:
  1. check the options, the target and that the stack runs;
  2. get or create the load-test project through create-project's code path (never the
     production project; `.glitchtiprc` is not touched) and count what it already holds;
  3. copy the locustfile beside compose.locust.yml and run Locust headless (master plus
     `workers` workers, `--run-time` bounded) in its own compose project on the stack's network;
  4. copy Locust's CSV and HTML report to `reports/<UTC timestamp>/`;
  5. measure what the worker stored and how long the queue took to drain (`measure`);
  6. remove the Locust containers, whatever happened.
It returns one JSON-ready dict (keys in `RESULT_KEYS`).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provision.deployment import Deployment
from provision.errors import KitError, UsageError

LOCUST_DIR = "locust"
# Where locustfile.py and payloads.py are copied from (this package; a test may point elsewhere).
LOCUST_SOURCES = Path(__file__).resolve().parent
REPORTS_DIR = "reports"
CONTAINER_PREFIX = "/tmp/locust"  # Locust's --csv prefix inside the headless master
CONTAINER_HTML = "/tmp/report.html"
MASTER = "locust-headless"
WORKER = "locust-worker"
UI_MASTER = "locust-master"
EXPECT_WORKERS_WAIT_S = 60
# Seconds of quiet after the load (users stop sending at --duration, Locust stops at --duration
# + this): requests still in flight complete and are counted, none is cut off after GlitchTip
# stored its event.
GRACE_S = 5
RESULT_KEYS = (
    "target",
    "project",
    "users",
    "spawn_rate",
    "workers",
    "duration_s",
    "requests",
    "failures",
    "accepted_per_s",
    "p50_ms",
    "p95_ms",
    "events_sent",
    "events_processed",
    "transactions_processed",
    "processed_per_s",
    "drain_s",
    "drain_timeout_s",
    "queue_keys",
    "queue_peak",
    "by_kind",
    "top_failures",
    "report_dir",
)

Progress = Callable[[str], None]


def deployment(
    directory: Path,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Deployment:
    """The deployment a load run talks to (its settings loaded; nothing runs yet)."""
    return Deployment.load(Path(directory), overrides, environ)


def locust(dep: Deployment) -> Any:
    """The Compose of compose.locust.yml (project `<name>-locust`), the stack's secrets masked."""
    from provision.load.compose_file import LOCUST_FILE

    return dep.project(f"{dep.settings.compose_project_name}-locust", (LOCUST_FILE,))


def _running_services(compose: Any) -> dict[str, str]:
    return {c.get("Service", ""): c.get("State", "") for c in compose.ps()}


def require_stack(dep: Deployment) -> None:
    """KitError unless the stack's services are running (web, worker, valkey; with profile
    minimal the all-in-one web, and valkey where it has one)."""
    from provision.profiles import core_services

    states = _running_services(dep.compose())
    down = [name for name in core_services(dep.settings) if states.get(name) != "running"]
    if down:
        shown = ", ".join(f"{name} {states.get(name) or 'missing'}" for name in down)
        raise KitError(
            f"the stack ({dep.settings.compose_project_name}) is not running: {shown}",
            "start it with `make start` (provision up), then run the load again",
        )


def require_no_ui(dep: Deployment) -> None:
    """UsageError while the web UI's Locust runs: its workers would join the wrong master."""
    if _running_services(locust(dep)).get(UI_MASTER) == "running":
        raise UsageError(
            "the Locust web UI is running (make locust-start)",
            "stop it first with `make locust-stop` (provision load --stop)",
        )


def check_project(settings: Any, project: str) -> None:
    """UsageError when the load-test project is the production one (`project` setting)."""
    from provision.provisioning import slugify

    if slugify(project) == slugify(settings.project):
        raise UsageError(
            f"the load test would send its events to the production project {settings.project!r}",
            "name a dedicated project with --project (default loadtest) or load_project",
        )


def load_project_dsn(dep: Deployment, project: str, progress: Progress) -> tuple[Any, str]:
    """(ProjectResult, API token) of the load-test project, created if missing.

    Same code path as `create-project` (list first, create only what is missing); no rc file is
    written, so apps keep the production DSN in `.glitchtiprc`.
    """
    from provision.envfile import read_env_file
    from provision.provisioning import ProjectRequest, provision_project, resolve_token

    settings = dep.settings
    check_project(settings, project)
    env = read_env_file(settings.env_path)
    request = ProjectRequest(
        url=settings.internal_url,
        org=settings.organization,
        project=project,
        admin_email=settings.admin_email,
        admin_password=env.get("DJANGO_SUPERUSER_PASSWORD"),
        env_path=settings.env_path,
        platform="python",
        rc_path=None,
    )
    token, _source = resolve_token(request, progress)
    request.token = token
    return provision_project(request, progress=progress), token


def install_locustfile(directory: Path) -> Path:
    """Copy locustfile.py and payloads.py into `<directory>/locust/` (0644, only if changed)."""
    from provision.fileio import check_writable_target, read_text_file, write_atomic

    source = LOCUST_SOURCES
    target = Path(directory) / LOCUST_DIR
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target} is not a directory", f"move it away; the kit writes {target}/")
    target.mkdir(mode=0o755, exist_ok=True)
    for name in ("locustfile.py", "payloads.py"):
        check_writable_target(target / name)
        text = read_text_file(source / name)
        assert text is not None, name
        write_atomic(target / name, text)
    return target


def new_report_dir(directory: Path, now: _dt.datetime | None = None) -> Path:
    """`reports/<UTC timestamp>/`, created empty (a suffix when two runs share a second)."""
    base = Path(directory) / REPORTS_DIR
    if base.is_symlink() or (base.exists() and not base.is_dir()):
        raise UsageError(f"{base} is not a directory", f"move it away; the kit writes {base}/")
    base.mkdir(mode=0o755, exist_ok=True)
    stamp = (now or _dt.datetime.now(_dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        path = base / f"{stamp}{suffix}"
        try:
            path.mkdir(mode=0o755)
            return path
        except FileExistsError:
            continue
    raise KitError(f"{base} has 99 reports from the same second", "remove some")


def _check_numbers(users: int, spawn_rate: float, workers: int, issues: int, rate: float) -> None:
    import math

    checks = (
        (1 <= users <= 100_000, "--users must be 1 to 100000", "e.g. --users 20"),
        (
            math.isfinite(spawn_rate) and 0 < spawn_rate <= 10_000,
            "--spawn-rate must be above 0 and at most 10000 users per second",
            "e.g. --spawn-rate 10",
        ),
        (0 <= workers <= 64, "--workers must be 0 to 64", "0 runs the users in the master"),
        (1 <= issues <= 100_000, "--issues must be 1 to 100000", "e.g. --issues 50"),
        (
            math.isfinite(rate) and 0 <= rate <= 10_000,
            "--rate must be 0 (as fast as answered) to 10000 requests/s per user",
            "e.g. --rate 2",
        ),
    )
    for ok, message, fix in checks:
        if not ok:
            raise UsageError(message, fix)


def locust_environment(
    *,
    dsn: str,
    target: Any,
    users: int,
    spawn_rate: float,
    duration_s: int,
    workers: int,
    issues: int,
    mix: Mapping[str, int],
    rate: float,
    headless: bool = True,
) -> dict[str, str]:
    """The variables compose.locust.yml interpolates or passes through for this run."""
    from provision.load.payloads import format_mix

    env = {
        "GLITCHTIP_LOAD_DSN": dsn,
        "GLITCHTIP_LOAD_ISSUES": str(issues),
        "GLITCHTIP_LOAD_MIX": format_mix(dict(mix)),
        "GLITCHTIP_LOAD_RATE": f"{rate:g}",
        "GLITCHTIP_KIT_LOAD_TARGET": target.url,
        "GLITCHTIP_KIT_LOAD_HOST_HEADER": target.host_header,
        "GLITCHTIP_KIT_LOCUST_MASTER": MASTER if headless else UI_MASTER,
    }
    if headless:
        env.update(
            LOCUST_USERS=str(users),
            LOCUST_SPAWN_RATE=f"{spawn_rate:g}",
            LOCUST_RUN_TIME=f"{duration_s + GRACE_S}s",
            GLITCHTIP_LOAD_SEND_FOR=str(duration_s),
            LOCUST_CSV=CONTAINER_PREFIX,
            LOCUST_HTML=CONTAINER_HTML,
            LOCUST_EXIT_CODE_ON_ERROR="0",
            LOCUST_STOP_TIMEOUT="5",
        )
        if workers:
            env.update(
                LOCUST_MODE_MASTER="true",
                LOCUST_EXPECT_WORKERS=str(workers),
                LOCUST_EXPECT_WORKERS_MAX_WAIT=str(EXPECT_WORKERS_WAIT_S),
            )
    return env


class _LogFilter:
    """Locust's console, shortened for progress: the aggregated line every 5 s, errors always;
    and the moment the run time limit was reached (the end of the load)."""

    def __init__(self, progress: Progress, clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.clock = clock
        self.last_stats = float("-inf")
        self.load_end: float | None = None
        self.tail: list[str] = []

    def __call__(self, line: str) -> None:
        text = line.split("|", 1)[1].strip() if "|" in line[:40] else line.strip()
        self.tail = [*self.tail, text][-20:]
        lowered = text.lower()
        if "time limit reached" in lowered and self.load_end is None:
            self.load_end = self.clock()
            self.progress("load: run time reached, Locust stops")
        elif text.startswith("Aggregated") and text.split()[1:2] != ["0"]:
            now = self.clock()
            if now - self.last_stats >= 5:
                self.last_stats = now
                self.progress(_stats_line(text))
        elif any(mark in text for mark in _LOG_PROBLEMS):
            self.progress("locust: " + text[:300])
        elif text.endswith(("Pulling", "Pulled")) or "pull access denied" in text:
            self.progress("compose: " + text[:300])  # the first run pulls locust_image


# Locust's log records of trouble (`[time] host/ERROR/locust.runners: ...`) and the locustfile's
# own refusal; not the statistics table (whose kinds contain "error"), nor the traceback of the
# SystemExit(0) Locust's master prints at every normal shutdown.
_LOG_PROBLEMS = ("/ERROR/", "/CRITICAL/", "GLITCHTIP_LOAD_DSN is")


def _stats_line(text: str) -> str:
    """Locust's `Aggregated  reqs  fails(%) | avg min max med | req/s failures/s` row, short."""
    parts = text.replace("|", " ").split()
    try:
        requests, failed = parts[1], parts[2].split("(")[0]
        median, rate = parts[6], parts[7]
    except IndexError:
        return "load: " + " ".join(parts)
    return f"load: {requests} requests, {failed} failed, {rate} req/s, median {median} ms"


def run_load(
    directory: Path,
    *,
    users: int = 20,
    spawn_rate: float = 10.0,
    duration_s: float = 30.0,
    workers: int = 1,
    target: str | None = None,
    allow_remote_target: bool = False,
    project: str | None = None,
    distinct_issues: int = 50,
    mix: Mapping[str, int] | None = None,
    rate: float = 0.0,
    drain_timeout_s: float = 120.0,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    sample_interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the load headless and measure what GlitchTip stored; see the module docstring.

    `sample_interval_s` and `clock` are the sampler's period and the one clock every figure of
    the run's timing reads (Locust's end, the samples, the drain): the real ones by default;
    a test shortens the period and reads a clock of its own so the drain figures are exact."""
    from provision.load import measure, payloads
    from provision.load.options import resolve_target
    from provision.load.report import HTML_FILE, STATS_FILE, parse_stats

    say = progress or (lambda line: None)
    duration = int(duration_s)
    if not 1 <= duration <= 24 * 3600:
        raise UsageError("the duration must be 1 s to 24 h", "e.g. --duration 30s")
    _check_numbers(users, spawn_rate, workers, distinct_issues, rate)
    weights = dict(payloads.MIX if mix is None else mix)
    if set(weights) - set(payloads.KINDS) or not any(weights.values()):
        raise UsageError("the mix needs known kinds and one weight above 0", "see --mix in --help")
    dep = deployment(directory, overrides, environ)
    settings = dep.settings
    where = resolve_target(
        target,
        web_service_url=f"http://web:{settings.major.web_port}",
        host_header=_host_header(settings),
        stack_hosts=("web", f"{settings.compose_project_name}-web-1"),
        allow_remote=allow_remote_target,
    )
    project_name = project or settings.load_project
    check_project(settings, project_name)
    require_stack(dep)
    from provision.api.client import GlitchTipClient
    from provision.dsn import parse_dsn
    from provision.load.compose_file import write_locust

    install_locustfile(settings.directory)
    write_locust(settings)
    require_no_ui(dep)
    result, token = load_project_dsn(dep, project_name, say)
    project_id = parse_dsn(result.dsn).project_id
    # No Valkey (profile minimal on 6): the queue is in Postgres, the drain is measured from
    # the stored count alone.
    from provision.profiles import queue_keys

    keys = queue_keys(settings)
    report_dir = new_report_dir(settings.directory)

    with GlitchTipClient(settings.internal_url, token) as client:

        def count() -> measure.Stored:
            return measure.stored_counts(client, result.org_slug, result.project_slug, project_id)

        def backlog() -> int:
            if settings.external_valkey:  # not a service of the stack: ask it from outside
                from provision.runtime.engine import Engine

                return sum(measure.external_queue_lengths(Engine(), settings, keys).values())
            return sum(measure.queue_lengths(dep.compose(), keys).values())

        before = measure.settled_count(
            count=count, backlog=backlog, timeout_s=drain_timeout_s, progress=say
        )
        env = locust_environment(
            dsn=result.dsn,
            target=where,
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration,
            workers=workers,
            issues=distinct_issues,
            mix=weights,
            rate=rate,
        )
        say(
            f"load: {users} users ({workers} worker{'s' if workers != 1 else ''}) for "
            f"{duration} s against {where.url}, project {result.project_slug}"
        )
        logs = _LogFilter(say, clock)
        during = measure.Sampler(backlog, count, sample_interval_s, clock)
        try:
            with during:
                ran = _run_headless(dep, env, workers, duration, logs)
            # The users stopped sending GRACE_S before Locust's run time ended.
            load_end = (logs.load_end or clock()) - GRACE_S
            failed = KitError(
                f"Locust failed (exit {ran.returncode}: {' | '.join(logs.tail[-3:])})",
                "see the output above; `provision logs web` shows GlitchTip's side",
            )
            try:
                _copy(locust(dep), STATS_FILE, report_dir)
            except KitError:
                if not ran.ok:  # no statistics because Locust never ran: say why
                    raise failed from None
                raise
            stats = parse_stats((report_dir / STATS_FILE).read_text(encoding="utf-8"))
            if not ran.ok and stats.requests == 0:
                raise failed

            stored_at = during.drained_at(load_end, stats.accepted, before)
            if stored_at is not None:  # all stored during the quiet tail of the run
                drain = measure.Drain(
                    max(stored_at - load_end, 0.0), count().minus(before), during.peak, 0
                )
            else:
                drain = measure.measure_drain(
                    accepted=stats.accepted,
                    before=before,
                    count=count,
                    backlog=backlog,
                    load_end=load_end,
                    timeout_s=drain_timeout_s,
                    clock=clock,
                    progress=say,
                )
            _copy_rest(locust(dep), report_dir)
        finally:
            locust(dep).run("--profile", "headless", "down", "--remove-orphans", "-t", "5")

    from provision.load.report import FAILURES_FILE, parse_failures

    failures_file = report_dir / FAILURES_FILE
    top = (
        parse_failures(failures_file.read_text(encoding="utf-8")) if failures_file.is_file() else []
    )
    window = duration + (drain.drain_s if drain.drain_s is not None else drain_timeout_s)
    return {
        "target": where.url,
        "project": result.project_slug,
        "users": users,
        "spawn_rate": spawn_rate,
        "workers": workers,
        "duration_s": duration,
        "requests": stats.requests,
        "failures": stats.failures,
        "accepted_per_s": round(stats.accepted / duration, 1),
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "events_sent": stats.accepted,
        "events_processed": drain.stored.total,
        "transactions_processed": drain.stored.transactions,
        "processed_per_s": round(drain.stored.total / window, 1),
        "drain_s": None if drain.drain_s is None else round(drain.drain_s, 1),
        "drain_timeout_s": drain_timeout_s,
        "queue_keys": list(keys),
        "queue_peak": max(drain.queue_peak, during.peak),
        "by_kind": stats.by_kind,
        "top_failures": top,
        "report_dir": str(report_dir),
        "report_html": str(report_dir / HTML_FILE),
    }


def _host_header(settings: Any) -> str:
    from provision.load.compose_file import load_host_header

    return load_host_header(settings)


def _run_headless(dep: Deployment, env: dict[str, str], workers: int, duration: int, logs) -> Any:
    # Without workers the master runs the users itself; scaling an unselected service is an
    # error for Compose, so --scale only comes with the workers.
    scale = ["--scale", f"{WORKER}={workers}"] if workers else []
    services = [MASTER, WORKER] if workers else [MASTER]
    return locust(dep).stream(
        "--profile",
        "headless",
        "up",
        *scale,
        "--exit-code-from",
        MASTER,
        "--attach",
        MASTER,
        *services,
        on_line=logs,
        env=env,
        timeout=duration + GRACE_S + EXPECT_WORKERS_WAIT_S + 120,
    )


def _copy(compose: Any, name: str, report_dir: Path) -> None:
    """Copy one report file out of the (stopped) headless master."""
    if name.endswith(".csv"):  # locust_stats.csv <- /tmp/locust_stats.csv (the --csv prefix)
        source = f"{CONTAINER_PREFIX}_{name.removeprefix('locust_')}"
    else:
        source = CONTAINER_HTML
    copied = compose.run("cp", f"{MASTER}:{source}", str(report_dir / name), timeout=120)
    if not copied.ok:
        raise KitError(
            f"cannot copy Locust's {name} out of its container ({copied.last_lines(2)})",
            "run the load again; `docker compose cp` needs the stopped container",
        )


def _copy_rest(compose: Any, report_dir: Path) -> None:
    from provision.load.report import REPORT_FILES, STATS_FILE

    for name in REPORT_FILES:
        if name != STATS_FILE:
            _copy(compose, name, report_dir)


def start_ui(
    directory: Path,
    *,
    workers: int = 1,
    project: str | None = None,
    distinct_issues: int = 50,
    mix: Mapping[str, int] | None = None,
    rate: float = 0.0,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """`make locust-start`: the Locust master with its web UI, and workers, against the stack."""
    from provision.load import payloads
    from provision.load.compose_file import write_locust
    from provision.load.options import resolve_target

    say = progress or (lambda line: None)
    _check_numbers(1, 1.0, workers, distinct_issues, rate)
    if workers < 1:
        raise UsageError("the web UI's master generates no load itself", "give --workers 1 or more")
    dep = deployment(directory, overrides, environ)
    settings = dep.settings
    check_project(settings, project or settings.load_project)
    require_stack(dep)
    result, _token = load_project_dsn(dep, project or settings.load_project, say)
    where = resolve_target(
        None,
        web_service_url=f"http://web:{settings.major.web_port}",
        host_header=_host_header(settings),
        stack_hosts=("web",),
        allow_remote=False,
    )
    install_locustfile(settings.directory)
    write_locust(settings)
    env = locust_environment(
        dsn=result.dsn,
        target=where,
        users=1,
        spawn_rate=1.0,
        duration_s=1,
        workers=workers,
        issues=distinct_issues,
        mix=dict(payloads.MIX if mix is None else mix),
        rate=rate,
        headless=False,
    )
    services = [UI_MASTER, WORKER] if workers else [UI_MASTER]
    started = locust(dep).run(
        "up", "--detach", "--scale", f"{WORKER}={workers}", *services, env=env, timeout=600
    )
    if not started.ok:
        raise KitError(
            f"cannot start Locust ({started.last_lines(3)})",
            "check the image (locust_image) and that the port is free (locust_port)",
        )
    import ipaddress

    address = settings.bind_address
    if not ipaddress.ip_address(address).is_loopback:
        # Locust's UI has no login: whoever reaches it can start a load.
        say(
            f"warning: Locust's web UI has no login and listens on {address}:"
            f"{settings.locust_port} (bind_address): anyone who reaches it can start a load; "
            "stop it with make locust-stop when done"
        )
    if ":" in address:
        address = f"[{address}]"
    if ipaddress.ip_address(settings.bind_address).is_unspecified:
        address = "127.0.0.1"
    url = f"http://{address}:{settings.locust_port}"
    return {"url": url, "project": result.project_slug, "workers": workers, "target": where.url}


def stop_ui(
    directory: Path,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """`make locust-stop`: remove every Locust container of the deployment; True if any ran."""
    from provision.load.compose_file import LOCUST_FILE

    dep = deployment(directory, overrides, environ)
    if not (dep.settings.directory / LOCUST_FILE).exists():
        return False
    had = bool(locust(dep).ps())
    stopped = locust(dep).run("--profile", "*", "down", "--remove-orphans", "-t", "5", timeout=300)
    if not stopped.ok:
        raise KitError(f"cannot stop Locust ({stopped.last_lines(2)})", "see `docker ps`")
    return had
