"""Rendered files checked by a real Compose v2 (`compose config`), and the parsed model's
properties: healthchecks, dependency conditions, no published database ports, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.envfile import read_env_file
from provision.errors import KitError
from provision.render import COMBINATIONS, write_rendered
from provision.runtime.compose_check import check_compose, compose_model
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

LONG_RUNNING = ("postgres", "valkey", "web", "worker")
VARIANTS = {
    "default-6": {},
    "major-5": {"glitchtip_major": "5"},
    "major-5-partman": {"glitchtip_major": "5", "advanced_partitioning": "true"},
    "public-https": {
        "glitchtip_domain": "https://errors.example.com",
        "bind_address": "0.0.0.0",
        "http_port": "8443",
        "enable_user_registration": "true",
        "proxy": "none",  # the operator's own TLS proxy in front of web's published port
    },
    "tls-proxy": {"glitchtip_domain": "https://errors.example.com", "bind_address": "0.0.0.0"},
    "test-images": {
        "glitchtip_image": "glitchtip-kit-test/glitchtip:6",
        "postgres_image": "glitchtip-kit-test/postgres:17",
        "valkey_image": "glitchtip-kit-test/valkey:8",
    },
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One rendered and compose-checked directory per variant (rendered once per module)."""
    from provision import settings as settings_module

    original = settings_module.host_resources
    settings_module.host_resources = lambda: (2, 4096)
    try:
        directories = {}
        for name, overrides in VARIANTS.items():
            directory = tmp_path_factory.mktemp(name)
            write_rendered(load_settings(directory, overrides, environ={}), check=True)
            directories[name] = directory
        return directories
    finally:
        settings_module.host_resources = original


def secrets_of(directory: Path) -> list[str]:
    env = read_env_file(directory / ".env")
    return [env[key] for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("files", COMBINATIONS, ids=lambda files: "+".join(files))
def test_compose_accepts_every_file_combination(rendered, variant: str, files) -> None:
    check_compose(rendered[variant], list(files))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("files", COMBINATIONS, ids=lambda files: "+".join(files))
def test_model_properties(rendered, variant: str, files) -> None:
    directory = rendered[variant]
    model = compose_model(directory, list(files))
    services = model["services"]
    assert {"postgres", "valkey", "migrate", "web", "worker"} <= set(services)
    for name in LONG_RUNNING:
        health = services[name].get("healthcheck")
        assert health and health["test"], f"{name} has no healthcheck"
        assert "start_interval" not in health  # needs Docker Engine >= 25
        assert services[name]["restart"] == "unless-stopped"
    for name, service in services.items():
        assert not service.get("privileged"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service["logging"]["options"]["max-size"], name
    assert "ports" not in services["postgres"] and "ports" not in services["valkey"]
    command = services["migrate"]["command"]
    assert command[:2] == ["sh", "-c"] and command[2].startswith("./bin/run-migrate.sh || exit")
    # Secrets only as files: the admin's password is read by migrate's shell from its file.
    assert "DJANGO_SUPERUSER_PASSWORD" not in services["migrate"]["environment"]
    assert "cat /run/secrets/django_superuser_password" in command[2]
    assert "django_superuser_password" in mounted(services["migrate"])
    assert "django_superuser_password" not in mounted(services["web"])
    for dependent in ("web", "worker"):
        conditions = {k: v["condition"] for k, v in services[dependent]["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully"
        assert conditions["postgres"] == "service_healthy"
        assert conditions["valkey"] == "service_healthy"
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )
    assert "POSTGRES_HOST_AUTH_METHOD" not in services["postgres"]["environment"]
    for name in ("migrate", "web", "worker"):
        assert "SECRET_KEY" not in services[name]["environment"]
        assert services[name]["environment"]["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
        assert services[name]["environment"]["DATABASE_URL_FILE"] == "/run/secrets/database_url"
        assert {"secret_key", "database_url", "email_url"} <= mounted(services[name])
    for name, spec in model["secrets"].items():
        assert "environment" not in spec and Path(spec["file"]) == directory / "secrets" / name
    volume_sources = {
        mount.get("source") for service in services.values() for mount in service.get("volumes", [])
    }
    assert {"postgres-data", "valkey-data", "uploads"} <= volume_sources
    if "compose.part.yml" in files:
        setup = services["partman-setup"]
        conditions = {k: v["condition"] for k, v in setup["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully"
        assert conditions["postgres"] == "service_healthy"
        assert setup["environment"]["GLITCHTIP_ADVANCED_PARTITIONING"] == "true"
        for name in ("migrate", "web", "worker"):
            assert services[name]["environment"]["GLITCHTIP_ADVANCED_PARTITIONING"] == "true"
        assert "shared_preload_libraries=pg_partman_bgw" in services["postgres"]["command"]
    text = json.dumps(model)
    for secret in secrets_of(directory):
        assert secret not in text
        for name in files:
            assert secret not in (directory / name).read_text()


def test_published_port_follows_settings(rendered) -> None:
    web = compose_model(rendered["public-https"], ["compose.yml"])["services"]["web"]
    assert web["ports"][0]["host_ip"] == "0.0.0.0"
    assert str(web["ports"][0]["published"]) == "8443"
    default = compose_model(rendered["default-6"], ["compose.yml"])["services"]["web"]
    assert default["ports"][0]["host_ip"] == "127.0.0.1"
    # with the kit's TLS proxy, web publishes nothing and the proxy 80/443 (+ the kit's door)
    services = compose_model(rendered["tls-proxy"], ["compose.yml"])["services"]
    assert "ports" not in services["web"]
    published = {(p["host_ip"], str(p["published"])) for p in services["proxy"]["ports"]}
    assert published == {("0.0.0.0", "80"), ("0.0.0.0", "443"), ("127.0.0.1", "8000")}


def mounted(service: dict) -> set[str]:
    return {s["source"] if isinstance(s, dict) else s for s in service.get("secrets", [])}


def test_interpolated_model_gets_secrets_as_files_from_env(rendered) -> None:
    """`docker compose config` with the real .env holds no secret value: the containers get
    files under secrets/, which hold exactly the values of .env."""
    directory = rendered["default-6"]
    env = read_env_file(directory / ".env")
    model = compose_model(directory, list(COMBINATIONS[-1]), interpolate=True)
    text = json.dumps(model)
    for key in (
        "SECRET_KEY",
        "POSTGRES_PASSWORD",
        "DJANGO_SUPERUSER_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert env[key] not in text, key  # compared, never printed
    web_env = model["services"]["web"]["environment"]
    assert web_env["WEB_CONCURRENCY"] == env["GLITCHTIP_KIT_WEB_CONCURRENCY"]
    secrets = directory / "secrets"
    assert (secrets / "secret_key").read_text() == env["SECRET_KEY"]
    assert (secrets / "postgres_password").read_text() == env["POSTGRES_PASSWORD"]
    assert (secrets / "database_url").read_text() == (
        f"postgres://glitchtip:{env['POSTGRES_PASSWORD']}@postgres:5432/glitchtip"
    )
    for name, spec in model["secrets"].items():
        assert Path(spec["file"]) == secrets / name and Path(spec["file"]).is_file(), name
    labels = model["services"]["web"]["labels"]
    assert labels["org.glitchtip-kit.files-digest"] == env["GLITCHTIP_KIT_DIGEST_GLITCHTIP"] != ""
    assert model["services"]["postgres"]["volumes"][0]["target"] == "/var/lib/postgresql"


def test_test_images_use_the_old_postgres_layout(rendered) -> None:
    model = compose_model(rendered["test-images"], ["compose.yml"])
    assert model["services"]["postgres"]["volumes"][0]["target"] == "/var/lib/postgresql/data"


def test_missing_secret_file_is_derived_again_from_env(tmp_path: Path) -> None:
    """A secret file removed or edited by hand is written again from .env by the next render
    (.env is the one source of truth; nothing is regenerated)."""
    settings = load_settings(tmp_path, {}, environ={})
    write_rendered(settings)
    env = read_env_file(tmp_path / ".env")
    (tmp_path / "secrets" / "secret_key").unlink()
    (tmp_path / "secrets" / "postgres_password").write_text("edited")
    write_rendered(settings)
    assert (tmp_path / "secrets" / "secret_key").read_text() == env["SECRET_KEY"]
    assert (tmp_path / "secrets" / "postgres_password").read_text() == env["POSTGRES_PASSWORD"]
    assert read_env_file(tmp_path / ".env") == env


def test_compose_error_is_one_line_with_secrets_redacted(tmp_path: Path) -> None:
    secret = "S3cretValueThatMustNotLeak-0123456789abcdefghijklmnopqrstuvwxyz"
    (tmp_path / ".env").write_text(f"SECRET_KEY={secret}\n")
    (tmp_path / "bad.yml").write_text(
        f'services:\n  web:\n    image: "x:1"\n    ports: ["{secret}"]\n'
    )
    with pytest.raises(KitError) as caught:
        check_compose(tmp_path, ["bad.yml"])
    line = caught.value.line()
    assert secret not in line and "********" in line
    assert "\n" not in line
