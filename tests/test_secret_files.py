"""The secret files (provision/secret_files.py): one table drives what each container mounts and
reads, the files are derived from `.env` with safe modes, hostile targets are refused, and the
digest labels change exactly for the readers of a rotated secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from provision import secret_files
from provision.envfile import read_env_file
from provision.errors import UsageError
from provision.render import render_files, write_rendered
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

SECRETS = {
    "SECRET_KEY": "k" * 50,
    "POSTGRES_PASSWORD": "p" * 24,
    "DJANGO_SUPERUSER_PASSWORD": "a" * 20,
    "GRAFANA_ADMIN_PASSWORD": "g" * 20,
    "GLITCHTIP_API_TOKEN": "t" * 64,
}


def test_rotating_secret_key_changes_only_its_readers_digests(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {}, environ={})
    before = secret_files.versions(secret_files.values(settings, SECRETS))
    rotated = {**SECRETS, "SECRET_KEY": "n" * 50}
    after = secret_files.versions(secret_files.values(settings, rotated))
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"GLITCHTIP_KIT_DIGEST_GLITCHTIP", "GLITCHTIP_KIT_DIGEST_MIGRATE"}
    token = secret_files.versions(
        secret_files.values(settings, {**SECRETS, "GLITCHTIP_API_TOKEN": "u" * 64})
    )
    assert {key for key in before if before[key] != token[key]} == {
        "GLITCHTIP_KIT_DIGEST_PROMETHEUS",
        "GLITCHTIP_KIT_DIGEST_PROJECT_EXPORTER",
    }
    for digest in before.values():  # no value, nor a piece of one
        assert len(digest) == 12 and not any(digest in value for value in SECRETS.values())


def test_files_modes_and_exact_values(tmp_path: Path) -> None:
    old = os.umask(0o000)  # the modes do not depend on the umask
    try:
        write_rendered(load_settings(tmp_path, {}, environ={}))
    finally:
        os.umask(old)
    env = read_env_file(tmp_path / ".env")
    directory = tmp_path / "secrets"
    assert directory.stat().st_mode & 0o777 == 0o700
    names = sorted(path.name for path in directory.iterdir())
    assert names == sorted(
        ["secret_key", "database_url", "email_url", "django_superuser_password",
         "postgres_password", "grafana_admin_password", "glitchtip_api_token"]
    )  # fmt: skip
    for path in directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name
    # FileAwareEnv takes the file's bytes as they are: no trailing newline.
    assert (directory / "secret_key").read_bytes() == env["SECRET_KEY"].encode()
    assert (directory / "email_url").read_text() == "consolemail://"
    assert (directory / "glitchtip_api_token").read_text() == ""  # minted later by `up`


def test_external_services_get_files_and_leave_when_unset(tmp_path: Path) -> None:
    environ = {
        "GLITCHTIP_KIT_VALKEY_URL": "redis://:Vk-Pass-8812bb@cache.example.com:6379/0",
        "GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-uploads",
        "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID": "AKIA-ID-0042",
        "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY": "S3-Secret-9931cc",
    }
    write_rendered(load_settings(tmp_path, {}, environ=environ))
    directory = tmp_path / "secrets"
    assert (directory / "valkey_url").read_text() == environ["GLITCHTIP_KIT_VALKEY_URL"]
    assert (directory / "aws_secret_access_key").read_text() == "S3-Secret-9931cc"
    compose = yaml.safe_load((tmp_path / "compose.yml").read_text())
    environment = compose["x-glitchtip-environment"]
    assert environment["VALKEY_URL_FILE"] == environment["REDIS_URL_FILE"]
    # Emptied in .env: the bundled services again, and the files are gone.
    from provision.envfile import update_env_file

    update_env_file(
        tmp_path / ".env",
        {
            "VALKEY_URL": "",
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "GLITCHTIP_KIT_UPLOADS_BUCKET": "",
        },
    )
    write_rendered(load_settings(tmp_path, {}, environ={}))
    assert not (directory / "valkey_url").exists()
    assert not (directory / "aws_secret_access_key").exists()


@pytest.mark.parametrize("kind", ["directory-link", "file-link"])
def test_symlinks_are_refused_before_anything_is_written(tmp_path: Path, kind: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret_key").write_text("not the kit's")
    deployment = tmp_path / "d"
    deployment.mkdir()
    if kind == "directory-link":
        (deployment / "secrets").symlink_to(elsewhere)
    else:
        (deployment / "secrets").mkdir(mode=0o700)
        (deployment / "secrets" / "secret_key").symlink_to(elsewhere / "secret_key")
    with pytest.raises(UsageError):
        write_rendered(load_settings(deployment, {}, environ={}))
    assert (elsewhere / "secret_key").read_text() == "not the kit's"
    assert not (deployment / ".env").exists() and not (deployment / "compose.yml").exists()


def test_a_loose_secrets_directory_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o755)
    os.chmod(tmp_path / "secrets", 0o755)
    write_rendered(load_settings(tmp_path, {}, environ={}))
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700


VARIANTS = {
    "default-6": {},
    "major-5-partman-metrics": {
        "glitchtip_major": "5",
        "advanced_partitioning": "true",
        "metrics": "true",
    },
    "minimal-6": {"profile": "minimal"},
    "proxy-6": {"glitchtip_domain": "https://errors.example.com", "proxy": "caddy"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_table_is_what_every_compose_file_mounts_and_reads(tmp_path, variant) -> None:
    """One rule: each service mounts exactly its TABLE rows and points their variables at them;
    every file a compose file names is defined there as a `file:` under secrets/."""
    settings = load_settings(tmp_path, VARIANTS[variant], environ={})
    files = render_files(settings, SECRETS)
    present = secret_files.values(settings, SECRETS)
    checked = set()
    for name in ("compose.yml", "compose.part.yml", "compose.metrics.yml"):
        document = yaml.safe_load(files[name])
        defined = document.get("secrets") or {}
        for secret, spec in defined.items():
            assert spec == {"file": f"./secrets/{secret}"}, (name, secret)
        for service, spec in document["services"].items():
            reader = service
            if service in ("web", "worker", "partman-setup"):
                reader = secret_files.GLITCHTIP
            mounted = spec.get("secrets")
            if mounted is None and name == "compose.yml" and service in ("web", "worker"):
                mounted = document["x-glitchtip"]["secrets"]  # through the anchor
            if mounted is None:
                # web and worker in the overrides: compose.yml gave them their secrets
                assert secret_files.mounts(reader, present) == [] or name != "compose.yml", service
                continue
            assert mounted == secret_files.mounts(reader, present), (name, service)
            assert set(mounted) <= set(defined), (name, service)
            environment = spec.get("environment") or document.get("x-glitchtip-environment")
            for variable, path in secret_files.environment(reader, present):
                assert environment[variable] == path, (name, service, variable)
            checked.add(service)
    assert {"migrate", "web"} <= checked
