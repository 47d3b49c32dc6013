"""External Postgres, Valkey and S3 uploads (issue 12): settings, masking, render, config,
preflight probes (fake runner), and the commands that need the bundled services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_run import one_line_error, run
from test_stack_steps import FakeEngine, make_ctx, run_preflight

from provision.envfile import read_env_file
from provision.errors import KitError, SettingsError, UsageError
from provision.ops.bundled import require_bundled_data, running_services
from provision.render import render_files
from provision.settings import load_settings
from provision.stack import external, preflight
from provision.stack.metrics import metrics_services

DB_PASSWORD = "db-Pa55word-x7"
VALKEY_PASSWORD = "valkey-Pa55-q9"
S3_SECRET = "s3-SecretKey-Zz81"
DB_URL = f"postgres://gt:{DB_PASSWORD}@db.example.com:5432/glitchtip"
VALKEY_URL = f"redis://:{VALKEY_PASSWORD}@cache.example.com:6379/0"
SECRETS = {
    "SECRET_KEY": "k" * 50,
    "POSTGRES_PASSWORD": "p" * 20,
    "DJANGO_SUPERUSER_PASSWORD": "a" * 20,
}
# The kit's variables for the external services: namespaced, so the DATABASE_URL or AWS keys
# an operator's shell holds for another app never switch the kit to that database or bucket.
ALL_EXTERNAL = {
    "GLITCHTIP_KIT_DATABASE_URL": DB_URL,
    "GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL,
    "GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-uploads",
    "GLITCHTIP_KIT_UPLOADS_ENDPOINT_URL": "http://minio.example.com:9000",
    "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID": "AKIAKIT123",
    "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY": S3_SECRET,
}


def settings_with(tmp_path: Path, environ: dict[str, str], **overrides):
    return load_settings(tmp_path, overrides=overrides, environ=environ)


def compose_of(settings) -> dict:
    return yaml.safe_load(render_files(settings, SECRETS)["compose.yml"])


# --- settings ---


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("mysql://u:pw@db/x", "is not a Postgres URL"),
        ("postgres://u:pw@/glitchtip", "names no Postgres server"),
        ("postgres://u:pw@db.example.com:5432", "names no database"),
        ("postgres://u:pw@db.example.com:99999/x", "bad address or port"),
        ("postgres://u:p#w@db.example.com/x", "contains '#'"),
        ("postgres://u:pw@db.example.com/x?sslmode=sometimes", "not a libpq mode"),
    ],
)
def test_a_bad_database_url_is_refused_without_showing_its_password(tmp_path, raw, problem):
    with pytest.raises(SettingsError) as caught:
        settings_with(tmp_path, {"GLITCHTIP_KIT_DATABASE_URL": raw})
    line = caught.value.line()
    assert problem in line and "GLITCHTIP_KIT_DATABASE_URL" in line
    assert ":pw@" not in line and "p#w" not in line


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("http://cache:6379", "is not a Valkey URL"),
        ("redis://:pw@cache:6379/db", "is not a database number"),
        ("sentinel://:pw@cache:26379", "is not a Valkey URL"),
    ],
)
def test_a_bad_valkey_url_is_refused(tmp_path, raw, problem):
    with pytest.raises(SettingsError) as caught:
        settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": raw})
    assert problem in caught.value.line() and ":pw@" not in caught.value.line()


def test_glitchtip_5_refuses_a_valkey_scheme_redis_py_cannot_read(tmp_path):
    with pytest.raises(SettingsError, match="GlitchTip 5"):
        settings_with(
            tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": "valkeys://cache:6380"}, glitchtip_major=5
        )
    assert settings_with(
        tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": "valkeys://cache:6380"}
    ).external_valkey


@pytest.mark.parametrize("name", ["database_url", "valkey_url"])
def test_a_url_with_a_password_is_refused_in_glitchtip_yaml(tmp_path, name):
    url = DB_URL if name == "database_url" else VALKEY_URL
    (tmp_path / "glitchtip.yaml").write_text(f"{name}: {url}\n")
    result = run(tmp_path, "config")
    line = one_line_error(result)
    assert "holds a password in a file meant to be committed" in line
    assert DB_PASSWORD not in result.output + line and VALKEY_PASSWORD not in line


def test_a_url_without_a_password_may_live_in_glitchtip_yaml(tmp_path):
    (tmp_path / "glitchtip.yaml").write_text("valkey_url: redis://cache.example.com:6379/0\n")
    settings = settings_with(tmp_path, {})
    assert settings.valkey_url == "redis://cache.example.com:6379/0"
    assert settings.sources["valkey_url"] == "file"


def test_the_s3_secret_is_refused_in_glitchtip_yaml_and_never_echoed(tmp_path):
    (tmp_path / "glitchtip.yaml").write_text(
        f"uploads_bucket: gt-uploads\nuploads_secret_access_key: {S3_SECRET}\n"
    )
    line = one_line_error(run(tmp_path, "config"))
    assert "is a secret in a file meant to be committed" in line and S3_SECRET not in line


@pytest.mark.parametrize(
    ("environ", "overrides", "problem"),
    [
        ({"GLITCHTIP_KIT_DATABASE_URL": DB_URL},
         {"glitchtip_major": 5, "advanced_partitioning": True}, "needs the bundled Postgres"),
        ({}, {"database_sslmode": "require"}, "applies to an external database only"),
        ({"GLITCHTIP_KIT_DATABASE_URL": DB_URL + "?sslmode=require"},
         {"database_sslmode": "verify-full"}, "already sets sslmode"),
        ({"GLITCHTIP_KIT_UPLOADS_ENDPOINT_URL": "http://minio:9000"}, {},
         "no uploads_bucket is set"),
        ({"GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-uploads",
          "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID": "AKIA1"}, {},
         "access key id and secret access key go together"),
    ],
)  # fmt: skip
def test_combinations_that_cannot_work_are_refused(tmp_path, environ, overrides, problem):
    with pytest.raises(SettingsError, match=problem):
        settings_with(tmp_path, environ, **overrides)


def test_sslmode_is_added_to_the_url_glitchtip_receives(tmp_path):
    plain = settings_with(
        tmp_path, {"GLITCHTIP_KIT_DATABASE_URL": DB_URL}, database_sslmode="verify-full"
    )
    assert plain.effective_database_url == DB_URL + "?sslmode=verify-full"
    with_query = settings_with(
        tmp_path,
        {"GLITCHTIP_KIT_DATABASE_URL": DB_URL + "?connect_timeout=5"},
        database_sslmode="require",
    )
    assert with_query.effective_database_url.endswith("?connect_timeout=5&sslmode=require")


# --- render ---


def test_the_default_render_keeps_every_bundled_service(tmp_path):
    compose = compose_of(settings_with(tmp_path, {}))
    assert {"postgres", "valkey", "migrate", "web", "worker"} <= set(compose["services"])
    assert set(compose["volumes"]) == {"postgres-data", "valkey-data", "uploads"}
    assert compose["services"]["web"]["volumes"] == ["uploads:/code/uploads"]


@pytest.mark.parametrize("database", [False, True])
@pytest.mark.parametrize("valkey", [False, True])
@pytest.mark.parametrize("s3", [False, True])
def test_each_combination_leaves_out_exactly_the_external_services(tmp_path, database, valkey, s3):
    environ = {}
    if database:
        environ["GLITCHTIP_KIT_DATABASE_URL"] = DB_URL
    if valkey:
        environ["GLITCHTIP_KIT_VALKEY_URL"] = VALKEY_URL
    if s3:
        environ.update(
            GLITCHTIP_KIT_UPLOADS_BUCKET="gt-uploads",
            GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID="AKIAKIT123",
        )
        environ["GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY"] = S3_SECRET
    settings = settings_with(tmp_path, environ, database_sslmode="require" if database else None)
    files = render_files(settings, SECRETS)
    compose = yaml.safe_load(files["compose.yml"])
    services = compose["services"]
    assert ("postgres" in services) is not database
    assert ("valkey" in services) is not valkey
    bundled = [name for name, ext in (("postgres", database), ("valkey", valkey)) if not ext]
    for name in ("web", "worker"):
        assert set(services[name]["depends_on"]) == {"migrate", *bundled}
        volumes = services[name].get("volumes", [])
        assert ("uploads:/code/uploads" in volumes) is not s3
    # GlitchTip 6's worker mounts the kit's settings module, S3 uploads or not.
    assert "./python:/kit/python:ro" in services["worker"]["volumes"]
    assert set(services["migrate"].get("depends_on", {})) == set(bundled)
    expected_volumes = {
        name
        for name, ext in (("postgres-data", database), ("valkey-data", valkey), ("uploads", s3))
        if not ext
    }
    assert set(compose.get("volumes") or {}) == expected_volumes
    environment = compose["x-glitchtip-environment"]
    # Every URL and key that may carry a secret is a file (provision/secret_files.py).
    from provision import secret_files

    found = secret_files.values(settings, SECRETS)
    assert environment["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert "DATABASE_URL" not in environment
    if database:
        assert found["database_url"] == DB_URL + "?sslmode=require"
    else:
        assert "@postgres:5432/glitchtip" in found["database_url"]
    assert (environment.get("VALKEY_URL_FILE") == "/run/secrets/valkey_url") is valkey
    assert ("VALKEY_URL" in environment) is not valkey
    assert (found.get("valkey_url") == VALKEY_URL) is valkey
    assert ("DEFAULT_FILE_STORAGE" in environment) is s3
    if s3:
        assert environment["AWS_STORAGE_BUCKET_NAME"] == "gt-uploads"
        assert "AWS_SECRET_ACCESS_KEY" not in environment
        assert environment["AWS_SECRET_ACCESS_KEY_FILE"] == "/run/secrets/aws_secret_access_key"
        assert found["aws_secret_access_key"] == S3_SECRET
        assert found["aws_access_key_id"] == "AKIAKIT123"
    mounted = set(compose["x-glitchtip"]["secrets"])
    assert mounted == set(compose["secrets"]) - {"postgres_password", "django_superuser_password"}
    assert ("aws_secret_access_key" in mounted) is s3 and ("valkey_url" in mounted) is valkey
    for name, text in files.items():
        if name != ".env":
            assert S3_SECRET not in text and DB_PASSWORD not in text, name
            assert VALKEY_PASSWORD not in text, name
    metrics = yaml.safe_load(files["compose.metrics.yml"])["services"]
    assert ("postgres-exporter" in metrics) is not database
    assert ("valkey-exporter" in metrics) is not valkey
    jobs = [
        job["job_name"]
        for job in yaml.safe_load(files["monitoring/prometheus/prometheus.yml"])["scrape_configs"]
    ]
    assert ("postgres" in jobs) is not database and ("valkey" in jobs) is not valkey
    assert set(metrics_services(settings)) == set(metrics) - {"web"}
    rendered = "".join(text for name, text in files.items() if name != ".env")
    for secret in (DB_PASSWORD, VALKEY_PASSWORD, S3_SECRET, "AKIAKIT123"):
        assert secret not in rendered


def test_render_keeps_the_urls_and_keys_in_env_only_and_switches_back(tmp_path):
    result = run(tmp_path, "render", env=ALL_EXTERNAL)
    assert result.exit_code == 0, result.output
    env = read_env_file(tmp_path / ".env")
    assert env["DATABASE_URL"] == DB_URL and env["VALKEY_URL"] == VALKEY_URL
    assert env["AWS_SECRET_ACCESS_KEY"] == S3_SECRET
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    for name in ("compose.yml", "compose.metrics.yml", "glitchtip.yaml"):
        text = (tmp_path / name).read_text() if (tmp_path / name).exists() else ""
        assert DB_PASSWORD not in text and VALKEY_PASSWORD not in text and S3_SECRET not in text
    for secret in (DB_PASSWORD, VALKEY_PASSWORD, S3_SECRET):
        assert secret not in result.output
    # Later commands without the variables keep using the external services (read from .env).
    settings = settings_with(tmp_path, {})
    assert settings.database_url == DB_URL and settings.sources["database_url"] == ".env"
    assert settings.uploads_secret_access_key == S3_SECRET
    assert "postgres" not in compose_of(settings)["services"]
    # Emptying them in .env is how an operator returns to the bundled services.
    text = (tmp_path / ".env").read_text()
    # .env keeps them under GlitchTip's own names (what compose.yml interpolates).
    env_keys = ("DATABASE_URL", "VALKEY_URL", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL")
    for key in (*env_keys, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        text = "\n".join(
            f"{key}=" if line.startswith(f"{key}=") else line for line in text.splitlines()
        )
    (tmp_path / ".env").write_text(text + "\n")
    assert run(tmp_path, "render").exit_code == 0
    compose = yaml.safe_load((tmp_path / "compose.yml").read_text())
    assert {"postgres", "valkey"} <= set(compose["services"])


# --- config ---


def test_config_shows_which_services_are_external_with_passwords_masked(tmp_path):
    result = run(tmp_path, "config", "--json", env=ALL_EXTERNAL)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["services"] == {
        "postgres": "postgres://gt:********@db.example.com:5432/glitchtip",
        "valkey": "redis://:********@cache.example.com:6379/0",
        "uploads": "s3://gt-uploads at http://minio.example.com:9000",
    }
    assert data["settings"]["uploads_secret_access_key"]["value"] == "********"
    human = run(tmp_path, "config", env=ALL_EXTERNAL).output
    assert "postgres" in human and "s3://gt-uploads" in human
    for secret in (DB_PASSWORD, VALKEY_PASSWORD, S3_SECRET, "AKIAKIT123"):
        assert secret not in result.output and secret not in human
    (tmp_path / "new").mkdir()
    bundled = json.loads(run(tmp_path / "new", "config", "--json").output)["services"]
    assert bundled == {"postgres": "bundled", "valkey": "bundled", "uploads": "volume"}


# --- preflight ---


class FakeProbe:
    """Stands in for `docker run --rm IMAGE sh -c SCRIPT`: answers per image."""

    def __init__(self, answers):
        self.answers = answers
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, image, script, environment):
        self.calls.append((image, script, dict(environment)))
        return self.answers[image]


def external_ctx(tmp_path, **overrides):
    values = {"database_url": DB_URL, "valkey_url": VALKEY_URL, **overrides}
    return make_ctx(tmp_path, engine=FakeEngine(), **values)


def preflight_with(ctx, probe):
    return preflight.preflight(
        ctx,
        compose_version=lambda: (2, 40, 3),
        disk_free=lambda info: 50 << 30,
        is_free=lambda host, port: True,
        run_probe=probe,
    )


def test_preflight_asks_the_external_database_and_valkey(tmp_path):
    ctx = external_ctx(tmp_path, database_sslmode="require")
    settings = ctx.load_settings()
    probe = FakeProbe({
        settings.postgres_image: external.ProbeResult(0, "170004 500\n"),
        settings.valkey_image: external.ProbeResult(0, "PONG\n"),
    })  # fmt: skip
    outcome = preflight_with(ctx, probe)
    assert "Postgres 17 at db.example.com" in outcome.detail
    assert "Valkey at cache.example.com" in outcome.detail
    (_, pg_script, pg_env), (_, valkey_script, valkey_env) = probe.calls
    # The URL GlitchTip gets, its password in PGPASSWORD: never in an argument (host's `ps`).
    assert pg_env["KIT_PROBE_URL"] == "postgres://gt@db.example.com:5432/glitchtip?sslmode=require"
    assert pg_env["PGPASSWORD"] == DB_PASSWORD
    assert valkey_env["VALKEYCLI_AUTH"] == VALKEY_PASSWORD
    assert (valkey_env["KIT_HOST"], valkey_env["KIT_PORT"], valkey_env["KIT_DB"]) == (
        "cache.example.com", "6379", "0",
    )  # fmt: skip
    assert valkey_env["KIT_TLS"] == "" and valkey_env["KIT_USER"] == ""
    assert DB_PASSWORD not in pg_script and VALKEY_PASSWORD not in valkey_script


def test_the_probe_environments_decode_passwords_and_turn_tls_on():
    env = external.postgres_environment("postgresql://u%40x:p%23w@db:6543/gt?sslmode=require")
    assert env["KIT_PROBE_URL"] == "postgresql://u%40x@db:6543/gt?sslmode=require"
    assert env["PGPASSWORD"] == "p#w"
    tls = external.valkey_environment("rediss://app:s%2Fecret@cache:6380/3")
    assert tls["KIT_TLS"] == "--tls" and tls["KIT_USER"] == "app" and tls["KIT_DB"] == "3"
    assert tls["VALKEYCLI_AUTH"] == tls["REDISCLI_AUTH"] == "s/ecret"
    assert "VALKEYCLI_AUTH" not in external.valkey_environment("redis://cache")
    # valkeys:// is Valkey's own spelling of TLS (any case: URL schemes are case-insensitive)
    for url in ("valkeys://cache:6380", "VALKEYS://cache", "Rediss://cache"):
        assert external.valkey_environment(url)["KIT_TLS"] == "--tls", url
    for url in ("valkey://cache", "redis://cache"):
        plain = external.valkey_environment(url)
        assert plain["KIT_TLS"] == "" and plain["KIT_PORT"] == "6379" and plain["KIT_DB"] == "0"


def test_preflight_refuses_an_old_or_silent_server_in_one_line_without_secrets(tmp_path):
    ctx = external_ctx(tmp_path)
    settings = ctx.load_settings()
    refused = (
        f'psql: error: connection to server failed: password "{DB_PASSWORD}" rejected for {DB_URL}'
    )
    probe = FakeProbe({
        settings.postgres_image: external.ProbeResult(2, refused),
        settings.valkey_image: external.ProbeResult(0, "NOAUTH Authentication required.\n"),
    })  # fmt: skip
    with pytest.raises(KitError) as caught:
        preflight_with(ctx, probe)
    line = caught.value.line()
    assert "the external database at db.example.com does not answer" in line
    assert "the external Valkey at cache.example.com does not answer PING (NOAUTH" in line
    assert DB_PASSWORD not in line and "\n" not in line
    old = FakeProbe({
        settings.postgres_image: external.ProbeResult(0, "130011 500\n"),
        settings.valkey_image: external.ProbeResult(0, "PONG\n"),
    })  # fmt: skip
    with pytest.raises(KitError, match="is Postgres 13; GlitchTip needs 14 or newer"):
        preflight_with(ctx, old)


def test_preflight_refuses_a_server_whose_max_connections_the_pools_exceed(tmp_path):
    ctx = external_ctx(tmp_path, db_pool_max_size="30", web_concurrency="2")
    settings = ctx.load_settings()
    needed = external.pools_need(settings)
    assert needed > 50
    probe = FakeProbe({
        settings.postgres_image: external.ProbeResult(0, "180001 50\n"),
        settings.valkey_image: external.ProbeResult(0, "PONG\n"),
    })  # fmt: skip
    with pytest.raises(KitError) as caught:
        preflight_with(ctx, probe)
    assert f"allows 50 connections, but the web and worker pools may open {needed}" in (
        caught.value.line()
    )
    roomy = FakeProbe({**probe.answers, settings.postgres_image: external.ProbeResult(
        0, f"180001 {needed}\n")})  # fmt: skip
    assert f"max_connections {needed}, pools {needed}" in preflight_with(ctx, roomy).detail


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("database_url", "postgres://gt:pw@127.0.0.1:5432/glitchtip"),
        ("database_url", "postgres://gt@localhost/glitchtip?password=pw"),
        ("database_url", "postgresql://gt:pw@[::1]:5432/glitchtip"),
        ("valkey_url", "redis://:pw@127.0.0.2:6379/0"),
        ("valkey_url", "redis://0.0.0.0:6379/0"),
    ],
)
def test_a_loopback_address_is_refused_with_the_settings(tmp_path, name, url):
    """Inside a container, loopback is the container itself: refused when the settings are read
    (`config`, `render`), not only by `up`'s preflight, and the password stays masked."""
    with pytest.raises(SettingsError, match=r"is the container's own loopback") as caught:
        external_ctx(tmp_path, **{name: url}).load_settings()
    assert "pw" not in str(caught.value).replace("password", "")


def test_preflight_of_a_bundled_deployment_runs_no_probe(tmp_path):
    ctx = make_ctx(tmp_path, engine=FakeEngine())
    probe = FakeProbe({})
    preflight_with(ctx, probe)
    assert probe.calls == []
    assert run_preflight(ctx).changed is False


# --- commands that need the bundled services ---


def test_backup_restore_and_upgrade_refuse_data_outside_the_stack(tmp_path):
    settings = settings_with(tmp_path, {"GLITCHTIP_KIT_DATABASE_URL": DB_URL})
    with pytest.raises(UsageError, match=r"cannot back up: the database \(database_url\) lives"):
        require_bundled_data(settings, "back up")
    s3 = settings_with(tmp_path, {"GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-uploads"})
    with pytest.raises(UsageError, match=r"the uploads \(uploads_bucket\)"):
        require_bundled_data(s3, "restore")
    both = settings_with(
        tmp_path, {"GLITCHTIP_KIT_DATABASE_URL": DB_URL, "GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-up"}
    )
    with pytest.raises(UsageError) as refused:
        require_bundled_data(both, "upgrade")
    assert refused.value.message == (
        "cannot upgrade: the database (database_url) and the uploads (uploads_bucket) live "
        "outside this stack; the kit backs up, restores and upgrades the bundled Postgres and "
        "uploads volume only"
    )
    assert refused.value.fix.startswith("use the provider's tools (pg_dump or snapshots")
    require_bundled_data(
        settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL}), "upgrade"
    )
    assert running_services(settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL})) == (
        "postgres",
        "web",
        "worker",
    )


def test_provision_backup_refuses_an_external_database_and_changes_nothing(tmp_path):
    assert run(tmp_path, "render", env={"GLITCHTIP_KIT_DATABASE_URL": DB_URL}).exit_code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line_error(run(tmp_path, "backup"))
    assert "cannot back up: the database (database_url) lives outside this stack" in line
    assert DB_PASSWORD not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_provision_upgrade_refuses_an_external_database_before_touching_the_stack(tmp_path):
    assert run(tmp_path, "render", env={"GLITCHTIP_KIT_DATABASE_URL": DB_URL}).exit_code == 0
    line = one_line_error(run(tmp_path, "upgrade", "--postgres", "18"))
    assert line.startswith("error: cannot upgrade: the database (database_url) lives outside")


def test_the_load_test_reads_the_queue_of_an_external_valkey(tmp_path, monkeypatch):
    from provision.load import measure

    settings = settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL})
    keys = settings.major.task_queue_keys
    seen = []

    def runner(image, script, environment):
        seen.append((image, script, environment))
        return external.ProbeResult(0, "".join(f"{n}\n" for n in range(3, 3 + len(keys))))

    monkeypatch.setattr(external, "engine_runner", lambda engine: runner)
    lengths = measure.external_queue_lengths(object(), settings, keys)
    assert lengths == {key: 3 + n for n, key in enumerate(keys)}
    ((image, script, environment),) = seen
    assert image == settings.valkey_image and VALKEY_PASSWORD not in script
    assert environment["VALKEYCLI_AUTH"] == VALKEY_PASSWORD
    monkeypatch.setattr(
        external,
        "engine_runner",
        lambda engine: lambda *a: external.ProbeResult(0, "NOAUTH Authentication required.\n"),
    )
    with pytest.raises(KitError, match="cannot read the task queue's length from the external"):
        measure.external_queue_lengths(object(), settings, keys)


def test_the_queue_length_script_reads_each_key_and_fails_on_any(tmp_path, monkeypatch):
    """The shell script itself, run by `sh` with a stand-in `valkey-cli` on PATH (prints the
    length of the key it is asked for; exits 1 for a key it cannot read, as valkey-cli does on
    a refused connection): each key is read by name, in order, and one failure fails all."""
    import subprocess

    from provision.load import measure

    settings = settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "valkey-cli"
    cli.write_text(
        '#!/bin/sh\nfor last; do :; done\ncase "$last" in\n'
        "  queue-a) echo 7 ;;\n  'queue b') echo 0 ;;\n"
        "  *) echo 'Could not connect' >&2; exit 1 ;;\nesac\n"
    )
    cli.chmod(0o755)
    calls = []

    def runner(image, script, environment):
        calls.append(script)
        done = subprocess.run(
            ["sh", "-c", script],
            env={**environment, "PATH": f"{bin_dir}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        return external.ProbeResult(done.returncode, done.stdout)

    monkeypatch.setattr(external, "engine_runner", lambda engine: runner)
    assert measure.external_queue_lengths(object(), settings, ["queue-a", "queue b"]) == {
        "queue-a": 7,
        "queue b": 0,
    }
    with pytest.raises(KitError) as refused:
        measure.external_queue_lengths(object(), settings, ["queue-a", "unknown", "queue b"])
    assert refused.value.message == "cannot read the task queue's length from the external Valkey"
    assert refused.value.fix == (
        "check valkey_url and that this host may connect to it (`provision up` preflight)"
    )
    calls.clear()
    assert measure.external_queue_lengths(object(), settings, []) == {}
    assert calls == []  # no key, no container


def test_a_failed_queue_read_is_refused_even_when_it_printed_numbers(tmp_path, monkeypatch):
    from provision.load import measure

    settings = settings_with(tmp_path, {"GLITCHTIP_KIT_VALKEY_URL": VALKEY_URL})
    for answer in (external.ProbeResult(1, "3\n4\n"), external.ProbeResult(0, "3\n")):
        monkeypatch.setattr(external, "engine_runner", lambda engine, a=answer: lambda *_: a)
        with pytest.raises(KitError, match="cannot read the task queue's length"):
            measure.external_queue_lengths(object(), settings, ["a", "b"])


def test_generic_variables_of_other_apps_do_not_switch_the_kit(tmp_path):
    """An operator's shell often holds DATABASE_URL or AWS keys for another app: the kit reads
    only its own names, so `provision up` there still deploys the bundled services."""
    environ = {
        "DATABASE_URL": DB_URL,
        "VALKEY_URL": VALKEY_URL,
        "AWS_ACCESS_KEY_ID": "AKIAOTHERAPP",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }
    settings = settings_with(tmp_path, environ)
    assert not settings.database_url and not settings.valkey_url
    assert not settings.uploads_access_key_id and not settings.uploads_secret_access_key
    services = yaml.safe_load(render_files(settings, SECRETS)["compose.yml"])["services"]
    assert {"postgres", "valkey"} <= set(services)


def test_the_s3_endpoint_is_an_http_url_without_credentials() -> None:
    """uploads_endpoint_url: http(s) only, its trailing slash dropped, credentials refused
    (they go to the access key settings), each refusal with its fix; the password masked."""
    from provision.settings import Invalid, parse_endpoint_url

    assert parse_endpoint_url(" https://s3.example.com/ ") == "https://s3.example.com"
    assert parse_endpoint_url("") == ""
    with pytest.raises(Invalid) as refused:
        parse_endpoint_url("minio:9000")
    assert refused.value.problem == "'minio:9000' is not an http(s) URL"
    assert refused.value.fix == "https://s3.example.com or http://minio:9000"
    with pytest.raises(Invalid) as refused:
        parse_endpoint_url("http://key:hunter2-secret@minio:9000")
    assert refused.value.problem.endswith("holds credentials")
    assert "hunter2-secret" not in refused.value.problem
    assert refused.value.fix == (
        "remove them; set uploads_access_key_id and uploads_secret_access_key instead"
    )
    with pytest.raises(Invalid, match="holds credentials"):
        parse_endpoint_url("http://only-a-user@minio:9000")


def test_a_password_with_a_url_delimiter_is_refused_whole_and_masked() -> None:
    """'#', '?' or '/' in the userinfo would end the server part (the password cut, the rest
    read as a port): refused with the exact delimiter, its percent-encoding, and the password
    masked; the same wording for EMAIL_URL and the service URLs."""
    from provision.settings import Invalid, parse_database_url, parse_email_url

    with pytest.raises(Invalid) as refused:
        parse_email_url("smtp+tls://me:pa#ss@mail.example.com:587")
    assert refused.value.problem == (
        "'smtp+tls://me:********@mail.example.com:587': the user name or password contains "
        "'#', which ends the server part of a URL"
    )
    assert refused.value.fix == "percent-encode it (# as %23) in EMAIL_URL or --set email_url=..."
    with pytest.raises(Invalid) as refused:
        parse_database_url("postgres://u:p/w@db.example.com/x")
    assert refused.value.problem == (
        "'postgres://u:********@db.example.com/x': the user name or password contains '/', "
        "which ends the server part of a URL"
    )
    assert refused.value.fix == "percent-encode it (/ as %2F) in DATABASE_URL"


def test_a_url_that_is_no_valkey_url_is_refused_with_an_example() -> None:
    from provision.settings import Invalid, parse_valkey_url

    with pytest.raises(Invalid) as refused:
        parse_valkey_url("http://cache:6379")
    assert refused.value.problem == "'http://cache:6379' is not a Valkey URL"
    assert refused.value.fix == (
        "use e.g. redis://:password@valkey.example.com:6379/0 (rediss:// for TLS)"
    )


class _DockerClient:
    """The parts of docker-py's `DockerClient` the probe runner uses, with docker-py's own
    exceptions: images by reference (a pull adds the one it names), and a container run that
    prints `output`, exits non-zero (`ContainerError` with its stderr) or finds no image."""

    def __init__(self, images: set[str], output: bytes = b"", exit_status: int = 0) -> None:
        from types import SimpleNamespace

        self.images_present, self.output, self.exit_status = images, output, exit_status
        self.pulled: list[str] = []
        self.runs: list[tuple[str, list[str], dict]] = []
        self.api = SimpleNamespace(inspect_image=self._inspect)
        self.images = SimpleNamespace(pull=self._pull)
        self.containers = SimpleNamespace(run=self._run)

    def _inspect(self, reference: str) -> dict:
        from docker.errors import ImageNotFound

        if reference not in self.images_present:
            raise ImageNotFound(f"No such image: {reference}")
        return {"Id": "sha256:" + reference.encode().hex()}

    def _pull(self, reference: str) -> None:
        self.pulled.append(reference)
        self.images_present.add(reference)

    def _run(self, image: str, command: list[str], **options) -> bytes:
        from docker.errors import ContainerError, ImageNotFound

        self.runs.append((image, command, options))
        if image not in self.images_present:
            raise ImageNotFound(f"No such image: {image}")
        if self.exit_status:
            raise ContainerError("probe", self.exit_status, command, image, self.output)
        return self.output


def test_the_engine_runner_pulls_a_missing_image_and_reads_the_probes_answer() -> None:
    """`docker run --rm IMAGE sh -c SCRIPT` through the engine: a missing image is pulled
    first (Compose never pulls the image of a service that is external), what the container
    printed comes back as text, a non-zero exit as its code and stderr (an answer, not an
    engine failure), and an image that vanished as one line with the fix."""
    from provision.runtime.engine import Engine

    client = _DockerClient({"postgres:17"}, b"PONG\n")
    run_probe = external.engine_runner(Engine(client))
    answer = run_probe("valkey/valkey:8", "valkey-cli ping", {"VALKEYCLI_AUTH": "pw"})
    assert answer == external.ProbeResult(0, "PONG\n")
    assert client.pulled == ["valkey/valkey:8"]
    assert client.runs == [
        (
            "valkey/valkey:8",
            ["sh", "-c", "valkey-cli ping"],
            {
                "environment": {"VALKEYCLI_AUTH": "pw"},
                "remove": True,
                "stdout": True,
                "stderr": True,
                "network_mode": "bridge",
                "labels": {"org.glitchtip-kit.probe": "external-service"},
            },
        )
    ]
    present = _DockerClient({"postgres:17"}, b"ok\n")
    assert external.engine_runner(Engine(present))("postgres:17", "true", {}).output == "ok\n"
    assert present.pulled == []

    refused = _DockerClient({"postgres:17"}, b"FATAL: password authentication failed\n")
    refused.exit_status = 2
    answer = external.engine_runner(Engine(refused))("postgres:17", "psql", {})
    assert answer == external.ProbeResult(2, "FATAL: password authentication failed\n")
    silent = _DockerClient({"postgres:17"}, b"", exit_status=1)
    assert external.engine_runner(Engine(silent))("postgres:17", "false", {}) == (
        external.ProbeResult(1, "")
    )

    vanished = _DockerClient({"postgres:17"})
    vanished.images = type("Images", (), {"pull": staticmethod(lambda reference: None)})()
    with pytest.raises(KitError) as missing:
        external.engine_runner(Engine(vanished))("valkey/valkey:8", "true", {})
    assert (missing.value.message, missing.value.fix) == (
        "image valkey/valkey:8 is missing",
        "pull it, or check the image setting",
    )


def test_a_probe_printing_bytes_that_are_not_utf8_is_read_with_replacement_characters() -> None:
    """A server's banner or error in another encoding (Latin-1 here) is still an answer: the
    bytes that are no UTF-8 read as U+FFFD, on stdout and on a failed probe's stderr alike,
    never a UnicodeDecodeError in place of the check's one line."""
    from provision.runtime.engine import Engine

    latin1 = "FATAL: la base « glitchtip » n'existe pas\n".encode("latin-1")
    answered = _DockerClient({"postgres:17"}, b"17\xe9 100\n")
    assert external.engine_runner(Engine(answered))("postgres:17", "psql", {}) == (
        external.ProbeResult(0, "17\ufffd 100\n")
    )
    refused = _DockerClient({"postgres:17"}, latin1, exit_status=2)
    assert external.engine_runner(Engine(refused))("postgres:17", "psql", {}) == (
        external.ProbeResult(2, "FATAL: la base \ufffd glitchtip \ufffd n'existe pas\n")
    )
