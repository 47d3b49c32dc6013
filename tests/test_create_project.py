"""`provision create-project` through the real CLI against the fake GlitchTip over HTTP."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakeglitchtip import create_api_token, create_superuser, start_fake

from provision.cli import cli
from provision.envfile import read_env_file

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("GLITCHTIP_URL", "GLITCHTIP_API_TOKEN", "GLITCHTIP_ADMIN_EMAIL",
                 "GLITCHTIP_ADMIN_PASSWORD", "ERROR_TRACKING_DSN", "SENTRY_DSN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROVISION_API_BACKOFF", "0.01")
    return tmp_path


def run(fake_url: str, *args: str, env: dict | None = None):
    base = ["create-project", "--url", fake_url, "--org", "Acme", "--project", "Web App"]
    return CliRunner().invoke(cli, [*base, *args], env=env)


def admin_args() -> list[str]:
    return ["--admin-email", ADMIN, "--admin-password", PASSWORD]


def test_fresh_server_gets_org_team_project_and_dsn(fake, workdir):
    result = run(fake.url, *admin_args())
    assert result.exit_code == 0, result.output
    dsn = result.stdout.strip()
    assert dsn.startswith("http://") and dsn.endswith("/1")
    state = fake.store.snapshot()
    assert len(state["orgs"]) == len(state["teams"]) == len(state["projects"]) == 1
    rc = workdir / ".glitchtiprc"
    assert (rc.stat().st_mode & 0o777) == 0o600
    assert f"url = {dsn}" in rc.read_text() and "org = acme" in rc.read_text()
    env = (workdir / ".env").read_text()
    assert env.startswith("GLITCHTIP_API_TOKEN=") and (workdir / ".env").stat().st_mode & 0o77 == 0
    assert PASSWORD not in result.output and env.split("=", 1)[1].strip() not in result.output


def test_second_run_sends_no_post_and_prints_the_same_dsn(fake, workdir):
    first = run(fake.url, *admin_args())
    assert first.exit_code == 0, first.output
    files = [workdir / ".glitchtiprc", workdir / ".env"]
    before = [(path.read_bytes(), path.stat().st_mtime_ns) for path in files]
    fake.clear_log()
    second = run(fake.url, *admin_args())
    assert second.exit_code == 0, second.output
    assert second.stdout == first.stdout
    assert fake.count("POST") == 0
    assert "nothing (all present)" in second.stderr and "unchanged:" in second.stderr
    # The stored token was reused (no new one minted into .env) and the rc file not rewritten.
    assert [(path.read_bytes(), path.stat().st_mtime_ns) for path in files] == before


def test_token_from_option_and_json_output(fake, workdir):
    token = create_api_token(fake.store, ADMIN, ["org:read", "org:write", "team:write",
                             "project:read", "project:write"])  # fmt: skip
    result = run(fake.url, "--token", token, "--json", "--team", "backend")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["team"] == "backend" and body["posts"] == 3 and body["token_source"] == "given"
    assert token not in result.output


def test_existing_org_and_project_are_reused(fake, workdir):
    token = create_api_token(fake.store, ADMIN, ["org:admin", "project:admin", "team:admin"])
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{fake.url}/api/0/organizations/", json={"name": "Acme"}, headers=headers)
    result = run(fake.url, "--token", token, "--json")
    assert json.loads(result.stdout)["created"] == ["team acme", "project web-app"]
    fake.clear_log()
    result = run(fake.url, "--token", token, "--project", "web-app", "--json")
    assert json.loads(result.stdout)["created"] == [] and fake.count("POST") == 0


def test_key_name_creates_a_dedicated_key_once(fake, workdir):
    first = run(fake.url, *admin_args(), "--key-name", "ci")
    second = run(fake.url, *admin_args(), "--key-name", "ci")
    default = run(fake.url, *admin_args())
    assert first.stdout == second.stdout != default.stdout
    assert len(fake.store.snapshot()["keys"]) == 2


def test_stored_token_is_reused(fake, workdir):
    assert run(fake.url, *admin_args()).exit_code == 0
    fake.clear_log()
    result = run(fake.url)  # no credentials: the token in .env is enough
    assert result.exit_code == 0, result.output
    assert not [r for r in fake.requests if "allauth" in r.path]


def test_admin_password_from_env_file(fake, workdir):
    (workdir / ".env").write_text(f"DJANGO_SUPERUSER_EMAIL={ADMIN}\n"
                                  f"DJANGO_SUPERUSER_PASSWORD={PASSWORD}\n")  # fmt: skip
    result = run(fake.url, "--admin-email", ADMIN)
    assert result.exit_code == 0, result.output
    assert [r for r in fake.requests if r.path.endswith("/auth/login")], "no login happened"
    env = read_env_file(workdir / ".env")
    assert env["GLITCHTIP_API_TOKEN"] and env["DJANGO_SUPERUSER_PASSWORD"] == PASSWORD
    assert f"url = {result.stdout.strip()}" in (workdir / ".glitchtiprc").read_text()


def test_sentryclirc_format(fake, workdir):
    result = run(fake.url, *admin_args(), "--format", "sentryclirc")
    assert result.exit_code == 0, result.output
    text = (workdir / ".sentryclirc").read_text()
    assert f"url = {fake.url}/" in text and f"dsn = {result.stdout.strip()}" in text
    assert not (workdir / ".glitchtiprc").exists()


def test_env_format_prints_env_lines(fake, workdir):
    result = run(fake.url, *admin_args(), "--format", "env")
    assert result.stdout.startswith("ERROR_TRACKING_DSN=http://")


def test_503_twice_then_ok(fake, workdir):
    fake.fail_next(503, 503)
    result = run(fake.url, *admin_args())
    assert result.exit_code == 0, result.output
    assert [r.status for r in fake.requests[:3]] == [503, 503, 200]


# --- bad inputs: one line, non-zero exit, .glitchtiprc untouched ---------------------------


@pytest.fixture
def existing_rc(workdir):
    rc = workdir / ".glitchtiprc"
    rc.write_text("[defaults]\norg = keep\nurl = http://0123456789abcdef0123456789abcdef@x/1\n")
    os.utime(rc, (1_000_000_000, 1_000_000_000))
    return rc


def assert_failed_cleanly(result, rc: Path, before: bytes, needle: str):
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.output
    assert rc.read_bytes() == before and rc.stat().st_mtime == 1_000_000_000


def test_bad_token(fake, existing_rc):
    before = existing_rc.read_bytes()
    result = run(fake.url, "--token", "bad-token-value")
    assert_failed_cleanly(result, existing_rc, before, "token rejected")
    assert "bad-token-value" not in result.output


def test_missing_scope(fake, existing_rc):
    token = create_api_token(fake.store, ADMIN, ["project:read", "org:read"])
    before = existing_rc.read_bytes()
    result = run(fake.url, "--token", token)
    assert_failed_cleanly(
        result, existing_rc, before, "token lacks scope to create an organization"
    )


def test_wrong_admin_password(fake, existing_rc):
    before = existing_rc.read_bytes()
    result = run(fake.url, "--admin-email", ADMIN, "--admin-password", "wrong-password")
    assert_failed_cleanly(result, existing_rc, before, "e-mail or password")
    assert "wrong-password" not in result.output


def test_no_credentials(fake, existing_rc):
    before = existing_rc.read_bytes()
    result = run(fake.url)
    assert_failed_cleanly(result, existing_rc, before, "no API token")
    assert result.exit_code == 2


def test_unreachable_url(existing_rc):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = existing_rc.read_bytes()
    result = run(f"http://127.0.0.1:{port}", "--token", "x" * 64, "--retries", "2")
    assert_failed_cleanly(result, existing_rc, before, "cannot reach GlitchTip")


def test_malformed_url(existing_rc):
    before = existing_rc.read_bytes()
    result = run("127.0.0.1:8000", "--token", "x")
    assert_failed_cleanly(result, existing_rc, before, "must start with http")


def test_unknown_team_slug_characters(fake, existing_rc):
    before = existing_rc.read_bytes()
    result = run(fake.url, *admin_args(), "--team", "Bad Slug!")
    assert_failed_cleanly(result, existing_rc, before, "team slug")


def test_server_error_first_line(fake, existing_rc):
    fake.fail_next(500)
    before = existing_rc.read_bytes()
    result = run(fake.url, *admin_args())
    assert_failed_cleanly(result, existing_rc, before, "HTTP 500")


def test_503_forever_gives_up(fake, existing_rc):
    fake.fail_next(*[503] * 10)
    before = existing_rc.read_bytes()
    result = run(fake.url, *admin_args(), "--retries", "3")
    assert_failed_cleanly(result, existing_rc, before, "HTTP 503: Service Unavailable")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://admin:hunter2hunter2@127.0.0.1:8000", "must not contain a user or password"),
        ("http://[::1", "malformed"),  # urlsplit raises ValueError
        ("http://127.0.0.1:99999", "malformed"),  # port out of range
    ],
)
def test_bad_url_is_one_line_and_never_echoes_a_password(existing_rc, url, needle):
    before = existing_rc.read_bytes()
    result = run(url, "--token", "x" * 64, "--retries", "1")
    assert_failed_cleanly(result, existing_rc, before, needle)
    assert result.exit_code == 2
    assert "hunter2" not in result.output, "the URL's password reached the error line"
