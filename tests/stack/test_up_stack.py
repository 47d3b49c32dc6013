"""`provision up` on a real Docker engine, with the registry-free test images.

Each test runs the real CLI (`python -m provision`) in its own directory, with its own compose
project name and a free port on 127.0.0.1, image overrides in glitchtip.yaml pointing at the
glitchtip-kit-test/* images, and always `down --volumes` at the end. Every command's output and
wall time is printed (visible with `pytest -s`) so a run documents itself.

The stand-in GlitchTip copies what the kit can observe of the real servers (NOTES.md): GlitchTip
5's default uWSGI answers one request per connection, granian keeps connections alive, cookies
are Secure for an https domain, and the first sign-up is accepted while no user exists. So these
tests check, on the deployed stack: a burst of sentry-sdk events is not lost, an https domain
still gets a DSN, and no one can sign up before the admin exists.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

COMMAND_TIMEOUT = 420  # one `provision up`, bounded
EVENT_TIMEOUT = 60.0  # an event must show up in the issues API within this


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Deployment:
    """One deployment directory driven through the CLI."""

    def __init__(
        self,
        directory: Path,
        major: int,
        images: dict[str, str],
        partman: bool = False,
        domain: str | None = None,
        release: str = "",
    ):
        self.directory = directory
        self.port = free_port()
        self.project = f"gtkup-{secrets.token_hex(4)}"
        self.partman = partman
        self.transcript: list[str] = []
        # GlitchTip 5: the stand-in of v5.1.0 (the released image), or of the later 5.x code.
        glitchtip = images[f"glitchtip{major}" + ("_snapshot" if release == "snapshot" else "")]
        lines = [
            f"glitchtip_major: {major}",
            f"glitchtip_image: {glitchtip}",
            f"postgres_image: {images['postgres']}",
            f"partman_image: {images['postgres']}",
            f"valkey_image: {images['valkey']}",
            f"http_port: {self.port}",
            f"compose_project_name: {self.project}",
            f"advanced_partitioning: {'true' if partman else 'false'}",
        ]
        if domain:
            lines.append(f"glitchtip_domain: {domain}")
        (directory / "glitchtip.yaml").write_text("\n".join(lines) + "\n")
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GLITCHTIP_") and key not in ("DEFAULT_FROM_EMAIL", "EMAIL_URL")
        }

    def provision(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "provision", *args, "--dir", str(self.directory)],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=COMMAND_TIMEOUT,
        )
        elapsed = time.monotonic() - began
        record = (
            f"$ provision {' '.join(args)}    # exit {done.returncode}, {elapsed:.1f} s wall\n"
            f"{done.stdout}{done.stderr}"
        )
        self.transcript.append(record)
        print(record, flush=True)
        if check and done.returncode != 0:
            logs = self.provision("logs", "--tail", "40", check=False).stdout[-6000:]
            raise AssertionError(f"provision {' '.join(args)} failed:\n{record}\n{logs}")
        return done

    def up_json(self) -> dict:
        return json.loads(self.provision("up", "--json").stdout)

    def env_file(self) -> dict[str, str]:
        from provision.envfile import read_env_file

        return read_env_file(self.directory / ".env")

    def dsn(self) -> str:
        text = (self.directory / ".glitchtiprc").read_text()
        match = re.search(r"https?://[0-9a-f]{32}@\S+/\d+", text)
        assert match, f".glitchtiprc holds no DSN:\n{text}"
        return match.group(0)

    def container_ids(self) -> dict[str, str]:
        done = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={self.project}",
             "--format", "{{.Names}} {{.ID}}"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return dict(line.split() for line in done.stdout.splitlines() if line.strip())

    def volumes(self) -> list[str]:
        done = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter",
             f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return sorted(done.stdout.split())

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        from provision.runtime.compose_binary import compose_command

        files = ["-f", "compose.yml"]
        if self.partman:
            files += ["-f", "compose.part.yml"]
        return subprocess.run(
            [*compose_command(), *files, "--project-name", self.project, *args],
            cwd=self.directory, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def teardown(self) -> None:
        self.provision("down", "--volumes", "--yes", check=False)
        from provision.runtime.compose_binary import compose_command

        subprocess.run(  # whatever the kit left, by project label
            [*compose_command(), "--project-name", self.project, "down", "-v",
             "--remove-orphans", "--timeout", "5"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip


@pytest.fixture
def deploy(tmp_path, stack_env):
    made: list[Deployment] = []

    def make(
        major: int, partman: bool = False, domain: str | None = None, release: str = ""
    ) -> Deployment:
        directory = tmp_path / f"gt{major}"
        directory.mkdir(exist_ok=True)
        deployment = Deployment(directory, major, stack_env.images, partman, domain, release)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.teardown()


def send_event(dsn: str, port: int, message: str) -> None:
    """POST one error event as an envelope to the DSN's project on 127.0.0.1."""
    import httpx

    match = re.fullmatch(r"https?://([0-9a-f]{32})@[^/]+/(\d+)", dsn)
    assert match, dsn
    key, project_id = match.groups()
    event_id = uuid.uuid4().hex
    header = {"event_id": event_id, "dsn": dsn, "sent_at": "2026-11-23T00:00:00Z"}
    event = {
        "event_id": event_id,
        "level": "error",
        "platform": "python",
        "message": {"formatted": message},
        "exception": {"values": [{"type": "RuntimeError", "value": message}]},
    }
    body = "\n".join(
        [json.dumps(header), json.dumps({"type": "event"}), json.dumps(event)]
    ).encode()
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/{project_id}/envelope/",
        content=body,
        headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=kit/1",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def wait_for_issue(deployment: Deployment, org: str, project: str, message: str) -> float:
    """Poll the issues API until `message` shows up; the seconds it took."""
    import httpx

    token = deployment.env_file()["GLITCHTIP_API_TOKEN"]
    url = f"http://127.0.0.1:{deployment.port}/api/0/projects/{org}/{project}/issues/"
    began = time.monotonic()
    while True:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if response.status_code == 200 and message in response.text:
            return time.monotonic() - began
        if time.monotonic() - began > EVENT_TIMEOUT:
            raise AssertionError(
                f"event {message!r} not in the issues API after {EVENT_TIMEOUT} s: "
                f"{response.status_code} {response.text[:500]}"
            )
        time.sleep(0.5)


# Two GET /_health/ on one TCP connection, the second sent right after the first answer; prints
# what came back as JSON. The same source runs on the host and inside a container, so it uses
# only the standard library. uWSGI (`--http-socket`) answers the first only, with no
# `Connection` header, then closes: the second gets no status line (NOTES.md).
CONNECTION_PROBE = r"""
import json, socket, sys, time
host, port, vhost = sys.argv[1], int(sys.argv[2]), sys.argv[3]
request = ("GET /_health/ HTTP/1.1\r\nHost: %s\r\n\r\n" % vhost).encode()
def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1"), True
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(l.split(":", 1) for l in lines[1:] if ":" in l)
    length = int({k.strip().lower(): v for k, v in headers.items()}.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode("latin-1"), False
deadline = time.monotonic() + 20
while True:
    try:
        sock = socket.create_connection((host, port), timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
sock.sendall(request)
first, _ = read_response(sock)
headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
           for l in first.split("\r\n")[1:] if ":" in l}
try:
    sock.sendall(request)
    second, eof = read_response(sock)
    outcome = "eof" if eof and not second else "answer"
except ConnectionResetError:
    second, outcome = "", "reset"
print(json.dumps({"first": first.split("\r\n")[0], "connection": headers.get("connection"),
                  "second": second.split("\r\n")[0], "outcome": outcome}))
"""


def probe_connection(port: int, vhost: str = "127.0.0.1") -> dict:
    """CONNECTION_PROBE against the published web port, from the host."""
    done = subprocess.run(
        [sys.executable, "-c", CONNECTION_PROBE, "127.0.0.1", str(port), vhost],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def probe_standin_default_server(deployment: Deployment) -> dict:
    """Start the image's ./bin/start.sh WITHOUT the kit's web-server variables (what GlitchTip 5
    runs by default: uWSGI on $PORT) beside the running one, in the web container, and probe it
    there: proves the stand-in copies uWSGI, so a kept-alive deployment is the kit's doing and
    not the stand-in's. $PORT is a spare port, not 8080: that may be the deployed server's."""
    script = (
        "./bin/start.sh >/tmp/default-server.log 2>&1 & pid=$!; "
        'python3 -c "$PROBE" 127.0.0.1 18080 127.0.0.1; rc=$?; '
        'kill "$pid"; grep -o "as [a-z-]*" /tmp/default-server.log >&2; exit "$rc"'
    )
    done = deployment.compose(
        "exec", "-T",
        "-e", "USE_GRANIAN=", "-e", "USE_ASYNC_SERVER=", "-e", "PORT=18080",
        "-e", "STANDIN_ACCESS_LOG=false", "-e", f"PROBE={CONNECTION_PROBE}",
        "web", "sh", "-c", script,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as uwsgi" in done.stderr, done.stderr
    return json.loads(done.stdout)


# sentry-sdk with its default transport, as an app would use it: BURST capture_message calls
# back to back, then flush. Runs in a subprocess so the SDK never hooks into pytest.
SENTRY_BURST = r"""
import sys
import sentry_sdk
dsn, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sentry_sdk.init(dsn=dsn, debug=False)
for i in range(count):
    sentry_sdk.capture_message(f"{prefix} {i:02d}")
sentry_sdk.flush(timeout=60)
"""
BURST = 40


def sentry_burst(deployment: Deployment, prefix: str) -> set[str]:
    """BURST messages through the DSN (on 127.0.0.1), then the titles that became issues."""
    import httpx

    dsn = re.sub(r"@[^/]+/", f"@127.0.0.1:{deployment.port}/", deployment.dsn())
    dsn = dsn.replace("https://", "http://", 1)  # the published port speaks http
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SENTRY_BURST, dsn, str(BURST), prefix],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    print(f"sentry-sdk burst of {BURST}: {time.monotonic() - began:.1f} s, exit "
          f"{done.returncode}\n{done.stderr[-2000:]}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = deployment.env_file()["GLITCHTIP_API_TOKEN"]
    url = f"http://127.0.0.1:{deployment.port}/api/0/projects/glitchtip/default/issues/"
    seen: set[str] = set()
    deadline = time.monotonic() + EVENT_TIMEOUT
    while len(seen) < BURST and time.monotonic() < deadline:
        time.sleep(1)
        response = httpx.get(
            url, params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        if response.status_code == 200:
            titles = {issue["title"] for issue in response.json()}
            seen = {title for title in titles if title.startswith(prefix)}
    return seen


def signup_state(port: int, domain: str) -> dict:
    """What a stranger gets from the fresh web service: allauth's config, a sign-up attempt,
    and whether the kit's admin can already log in. No connection reuse (uWSGI manners)."""
    import httpx

    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        config = client.get("/_allauth/browser/v1/config")
        assert config.status_code == 200, config.text
        secure = "secure" in config.headers.get("set-cookie", "").lower()
        csrf = client.cookies.get("csrftoken") or re.search(
            r"csrftoken=([^;]+)", config.headers.get("set-cookie", "")
        ).group(1)
        settings = client.get("/api/settings/").json()  # before the sign-up attempt
        headers = {"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"}
        signup = client.post(
            "/_allauth/browser/v1/auth/signup",
            json={"email": "stranger@example.org", "password": "a-Stranger-passw0rd"},
            headers=headers,
        )
    return {
        "open_for_signup": config.json()["data"]["account"]["is_open_for_signup"],
        "signup_status": signup.status_code,
        "settings_registration": settings.get("enableUserRegistration"),
        "csrf_cookie_secure": secure,
        "domain": domain,
    }


def admin_can_log_in(port: int, email: str, password: str) -> int:
    """Status of the allauth login of the kit's admin (200: the account exists)."""
    import httpx

    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        config = client.get("/_allauth/browser/v1/config")
        csrf = re.search(r"csrftoken=([^;]+)", config.headers.get("set-cookie", "")).group(1)
        login = client.post(
            "/_allauth/browser/v1/auth/login",
            json={"email": email, "password": password},
            headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"},
        )
    return login.status_code


# Every production deployment: TLS at a proxy, the kit talking http to the published port.
HTTPS_DOMAIN = "https://errors.example.test"


def test_glitchtip6_up_event_second_up_down_up(deploy):
    gt = deploy(6, domain=HTTPS_DOMAIN)
    first = gt.provision("up")
    # wrap-up is the last of the numbered steps, whatever their number
    assert "DSN:" in first.stdout and re.search(r"\[(\d+)/\1\] wrap-up", first.stdout)
    dsn = gt.dsn()
    # An https domain: Secure cookies over the http port, and still a token and a DSN.
    assert re.fullmatch(r"https://[0-9a-f]{32}@errors\.example\.test/\d+", dsn), dsn
    state = signup_state(gt.port, HTTPS_DOMAIN)
    assert state["csrf_cookie_secure"] is True, state  # the condition this test is about
    assert (state["open_for_signup"], state["signup_status"]) == (False, 403), state
    env_before = (gt.directory / ".env").read_text()
    rc_before = (gt.directory / ".glitchtiprc").read_text()
    assert (gt.directory / ".env").stat().st_mode & 0o777 == 0o600
    password = gt.env_file()["DJANGO_SUPERUSER_PASSWORD"]
    assert password not in first.stdout + first.stderr

    send_event(dsn, gt.port, "kit stack test 6")
    seconds = wait_for_issue(gt, "glitchtip", "default", "kit stack test 6")
    print(f"event visible through the API after {seconds:.1f} s")

    ids_before = gt.container_ids()
    second = gt.up_json()
    assert second["ok"] is True and second["changed"] is False, second
    assert second["result"]["dsn"] == dsn
    assert gt.container_ids() == ids_before
    assert (gt.directory / ".env").read_text() == env_before
    assert (gt.directory / ".glitchtiprc").read_text() == rc_before
    # Issue 18: no secret value in any container's configuration, the exited migrate included.
    from secret_check import assert_no_secret_in_compose_config, assert_no_secret_in_containers

    states = assert_no_secret_in_containers(
        gt.directory, gt.project, {"postgres", "valkey", "migrate", "web", "worker"}
    )
    assert states["migrate"] == "exited", states
    assert_no_secret_in_compose_config(gt.directory, gt.project, ["compose.yml"])

    migrated = gt.provision("migrate")
    assert "migrations done" in migrated.stdout
    # The migrate service's createsuperuser found the admin ("already taken") and exited 0;
    # migration 0013's INITIAL_USER_* is not used by the kit, and the stand-in copies it: a
    # late migrate with them creates nobody.
    late = ("late@example.org", "a-Late-passw0rd-1")
    rerun = gt.compose("run", "--rm", "-e", f"INITIAL_USER_EMAIL={late[0]}",
                       "-e", f"INITIAL_USER_PASSWORD={late[1]}", "migrate")  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "the first admin admin@example.com exists" in rerun.stdout + rerun.stderr
    assert admin_can_log_in(gt.port, *late) == 400  # "email and/or password ... not correct"
    assert admin_can_log_in(gt.port, "admin@example.com", password) == 200
    logs = gt.provision("logs", "web", "--tail", "5")
    assert password not in logs.stdout and gt.env_file()["SECRET_KEY"] not in logs.stdout

    status = json.loads(gt.provision("status", "--json").stdout)
    assert status["up"] is True, status
    gt.provision("status")

    volumes = gt.volumes()
    assert volumes
    gt.provision("down")
    assert gt.container_ids() == {}
    assert gt.volumes() == volumes  # data kept

    again = gt.provision("up")
    assert "DSN:" in again.stdout
    assert gt.dsn() == dsn
    assert (gt.directory / ".env").read_text() == env_before  # secrets kept
    wait_for_issue(gt, "glitchtip", "default", "kit stack test 6")  # the event survived

    # A rotated secret reaches the containers: its file is replaced (a new inode a running
    # container would not see) and the secrets label makes `up` recreate its readers only.
    ids = gt.container_ids()
    gt.provision("rotate-secret", "SECRET_KEY", "--yes")
    gt.provision("up")
    after = gt.container_ids()
    web = next(name for name in after if "-web-" in name)
    postgres = next(name for name in after if "-postgres-" in name)
    assert after[web] != ids[web] and after[postgres] == ids[postgres], (ids, after)
    key = gt.env_file()["SECRET_KEY"]
    seen = gt.compose("exec", "-T", "web", "cat", "/run/secrets/secret_key").stdout
    assert seen == key  # compared, never printed
    assert admin_can_log_in(gt.port, "admin@example.com", password) == 200
    assert_no_secret_in_containers(gt.directory, gt.project, {"migrate", "web", "worker"})


RELEASES_5 = ["v5.1.0", "snapshot"]


@pytest.mark.parametrize("release", RELEASES_5)
def test_glitchtip5_failed_up_resumes_then_event_and_second_up(deploy, release):
    """On the v5.1.0 stand-in (REDIS_URL only, uvicorn) and on the later code's (VALKEY_URL,
    granian). Before REDIS_URL was rendered, v5.1.0's web could not reach Valkey at all."""
    gt = deploy(5, release=release)
    # A registry on a closed loopback port: refused at once, and no traffic leaves the machine.
    unreachable = {"GLITCHTIP_KIT_GLITCHTIP_IMAGE": "127.0.0.1:9/glitchtip/glitchtip:v5.1.1"}
    failed = gt.provision("up", check=False, env=unreachable)
    assert failed.returncode == 1
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("error: step 'pull' failed: cannot pull image 127.0.0.1:9/")
    assert "GLITCHTIP_KIT_GLITCHTIP_IMAGE" in error and "docker load -i FILE" in error
    assert error.endswith(f"then run: provision up --dir {gt.directory}")
    secrets_after_failure = gt.env_file()

    # No sign-up window: start the rendered stack bare (no admin step) and ask web at once.
    gt.provision("render")  # the image comes from glitchtip.yaml again
    started = gt.compose("up", "-d", "--wait", "--wait-timeout", "110")
    assert started.returncode == 0, started.stdout + started.stderr
    state = signup_state(gt.port, "default")
    assert state["open_for_signup"] is False, state
    assert state["signup_status"] == 403, state
    assert state["settings_registration"] is False, state
    password = secrets_after_failure["DJANGO_SUPERUSER_PASSWORD"]
    assert admin_can_log_in(gt.port, "admin@example.com", password) == 200  # made by migrate

    gt.provision("up")  # resumes
    assert gt.env_file()["SECRET_KEY"] == secrets_after_failure["SECRET_KEY"]
    assert (
        gt.env_file()["DJANGO_SUPERUSER_PASSWORD"]
        == secrets_after_failure["DJANGO_SUPERUSER_PASSWORD"]
    )
    dsn = gt.dsn()
    send_event(dsn, gt.port, "kit stack test 5")
    wait_for_issue(gt, "glitchtip", "default", "kit stack test 5")

    # GlitchTip 5's own default server (uWSGI manners, copied by the stand-in) would drop the
    # second request of a connection; the kit's deployment must keep connections alive ...
    default = probe_standin_default_server(gt)
    assert default["first"] == "HTTP/1.1 200 OK" and default["connection"] is None, default
    assert default["second"] == "", default
    deployed = probe_connection(gt.port)
    assert deployed["first"] == "HTTP/1.1 200 OK", deployed
    assert deployed["second"] == "HTTP/1.1 200 OK", deployed
    # ... so that an app's burst of errors through sentry-sdk is not lost.
    seen = sentry_burst(gt, "kit burst 5")
    assert len(seen) == BURST, f"{len(seen)} of {BURST} events became issues: {sorted(seen)}"
    second = gt.up_json()
    assert second["ok"] and second["changed"] is False, second
    assert gt.dsn() == dsn


@pytest.mark.parametrize("release", RELEASES_5)
def test_glitchtip5_partman(deploy, release):
    """`make partman-start` (`up --partman`): on v5.1.0 GlitchTip's own setup cannot succeed
    and the kit's partman-config does the job; on later code GlitchTip's command does it and
    partman-config finds everything managed. 12 parents either way, then an event."""
    gt = deploy(5, partman=True, domain=HTTPS_DOMAIN, release=release)
    report = gt.up_json()
    steps = {step["name"]: step for step in report["steps"]}
    assert steps["partman"]["status"] == "ok", report
    assert "manages 12 of 12 tables" in steps["partman"]["detail"], report
    setup_log = gt.compose("logs", "--no-color", "partman-setup").stdout
    if release == "v5.1.0":
        assert "An error occurred during pg_partman table configuration" in setup_log
    else:
        assert "Successfully configured all pg_partman tables" in setup_log
    config_log = gt.compose("logs", "--no-color", "partman-config").stdout
    configured = config_log.count("partman-config: configured")
    assert configured == (12 if release == "v5.1.0" else 0), config_log
    # An https domain on GlitchTip 5 too: Secure cookies, and still a DSN.
    assert re.fullmatch(r"https://[0-9a-f]{32}@errors\.example\.test/\d+", gt.dsn()), gt.dsn()
    assert signup_state(gt.port, HTTPS_DOMAIN)["csrf_cookie_secure"] is True
    query = (
        "select parent_table || ' ' || count(*) || ' ' || max(retention) "
        "from partman.part_config c, partman.show_partitions(c.parent_table) "
        "group by parent_table order by parent_table;"
    )
    done = gt.compose("exec", "-T", "postgres", "psql", "-U", "glitchtip", "-d", "glitchtip",
                      "-tA", "-c", query)  # fmt: skip
    assert done.returncode == 0, done.stderr
    print(f"partitions ({release}):\n{done.stdout}")
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert len(rows) == 12, done.stdout
    assert all(int(count) >= 4 for _parent, count, *_ in rows), done.stdout
    second = gt.up_json()
    assert second["ok"] and second["changed"] is False, second
    rerun = gt.provision("partman")  # GlitchTip's command, then the kit's: idempotent
    assert "partman-config: done, pg_partman 5." in rerun.stdout, rerun.stdout
    assert "manages 12 of 12 tables" in rerun.stdout
    send_event(gt.dsn(), gt.port, "kit stack test partman")
    wait_for_issue(gt, "glitchtip", "default", "kit stack test partman")
