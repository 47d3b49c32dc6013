"""Smoke tests of the registry-free test images on a real engine.

A compose file of the test's own (the kit's service names: postgres, valkey, migrate, web,
worker, partman-setup) in tmp_path, a random project name, web published on a random free port
of 127.0.0.1 only, `down -v` in a finally. Proves for the stand-in GlitchTip 6:
migrate -> web healthy -> createsuperuser twice (second: exit 1 "already taken") -> a wrong
Postgres password makes run-migrate.sh fail loudly -> an ingested event waits in Valkey until the
worker runs, then shows up through the issues API -> state survives a restart of web.
And for GlitchTip 5: Postgres with pg_partman_bgw preloaded, migrate with advanced partitioning,
`setup_advanced_partitions` succeeding (and again, idempotently), web on $PORT 8080.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from stack.conftest import IMAGE_NAMESPACE

pytestmark = pytest.mark.stack

PASSWORD = "pg-" + uuid.uuid4().hex[:12]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Adm1n-" + uuid.uuid4().hex[:12]

COMPOSE = """\
services:
  postgres:
    image: {ns}/postgres:17
    environment:
      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD}}
    command: {postgres_command}
    volumes: [pg-data:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres"]
      interval: 1s
      timeout: 3s
      retries: 60
  valkey:
    image: {ns}/valkey:8
    volumes: [valkey-data:/data]
    healthcheck:
      test: ["CMD", "valkey-cli", "ping"]
      interval: 1s
      timeout: 3s
      retries: 60
  migrate:
    image: {ns}/glitchtip:{tag}
    command: ./bin/run-migrate.sh
    environment: &env
      DATABASE_URL: postgres://postgres:${{POSTGRES_PASSWORD}}@postgres:5432/postgres
      VALKEY_URL: redis://valkey:6379/0
      REDIS_URL: redis://valkey:6379/0  # GlitchTip v5.1.0 reads only this name
      SECRET_KEY: not-a-secret
      GLITCHTIP_DOMAIN: http://localhost:${{WEB_PORT}}
      ALLOWED_HOSTS: localhost,127.0.0.1
      GLITCHTIP_ADVANCED_PARTITIONING: "{partitioning}"
      PORT: "8080"
    depends_on:
      postgres: {{condition: service_healthy}}
  web:
    image: {ns}/glitchtip:{tag}
    environment: *env
    ports: ["127.0.0.1:${{WEB_PORT}}:{web_port}"]
    depends_on:
      migrate: {{condition: service_completed_successfully}}
      valkey: {{condition: service_healthy}}
    healthcheck:
      test:
        - CMD
        - python
        - -c
        - >-
          import urllib.request as u;
          u.urlopen(u.Request('http://127.0.0.1:{web_port}/_health/',
          headers={{'Host': 'localhost'}}), timeout=3)
      interval: 1s
      timeout: 5s
      retries: 60
  worker:
    image: {ns}/glitchtip:{tag}
    command: {worker_command}
    environment: *env
    profiles: [worker]
    depends_on:
      migrate: {{condition: service_completed_successfully}}
      valkey: {{condition: service_healthy}}
  partman-setup:
    image: {ns}/glitchtip:{tag}
    command: ./manage.py setup_advanced_partitions
    environment: *env
    profiles: [partman]
    depends_on:
      migrate: {{condition: service_completed_successfully}}
volumes:
  pg-data:
  valkey-data:
"""


def _compose_yaml(major: int, *, partitioning: bool = False, tag: str | None = None) -> str:
    if major >= 6:
        postgres_command, worker_command, web_port = "postgres", "./bin/run-worker.sh", 8000
    else:
        postgres_command = (
            "postgres -c shared_preload_libraries=pg_partman_bgw"
            " -c pg_partman_bgw.dbname=postgres -c pg_partman_bgw.role=postgres"
            " -c pg_partman_bgw.interval=3600"
        )
        worker_command, web_port = "./bin/run-celery-with-beat.sh", 8080
    return COMPOSE.format(
        ns=IMAGE_NAMESPACE,
        major=major,
        tag=tag or str(major),
        postgres_command=postgres_command,
        worker_command=worker_command,
        web_port=web_port,
        partitioning="true" if partitioning else "false",
    )


# The stand-in GlitchTip 5 without USE_GRANIAN serves like uWSGI: one request per connection,
# closed without a `Connection: close` header; a client must not reuse connections (NOTES.md).
NO_REUSE = httpx.Limits(max_keepalive_connections=0)


def _token(base: str) -> str:
    """Log in as the superuser (allauth browser flow) and mint a full-scope API token."""
    with httpx.Client(base_url=base, timeout=10, limits=NO_REUSE) as client:
        client.get("/_allauth/browser/v1/config").raise_for_status()
        login = client.post(
            "/_allauth/browser/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert login.status_code == 200, login.text
        created = client.post(
            "/api/0/api-tokens/",
            json={
                "label": "stack-test",
                "scopes": ["org:admin", "team:admin", "project:admin", "event:read"],
            },
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert created.status_code == 201, created.text
        return created.json()["token"]


def _project_dsn(api: httpx.Client) -> str:
    org = api.post("/api/0/organizations/", json={"name": "Stack Test"})
    assert org.status_code == 201, org.text
    slug = org.json()["slug"]
    team = api.post(f"/api/0/organizations/{slug}/teams/", json={"slug": "ops"})
    assert team.status_code == 201, team.text
    project = api.post(
        f"/api/0/teams/{slug}/ops/projects/", json={"name": "App", "platform": "python"}
    )
    assert project.status_code == 201, project.text
    keys = api.get(f"/api/0/projects/{slug}/{project.json()['slug']}/keys/")
    assert keys.status_code == 200 and keys.json(), keys.text
    return keys.json()[0]["dsn"]["public"]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


SUPERUSER = (
    "exec",
    "-T",
    "-e",
    f"DJANGO_SUPERUSER_EMAIL={ADMIN_EMAIL}",
    "-e",
    f"DJANGO_SUPERUSER_PASSWORD={ADMIN_PASSWORD}",
    "web",
    "./manage.py",
    "createsuperuser",
    "--noinput",
)


def _worker_probe_passes(project, major: int) -> bool:
    """The kit's own worker healthcheck (provision.render.worker_probe) inside the worker."""
    from provision import majors
    from provision.render import worker_probe

    probe = worker_probe(majors.MAJORS[major])
    done = project.run("exec", "-T", "worker", "python", "-c", probe, check=False)
    return done.returncode == 0


def _event_reaches_issues_only_with_worker(project, base: str, port: int, major: int) -> None:
    """Superuser -> token -> org/team/project/DSN; an event waits in Valkey until the worker
    runs, then shows up through the issues API."""
    assert project.run(*SUPERUSER).returncode == 0
    token = _token(base)
    with httpx.Client(
        base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}, limits=NO_REUSE
    ) as api:
        dsn = _project_dsn(api)
        assert f"@localhost:{port}/" in dsn, dsn  # GLITCHTIP_DOMAIN is the DSN's host
        key, project_id = dsn.split("//", 1)[1].split("@")[0], dsn.rsplit("/", 1)[1]
        event = {
            "event_id": uuid.uuid4().hex,
            "message": "stack smoke",
            "level": "error",
            "platform": "python",
        }
        sent = httpx.post(
            f"{base}/api/{project_id}/store/?sentry_key={key}",
            content=json.dumps(event),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        org = api.get("/api/0/organizations/").json()[0]["slug"]
        issues_path = f"/api/0/projects/{org}/app/issues/"
        from provision.majors import MAJORS  # the real queue key: "celery" (5), "{vt}:q:ingest"

        queued = project.run(
            "exec", "-T", "valkey", "valkey-cli", "llen", MAJORS[major].task_queue_keys[0]
        ).stdout.strip()
        assert queued == "1"  # no worker yet: waiting in Valkey, nothing visible
        assert api.get(issues_path).json() == []

        project.run("--profile", "worker", "up", "-d", "worker")
        issues = _wait_for(lambda: api.get(issues_path).json(), 30, "the worker")
        assert issues[0]["title"] == "stack smoke"


def test_glitchtip6_standin_end_to_end(stack_env, tmp_path):
    port = stack_env.free_port()
    base = f"http://127.0.0.1:{port}"
    with stack_env.compose_project(tmp_path) as project:
        project.write(_compose_yaml(6), {"POSTGRES_PASSWORD": PASSWORD, "WEB_PORT": str(port)})

        started = time.monotonic()
        project.run("up", "-d", "--wait", "--wait-timeout", "120", "postgres", "valkey", "web")
        assert time.monotonic() - started < 90

        migrate_logs = project.run("logs", "--no-color", "migrate").stdout
        assert "Applying standin.0001_state... OK" in migrate_logs

        health = httpx.get(f"{base}/_health/", timeout=5)
        assert (health.status_code, health.text) == (200, "ok")
        # ALLOWED_HOSTS=localhost,127.0.0.1: another Host gets Django's 400.
        foreign = httpx.get(f"{base}/_health/", headers={"Host": "evil.example"}, timeout=5)
        assert foreign.status_code == 400
        settings = httpx.get(f"{base}/api/settings/", timeout=5).json()
        assert settings["version"].startswith("6.")

        wrong = project.run(
            "run",
            "--rm",
            "--no-deps",
            "-e",
            "DATABASE_URL=postgres://postgres:not-the-password@postgres:5432/postgres",
            "migrate",
            check=False,
        )
        assert wrong.returncode != 0
        assert "password authentication failed" in wrong.stderr
        assert "not-the-password" not in wrong.stdout + wrong.stderr  # redacted

        _event_reaches_issues_only_with_worker(project, base, port, 6)
        second = project.run(*SUPERUSER, check=False)
        assert second.returncode == 1
        assert "CommandError: Error: That email is already taken." in second.stderr
        assert _wait_for(lambda: _worker_probe_passes(project, 6), 10, "the worker probe")

        # All state is in Postgres: a new web container still knows the org and the user.
        project.run("up", "-d", "--wait", "--force-recreate", "--no-deps", "web")
        token = _token(base)
        orgs = httpx.get(
            f"{base}/api/0/organizations/", headers={"Authorization": f"Bearer {token}"}
        )
        assert [o["name"] for o in orgs.json()] == ["Stack Test"]


PARTMAN_PARENTS = 12  # 3 tables x 4 hash parents (contract NOTES.md)


@pytest.mark.parametrize("tag", ["5", "5-snapshot"])
def test_glitchtip5_standin_with_pg_partman(stack_env, tmp_path, tag):
    """The stand-in's setup_advanced_partitions as each release has it: v5.1.0's call is
    refused by pg_partman 5 itself (and the command still exits 0); the snapshot's configures
    the 12 parents. Then the kit's own configuration (provision/partman_sql.py) in psql."""
    from provision import partman_sql

    port = stack_env.free_port()
    base = f"http://127.0.0.1:{port}"
    with stack_env.compose_project(tmp_path) as project:
        project.write(
            _compose_yaml(5, partitioning=True, tag=tag),
            {"POSTGRES_PASSWORD": PASSWORD, "WEB_PORT": str(port)},
        )
        project.run("up", "-d", "--wait", "--wait-timeout", "120", "postgres", "valkey", "web")
        health = httpx.get(f"{base}/_health/", timeout=5)
        assert (health.status_code, health.text) == (200, "ok")
        psql = ("exec", "-T", "postgres", "psql", "-U", "postgres", "-tAc")
        count = "SELECT count(*) FROM partman.part_config"

        for _ in range(2):  # exit 0 whatever happened, as the real command
            setup = project.run("--profile", "partman", "run", "--rm", "partman-setup")
            output = setup.stdout + setup.stderr
            if tag == "5":
                assert "An error occurred during pg_partman table configuration" in output, output
                assert "create_parent" in output and "does not exist" in output, output
                assert "Successfully" not in output, output
                assert project.run(*psql, count).stdout.strip() == "0"
            else:
                assert "Successfully configured all pg_partman tables" in output, output
                assert "error" not in output.lower(), output
                assert project.run(*psql, count).stdout.strip() == str(PARTMAN_PARENTS)
        # The kit's configuration, twice: idempotent, 12 parents whatever the command did.
        for _ in range(2):
            kit = project.run(*psql[:-1], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                              partman_sql.config_sql())  # fmt: skip
            assert "partman-config: done, pg_partman 5." in kit.stderr, kit.stderr
            assert f"manages {PARTMAN_PARENTS} of {PARTMAN_PARENTS} tables" in kit.stderr
        assert project.run(*psql, count).stdout.strip() == str(PARTMAN_PARENTS)
        settings = project.run(
            *psql,
            "SELECT DISTINCT retention, retention_keep_table, infinite_time_partitions,"
            " partition_interval, premake FROM partman.part_config ORDER BY 1",
        ).stdout.splitlines()
        assert settings == ["14 days|f|t|2 days|4", "90 days|f|t|2 days|4"], settings
        partitions = project.run(
            *psql,
            "SELECT count(*) FROM partman.show_partitions('public.issue_events_issueaggregate_p0')",
        ).stdout.strip()
        assert int(partitions) >= 4
        bgw = project.run(*psql, "SHOW shared_preload_libraries").stdout.strip()
        assert bgw == "pg_partman_bgw"

        # The worker writes into the pg_partman-managed table: ingest works end to end.
        _event_reaches_issues_only_with_worker(project, base, port, 5)
        assert _wait_for(lambda: _worker_probe_passes(project, 5), 10, "the worker probe")
        worker_logs = project.run("logs", "--no-color", "worker").stdout
        assert "Process 1 issue event requests (stored 1;" in worker_logs
        rows = project.run(*psql, "SELECT sum(count) FROM issue_events_issueaggregate").stdout
        assert rows.strip() == "1"
