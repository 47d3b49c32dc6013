"""The real steps of `provision up` (render, migrate, admin, project, wrap-up) over fake engines.

Nothing here replaces a step with a stub: the render step renders and runs the real Compose
`config` on the files, the migrate and admin steps talk to a recording Compose whose
`createsuperuser` creates the user in the fake GlitchTip's store, and the project step logs in
and provisions over HTTP against the fake GlitchTip (tests/fakeglitchtip) on 127.0.0.1. Only the
engine-bound steps (preflight, pull, start) are left out; test_stack_steps.py covers them.

Each test pins something a broken step would get wrong on a second run: secrets regenerated,
a new API token minted, "unchanged" reported for a first run, a still-running migrate passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeglitchtip import create_superuser, start_fake

from provision.deployment import compose_files
from provision.envfile import read_env_file
from provision.errors import KitError
from provision.runtime.process import ProcessResult
from provision.stack import admin, migrate, project, render_step, up
from provision.stack.context import StackContext
from provision.steps import run_steps

SECRET_KEYS = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")
TOKEN_KEY = "GLITCHTIP_API_TOKEN"
MIGRATE_DONE = [{"Service": "migrate", "State": "exited", "ExitCode": 0}]
ADMIN = "admin@example.com"


def result(stdout: str = "", code: int = 0) -> ProcessResult:
    return ProcessResult(("compose",), code, stdout, "")


class RecordingCompose:
    """A Compose that records every call; `createsuperuser` acts on the fake GlitchTip's store.

    `manage.py createsuperuser --noinput` reads the e-mail and password from its environment and
    answers an existing e-mail with exit 1 and "That email is already taken" (GlitchTip's text).
    """

    def __init__(self, store=None, rows=None, logs: str = ""):
        self.store = store
        self.rows = list(MIGRATE_DONE if rows is None else rows)
        self.logs = logs
        self.logs_of = "migrate"  # the service whose log is `logs`
        self.calls: list[tuple[str, ...]] = []
        self.envs: list[dict | None] = []
        self.timeouts: list[float | None] = []

    def run(self, *args, env=None, timeout=None):
        self.calls.append(args)
        self.envs.append(dict(env) if env else None)
        self.timeouts.append(timeout)
        if "createsuperuser" in args:
            env = env or {}
            email = env.get("DJANGO_SUPERUSER_EMAIL")
            password = env.get("DJANGO_SUPERUSER_PASSWORD")
            if not email or not password:
                return result("CommandError: You must use --email with --noinput.", 1)
            if create_superuser(self.store, email, password):
                return result("Superuser created successfully.")
            return result("CommandError: Error: That email is already taken.", 1)
        if args and args[0] == "logs":
            return result(self.logs if self.logs_of in args else "")
        return result()

    def stream(self, *args, on_line, env=None, timeout=None):
        answer = self.run(*args, env=env, timeout=timeout)
        for line in answer.output.splitlines():
            on_line(line)
        return answer

    def services(self):
        return {}

    def ps(self, *services):
        return [row for row in self.rows if not services or row.get("Service") in services]


@pytest.fixture
def fake():
    handle = start_fake()
    yield handle
    handle.stop()


def make_ctx(directory: Path, compose, fake=None, **overrides) -> StackContext:
    port = fake.url.rsplit(":", 1)[1] if fake is not None else "18000"
    values = {"http_port": port, "compose_project_name": "gtkit", **overrides}
    return StackContext(
        directory,
        overrides=values,
        environ={},
        compose_factory=lambda settings: compose,
        engine_factory=lambda: pytest.fail("these steps must not need the engine"),
    )


def steps(*names: str):
    by_name = {step.name: step for step in up.STEPS}
    return [by_name[name] for name in names]


UP_WITHOUT_ENGINE = ("render", "migrate", "admin", "project", "wrap-up")


def records(report) -> dict[str, tuple[str, bool | None]]:
    return {r.name: (r.status, r.changed) for r in report.records}


def token_posts(fake) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/api/0/api-tokens/")


# --- the whole engine-free part of `up`, twice ---


def test_up_steps_run_twice_change_nothing_the_second_time(tmp_path, fake):
    compose = RecordingCompose(fake.store)
    first = run_steps(steps(*UP_WITHOUT_ENGINE), make_ctx(tmp_path, compose, fake))
    assert first.ok, first.error and first.error.line()
    assert records(first) == {
        "render": ("ok", True),
        "migrate": ("ok", False),
        "admin": ("ok", True),
        "project": ("ok", True),
        "wrap-up": ("ok", False),
    }
    env_after_first = (tmp_path / ".env").read_bytes()
    env = read_env_file(tmp_path / ".env")
    assert all(env[key] for key in SECRET_KEYS)
    assert env["DJANGO_SUPERUSER_EMAIL"] == ADMIN and env[TOKEN_KEY]
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    state = fake.store.snapshot()
    assert [u["email"] for u in state["users"].values()] == [ADMIN]
    assert list(state["tokens"]) == [env[TOKEN_KEY]]
    rc = (tmp_path / ".glitchtiprc").read_text()
    assert "org = glitchtip" in rc and "project = default" in rc
    assert (tmp_path / ".glitchtiprc").stat().st_mode & 0o777 == 0o600
    rc_mtime = (tmp_path / ".glitchtiprc").stat().st_mtime_ns
    posts_before, tokens_before = fake.count("POST"), token_posts(fake)
    assert tokens_before == 1

    ctx = make_ctx(tmp_path, RecordingCompose(fake.store), fake)
    second = run_steps(steps(*UP_WITHOUT_ENGINE), ctx)
    assert second.ok, second.error and second.error.line()
    assert records(second) == {
        "render": ("ok", False),
        "migrate": ("ok", False),
        "admin": ("ok", False),
        "project": ("ok", False),
        "wrap-up": ("ok", False),
    }
    assert (tmp_path / ".env").read_bytes() == env_after_first  # secrets and token kept
    assert fake.count("POST") == posts_before  # no login, no token, no object created
    assert token_posts(fake) == 1
    assert (tmp_path / ".glitchtiprc").stat().st_mtime_ns == rc_mtime
    summary = ctx.results["summary"]
    dsn = summary["dsn"]
    assert f"url = {dsn}" in rc and dsn.startswith("http://") and dsn.endswith("/1")
    assert summary["organization"] == "glitchtip" and summary["project"] == "default"
    assert env["DJANGO_SUPERUSER_PASSWORD"] not in str(summary)


def test_up_stops_at_a_running_migrate_before_creating_the_admin(tmp_path, fake):
    compose = RecordingCompose(fake.store, rows=[{"Service": "migrate", "State": "running"}])
    report = run_steps(steps(*UP_WITHOUT_ENGINE), make_ctx(tmp_path, compose, fake))
    assert not report.ok
    assert records(report) == {"render": ("ok", True), "migrate": ("failed", None)}
    assert "migrate is still running" in report.error.line()
    assert not any("createsuperuser" in call for call in compose.calls)
    assert fake.store.snapshot()["users"] == {}


# --- render ---


def test_render_step_writes_once_and_keeps_every_secret(tmp_path):
    ctx = make_ctx(tmp_path, RecordingCompose())
    outcome = render_step.render(ctx)
    assert outcome.changed is True
    monitoring = len([p for p in (tmp_path / "monitoring").rglob("*") if p.is_file()])
    assert outcome.detail == (
        "wrote .env, compose.metrics.yml, compose.part.yml, compose.yml, "
        f"monitoring/ ({monitoring} files), python/ (1 file), "
        f"secrets/ ({len(list((tmp_path / 'secrets').iterdir()))}"
        " files); compose.yml valid"
    )
    env_path = tmp_path / ".env"
    assert env_path.stat().st_mode & 0o777 == 0o600
    secrets = {key: read_env_file(env_path)[key] for key in SECRET_KEYS}
    # Another step (the project step) adds its token; the operator adds a key of their own.
    with env_path.open("a") as handle:
        handle.write(f"{TOKEN_KEY}=tok-kept\nMY_OWN=1\n")
    from provision import secret_files

    secret_files.sync(ctx.load_settings())  # as the project step does after storing a token
    assert (tmp_path / "secrets" / "glitchtip_api_token").read_text() == "tok-kept"
    before = env_path.read_bytes()
    compose_before = (tmp_path / "compose.yml").stat().st_mtime_ns

    again = render_step.render(make_ctx(tmp_path, RecordingCompose()))
    assert again.changed is False
    assert again.detail == "rendered files and .env unchanged; compose.yml valid"
    assert env_path.read_bytes() == before
    assert (tmp_path / "compose.yml").stat().st_mtime_ns == compose_before

    changed = render_step.render(make_ctx(tmp_path, RecordingCompose(), web_concurrency="3"))
    assert changed.changed is True and changed.detail.startswith("wrote .env;")
    after = read_env_file(env_path)
    assert {key: after[key] for key in SECRET_KEYS} == secrets
    assert after[TOKEN_KEY] == "tok-kept" and after["MY_OWN"] == "1"


def test_render_step_validates_with_compose_and_names_the_files(tmp_path):
    ctx = make_ctx(tmp_path, RecordingCompose(), glitchtip_major="5", advanced_partitioning="true")
    outcome = render_step.render(ctx)
    assert outcome.detail.endswith("; compose.yml + compose.part.yml valid")
    assert compose_files(ctx.load_settings()) == ["compose.yml", "compose.part.yml"]
    again = render_step.render(
        make_ctx(tmp_path, RecordingCompose(), glitchtip_major="5", advanced_partitioning="true")
    )
    assert again.detail == (
        "rendered files and .env unchanged; compose.yml + compose.part.yml valid"
    )
    plain = make_ctx(tmp_path / "six", RecordingCompose())
    assert compose_files(plain.load_settings()) == ["compose.yml"]


def test_the_metrics_file_follows_the_setting_unless_the_caller_says_otherwise(tmp_path):
    """`down` and the metrics step pass `metrics=True` to reach the metrics services of a
    deployment that just turned them off; `False` leaves them out whatever the setting."""
    off = make_ctx(tmp_path / "off", RecordingCompose()).load_settings()
    on = make_ctx(tmp_path / "on", RecordingCompose(), metrics="true").load_settings()
    assert compose_files(off) == ["compose.yml"]
    assert compose_files(on) == ["compose.yml", "compose.metrics.yml"]
    assert compose_files(off, metrics=True) == ["compose.yml", "compose.metrics.yml"]
    assert compose_files(on, metrics=False) == ["compose.yml"]


def test_render_step_reports_what_compose_refuses_without_its_secrets(tmp_path, monkeypatch):
    """A fake `docker compose` on the command path refuses the files and echoes a secret."""
    ctx = make_ctx(tmp_path, RecordingCompose())
    render_step.render(ctx)
    secret = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    fake_compose = tmp_path / "fake-compose"
    fake_compose.write_text(
        f"#!/bin/sh\necho 'service \"web\" has an invalid SECRET_KEY {secret}' >&2\nexit 15\n"
    )
    fake_compose.chmod(0o755)
    monkeypatch.setattr(
        "provision.runtime.compose_check.compose_command", lambda: (str(fake_compose),)
    )
    with pytest.raises(KitError) as error:
        render_step.render(make_ctx(tmp_path, RecordingCompose(), web_concurrency="3"))
    line = error.value.line()
    assert line.startswith('docker compose config rejected compose.yml: service "web"')
    assert secret not in line
    assert read_env_file(tmp_path / ".env")["SECRET_KEY"] == secret


# --- migrate ---


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"Service": "migrate", "State": "running"}, "migrate is still running"),
        ({"Service": "migrate", "State": "created"}, "migrate is still created"),
        ({"Service": "migrate", "State": ""}, "migrate is still not started"),
        ({"Service": "migrate", "State": "restarting", "ExitCode": 0}, "still restarting"),
    ],
)
def test_migrate_step_refuses_a_migrate_that_has_not_exited(tmp_path, row, message):
    with pytest.raises(KitError, match=message) as error:
        migrate.check_migrate(make_ctx(tmp_path, RecordingCompose(rows=[row])))
    assert "provision logs migrate" in error.value.line()


def test_migrate_step_reads_the_last_migrate_container_and_its_exit_code(tmp_path):
    rows = [
        {"Service": "web", "State": "exited", "ExitCode": 0},
        {"Service": "migrate", "State": "exited", "ExitCode": 0},
        {"Service": "migrate", "State": "exited", "ExitCode": "3"},
    ]
    compose = RecordingCompose(rows=rows, logs="line one\nrelation does not exist")
    with pytest.raises(KitError, match=r"migrate exited 3; its log ends: .*relation does not"):
        migrate.check_migrate(make_ctx(tmp_path, compose))
    ok = migrate.check_migrate(make_ctx(tmp_path, RecordingCompose(rows=rows[:2])))
    assert ok.detail == "migrate exited 0" and ok.changed is False


def test_migrate_step_without_a_migrate_container_names_the_fix(tmp_path):
    compose = RecordingCompose(rows=[{"Service": "web", "State": "running"}])
    with pytest.raises(KitError, match="migrate container does not exist") as error:
        migrate.check_migrate(make_ctx(tmp_path, compose))
    assert "provision render --check" in error.value.line()


def test_run_migrations_streams_and_raises_on_failure():
    lines: list[str] = []

    class Streams(RecordingCompose):
        def run(self, *args, env=None, timeout=None):
            self.calls.append(args)
            return result("Applying auth.0001... OK\nboom: no database", 1)

    compose = Streams()
    with pytest.raises(KitError, match=r"migrations failed \(exit 1\): boom: no database"):
        migrate.run_migrations(compose, lines.append)
    assert compose.calls == [("run", "--rm", "-T", "migrate")]
    assert lines == ["Applying auth.0001... OK", "boom: no database"]
    with pytest.raises(KitError) as error:
        migrate.run_migrations(Streams(), lines.append)
    assert error.value.line().endswith(": fix the cause above, then run `provision migrate` again")
    migrate.run_migrations(RecordingCompose(), lines.append)  # exit 0: no error


# --- admin ---


def test_admin_step_creates_the_superuser_once_with_the_password_from_env(tmp_path, fake):
    render_step.render(make_ctx(tmp_path, RecordingCompose()))
    password = read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]
    compose = RecordingCompose(fake.store)
    first = admin.create_admin(make_ctx(tmp_path, compose, admin_email="ops@example.com"))
    assert first.changed is True
    assert first.detail == (
        "created ops@example.com (password in .env, key DJANGO_SUPERUSER_PASSWORD)"
    )
    assert compose.calls[0] == (
        "exec", "-T", "-e", "DJANGO_SUPERUSER_EMAIL", "-e", "DJANGO_SUPERUSER_PASSWORD", "web",
        "./manage.py", "createsuperuser", "--noinput",
    )  # fmt: skip
    assert compose.timeouts[0] == 180  # Django boots in the container first: not 60 s
    assert compose.envs[0] == {
        "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
        "DJANGO_SUPERUSER_PASSWORD": password,
    }
    assert read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_EMAIL"] == "ops@example.com"
    second = admin.create_admin(make_ctx(tmp_path, compose, admin_email="ops@example.com"))
    assert second.changed is False and second.detail == "ops@example.com already exists"
    assert len(fake.store.snapshot()["users"]) == 1


# --- project ---


def test_project_step_mints_one_token_and_reuses_it(tmp_path, fake):
    render_step.render(make_ctx(tmp_path, RecordingCompose()))
    password = read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]
    create_superuser(fake.store, ADMIN, password)
    ctx = make_ctx(tmp_path, RecordingCompose(fake.store), fake)
    first = project.create_project(ctx)
    assert first.changed is True
    assert first.detail == (
        "created organization glitchtip, team glitchtip, project default "
        "(glitchtip/glitchtip/default)"
    )
    token = read_env_file(tmp_path / ".env")[TOKEN_KEY]
    assert token_posts(fake) == 1 and ctx.results["project"].token_source == "created"

    ctx = make_ctx(tmp_path, RecordingCompose(fake.store), fake)
    second = project.create_project(ctx)
    assert second.changed is False
    assert second.detail == "glitchtip/glitchtip/default already set up"
    assert ctx.results["project"].token_source == "stored"
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == token
    assert token_posts(fake) == 1


def test_project_step_replaces_a_token_glitchtip_rejects(tmp_path, fake):
    render_step.render(make_ctx(tmp_path, RecordingCompose()))
    password = read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]
    create_superuser(fake.store, ADMIN, password)
    with (tmp_path / ".env").open("a") as handle:
        handle.write(f"{TOKEN_KEY}=revoked-{'0' * 56}\n")
    notes: list[str] = []
    ctx = make_ctx(tmp_path, RecordingCompose(fake.store), fake)
    ctx.note = notes.append
    project.create_project(ctx)
    token = read_env_file(tmp_path / ".env")[TOKEN_KEY]
    assert not token.startswith("revoked-") and token in fake.store.snapshot()["tokens"]
    assert ctx.results["project"].token_source == "created"
    assert any("was rejected; creating a new one" in note for note in notes)


def test_project_request_carries_the_settings_and_the_env_path(tmp_path):
    render_step.render(make_ctx(tmp_path, RecordingCompose()))
    ctx = make_ctx(tmp_path, RecordingCompose(), organization="Acme", project="Web", platform="go")
    request = project.project_request(ctx)
    assert request.url == "http://127.0.0.1:18000"
    assert request.env_path == tmp_path / ".env"
    assert request.rc_path == tmp_path / ".glitchtiprc" and request.rc_format == "glitchtiprc"
    assert (request.org, request.project, request.platform) == ("Acme", "Web", "go")
    assert request.token is None and request.team is None and request.key_name is None
    assert request.admin_email == ADMIN
    assert request.admin_password == read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]


# --- admin: GlitchTip's own answer first, createsuperuser only when it cannot tell ---


def rendered_with_password(tmp_path: Path) -> str:
    render_step.render(make_ctx(tmp_path, RecordingCompose()))
    return read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]


def test_admin_made_by_migrate_is_proven_by_a_login_and_its_token_kept(tmp_path, fake):
    password = rendered_with_password(tmp_path)
    create_superuser(fake.store, ADMIN, password)  # INITIAL_USER_* on a new database
    compose = RecordingCompose(fake.store)
    outcome = admin.create_admin(make_ctx(tmp_path, compose, fake))
    assert outcome.detail == (
        f"{ADMIN} already exists (logged in as {ADMIN} with the password in .env); "
        "its API token kept in .env"
    )
    assert outcome.changed is True and compose.calls == []
    token = read_env_file(tmp_path / ".env")[TOKEN_KEY]
    assert token in fake.store.snapshot()["tokens"]
    again = admin.create_admin(make_ctx(tmp_path, compose, fake))
    assert again.detail == f"{ADMIN} already exists (the API token in .env answers as {ADMIN})"
    assert again.changed is False and compose.calls == [] and token_posts(fake) == 1


def test_a_token_of_another_user_does_not_prove_the_admin(tmp_path, fake):
    from fakeglitchtip import create_api_token

    password = rendered_with_password(tmp_path)
    create_superuser(fake.store, "someone@example.com", "x" * 20)
    other = create_api_token(fake.store, "someone@example.com", ["org:read"])
    with (tmp_path / ".env").open("a") as handle:
        handle.write(f"{TOKEN_KEY}={other}\n")
    compose = RecordingCompose(fake.store)
    outcome = admin.create_admin(make_ctx(tmp_path, compose, fake))
    assert outcome.detail.startswith(f"created {ADMIN}") and outcome.changed is True
    assert len(compose.calls) == 1 and "createsuperuser" in compose.calls[0]
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == other  # not replaced
    users = {u["email"]: u for u in fake.store.snapshot()["users"].values()}
    assert set(users) == {"someone@example.com", ADMIN}
    assert password  # the login with it failed (no such user yet): createsuperuser decided


def test_is_admin_needs_the_same_email_and_a_superuser():
    from provision.stack.admin import _is_admin

    me = "Admin@Example.com "
    assert _is_admin({"user": {"email": "admin@example.com", "isSuperuser": True}}, me)
    assert not _is_admin({"user": {"email": "admin@example.com", "isSuperuser": False}}, me)
    assert not _is_admin({"user": {"email": "admin@example.com", "isSuperuser": "yes"}}, me)
    assert not _is_admin({"user": {"email": "other@example.com", "isSuperuser": True}}, me)
    assert not _is_admin({"user": None}, me) and not _is_admin([], me)
    assert not _is_admin({"user": {"isSuperuser": True}}, me)


def test_admin_failures_are_one_line_with_the_output_tail(tmp_path):
    rendered_with_password(tmp_path)

    class Fails(RecordingCompose):
        def __init__(self, answer):
            super().__init__()
            self.answer = answer

        def run(self, *args, env=None, timeout=None):
            self.calls.append(args)
            return self.answer

    never = lambda ctx, email, password: None  # noqa: E731 - GlitchTip cannot tell
    failing = Fails(result("a\nb\nservice web is not running", 2))
    with pytest.raises(KitError) as error:
        admin.create_admin(make_ctx(tmp_path, failing), prove=never)
    assert error.value.line() == (
        "createsuperuser exited 2: b | service web is not running: see `provision logs web`"
    )
    with pytest.raises(KitError) as error:
        admin.create_admin(make_ctx(tmp_path, Fails(result("", 1))), prove=never)
    assert error.value.line() == "createsuperuser exited 1: no output: see `provision logs web`"
    taken = Fails(result("CommandError: Error: That email is already taken.", 1))
    outcome = admin.create_admin(make_ctx(tmp_path, taken), prove=never)
    assert (outcome.detail, outcome.changed) == (f"{ADMIN} already exists", False)


def test_admin_without_a_password_names_the_env_file_and_the_fix(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=" + "k" * 60 + "\n")
    with pytest.raises(KitError) as error:
        admin.admin_credentials(make_ctx(tmp_path, RecordingCompose()))
    assert error.value.line() == (
        f"{tmp_path / '.env'} has no DJANGO_SUPERUSER_PASSWORD: run `provision render` to "
        "generate the missing secrets (existing ones are kept)"
    )


def test_admin_credentials_record_the_email_only_when_it_changed(tmp_path):
    password = rendered_with_password(tmp_path)
    ctx = make_ctx(tmp_path, RecordingCompose(), admin_email="ops@example.com")
    assert admin.admin_credentials(ctx) == ("ops@example.com", password)
    mtime = (tmp_path / ".env").stat().st_mtime_ns
    assert admin.admin_credentials(ctx) == ("ops@example.com", password)
    assert (tmp_path / ".env").stat().st_mtime_ns == mtime


# --- migrate: what the start step already learned ---


def test_migrate_trusts_the_start_step_that_proved_it_current(tmp_path):
    from provision.stack.start import CURRENT_KEY

    ctx = make_ctx(tmp_path, None)
    ctx.compose_factory = lambda settings: pytest.fail("no Compose call is needed")
    ctx.results[CURRENT_KEY] = True
    outcome = migrate.check_migrate(ctx)
    assert outcome.detail == "migrate exited 0 for the current configuration"
    assert outcome.changed is False


def test_migrate_reads_the_rows_the_start_step_took(tmp_path):
    from provision.stack.start import PS_KEY

    class NoPs(RecordingCompose):
        def ps(self, *services):
            raise AssertionError("compose ps must not run again")

    ctx = make_ctx(tmp_path, NoPs())
    ctx.results[PS_KEY] = [{"Service": "migrate", "State": "running"}]
    with pytest.raises(KitError) as error:
        migrate.check_migrate(ctx)
    assert error.value.line() == "migrate is still running: see `provision logs migrate`"
    ctx.results[PS_KEY] = [{"Service": "migrate", "State": "exited", "ExitCode": 0}]
    assert migrate.check_migrate(ctx).detail == "migrate exited 0"
    ctx.results[PS_KEY] = []
    with pytest.raises(KitError) as error:
        migrate.check_migrate(ctx)
    assert error.value.line() == (
        "the one-shot migrate container does not exist: check compose.yml has a `migrate` "
        "service (`provision render --check`)"
    )


def test_a_failed_migrate_without_a_log_is_still_one_line(tmp_path):
    rows = [{"Service": "migrate", "State": "exited", "ExitCode": 1}]
    with pytest.raises(KitError) as error:
        migrate.check_migrate(make_ctx(tmp_path, RecordingCompose(rows=rows, logs="")))
    assert error.value.line() == "migrate exited 1"
    rows = [{"Service": "migrate", "State": "exited"}]  # no ExitCode reported: taken as 0
    assert migrate.check_migrate(make_ctx(tmp_path, RecordingCompose(rows=rows))).changed is False


def test_migrate_rows_are_matched_by_service_and_unnamed_rows_are_migrate(tmp_path):
    from provision.stack.start import PS_KEY

    done = {"Service": "migrate", "State": "exited", "ExitCode": 0}
    ctx = make_ctx(tmp_path, RecordingCompose())
    ctx.results[PS_KEY] = [done, {"Service": "web", "State": "running"}]  # all services
    assert migrate.check_migrate(ctx).detail == "migrate exited 0"
    unnamed = [{"State": "exited", "ExitCode": 0}]  # `compose ps migrate` lists only migrate

    class Unnamed(RecordingCompose):
        def ps(self, *services):
            return list(self.rows)

    assert migrate.check_migrate(make_ctx(tmp_path, Unnamed(rows=unnamed))).changed is False
    with pytest.raises(KitError) as error:
        migrate.check_migrate(make_ctx(tmp_path, Unnamed(rows=[{"Service": "migrate"}])))
    assert error.value.line() == "migrate is still not started: see `provision logs migrate`"


# --- admin: how patiently GlitchTip is asked (a scripted server counts the requests) ---


class Scripted:
    """A local HTTP server answering `statuses[path]` (default 404) and logging every request."""

    def __init__(self, statuses: dict[str, int]):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        log: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                log.append(f"GET {self.path}")
                body = b"{}"
                self.send_response(statuses.get(self.path, 404))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                return None

        self.log = log
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = str(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("whoami", "expected"),
    [
        (503, ["GET /api/0/"] * 2),  # no answer: createsuperuser decides, no login is tried
        (401, ["GET /api/0/", *["GET /_allauth/browser/v1/config"] * 2]),  # rejected: log in
    ],
)
def test_existing_admin_asks_twice_at_most_then_lets_createsuperuser_decide(
    tmp_path, whoami, expected
):
    password = rendered_with_password(tmp_path)
    with (tmp_path / ".env").open("a") as handle:
        handle.write(f"{TOKEN_KEY}={'s' * 64}\n")
    server = Scripted({"/api/0/": whoami, "/_allauth/browser/v1/config": 503})
    try:
        ctx = make_ctx(tmp_path, RecordingCompose(), http_port=server.port)
        assert admin.existing_admin(ctx, ADMIN, password) is None
    finally:
        server.close()
    assert server.log == expected
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == "s" * 64


def test_create_admin_records_the_admin_for_the_wrap_up(tmp_path):
    rendered_with_password(tmp_path)
    proven = lambda ctx, email, password: ("proof", False)  # noqa: E731
    ctx = make_ctx(tmp_path, RecordingCompose(), admin_email="ops@example.com")
    outcome = admin.create_admin(ctx, prove=proven)
    assert ctx.results["admin_email"] == "ops@example.com"
    assert outcome.detail == "ops@example.com already exists (proof)" and not outcome.changed
