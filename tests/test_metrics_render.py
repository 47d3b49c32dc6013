"""Rendering of the metrics stack: compose.metrics.yml, monitoring/ and the `.env` keys.

The committed top-level `compose.metrics.yml` and `monitoring/` are the default render; no
secret reaches any rendered file (the token, Grafana's and the database password travel as
Compose secrets with an `environment:` source); each major gets its own scrape of GlitchTip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from provision.envfile import read_env_file
from provision.errors import UsageError
from provision.monitoring import files as monitoring
from provision.render import METRICS_FILE, render_files, write_rendered
from provision.runtime.compose_check import compose_model
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

REPO = Path(__file__).resolve().parent.parent
SECRETS = {
    "SECRET_KEY": "fake-secret-key-" + "x" * 50,
    "POSTGRES_PASSWORD": "fake-postgres-password",
    "DJANGO_SUPERUSER_PASSWORD": "fake-admin-password",
    "GRAFANA_ADMIN_PASSWORD": "fake-grafana-password",
    "GLITCHTIP_API_TOKEN": "fake0api0token0" + "f" * 49,
}
METRICS_SERVICES = {
    "prometheus",
    "grafana",
    "postgres-exporter",
    "valkey-exporter",
    "project-exporter",
}
JOBS = ["prometheus", "glitchtip", "project-exporter", "postgres", "valkey"]


def settings_for(directory: Path, yaml_text: str = "", **overrides):
    if yaml_text:
        (directory / "glitchtip.yaml").write_text(yaml_text, encoding="utf-8")
    return load_settings(directory, overrides, environ={})


def rendered(directory: Path, yaml_text: str = "", **overrides) -> dict[str, str]:
    return render_files(settings_for(directory, yaml_text, **overrides), SECRETS)


# --- the committed files ---


REGENERATE = "regenerate with `.venv/bin/python tests/write_committed.py`"


@pytest.mark.snapshot
def test_committed_compose_metrics_is_the_default_render(tmp_path):
    committed = (REPO / METRICS_FILE).read_text(encoding="utf-8")
    assert rendered(tmp_path)[METRICS_FILE] == committed, REGENERATE


@pytest.mark.snapshot
def test_committed_monitoring_directory_is_the_default_render(tmp_path):
    files = {
        name: text for name, text in rendered(tmp_path).items() if name.startswith("monitoring/")
    }
    committed = {
        path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((REPO / "monitoring").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(committed) == sorted(files), REGENERATE  # no file missing, none left over
    for name, text in files.items():
        assert committed[name] == text, f"{name} differs from the default render: {REGENERATE}"


# --- secrets ---


@pytest.mark.parametrize("major", [5, 6])
def test_no_secret_in_any_rendered_file_but_env(tmp_path, major):
    files = rendered(tmp_path, glitchtip_major=str(major), metrics="true")
    assert {"compose.metrics.yml", "monitoring/project-exporter/config.json"} <= set(files)
    for name, text in files.items():
        if name == ".env":
            continue
        for key, secret in SECRETS.items():
            assert secret not in text, f"{key} in {name}"
    env = files[".env"]
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert f"{key}={SECRETS[key]}" in env


def test_grafana_password_is_generated_once_into_a_private_env(tmp_path):
    settings = settings_for(tmp_path, metrics="true")
    os.umask(0o022)
    write_rendered(settings)
    env_path = tmp_path / ".env"
    assert env_path.stat().st_mode & 0o777 == 0o600
    first = read_env_file(env_path)["GRAFANA_ADMIN_PASSWORD"]
    assert len(first) >= 16
    write_rendered(settings_for(tmp_path, metrics="true", grafana_port="3001"))
    assert read_env_file(env_path)["GRAFANA_ADMIN_PASSWORD"] == first


def test_docker_compose_config_shows_no_token_or_password(tmp_path):
    settings = settings_for(tmp_path, metrics="true", glitchtip_major="5")
    write_rendered(settings)
    with (tmp_path / ".env").open("a") as handle:
        handle.write(f"GLITCHTIP_API_TOKEN={SECRETS['GLITCHTIP_API_TOKEN']}\n")
    env = read_env_file(tmp_path / ".env")
    # The token reached .env after the render (the project step); the metrics step derives it.
    from provision import secret_files

    secret_files.sync(settings)
    env = read_env_file(tmp_path / ".env")
    model = compose_model(tmp_path, ["compose.yml", METRICS_FILE], interpolate=True)
    text = json.dumps(model)
    for key in ("GLITCHTIP_API_TOKEN", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD"):
        assert env[key] not in text
    for name, key in (
        ("glitchtip_api_token", "GLITCHTIP_API_TOKEN"),
        ("grafana_admin_password", "GRAFANA_ADMIN_PASSWORD"),
        ("postgres_password", "POSTGRES_PASSWORD"),
    ):
        source = Path(model["secrets"][name]["file"])  # a file, never `environment:`
        assert "environment" not in model["secrets"][name]
        assert source == tmp_path / "secrets" / name and source.read_text() == env[key]
    services = model["services"]
    assert set(services) >= METRICS_SERVICES
    for name in ("prometheus", "grafana", "postgres-exporter", "project-exporter"):
        # A bind mount: no writable root needed.
        assert services[name]["read_only"] is True, name
        for secret in services[name]["secrets"]:
            # uid/gid make engine 20.10 look the container's user up on the host, and fail;
            # a mode is not applied to a bind mount (the host file's 0644 is what counts)
            assert not {"uid", "gid", "mode"} & set(secret), name
    assert services["prometheus"]["secrets"][0]["source"] == "glitchtip_api_token"  # 5 only
    assert services["postgres-exporter"]["environment"]["DATA_SOURCE_PASS_FILE"] == (
        "/run/secrets/postgres_password"
    )


# --- compose.metrics.yml ---


def metrics_compose(tmp_path, **overrides) -> dict:
    return yaml.safe_load(rendered(tmp_path, **overrides)[METRICS_FILE])


def test_services_ports_and_hardening(tmp_path):
    compose = metrics_compose(tmp_path, bind_address="10.1.2.3", prometheus_port="9191")
    services = compose["services"]
    assert set(services) == METRICS_SERVICES | {"web"}
    assert services["prometheus"]["ports"] == [
        {"target": 9090, "published": "9191", "host_ip": "10.1.2.3", "protocol": "tcp"}
    ]
    assert services["grafana"]["ports"][0]["host_ip"] == "10.1.2.3"
    for name in ("postgres-exporter", "valkey-exporter", "project-exporter"):
        assert "ports" not in services[name], f"{name} must not be published"
    for name in METRICS_SERVICES:
        service = services[name]
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["logging"]["driver"] == "json-file", name
        assert service["restart"] == "unless-stopped", name
        assert "user" not in service, f"{name}: a numeric user breaks secrets on engine 20.10"
    assert set(compose["volumes"]) == {"prometheus-data", "grafana-data"}


def test_images_come_from_the_settings(tmp_path):
    services = metrics_compose(
        tmp_path,
        prometheus_image="mirror.local/prom:1.0",
        grafana_image="mirror.local/graf:2.0",
        postgres_exporter_image="mirror.local/pge:3.0",
        valkey_exporter_image="mirror.local/vke:4.0",
    )["services"]
    assert [services[name]["image"] for name in sorted(METRICS_SERVICES)] == [
        "mirror.local/graf:2.0",
        "mirror.local/pge:3.0",
        "glitchtip/glitchtip:6.2.6",  # the project exporter runs in GlitchTip's image
        "mirror.local/prom:1.0",
        "mirror.local/vke:4.0",
    ]


def test_grafana_is_closed_and_reads_its_password_from_a_secret(tmp_path):
    grafana = metrics_compose(tmp_path)["services"]["grafana"]
    environment = grafana["environment"]
    assert environment["GF_SECURITY_ADMIN_USER"] == "admin"
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment
    assert grafana["secrets"] == ["grafana_admin_password"]


@pytest.mark.parametrize(
    ("major", "keys"), [(5, "db0=celery"), (6, "db0={vt}:q:ingest,db0={vt}:q:default")]
)
def test_valkey_exporter_watches_the_task_queue_of_the_major(tmp_path, major, keys):
    services = metrics_compose(tmp_path, glitchtip_major=str(major))["services"]
    environment = services["valkey-exporter"]["environment"]
    assert environment["REDIS_EXPORTER_CHECK_SINGLE_KEYS"] == keys
    assert environment["REDIS_ADDR"] == "redis://valkey:6379"


def test_web_serves_metrics_to_prometheus_only_with_metrics_on(tmp_path):
    files = rendered(tmp_path, glitchtip_domain="https://errors.example.com")
    web = yaml.safe_load(files[METRICS_FILE])["services"]["web"]["environment"]
    assert web["ENABLE_OBSERVABILITY_API"] == "true"
    assert web["ALLOWED_HOSTS"] == "errors.example.com,localhost,127.0.0.1,web"
    assert "ENABLE_OBSERVABILITY_API" not in files["compose.yml"]
    assert ",web" not in files["compose.yml"]


def test_rules_and_exporter_files_change_the_services_they_are_mounted_in(tmp_path):
    files = rendered(tmp_path)
    before = monitoring.digests(files)
    changed = dict(files)
    changed["monitoring/prometheus/rules/glitchtip.yml"] = "groups: []\n"
    after = monitoring.digests(changed)
    assert after["prometheus"] != before["prometheus"]
    assert after["grafana"] == before["grafana"]
    assert after["project_exporter"] == before["project_exporter"]
    changed["monitoring/project-exporter/config.json"] = "{}\n"
    assert monitoring.digests(changed)["project_exporter"] != before["project_exporter"]
    labels = yaml.safe_load(files[METRICS_FILE])["services"]["prometheus"]["labels"]
    assert labels["org.glitchtip-kit.config-digest"] == before["prometheus"]


# --- .env ---


def test_env_records_metrics_and_names_the_file(tmp_path):
    assert "GLITCHTIP_KIT_METRICS=false" in rendered(tmp_path)[".env"]
    env = rendered(tmp_path, metrics="true")[".env"]
    assert "GLITCHTIP_KIT_METRICS=true" in env
    assert "COMPOSE_FILE=compose.yml:compose.metrics.yml" in env
    env = rendered(tmp_path, metrics="true", glitchtip_major="5", advanced_partitioning="true")
    assert "COMPOSE_FILE=compose.yml:compose.part.yml:compose.metrics.yml" in env[".env"]


# --- prometheus.yml ---


def prometheus_config(tmp_path, **overrides) -> dict:
    return yaml.safe_load(rendered(tmp_path, **overrides)["monitoring/prometheus/prometheus.yml"])


def test_prometheus_scrapes_glitchtip_6_on_metrics_without_a_token(tmp_path):
    config = prometheus_config(tmp_path, glitchtip_major="6")
    assert [job["job_name"] for job in config["scrape_configs"]] == JOBS
    glitchtip = config["scrape_configs"][1]
    assert glitchtip["metrics_path"] == "/metrics"
    assert glitchtip["static_configs"] == [{"targets": ["web:8000"]}]
    assert "authorization" not in glitchtip


def test_prometheus_scrapes_glitchtip_5_with_the_token_file(tmp_path):
    config = prometheus_config(tmp_path, glitchtip_major="5")
    glitchtip = config["scrape_configs"][1]
    assert glitchtip["metrics_path"] == "/api/0/observability/django/"
    assert glitchtip["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/glitchtip_api_token",
    }
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["project-exporter"] == ["project-exporter:9808"]
    assert targets["postgres"] == ["postgres-exporter:9187"]
    assert targets["valkey"] == ["valkey-exporter:9121"]


def test_prometheus_loads_each_rule_file_of_the_kit_by_name(tmp_path):
    config = prometheus_config(tmp_path)
    names = sorted(
        path.name for path in (REPO / "templates/monitoring/prometheus/rules").glob("*.yml")
    )
    assert names, "the kit ships rule files"
    assert config["rule_files"] == [f"/etc/prometheus/rules/{name}" for name in names]


def test_retention_reaches_prometheus(tmp_path):
    command = metrics_compose(tmp_path, prometheus_retention="30d")["services"]["prometheus"][
        "command"
    ]
    assert "--storage.tsdb.retention.time=30d" in command


# --- the exporter's configuration ---


def test_exporter_config_has_the_org_slug_and_budgets_in_seconds(tmp_path):
    files = rendered(
        tmp_path,
        "organization: Acme Corp\nglitchtip_domain: https://errors.example.com\n"
        "error_budgets:\n  web-app: {max_errors: 50, per: 6h}\n",
    )
    config = json.loads(files["monitoring/project-exporter/config.json"])
    assert config == {
        "api_url": "http://web:8000",
        "host_header": "errors.example.com",
        "organization": "acme-corp",
        "poll_seconds": 60,
        "max_projects": 50,
        "listen_port": 9808,
        "token_file": "/run/secrets/glitchtip_api_token",
        "error_budgets": {
            "default": {"max_errors": 200, "per_seconds": 86400},
            "web-app": {"max_errors": 50, "per_seconds": 21600},
        },
    }
    exporter = files["monitoring/project-exporter/exporter.py"]
    # the exporter's source as is (under `make mutation`: the checkout's, see conftest.py)
    from provision.monitoring.files import EXPORTER_SOURCE

    assert EXPORTER_SOURCE.name == "project_exporter.py"
    assert exporter == EXPORTER_SOURCE.read_text()


@pytest.mark.parametrize("per", ["1h", "41d"])
def test_the_exporter_accepts_every_config_the_settings_accept(tmp_path, per):
    """The settings' window bounds and the exporter's must agree: a budget the settings let
    through but the exporter refuses would leave project-exporter restarting in a loop."""
    from provision.monitoring.project_exporter import parse_config

    files = rendered(tmp_path, f"error_budgets:\n  web: {{max_errors: 5, per: {per}}}\n")
    config = parse_config(json.loads(files["monitoring/project-exporter/config.json"]))
    seconds = {"1h": 3600, "41d": 41 * 86400}[per]
    assert config.error_budgets["web"].per_seconds == seconds


# --- writing ---


def test_monitoring_directories_are_readable_by_the_containers_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_rendered(settings_for(tmp_path))
    finally:
        os.umask(old)
    for directory in monitoring.MOUNTED_DIRECTORIES:
        assert (tmp_path / directory).is_dir(), directory  # mounted: must exist, even empty
    for path in (tmp_path / "monitoring").rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert path.stat().st_mode & 0o777 == expected, path
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


def test_a_symlinked_monitoring_directory_is_refused_before_any_write(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deployment = tmp_path / "deployment"
    deployment.mkdir()
    (deployment / "monitoring").symlink_to(elsewhere)
    with pytest.raises(UsageError) as caught:
        write_rendered(settings_for(deployment))
    assert caught.value.line().startswith(f"{deployment / 'monitoring'} is a symbolic link")
    assert sorted(p.name for p in deployment.iterdir()) == ["monitoring"]
    assert list(elsewhere.iterdir()) == []


def test_render_check_validates_the_metrics_combinations(tmp_path):
    from cli_run import run

    (tmp_path / "glitchtip.yaml").write_text("metrics: true\nglitchtip_major: 5\n")
    result = run(tmp_path, "render", "--check")
    assert result.exit_code == 0, result.output
    assert "compose.yml + compose.metrics.yml valid" in result.output
    assert "compose.yml + compose.part.yml + compose.metrics.yml valid" in result.output
