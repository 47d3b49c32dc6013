"""`provision up` on a real Docker engine, with the registry-free test images.

Each test runs the real CLI (`python -m provision`) in its own directory, with its own compose
project name and a free port on 127.0.0.1, image overrides in glitchtip.yaml pointing at the
glitchtip-kit-test/* images, and always `down --volumes` at the end. Every command's output and
wall time is printed (visible with `pytest -s`) so a run documents itself.
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

    def __init__(self, directory: Path, major: int, images: dict[str, str], partman=False):
        self.directory = directory
        self.port = free_port()
        self.project = f"gtkup-{secrets.token_hex(4)}"
        self.partman = partman
        self.transcript: list[str] = []
        glitchtip = images[f"glitchtip{major}"]
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
        from provision.compose_binary import compose_command

        files = ["-f", "compose.yml"]
        if self.partman:
            files += ["-f", "compose.part.yml"]
        return subprocess.run(
            [*compose_command(), *files, "--project-name", self.project, *args],
            cwd=self.directory, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def teardown(self) -> None:
        self.provision("down", "--volumes", "--yes", check=False)
        from provision.compose_binary import compose_command

        subprocess.run(  # whatever the kit left, by project label
            [*compose_command(), "--project-name", self.project, "down", "-v",
             "--remove-orphans", "--timeout", "5"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip


@pytest.fixture
def deploy(tmp_path, stack_env):
    made: list[Deployment] = []

    def make(major: int, partman: bool = False) -> Deployment:
        directory = tmp_path / f"gt{major}"
        directory.mkdir(exist_ok=True)
        deployment = Deployment(directory, major, stack_env.images, partman)
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


def test_glitchtip6_up_event_second_up_down_up(deploy):
    gt = deploy(6)
    first = gt.provision("up")
    assert "DSN:" in first.stdout and "[9/9] wrap-up" in first.stdout
    dsn = gt.dsn()
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

    migrated = gt.provision("migrate")
    assert "migrations done" in migrated.stdout
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


def test_glitchtip5_failed_up_resumes_then_event_and_second_up(deploy):
    gt = deploy(5)
    # A registry on a closed loopback port: refused at once, and no traffic leaves the machine.
    unreachable = {"GLITCHTIP_KIT_GLITCHTIP_IMAGE": "127.0.0.1:9/glitchtip/glitchtip:v5.1.1"}
    failed = gt.provision("up", check=False, env=unreachable)
    assert failed.returncode == 1
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("error: step 'pull' failed: cannot pull image 127.0.0.1:9/")
    assert "GLITCHTIP_KIT_GLITCHTIP_IMAGE" in error and "docker load -i FILE" in error
    assert error.endswith(f"then run: provision up --dir {gt.directory}")
    secrets_after_failure = gt.env_file()
    gt.provision("up")  # resumes: the image comes from glitchtip.yaml again
    assert gt.env_file()["SECRET_KEY"] == secrets_after_failure["SECRET_KEY"]
    assert (
        gt.env_file()["DJANGO_SUPERUSER_PASSWORD"]
        == secrets_after_failure["DJANGO_SUPERUSER_PASSWORD"]
    )
    dsn = gt.dsn()
    send_event(dsn, gt.port, "kit stack test 5")
    wait_for_issue(gt, "glitchtip", "default", "kit stack test 5")
    second = gt.up_json()
    assert second["ok"] and second["changed"] is False, second
    assert gt.dsn() == dsn


def test_glitchtip5_partman(deploy):
    gt = deploy(5, partman=True)
    report = gt.up_json()
    steps = {step["name"]: step for step in report["steps"]}
    assert steps["partman"]["status"] == "ok", report
    query = (
        "select count(*) from partman.part_config; "
        "select count(*) from pg_inherits where inhparent = "
        "'public.standin_issueaggregate'::regclass;"
    )
    done = gt.compose("exec", "-T", "postgres", "psql", "-U", "glitchtip", "-d", "glitchtip",
                      "-tA", "-c", query)  # fmt: skip
    assert done.returncode == 0, done.stderr
    configs, partitions = (int(x) for x in done.stdout.split())
    assert configs >= 1 and partitions >= 1, done.stdout
    second = gt.up_json()
    assert second["ok"] and second["changed"] is False, second
    rerun = gt.provision("partman")  # idempotent, judged on its output
    assert "already managed" in rerun.stdout or "Configured" in rerun.stdout
    send_event(gt.dsn(), gt.port, "kit stack test partman")
    wait_for_issue(gt, "glitchtip", "default", "kit stack test partman")
