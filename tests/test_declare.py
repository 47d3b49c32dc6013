"""`provision plan`, `apply` and `export` through the CLI against the fake GlitchTip over HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakeglitchtip import create_superuser, start_fake

from provision.cli import cli

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"
HOOK = "https://hooks.example.com/services/T0/B0/very-secret"

DECLARATION = f"""\
organization: Acme
teams: [backend, frontend]
projects:
  - name: Web App
    platform: python
    teams: [backend, frontend]
    keys:
      - name: ""
      - name: ci
        rate_limit: {{window: 60, count: 100}}
    alerts:
      - name: Errors burst
        quantity: 5
        timespan_minutes: 10
        recipients:
          - type: email
          - type: webhook
            url: {HOOK}
    dsn_files:
      - path: apps/web/.glitchtiprc
      - path: apps/web/.env
        format: env
        key: ci
  - name: api
    platform: node
    teams: [backend]
monitors:
  - name: web health
    type: GET
    url: https://example.com/_health/
    timeout: 10
    project: Web App
  - name: db port
    type: TCP Port
    url: postgres:5432
  - name: cron
    type: Heartbeat
    interval: 3600
"""


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (
        "GLITCHTIP_URL",
        "GLITCHTIP_API_TOKEN",
        "GLITCHTIP_ADMIN_EMAIL",
        "GLITCHTIP_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "apps" / "web").mkdir(parents=True)
    (tmp_path / "glitchtip-resources.yaml").write_text(DECLARATION)
    return tmp_path


def run(fake, *args: str):
    fake.clear_log()
    auth = ["--url", fake.url, "--admin-email", ADMIN, "--admin-password", PASSWORD]
    return CliRunner().invoke(cli, [*args, *auth])


def writes(fake) -> int:
    return sum(fake.count(method) for method in ("POST", "PUT", "DELETE"))


def edit(workdir: Path, old: str, new: str) -> None:
    path = workdir / "glitchtip-resources.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_apply_from_empty_then_nothing_to_do(fake, workdir):
    plan = run(fake, "plan")
    assert plan.exit_code == 3, plan.output
    assert "+ project web-app" in plan.output and "+ monitor cron" in plan.output
    assert HOOK not in plan.output and "hooks.example.com/..." in plan.output
    applied = run(fake, "apply")
    assert applied.exit_code == 0, applied.output
    state = fake.store.snapshot()
    assert len(state["projects"]) == 2 and len(state["monitors"]) == 3
    assert len(state["alerts"]) == 1
    rc = workdir / "apps/web/.glitchtiprc"
    env = workdir / "apps/web/.env"
    assert "org = acme" in rc.read_text() and "project = web-app" in rc.read_text()
    assert rc.stat().st_mode & 0o777 == 0o600 and env.stat().st_mode & 0o777 == 0o600
    keys = {k["name"]: k for k in state["keys"].values()}
    assert keys["ci"]["uuid"].replace("-", "") in env.read_text()
    mtimes = [p.stat().st_mtime_ns for p in (rc, env)]
    again = run(fake, "plan")
    assert again.exit_code == 0 and "no changes" in again.output, again.output
    assert writes(fake) == 0
    second = run(fake, "apply")
    assert second.exit_code == 0, second.output
    assert writes(fake) == 0, fake.requests
    assert [p.stat().st_mtime_ns for p in (rc, env)] == mtimes


def test_a_changed_file_gives_the_minimal_plan(fake, workdir):
    assert run(fake, "apply").exit_code == 0
    edit(workdir, "quantity: 5", "quantity: 7")
    edit(workdir, "interval: 3600", "interval: 1800")
    result = run(fake, "plan", "--json")
    assert result.exit_code == 3, result.output
    plan = json.loads(result.stdout)
    assert [(c["action"], c["kind"], c["name"]) for c in plan["changes"]] == [
        ("update", "alert", "web-app/Errors burst"),
        ("update", "monitor", "cron"),
    ]
    applied = run(fake, "apply")
    assert applied.exit_code == 0, applied.output
    assert fake.count("PUT") == 2 and fake.count("POST") == 0 and fake.count("DELETE") == 0
    alert = next(iter(fake.store.snapshot()["alerts"].values()))
    assert alert["quantity"] == 7
    # The PUT carried the recipients: GlitchTip deletes them otherwise (recorded 397).
    assert len(alert["recipients"]) == 2
    assert run(fake, "plan").exit_code == 0


def test_a_key_rate_limit_change_replaces_the_key_and_rewrites_the_dsn(fake, workdir):
    assert run(fake, "apply").exit_code == 0
    env = workdir / "apps/web/.env"
    before = env.read_text()
    edit(workdir, "count: 100", "count: 50")
    result = run(fake, "apply")
    assert result.exit_code == 0, result.output
    assert "-/+ key web-app/ci" in result.output
    # Only the file of the replaced key is rewritten; the default key's file stays.
    assert "> dsn file" in result.output and "apps/web/.env" in result.output
    assert ".glitchtiprc" not in result.output
    assert fake.count("PUT") == 0 and fake.count("POST") == 1 and fake.count("DELETE") == 1
    after = env.read_text()
    assert after != before
    ci = [k for k in fake.store.snapshot()["keys"].values() if k["name"] == "ci"]
    assert len(ci) == 1 and ci[0]["uuid"].replace("-", "") in after
    assert ci[0]["rate_limit"] == {"window": 60, "count": 50}
    assert run(fake, "plan").exit_code == 0


def test_prune_deletes_only_what_left_the_file(fake, workdir):
    assert run(fake, "apply").exit_code == 0
    edit(workdir, "  - name: db port\n    type: TCP Port\n    url: postgres:5432\n", "")
    plain = run(fake, "plan")
    assert plain.exit_code == 0 and "kept (apply --prune deletes them)" in plain.output
    applied = run(fake, "apply")
    assert applied.exit_code == 0 and writes(fake) == 0
    refused = run(fake, "apply", "--prune")  # no terminal to confirm
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert len(fake.store.snapshot()["monitors"]) == 3
    pruned = run(fake, "apply", "--prune", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert fake.count("DELETE") == 1 and fake.count("POST") == 0
    names = sorted(m["name"] for m in fake.store.snapshot()["monitors"].values())
    assert names == ["cron", "web health"]
    assert run(fake, "plan", "--prune").exit_code == 0


def test_export_reapplies_as_no_changes_without_secrets(fake, workdir, monkeypatch):
    assert run(fake, "apply").exit_code == 0
    result = run(
        fake, "export", "--org", "Acme", "--output", "exported.yaml", "--secrets-out", "hooks.env"
    )
    assert result.exit_code == 0, result.output
    exported = (workdir / "exported.yaml").read_text()
    assert HOOK not in exported and "url_env: GLITCHTIP_HOOK_WEB_APP_0_1" in exported
    token = (workdir / ".env").read_text().split("=", 1)[1].strip()
    assert token not in exported
    for key in fake.store.snapshot()["keys"].values():
        assert key["uuid"].replace("-", "") not in exported  # no DSN
    hooks = workdir / "hooks.env"
    assert hooks.stat().st_mode & 0o777 == 0o600 and HOOK in hooks.read_text()
    monkeypatch.setenv("GLITCHTIP_HOOK_WEB_APP_0_1", HOOK)
    replan = run(fake, "plan", "--file", "exported.yaml", "--prune")
    assert replan.exit_code == 0, replan.output
    assert "no changes" in replan.output


def test_sentryclirc_gets_its_own_scoped_token(fake, workdir):
    edit(
        workdir,
        "      - path: apps/web/.glitchtiprc\n",
        "      - path: apps/web/.sentryclirc\n        format: sentryclirc\n",
    )
    assert run(fake, "apply").exit_code == 0
    rc = (workdir / "apps/web/.sentryclirc").read_text()
    admin_token = (workdir / ".env").read_text().split("=", 1)[1].strip()
    token = next(
        line.split("=", 1)[1].strip() for line in rc.splitlines() if line.startswith("token")
    )
    assert token != admin_token and f"url = {fake.url}/" in rc
    tokens = {t["token"]: t for t in fake.store.snapshot()["tokens"].values()}
    assert sorted(tokens[token]["scopes"]) == sorted(
        ["project:read", "project:write", "project:releases", "org:read"]
    )
    assert run(fake, "apply").exit_code == 0 and writes(fake) == 0  # the token is kept


BAD = [
    ("organization: A\nbogus: 1\n", "bogus: unknown key"),
    ("organization: A\nteams: [b, b]\n", "teams[1]: team 'b' is declared twice"),
    (
        "organization: A\nteams: [b]\nprojects:\n  - {name: x, teams: [b]}\n"
        "  - {name: X, teams: [b]}\n",
        "projects[1].name: project (slug) 'x' is declared twice",
    ),
    (
        "organization: A\nteams: [b]\nprojects:\n  - name: x\n    teams: [b]\n    alerts:\n"
        "      - name: a\n        recipients:\n          - {type: email}\n"
        "          - {type: webhook}\n",
        "projects[0].alerts[0].recipients[1].url: a webhook recipient needs a URL",
    ),
    (
        "organization: A\nteams: [b]\nprojects:\n  - name: x\n    teams: [b]\n    alerts:\n"
        "      - name: a\n        recipients: [{type: email}, {type: email}]\n",
        "projects[0].alerts[0].recipients[1]: the same email recipient",
    ),
    (
        "organization: A\nmonitors:\n  - {name: m, type: Keyword, url: 'https://a.example/'}\n",
        "monitors[0].type: 'Keyword' is not a GlitchTip monitor type",
    ),
    (
        "organization: A\nmonitors:\n  - {name: m, type: Heartbeat, interval: 100000}\n",
        "monitors[0].interval: 100000 is not between 1 and 32767",
    ),
    (
        "organization: A\nmonitors:\n"
        "  - {name: m, type: Ping, url: 'https://a.example/', timeout: 61}\n",
        "monitors[0].timeout: 61 is not between 1 and 60",
    ),
    (
        "organization: A\nmonitors:\n  - {name: m, type: GET, url: 'http://web:8080/'}\n",
        "type 'TCP Port' with url web:8080",
    ),
    (
        "organization: A\nteams: [b]\nprojects:\n"
        "  - {name: x, teams: [b], alerts: [{name: a, quantity: -1}]}\n",
        "projects[0].alerts[0].quantity: -1 is not between",
    ),
    (
        "organization: A\nteams: [b]\nprojects:\n  - {name: x, teams: [c]}\n",
        "projects[0].teams[0]: 'c' is not one of the declared teams",
    ),
    ("organization: A\nx: &a 1\ny: *a\n", "anchor or alias"),
    ("organization: A\norganization: B\n", "written twice"),
    ("organization: A\nteams: " + "[" * 50 + "]" * 50 + "\n", "nests deeper"),
    (
        "organization: Ünïcode\nteams: [b]\nprojects:\n  - {name: 'ßß', teams: [b]}\n",
        "projects[0].name: 'ßß' has no letter or digit",
    ),
]


@pytest.mark.parametrize(("text", "needle"), BAD)
def test_bad_declarations_are_refused_before_any_request(fake, workdir, text, needle):
    (workdir / "glitchtip-resources.yaml").write_text(text)
    for command in ("plan", "apply"):
        result = run(fake, command)
        assert result.exit_code == 2, result.output
        assert needle in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert fake.requests == []
    assert not (workdir / ".env").exists()


def test_a_fifo_or_symlinked_dsn_file_is_refused_before_any_request(fake, workdir):
    os.mkfifo(workdir / "fifo.yaml")
    result = run(fake, "plan", "--file", "fifo.yaml")
    assert result.exit_code == 2 and "named pipe" in result.output
    (workdir / "huge.yaml").write_text("organization: A\n" + "# padding\n" * 200_000)
    result = run(fake, "plan", "--file", "huge.yaml")
    assert result.exit_code == 2 and "more than the 1048576" in result.output, result.output
    (workdir / "latin1.yaml").write_bytes("organization: Caf\xe9\n".encode("latin-1"))
    result = run(fake, "plan", "--file", "latin1.yaml")
    assert result.exit_code == 2 and "not UTF-8" in result.output
    target = workdir / "elsewhere"
    target.write_text("keep\n")
    (workdir / "apps/web/.glitchtiprc").symlink_to(target)
    result = run(fake, "apply")
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output
    assert fake.requests == [] and target.read_text() == "keep\n"


def test_url_env_reads_the_variable_and_refuses_when_unset(fake, workdir, monkeypatch):
    edit(workdir, f"url: {HOOK}", "url_env: SLACK_HOOK")
    monkeypatch.delenv("SLACK_HOOK", raising=False)
    result = run(fake, "plan")
    assert result.exit_code == 2 and "SLACK_HOOK is not set" in result.output
    monkeypatch.setenv("SLACK_HOOK", HOOK)
    assert run(fake, "apply").exit_code == 0
    alert = next(iter(fake.store.snapshot()["alerts"].values()))
    recipients = [r["url"] for r in alert["recipients"]]
    assert HOOK in recipients


MEMBERS = """\
members:
  - {email: admin@example.com, role: owner, teams: [backend, frontend]}
  - {email: dev@example.com, role: member, teams: [backend]}
"""


def accept(fake, email: str) -> None:
    """The invitee accepted in the web UI (session + CSRF, recorded 294): what the contract
    replay's accept step does."""
    from fakeglitchtip import model

    with fake.store.transaction() as state:
        user = model.find_user(state, email)
        for org in state["orgs"].values():
            invite = org.get("invites", {}).pop(str(user["id"]), None)
            if invite is None:
                continue
            org["members"].append(user["id"])
            org["member_since"][str(user["id"])] = invite["created"]
            org.setdefault("roles", {})[str(user["id"])] = invite["role"]
            for team in model.org_teams(state, org["id"]):
                if team["slug"] in invite["teams"]:
                    team["members"].append(user["id"])


def add_user(fake, email: str) -> None:
    from fakeglitchtip import model

    with fake.store.transaction() as state:
        model.add_user(state, email, "user-Passw0rd-123", superuser=False)


def test_members_are_invited_changed_and_pruned(fake, workdir):
    add_user(fake, "dev@example.com")
    add_user(fake, "old@example.com")
    path = workdir / "glitchtip-resources.yaml"
    path.write_text(path.read_text().replace("projects:\n", MEMBERS + "projects:\n", 1))
    first = run(fake, "apply")
    assert first.exit_code == 0, first.output
    assert run(fake, "plan").exit_code == 0 and writes(fake) == 0
    # A pending invitation whose role changes is invited again (PUT ignores teamRoles, 297b).
    edit(workdir, "dev@example.com, role: member", "dev@example.com, role: admin")
    result = run(fake, "apply")
    assert result.exit_code == 0, result.output
    assert "-/+ member dev@example.com" in result.output
    assert (fake.count("DELETE"), fake.count("POST"), fake.count("PUT")) == (1, 1, 0)
    accept(fake, "dev@example.com")
    assert run(fake, "plan").exit_code == 0
    # Accepted: a role is one PUT, a team one POST or DELETE of the membership.
    edit(workdir, "role: admin, teams: [backend]", "role: manager, teams: [frontend]")
    result = run(fake, "apply")
    assert result.exit_code == 0, result.output
    assert (fake.count("PUT"), fake.count("POST"), fake.count("DELETE")) == (1, 1, 1)
    assert run(fake, "plan").exit_code == 0
    # Someone invited by hand is kept, and removed only with --prune; never the token's user.
    org = next(iter(fake.store.snapshot()["orgs"].values()))
    with fake.store.transaction() as state:
        user = next(u for u in state["users"].values() if u["email"] == "old@example.com")
        state["orgs"][str(org["id"])]["members"].append(user["id"])
    edit(workdir, "  - {email: admin@example.com, role: owner, teams: [backend, frontend]}\n", "")
    kept = run(fake, "plan")
    assert kept.exit_code == 0 and "- member old@example.com" in kept.output
    assert "admin@example.com" not in kept.output
    pruned = run(fake, "apply", "--prune", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert fake.count("DELETE") == 1
    emails = sorted(
        fake.store.snapshot()["users"][str(uid)]["email"]
        for uid in next(iter(fake.store.snapshot()["orgs"].values()))["members"]
    )
    assert emails == ["admin@example.com", "dev@example.com"]


def test_demoting_the_last_owner_is_refused_before_any_write(fake, workdir):
    assert run(fake, "apply").exit_code == 0
    path = workdir / "glitchtip-resources.yaml"
    text = path.read_text().replace(
        "projects:\n", "members:\n  - {email: admin@example.com, role: admin}\nprojects:\n", 1
    )
    path.write_text(text)
    result = run(fake, "apply")
    assert result.exit_code == 2, result.output
    assert "without an owner" in result.output and writes(fake) == 0


def test_inviting_an_unknown_email_with_registration_closed_says_why(workdir):
    fake = start_fake(enable_user_registration=False)
    try:
        create_superuser(fake.store, ADMIN, PASSWORD)
        path = workdir / "glitchtip-resources.yaml"
        path.write_text(
            "organization: Acme\nteams: [backend]\n"
            "members:\n  - {email: admin@example.com, role: owner}\n"
            "  - {email: nobody@example.com}\n"
        )
        result = run(fake, "apply")
        assert result.exit_code == 1, result.output
        assert "nobody@example.com has no account (registration is closed)" in result.output
        assert "sign up first" in result.output
    finally:
        fake.stop()


def test_sentry_cli_reads_its_own_token_from_the_written_sentryclirc(fake, workdir):
    """The real sentry-cli (PyPI wheel): URL, org, project and a token of its own from the one
    file (issue 22: a token from elsewhere makes it ignore the file's URL)."""
    import shutil
    import subprocess
    import sys

    binary = shutil.which("sentry-cli") or str(Path(sys.executable).parent / "sentry-cli")
    if not Path(binary).exists():
        pytest.fail("sentry-cli is missing: `make venv` installs it (pyproject dev extra)")
    edit(workdir, "      - path: apps/web/.glitchtiprc\n",
         "      - path: apps/web/.sentryclirc\n        format: sentryclirc\n")  # fmt: skip
    assert run(fake, "apply").exit_code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY")}
    env["HOME"] = str(workdir)  # no ~/.sentryclirc of the caller
    fake.clear_log()
    done = subprocess.run(
        [binary, "info", "--config-status-json"],
        cwd=workdir / "apps/web",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["auth"] == {"type": "token", "successful": True}
    assert status["config"] == {"org": "acme", "project": "web-app", "url": fake.url}
    assert [r.path for r in fake.requests] == ["/api/0/"]  # it asked this server, not sentry.io
    # Releases with the file's token (recorded 240-271): what issue 22 ran against GlitchTip 5.
    for args in (("releases", "new", "1.2.3"), ("releases", "finalize", "1.2.3"),
                 ("releases", "list")):  # fmt: skip
        done = subprocess.run([binary, *args], cwd=workdir / "apps/web", env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (args, done.stderr)
    assert "1.2.3" in done.stdout
    releases = list(fake.store.snapshot()["releases"].values())
    assert [r["version"] for r in releases] == ["1.2.3"] and releases[0]["date_released"]


def test_dir_option_finds_the_declaration_env_and_dsn_files(fake, workdir, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run(fake, "apply", "--dir", str(workdir))
    assert result.exit_code == 0, result.output
    assert (workdir / ".env").exists() and (workdir / "apps/web/.glitchtiprc").exists()
    assert list(elsewhere.iterdir()) == []
    assert run(fake, "plan", "--dir", str(workdir)).exit_code == 0


def test_non_ascii_names_apply_and_replan_as_no_changes(fake, workdir):
    (workdir / "glitchtip-resources.yaml").write_text(
        "organization: Café Ünïcode\nteams: [équipe-1]\nprojects:\n"
        "  - {name: Über App, teams: [équipe-1], alerts: [{name: Fehler ≥ 5, quantity: 5,"
        " timespan_minutes: 5, recipients: [{type: email}]}]}\n"
        "monitors:\n  - {name: Überwachung, type: Ping, url: 'https://bücher.example/'}\n"
    )
    result = run(fake, "plan")
    assert result.exit_code == 2 and "teams[0]: 'équipe-1' is not a team slug" in result.output
    edit(workdir, "équipe-1", "equipe-1")
    applied = run(fake, "apply")
    assert applied.exit_code == 0, applied.output
    project = next(iter(fake.store.snapshot()["projects"].values()))
    assert (project["name"], project["slug"]) == ("Über App", "uber-app")
    assert run(fake, "plan").exit_code == 0


def test_prune_on_a_fresh_server_converges_in_one_run(fake, workdir):
    edit(workdir, '      - name: ""\n', "")
    first = run(fake, "apply", "--prune", "--yes")
    assert first.exit_code == 0, first.output
    names = sorted(k["name"] for k in fake.store.snapshot()["keys"].values())
    assert names == ["", "ci"]  # the other project's keys are not managed
    assert run(fake, "plan", "--prune").exit_code == 0


def test_a_monitor_of_unknown_type_in_glitchtip_is_explained(fake, workdir):
    assert run(fake, "apply").exit_code == 0
    with fake.store.transaction() as state:
        next(iter(state["monitors"].values()))["monitorType"] = "Keyword"  # recorded 424
    result = run(fake, "plan")
    assert result.exit_code == 1
    assert "a monitor of a type it does not know" in result.output


def test_a_token_without_member_scopes_is_explained(fake, workdir):
    from fakeglitchtip import create_api_token

    token = create_api_token(
        fake.store,
        ADMIN,
        [
            "org:read",
            "org:write",
            "team:read",
            "team:write",
            "project:read",
            "project:write",
            "project:admin",
        ],
    )
    assert run(fake, "apply", "--token", token).exit_code == 0  # no members: no member scope
    path = workdir / "glitchtip-resources.yaml"
    path.write_text(path.read_text().replace("projects:\n", MEMBERS + "projects:\n", 1))
    result = run(fake, "plan", "--token", token)
    assert result.exit_code == 1
    assert "member:read" in result.output and "GLITCHTIP_API_TOKEN" in result.output
    assert token not in result.output


MONITOR_SECRET = "s3cret-Monitor-pw"
MONITOR_URL = f"https://probe:{MONITOR_SECRET}@status.example.com/health"


def test_a_monitor_url_with_a_password_stays_out_of_the_plan_and_the_export(
    fake, workdir, monkeypatch
):
    """A monitor whose URL carries a user and password: declared through `url_env`, the plan
    shows it masked (terminals, CI logs), apply sends the real URL, and export writes it as a
    variable into --secrets-out only; the export re-plans as no changes."""
    edit(
        workdir,
        "  - name: cron\n",
        "  - name: private health\n    type: GET\n    url_env: PRIVATE_HEALTH_URL\n"
        "  - name: cron\n",
    )
    unset = run(fake, "plan")
    assert unset.exit_code == 2 and "PRIVATE_HEALTH_URL is not set" in unset.output
    monkeypatch.setenv("PRIVATE_HEALTH_URL", MONITOR_URL)
    plan = run(fake, "plan", "--json")
    assert plan.exit_code == 3 and MONITOR_SECRET not in plan.output
    assert "https://probe:********@status.example.com/health ($PRIVATE_HEALTH_URL)" in plan.output
    applied = run(fake, "apply")
    assert applied.exit_code == 0, applied.output
    stored = [
        m for m in fake.store.snapshot()["monitors"].values() if m["name"] == "private health"
    ]
    assert [m["url"] for m in stored] == [MONITOR_URL]
    monkeypatch.setenv("PRIVATE_HEALTH_URL", MONITOR_URL.replace("/health", "/ready"))
    changed = run(fake, "plan")
    assert changed.exit_code == 3 and MONITOR_SECRET not in changed.output, changed.output
    monkeypatch.setenv("PRIVATE_HEALTH_URL", MONITOR_URL)
    result = run(fake, "export", "--org", "Acme", "--output", "out.yaml", "--secrets-out", "s.env")
    assert result.exit_code == 0, result.output
    exported = (workdir / "out.yaml").read_text()
    assert MONITOR_SECRET not in exported and "url_env: GLITCHTIP_MONITOR_" in exported
    variable = exported.split("url_env: GLITCHTIP_MONITOR_", 1)[1].split()[0]
    assert MONITOR_URL in (workdir / "s.env").read_text()
    monkeypatch.setenv(f"GLITCHTIP_MONITOR_{variable}", MONITOR_URL)
    monkeypatch.setenv("GLITCHTIP_HOOK_WEB_APP_0_1", HOOK)
    replan = run(fake, "plan", "--file", "out.yaml", "--prune")
    assert replan.exit_code == 0 and "no changes" in replan.output, replan.output


def test_a_monitor_gives_url_or_url_env_not_both(fake, workdir):
    edit(
        workdir,
        "    url: https://example.com/_health/\n",
        "    url: https://example.com/_health/\n    url_env: HEALTH\n",
    )
    result = run(fake, "plan")
    assert result.exit_code == 2
    assert "monitors[0].url: give url or url_env, not both" in result.output


def test_a_monitor_url_with_a_password_written_in_the_file_is_refused(fake, workdir):
    edit(workdir, "    url: https://example.com/_health/\n", f"    url: {MONITOR_URL}\n")
    result = run(fake, "plan")
    assert result.exit_code == 2 and MONITOR_SECRET not in result.output
    assert "monitors[0].url: holds a password" in result.output
    assert "url_env: VARIABLE" in result.output


def test_apply_holds_the_deployments_lock_whichever_file_it_reads(fake, workdir, monkeypatch):
    """Two applies against one deployment must not both create (GlitchTip's creates are not
    idempotent): apply of a declaration kept elsewhere still takes the deployment's lock."""
    import contextlib

    import provision.locking

    elsewhere = workdir / "elsewhere"
    (elsewhere / "apps" / "web").mkdir(parents=True)  # its dsn_files sit beside it
    (elsewhere / "org.yaml").write_text((workdir / "glitchtip-resources.yaml").read_text())
    held: list[Path] = []  # the directories locked right now
    real = provision.locking.locked

    @contextlib.contextmanager
    def recording(directory):
        with real(directory):
            held.append(Path(directory).resolve())
            try:
                yield
            finally:
                held.pop()

    import provision.declare.run

    real_apply = provision.declare.run.apply_plan
    during: list[set[Path]] = []

    def watched_apply(*args, **kwargs):
        during.append(set(held))  # what is locked while the writes are sent
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(provision.locking, "locked", recording)
    monkeypatch.setattr(provision.declare.run, "apply_plan", watched_apply)
    result = run(fake, "apply", "--file", str(elsewhere / "org.yaml"))
    assert result.exit_code == 0, result.output
    assert during == [{workdir.resolve(), elsewhere.resolve()}]
