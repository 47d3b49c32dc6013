"""Rendering: the committed default render, secrets kept, .env keys kept, the lock, majors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision import majors
from provision.envfile import read_env_file
from provision.errors import SecretsError, SettingsError
from provision.render import LOCK_KEY, render_files, write_rendered
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

REPO = Path(__file__).resolve().parent.parent
FAKE_SECRETS = {
    "SECRET_KEY": "fake-secret-key-" + "x" * 50,
    "POSTGRES_PASSWORD": "fake-postgres-password",
    "DJANGO_SUPERUSER_PASSWORD": "fake-admin-password",
}


def settings_for(directory: Path, **overrides):
    return load_settings(directory, overrides, environ={})


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.name: (path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


@pytest.mark.snapshot
@pytest.mark.parametrize("name", ["compose.yml", "compose.part.yml", "compose.metrics.yml"])
def test_committed_files_are_the_default_render(tmp_path: Path, name: str) -> None:
    rendered = render_files(settings_for(tmp_path), FAKE_SECRETS)
    assert rendered[name] == (REPO / name).read_text(encoding="utf-8")


def test_default_render_does_not_depend_on_the_host(tmp_path: Path, monkeypatch) -> None:
    from provision import settings as settings_module

    first = render_files(settings_for(tmp_path), FAKE_SECRETS)
    monkeypatch.setattr(settings_module, "host_resources", lambda: (64, 512 * 1024))
    second = render_files(settings_for(tmp_path), FAKE_SECRETS)
    assert first["compose.yml"] == second["compose.yml"]
    assert first[".env"] != second[".env"]  # concurrency lives in .env


def test_no_secret_in_compose_files(tmp_path: Path) -> None:
    for major in (5, 6):
        files = render_files(settings_for(tmp_path, glitchtip_major=major), FAKE_SECRETS)
        for name in ("compose.yml", "compose.part.yml"):
            for secret in FAKE_SECRETS.values():
                assert secret not in files[name]
        assert FAKE_SECRETS["SECRET_KEY"] in files[".env"]


def test_write_rendered_modes_and_changed_paths(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    changed = write_rendered(settings)
    top = {path.name for path in changed if path.parent == tmp_path}
    assert top == {".env", "compose.yml", "compose.part.yml", "compose.metrics.yml"}
    inside = {path.relative_to(tmp_path).as_posix() for path in changed if path.parent != tmp_path}
    assert "monitoring/prometheus/prometheus.yml" in inside
    assert "secrets/secret_key" in inside
    # python/: the worker's settings module (GlitchTip 6's default worker loads it).
    assert "python/glitchtip_kit_worker_settings.py" in inside
    assert all(name.startswith(("monitoring/", "secrets/", "python/")) for name in inside)
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "compose.yml").stat().st_mode & 0o777 == 0o644
    # The secret files: readable by the containers' users, but only inside a 0700 directory.
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "secrets").iterdir()} == {0o644}
    assert write_rendered(settings) == []


def test_secrets_survive_any_settings_change(tmp_path: Path) -> None:
    write_rendered(settings_for(tmp_path))
    before = read_env_file(tmp_path / ".env")
    (tmp_path / "glitchtip.yaml").write_text(
        "glitchtip_domain: https://errors.example.com\nhttp_port: 8100\nretention_days: 30\n"
    )
    changed = write_rendered(settings_for(tmp_path, worker_concurrency=3))
    after = read_env_file(tmp_path / ".env")
    assert tmp_path / "compose.yml" in changed
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD"):
        assert after[key] == before[key]
    assert after["GLITCHTIP_KIT_WORKER_CONCURRENCY"] == "3"
    compose = (tmp_path / "compose.yml").read_text()
    assert '"https://errors.example.com"' in compose and 'SESSION_COOKIE_SECURE: "true"' in compose


def test_env_keeps_keys_of_other_steps_and_the_operator(tmp_path: Path) -> None:
    write_rendered(settings_for(tmp_path))
    env = tmp_path / ".env"
    env.write_text(
        env.read_text()
        + "DJANGO_SUPERUSER_EMAIL=admin@example.com\nGLITCHTIP_API_TOKEN=t0ken\n"
        + "# operator note\nMY_KEY='kept as is'\n"
    )
    write_rendered(settings_for(tmp_path, http_port=8200))
    text = env.read_text()
    assert "DJANGO_SUPERUSER_EMAIL=admin@example.com\nGLITCHTIP_API_TOKEN=t0ken\n" in text
    assert "# operator note\nMY_KEY='kept as is'\n" in text


def test_existing_secrets_from_init_are_used(tmp_path: Path) -> None:
    from provision.secrets import ensure_secrets

    values = ensure_secrets(tmp_path / ".env")
    write_rendered(settings_for(tmp_path))
    assert read_env_file(tmp_path / ".env")["SECRET_KEY"] == values["SECRET_KEY"]


def test_invalid_env_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SECRET_KEY=short\n")
    before = snapshot(tmp_path)
    with pytest.raises(SecretsError):
        write_rendered(settings_for(tmp_path))
    assert snapshot(tmp_path) == before


def test_partitioning_cannot_switch_after_first_render(tmp_path: Path) -> None:
    write_rendered(settings_for(tmp_path, glitchtip_major=5))
    assert read_env_file(tmp_path / ".env")[LOCK_KEY] == "false"
    before = snapshot(tmp_path)
    with pytest.raises(SettingsError, match="cannot switch on an existing database") as caught:
        write_rendered(settings_for(tmp_path, glitchtip_major=5, advanced_partitioning=True))
    assert "down --volumes" in caught.value.fix
    assert snapshot(tmp_path) == before


def test_partitioning_chosen_at_first_render(tmp_path: Path) -> None:
    write_rendered(settings_for(tmp_path, glitchtip_major=5, advanced_partitioning=True))
    env = read_env_file(tmp_path / ".env")
    assert env[LOCK_KEY] == "true"
    assert env["COMPOSE_FILE"] == "compose.yml:compose.part.yml"
    compose = yaml.safe_load((tmp_path / "compose.yml").read_text())
    assert compose["x-glitchtip-environment"]["GLITCHTIP_ADVANCED_PARTITIONING"] == "true"
    # Later runs keep the recorded choice without repeating it ...
    later = settings_for(tmp_path, glitchtip_major=5)
    assert later.advanced_partitioning is True
    assert later.sources["advanced_partitioning"] == ".env"
    assert write_rendered(later) == []
    # ... and refuse an explicit switch.
    with pytest.raises(SettingsError):
        write_rendered(settings_for(tmp_path, glitchtip_major=5, advanced_partitioning=False))


@pytest.mark.parametrize("number", [5, 6])
def test_major_differences_come_from_the_table(tmp_path: Path, number: int) -> None:
    major = majors.MAJORS[number]
    files = render_files(settings_for(tmp_path, glitchtip_major=number), FAKE_SECRETS)
    compose = yaml.safe_load(files["compose.yml"])
    environment = compose["x-glitchtip-environment"]
    services = compose["services"]
    assert services["worker"]["command"] == major.worker_command
    assert services["web"]["ports"][0]["target"] == major.web_port
    assert environment["PORT"] == str(major.web_port)
    assert environment[major.retention_env] == "90"
    assert environment[major.worker_concurrency_env].startswith("${GLITCHTIP_KIT_WORKER")
    assert f":{major.web_port}/_health/" in services["web"]["healthcheck"]["test"][-1]
    assert services["migrate"]["command"][2].startswith("./bin/run-migrate.sh || exit")
    assert compose["x-glitchtip"]["image"] == major.glitchtip_image


def test_web_probe_sends_the_public_host(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, glitchtip_domain="https://errors.example.com")
    compose = yaml.safe_load(render_files(settings, FAKE_SECRETS)["compose.yml"])
    probe = compose["services"]["web"]["healthcheck"]["test"][-1]
    assert "'Host': 'errors.example.com'" in probe
    hosts = compose["x-glitchtip-environment"]["ALLOWED_HOSTS"].split(",")
    assert hosts[0] == "errors.example.com" and "127.0.0.1" in hosts


def test_probes_are_valid_python(tmp_path: Path) -> None:
    for number in (5, 6):
        compose = yaml.safe_load(
            render_files(settings_for(tmp_path, glitchtip_major=number), FAKE_SECRETS)[
                "compose.yml"
            ]
        )
        for service in ("web", "worker"):
            compile(compose["services"][service]["healthcheck"]["test"][-1], service, "exec")


def test_worker_probe_finds_a_process_by_marker(tmp_path: Path) -> None:
    """Run the worker probe against this machine's /proc: it must not match itself."""
    # A marker unique to this run: a real GlitchTip worker on this host (the Docker tier's
    # containers share the host's /proc) must not make the "no worker" half pass or fail.
    import dataclasses
    import subprocess
    import sys
    import uuid

    from provision.render import worker_probe

    marker = f"kit-test-worker-{uuid.uuid4().hex}"
    major = dataclasses.replace(majors.MAJORS[6], worker_process_marker=marker)
    probe = worker_probe(major)
    alone = subprocess.run([sys.executable, "-c", probe], check=False)
    assert alone.returncode == 1
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        found = subprocess.run([sys.executable, "-c", probe], check=False)
        assert found.returncode == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def test_literal_dollar_is_escaped(tmp_path: Path) -> None:
    files = render_files(settings_for(tmp_path, glitchtip_major=5), FAKE_SECRETS)
    assert "$$(./manage.py" in files["compose.part.yml"]


def test_bind_address_ipv6(tmp_path: Path) -> None:
    files = render_files(settings_for(tmp_path, bind_address="::1"), FAKE_SECRETS)
    port = yaml.safe_load(files["compose.yml"])["services"]["web"]["ports"][0]
    assert port["host_ip"] == "::1"


def test_failed_check_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    from provision.errors import KitError
    from provision.runtime import compose_check

    def refuse(directory: Path, files: list[str]) -> None:
        raise KitError("docker compose config rejected compose.yml: boom", "fix it")

    monkeypatch.setattr(compose_check, "check_compose", refuse)
    with pytest.raises(KitError, match="boom"):
        write_rendered(settings_for(tmp_path), check=True)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("output", "exit_code", "status", "verdict"),
    [
        ("Successfully configured all pg_partman tables.", 0, 0, "GlitchTip configured"),
        # v5.1.0's command cannot succeed and still exits 0: the kit's partman-config follows.
        ("An error occurred during pg_partman table configuration", 0, 0, "partman-config will"),
        ("Traceback: cannot connect", 1, 1, "exited 1"),
    ],
)
def test_partman_setup_leaves_a_silent_failure_to_partman_config(
    tmp_path: Path, output: str, exit_code: int, status: int, verdict: str
) -> None:
    """setup_advanced_partitions exits 0 on failure (and always fails on v5.1.0): the setup
    service says so and lets partman-config finish the job; only a crash stops it."""
    import subprocess

    from provision.render import partman_script

    major = majors.MAJORS[5]
    fake = tmp_path / "manage"
    fake.write_text(f"#!/bin/sh\necho '{output}'\nexit {exit_code}\n")
    fake.chmod(0o755)
    script = partman_script(major).replace(major.partman_setup_command, str(fake))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == status
    assert output in done.stdout
    assert verdict in done.stdout + done.stderr


def test_partman_config_is_rendered_with_the_pinned_pg_partman_major(tmp_path: Path) -> None:
    """compose.part.yml's partman-config: the partman image's `-5` tag, psql stopping at the
    first error, and the SQL that checks the extension's major and counts 12 managed tables."""
    import yaml

    from provision import partman_sql

    files = render_files(settings_for(tmp_path, glitchtip_major="5"), {})
    part = yaml.safe_load(files["compose.part.yml"])
    config = part["services"]["partman-config"]
    assert part["services"]["postgres"]["image"].endswith(":17-5")
    assert config["image"] == part["services"]["postgres"]["image"]
    command = [arg.replace("$$", "$") for arg in config["command"]]  # Compose's escape of `$`
    assert command[:2] == ["sh", "-c"]
    assert "exec psql -X -q -v ON_ERROR_STOP=1" in command[2]
    # The password from its secret file, never from the service's environment (issue 18).
    assert 'PGPASSWORD="$(cat /run/secrets/postgres_password)"' in command[2]
    assert "PGPASSWORD" not in config["environment"]
    assert config["secrets"] == ["postgres_password"]
    assert part["secrets"]["postgres_password"] == {"file": "./secrets/postgres_password"}
    sql = command[-1]
    assert sql == partman_sql.config_sql()
    assert "extversion" in sql and "<> 5" in sql
    assert len(partman_sql.parents()) == 12
    assert config["depends_on"]["partman-setup"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("value", ["it's", "two\nlines"])
def test_template_env_values_follow_the_envfile_rules(value: str) -> None:
    """The .env template and `update_env_file` format values the same way: one rule, refusing
    what `.env` cannot hold instead of writing a line Compose would read differently."""
    from provision.errors import SecretsError
    from provision.render import env_quote

    with pytest.raises(SecretsError):
        env_quote(value)
    assert env_quote("smtp://mail.example.com:25") == "smtp://mail.example.com:25"
    assert env_quote("a b") == "'a b'"


def test_first_admin_is_created_by_migrate_only(tmp_path: Path) -> None:
    """The one-shot migrate service creates the admin after the migrations (no sign-up window
    once web starts); only it gets the admin's password, as a secret file its shell reads (never
    in its configuration); "already taken" is success; INITIAL_USER_* (migration 0013) is not
    used, since it fails the migrate of an upgraded database whose admin exists."""
    for major in (5, 6):
        settings = settings_for(tmp_path, glitchtip_major=major, admin_email="ops@example.org")
        text = render_files(settings, FAKE_SECRETS)["compose.yml"]
        services = yaml.safe_load(text)["services"]
        migrate = services["migrate"]
        assert migrate["environment"]["DJANGO_SUPERUSER_EMAIL"] == "ops@example.org"
        assert "DJANGO_SUPERUSER_PASSWORD" not in migrate["environment"]
        assert "django_superuser_password" in migrate["secrets"]
        assert migrate["environment"]["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
        script = migrate["command"][2]
        assert migrate["command"][:2] == ["sh", "-c"]
        assert script.index("./bin/run-migrate.sh || exit") < script.index("createsuperuser")
        assert '*"already taken"*)' in script and "exit 1" in script
        assert "INITIAL_USER" not in yaml.safe_dump(services)
        for name in ("web", "worker"):
            assert not any(
                key.startswith("DJANGO_SUPERUSER") for key in services[name]["environment"]
            )
            assert "django_superuser_password" not in services[name]["secrets"]
        assert FAKE_SECRETS["DJANGO_SUPERUSER_PASSWORD"] not in text


def _run_migrate_script(tmp_path: Path, createsuperuser: str, migrate_rc: int = 0):
    """Run the rendered migrate command with stand-in scripts; (exit code, stdout, stderr)."""
    import subprocess

    settings = settings_for(tmp_path / "d", admin_email="ops@example.org")
    (tmp_path / "d").mkdir(exist_ok=True)
    text = render_files(settings, FAKE_SECRETS)["compose.yml"]
    script = yaml.safe_load(text)["services"]["migrate"]["command"][2].replace("$$", "$")
    # The admin's password comes from its secret file (here a copy outside /run/secrets).
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    password = FAKE_SECRETS["DJANGO_SUPERUSER_PASSWORD"]
    (secrets / "django_superuser_password").write_text(password)
    script = script.replace("/run/secrets/", f"{secrets}/")
    work = tmp_path / "code"
    (work / "bin").mkdir(parents=True)
    (work / "bin" / "run-migrate.sh").write_text(f"#!/bin/sh\necho migrated\nexit {migrate_rc}\n")
    # Like Django's createsuperuser: the password from its own environment.
    check = f'[ "$DJANGO_SUPERUSER_PASSWORD" = "{password}" ] || {{ echo no password; exit 9; }}\n'
    (work / "manage.py").write_text("#!/bin/sh\n" + check + createsuperuser)
    for path in (work / "bin" / "run-migrate.sh", work / "manage.py"):
        path.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SUPERUSER_EMAIL": "ops@example.org"}
    done = subprocess.run(["sh", "-c", script], cwd=work, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("createsuperuser", "migrate_rc", "expected_rc", "says"),
    [
        ("echo 'Superuser created successfully.'\n", 0, 0, "created the first admin ops@"),
        ("echo 'CommandError: Error: That email is already taken.' >&2; exit 1\n", 0, 0, "exists"),
        ("echo 'django.db.utils.OperationalError: boom' >&2; exit 1\n", 0, 1, "boom"),
        ("echo 'never reached'\n", 3, 3, "migrated"),
    ],
)
def test_migrate_command_creates_the_admin_once(
    tmp_path: Path, createsuperuser: str, migrate_rc: int, expected_rc: int, says: str
) -> None:
    """The shell around createsuperuser: created or already there is success; any other
    failure, or failed migrations (createsuperuser then never runs), fails the one-shot."""
    rc, out, err = _run_migrate_script(tmp_path, createsuperuser, migrate_rc)
    assert rc == expected_rc, (out, err)
    assert says in out + err
    if migrate_rc:
        assert "never reached" not in out


def test_glitchtip5_is_served_by_granian_asgi(tmp_path: Path) -> None:
    """GlitchTip 5's default uWSGI loses events (one request per connection) and granian WSGI
    drops uncompressed envelopes: the kit selects granian ASGI through run-web.sh's variables."""
    five = yaml.safe_load(
        render_files(settings_for(tmp_path, glitchtip_major=5), FAKE_SECRETS)["compose.yml"]
    )
    environment = five["x-glitchtip-environment"]
    assert (environment["USE_GRANIAN"], environment["USE_ASYNC_SERVER"]) == ("true", "true")
    assert environment["GRANIAN_PORT"] == "8000" == str(majors.MAJORS[5].web_port)
    assert five["services"]["web"]["ports"][0]["target"] == 8000
    assert "UWSGI_WORKERS" not in environment
    six = yaml.safe_load(render_files(settings_for(tmp_path), FAKE_SECRETS)["compose.yml"])
    assert not {"USE_GRANIAN", "USE_ASYNC_SERVER"} & set(six["x-glitchtip-environment"])
