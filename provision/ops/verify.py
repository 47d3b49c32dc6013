"""`provision verify`: prove a deployment works end to end, from the outside in.

Each check is small, independent and timed, and a failed check never stops the next one, so one
run says everything that is wrong: the public URL (with https, a verified certificate and its
days to expiry), `/_health/`, the database-backed `/api/settings/`, the API token, every compose
service, free disk, and finally an event sent through a DSN that the worker must turn into an
event visible through the API within a bound.

The test event never goes into the user's data: it goes to a project of the kit's own
(`VERIFY_PROJECT` in the settings' organization), got or created by the same code as
`create-project` (idempotent: a second run creates nothing). Its message is always the same, so
GlitchTip groups every run's event into one issue, which verify resolves once it has seen the
event (`PUT /api/0/issues/{id}/ {"status": "resolved"}`, recording 214): the org's issue list
does not fill with one open issue per run, and the events themselves expire with the retention
like any other. The DSN of `.glitchtiprc` is still checked: its key must be one of its project's.
Only endpoints the recorded contract shows are used: `GET /_health/`, `GET /api/settings/`,
`GET /api/0/` (the token's user), the org/team/project/key list and create calls,
`POST /api/{id}/store/`, `GET /api/0/projects/{org}/{project}/events/` and the issue PUT.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import KitError

CHECKS = ("url", "health", "settings", "token", "services", "disk", "queue", "event")
HTTP_TIMEOUT = 10.0
POLL = 0.5  # seconds between looks for the test event
CERT_WARN_DAYS = 14  # a certificate expiring sooner fails the url check
# The kit's own project for the test events (slug glitchtip-kit-verify), never the user's.
VERIFY_PROJECT = "GlitchTip kit verify"
VERIFY_MESSAGE = "provision verify: test event"  # constant: every run's event joins one issue


@dataclass
class Check:
    """One check's outcome."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class VerifyReport:
    """Every check that ran, in order."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{**asdict(c), "seconds": round(c.seconds, 3)} for c in self.checks],
        }

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


class _Failed(Exception):
    """A check's failure: its one-line detail."""


def _client(timeout: float = HTTP_TIMEOUT) -> Any:
    import httpx

    from provision.api.client import NO_REUSE, USER_AGENT, tls_context

    # A new connection per request: GlitchTip 5's uWSGI closes each one after its answer.
    return httpx.Client(
        timeout=timeout, limits=NO_REUSE, verify=tls_context(), headers={"User-Agent": USER_AGENT}
    )


def _get(url: str, **kwargs: Any) -> Any:
    import httpx

    from provision.api.client import display_url

    try:
        with _client() as client:
            return client.get(url, **kwargs)
    except httpx.HTTPError as exc:
        raise _Failed(f"no answer from {display_url(url)} ({_why(exc)})") from None


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text[:160]}" if text else exc.__class__.__name__


def _expect_200(response: Any, what: str) -> None:
    if response.status_code != 200:
        raise _Failed(f"{what} answered HTTP {response.status_code}")


def certificate_days(url: str, now: float | None = None) -> float:
    """Days until the certificate `url`'s server presents expires (verified with the kit's
    TLS context: an invalid, self-signed or wrong-host certificate fails the handshake)."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    from provision.api.client import tls_context

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    with (
        socket.create_connection((host, port), timeout=HTTP_TIMEOUT) as raw,
        tls_context().wrap_socket(raw, server_hostname=host) as tls,
    ):
        cert = tls.getpeercert() or {}
    expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    return (expires - (time.time() if now is None else now)) / 86400


class Verifier:
    """The facts every check reads once: settings, token, DSN and the compose project."""

    def __init__(
        self,
        ctx: Any,
        event_timeout: float,
        min_free_gib: float,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        from provision.envfile import read_env_file

        self.ctx = ctx
        self.settings = ctx.load_settings()
        self.event_timeout = event_timeout
        self.min_free_gib = min_free_gib
        self.public = str(self.settings.glitchtip_domain).rstrip("/")
        from provision.proxy.ca import trust_exported_root

        trust_exported_root(self.settings)  # the kit's TLS proxy on a private name: its CA
        self.kubernetes = getattr(self.settings, "target", "compose") == "kubernetes"
        # On Kubernetes nothing is published on this host: the API is reached at the public URL
        # (or --url), as for any GlitchTip.
        default = self.public if self.kubernetes else str(self.settings.internal_url)
        self.internal = (url or default).rstrip("/")
        from provision.api.client import check_token

        # Where the token came from, for every message about it.
        self.token_from = "given with --token / GLITCHTIP_API_TOKEN" if token else "in .env"
        self.token = token or read_env_file(Path(self.settings.directory) / ".env").get(
            "GLITCHTIP_API_TOKEN", ""
        )
        where = "--token / GLITCHTIP_API_TOKEN" if token else "GLITCHTIP_API_TOKEN in .env"
        check_token(self.token, where)  # one line (exit 2), no request with it
        self.token_rejected = (
            False  # set by the token check: the event check then waits for nothing
        )

    # --- the checks, in CHECKS order ----------------------------------------------------------

    def check_url(self) -> str:
        response = _get(self.public + "/_health/")
        _expect_200(response, f"the public URL {self.public}/_health/")
        if not self.public.startswith("https://"):
            return f"{self.public} answers (http: no certificate to check)"
        try:
            days = certificate_days(self.public)
        except (OSError, KeyError, ValueError) as exc:
            raise _Failed(f"cannot read the certificate of {self.public} ({_why(exc)})") from None
        if days < CERT_WARN_DAYS:
            raise _Failed(f"the certificate of {self.public} expires in {days:.0f} days: renew it")
        return f"{self.public} answers; certificate valid, expires in {days:.0f} days"

    def check_health(self) -> str:
        began = time.monotonic()
        _expect_200(_get(self.internal + "/_health/"), "/_health/")
        return f"{self.internal}/_health/ HTTP 200 in {(time.monotonic() - began) * 1000:.0f} ms"

    def check_settings(self) -> str:
        began = time.monotonic()
        response = _get(self.internal + "/api/settings/")
        _expect_200(response, "/api/settings/ (reads the database)")
        try:
            response.json()
        except ValueError:
            raise _Failed("/api/settings/ answered 200 without JSON") from None
        return f"/api/settings/ HTTP 200 in {(time.monotonic() - began) * 1000:.0f} ms (database)"

    def check_token(self) -> str:
        if not self.token:
            raise _Failed("no GLITCHTIP_API_TOKEN in .env: run `provision up` to create one")
        response = _get(self.internal + "/api/0/", headers=self._auth())
        if response.status_code in (401, 403):
            self.token_rejected = True
            raise _Failed(
                f"the API token {self.token_from} is rejected (HTTP {response.status_code})"
            )
        _expect_200(response, "/api/0/")
        try:
            user = (response.json() or {}).get("user")
        except (ValueError, AttributeError):
            raise _Failed("/api/0/ answered without JSON") from None
        if not user:
            self.token_rejected = True
            fix = "run `provision up`" if self.token_from == "in .env" else "check the token"
            raise _Failed(f"the API token {self.token_from} is not accepted (revoked?): {fix}")
        return (
            f"the API token {self.token_from} is accepted "
            f"(user {user.get('email') or user.get('id')})"
        )

    def check_services(self) -> str:
        if self.kubernetes:
            namespace = self.settings.compose_project_name
            raise _Failed(
                f"the kit cannot see Kubernetes pods: check `kubectl -n {namespace} get pods` "
                "and run verify with --skip services"
            )
        if getattr(self.settings, "target", "compose") == "swarm":
            return _swarm_services(self.settings)
        containers = self.ctx.engine().containers(self.settings.compose_project_name)
        if not containers:
            raise _Failed("no containers: run `provision up`")
        bad = []
        for c in containers:
            if c.state == "exited" and c.exit_code == 0:
                continue  # a one-shot (migrate) that succeeded
            if c.state != "running":
                code = f" ({c.exit_code})" if c.exit_code is not None else ""
                bad.append(f"{c.service} {c.state}{code}")
            elif c.health not in (None, "healthy"):
                bad.append(f"{c.service} {c.health}")
        if bad:
            raise _Failed(f"not healthy: {', '.join(bad)} (see `provision logs SERVICE`)")
        from provision.stack import liveness

        dead = liveness.problems(
            self.settings, containers, liveness.compose_logs(self.ctx.compose())
        )
        if dead:
            raise _Failed(f"{'; '.join(dead)} (see `provision logs SERVICE`)")
        running = sum(1 for c in containers if c.state == "running")
        return f"{running} services running and healthy"

    def check_disk(self) -> tuple[str, dict[str, Any]]:
        import shutil

        places: list[tuple[str, str]] = []
        with contextlib.suppress(KitError):
            root = str(self.ctx.engine().info().get("DockerRootDir") or "")
            if root and Path(root).is_dir():
                places.append(("Docker data root", root))
        places.append(("deployment dir", str(self.settings.directory)))
        free = {}
        for label, path in places:
            try:
                free[f"{label} {path}"] = shutil.disk_usage(path).free / 2**30
            except OSError as exc:
                raise _Failed(f"cannot read free space of {path} ({_why(exc)})") from None
        text = ", ".join(f"{where}: {gib:.1f} GiB free" for where, gib in free.items())
        low = [where for where, gib in free.items() if gib < self.min_free_gib]
        if low:
            raise _Failed(f"less than {self.min_free_gib:g} GiB free ({text})")
        return text, {"free_gib": {k: round(v, 2) for k, v in free.items()}}

    def check_queue(self) -> tuple[str, dict[str, Any]]:
        """No event waits longer than it should: nothing stuck unacknowledged, a backlog that
        drains, no dead-lettered batch, Valkey not full (provision/stack/queue_health.py)."""
        from provision.stack.queue_health import queue_reader

        if self.kubernetes or getattr(self.settings, "target", "compose") == "swarm":
            return "not checked: the kit reads the queue of a compose deployment only", {}
        reader = queue_reader(self.settings, self.ctx.compose())
        if reader is None:
            return "not checked: the queue is in an external service", {}
        health = reader()
        if health.error:
            raise _Failed(f"cannot read the queue: {health.error}")
        if health.problems:
            raise _Failed("; ".join(health.problems))
        return (
            f"{health.backlog_later} event(s) queued and draining, {health.unacked} "
            "unacknowledged, none stuck",
            health.as_dict(),
        )

    def check_event(self) -> tuple[str, dict[str, Any]]:
        import httpx

        from provision.dsn import parse_dsn

        if self.token_rejected:
            raise _Failed(f"not sent: the API token {self.token_from} is not accepted (see token)")
        if not self.token:
            raise _Failed("not sent: no API token to find the event with")
        kit = self._kit_project()
        user_dsn = self._check_user_dsn()
        dsn = parse_dsn(kit.dsn, "the DSN of the kit's verify project")
        event_id = uuid.uuid4().hex
        event = {
            "event_id": event_id,
            "timestamp": time.time(),
            "platform": "python",
            "level": "info",
            "logger": "provision.verify",
            "message": VERIFY_MESSAGE,
        }
        headers = {
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=glitchtip-kit/verify, "
            f"sentry_key={dsn.public_key}"
        }
        sent = time.monotonic()
        url = f"{dsn.server_url.rstrip('/')}/api/{dsn.project_id}/store/"
        try:
            with _client() as client:
                response = client.post(url, json=event, headers=headers)
        except httpx.HTTPError as exc:
            raise _Failed(f"cannot send an event through the DSN ({_why(exc)})") from None
        if response.status_code != 200:
            raise _Failed(f"the DSN's store endpoint answered HTTP {response.status_code}")
        where = f"{kit.org_slug}/{kit.project_slug}"
        path = f"{self.internal}/api/0/projects/{where}/events/"
        deadline = sent + self.event_timeout
        last = "not seen yet"
        while True:
            try:
                listed = _get(path, headers=self._auth())
                if listed.status_code == 200:
                    found = next(
                        (
                            item
                            for item in listed.json()
                            if isinstance(item, dict) and item.get("eventID") == event_id
                        ),
                        None,
                    )
                    if found is not None:
                        latency = time.monotonic() - sent
                        resolved = self._resolve(found.get("groupID"))
                        return (
                            f"event {event_id[:8]} processed in {latency:.2f} s (project "
                            f"{where}, {resolved}){user_dsn}",
                            {
                                "event_id": event_id,
                                "latency_s": round(latency, 3),
                                "project": where,
                                "issue_resolved": resolved == "issue resolved",
                            },
                        )
                else:
                    last = f"the events list answered HTTP {listed.status_code}"
            except (_Failed, ValueError, AttributeError, TypeError) as exc:
                last = str(exc) or exc.__class__.__name__
            if time.monotonic() >= deadline:
                from provision.profiles import app_services

                worker = app_services(self.settings)[-1]  # profile minimal: the all-in-one web
                raise _Failed(
                    f"event {event_id[:8]} was accepted but not processed within "
                    f"{self.event_timeout:g} s ({last}): is the worker running? "
                    f"(`provision logs {worker}`)"
                )
            time.sleep(POLL)

    def _api(self) -> Any:
        from provision.api.client import GlitchTipClient

        return GlitchTipClient(self.internal, self.token, timeout=HTTP_TIMEOUT, retry=_retry())

    def _kit_project(self) -> Any:
        """The kit's own project, got or created through create-project's code (no rc file)."""
        from provision.provisioning import ProjectRequest, provision_project

        request = ProjectRequest(
            url=self.internal,
            org=self.settings.organization,
            project=VERIFY_PROJECT,
            token=self.token,
            env_path=None,
            platform="python",
            rc_path=None,
            client_options={"timeout": HTTP_TIMEOUT, "retry": _retry()},
        )
        try:
            return provision_project(request)
        except KitError as error:
            raise _Failed(f"cannot get the kit's verify project ({error.line()})") from None

    def _check_user_dsn(self) -> str:
        """ ", or a note on .glitchtiprc's DSN: its key must be one of its project's (no event
        is sent to the user's project). A key that is not there fails the check."""
        from provision.dsn import RC_NAME, parse_dsn, read_rc_dsn

        rc = Path(self.settings.directory) / RC_NAME
        org, project = _rc_slugs(rc)
        value = read_rc_dsn(rc) if rc.is_file() else None
        if not value or not org or not project:
            return f"; no DSN, org and project in {RC_NAME} to check"
        dsn = parse_dsn(value, str(rc))
        try:
            with self._api() as client:
                keys = client.keys(org, project)
        except KitError as error:
            raise _Failed(f"cannot list the keys of {org}/{project} ({error.line()})") from None

        def plain(value: Any) -> str:  # `public` is a UUID, the DSN holds its hex (recorded)
            return str(value or "").replace("-", "").lower()

        def same(key: Any) -> bool:
            # The key, and the project the DSN names (a key's `projectID`, recorded): GlitchTip
            # refuses an envelope whose project ID is not the key's project (401).
            return (
                isinstance(key, dict)
                and plain(key.get("public")) == plain(dsn.public_key)
                and str(key.get("projectID")) == str(dsn.project_id)
            )

        if not any(same(key) for key in keys):
            raise _Failed(
                f"the DSN in {RC_NAME} is not a key of {org}/{project}: run "
                "`provision create-project` to write a current one"
            )
        return f"; the DSN in {RC_NAME} is a key of {org}/{project}"

    def _resolve(self, issue_id: Any) -> str:
        """Resolve the test events' issue (recording 214); a failure is reported, not fatal."""
        if not str(issue_id or "").isdigit():
            return "issue not resolved: the event names no issue"
        try:
            with self._api() as client:
                client.request(
                    "PUT",
                    f"/api/0/issues/{issue_id}/",
                    json={"status": "resolved"},
                    action="resolve the test events' issue",
                )
        except KitError as error:
            return f"issue not resolved ({error.message})"
        return "issue resolved"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _retry() -> Any:
    from provision.api.client import RetryPolicy

    return RetryPolicy(attempts=2)


def _rc_slugs(rc: Path) -> tuple[str, str]:
    import configparser

    from provision.fileio import read_text_file

    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(configparser.Error, KitError):
        parser.read_string(read_text_file(rc) or "")
    return (
        parser.get("defaults", "org", fallback="").strip(),
        parser.get("defaults", "project", fallback="").strip(),
    )


def run_verify(
    ctx: Any,
    *,
    event_timeout: float = 30.0,
    min_free_gib: float = 2.0,
    checks: Sequence[str] | None = None,
    on_check: Callable[[Check], None] | None = None,
    url: str | None = None,
    token: str | None = None,
) -> VerifyReport:
    """Run the checks (all by default, in `CHECKS` order); a failed check is a result, not an
    exception. `on_check` sees each one as it ends (for a line per check). `url` and `token`
    replace the published port and the token in `.env` (a GlitchTip on a cluster)."""
    from provision.masking import redact

    wanted = list(CHECKS if checks is None else checks)
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        from provision.errors import UsageError

        raise UsageError(f"no check named {unknown[0]!r}", f"choose from {', '.join(CHECKS)}")
    verifier = Verifier(ctx, event_timeout, min_free_gib, url=url, token=token)
    secrets = [verifier.token]
    report = VerifyReport()
    for name in CHECKS:
        if name not in wanted:
            continue
        began = time.monotonic()
        data: dict[str, Any] = {}
        try:
            outcome = getattr(verifier, f"check_{name}")()
            if isinstance(outcome, tuple):
                outcome, data = outcome
            check = Check(name, True, outcome)
        except _Failed as failure:
            check = Check(name, False, str(failure))
        except KitError as error:
            check = Check(name, False, error.line())
        check.detail = redact(check.detail, secrets)
        check.seconds = time.monotonic() - began
        check.data = data
        report.checks.append(check)
        if on_check is not None:
            on_check(check)
    return report


def check_line(check: Check) -> str:
    """One line per check for people (and cron mail)."""
    word = "ok  " if check.ok else "FAIL"
    return f"{word} {check.name:<8} {check.detail} ({check.seconds:.2f} s)"


def _swarm_services(settings: Any) -> str:
    """The Swarm stack's services: every replica running (Swarm counts a task only once its
    healthcheck passes), no update in flight, the migrate job complete."""

    from provision.deployment import Deployment
    from provision.swarm.services import stack_health

    stack = settings.compose_project_name
    health = stack_health(settings, Deployment(settings).docker())
    services = health.services
    if not services:
        raise _Failed(f"no services in stack {stack}: run `provision up --target swarm`")
    if health.problems:
        shown = ", ".join(health.problems)
        raise _Failed(f"not converged: {shown} (see `docker service ps {stack}_web`)")
    tasks = sum(s.running for s in services if s.service != "migrate")
    return f"{len(services) - 1} services of stack {stack} converged ({tasks} tasks)"
