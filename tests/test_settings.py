"""The settings model: defaults, precedence with sources, validation, combinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision import majors
from provision.errors import SettingsError
from provision.settings import (
    SPECS,
    derive_concurrency,
    image_tag_major,
    load_settings,
    parse_image,
)

pytestmark = pytest.mark.usefixtures("kit_environ")


def load(directory: Path, yaml_text: str | None = None, overrides=None, environ=None):
    if yaml_text is not None:
        (directory / "glitchtip.yaml").write_text(yaml_text, encoding="utf-8")
    return load_settings(directory, overrides, environ if environ is not None else {})


def test_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.glitchtip_major == 6
    assert settings.glitchtip_domain == "http://localhost:8000"
    assert (settings.bind_address, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.glitchtip_image == majors.MAJORS[6].glitchtip_image
    assert settings.postgres_image == "postgres:18.1"
    assert settings.postgres_data_path == "/var/lib/postgresql"
    assert settings.enable_user_registration is False
    assert settings.enable_organization_creation is False
    assert settings.retention_days == 90
    assert settings.advanced_partitioning is False
    assert settings.admin_email == "admin@example.com"
    assert (settings.organization, settings.project, settings.platform) == (
        "GlitchTip",
        "default",
        "python",
    )
    assert settings.compose_project_name == "glitchtip"
    assert settings.web_concurrency == derive_concurrency(2, 4096)[0]
    # GlitchTip 6's worker: django-vtasks' own 20 async slots in one process (not per CPU).
    assert settings.worker_concurrency == 20
    assert settings.major is majors.MAJORS[6]
    assert settings.internal_url == "http://127.0.0.1:8000"
    assert settings.sources["http_port"] == "default"
    assert settings.sources["glitchtip_image"] == "derived"
    assert set(settings.sources) == {spec.name for spec in SPECS}


def test_default_images_are_pinned() -> None:
    for major in majors.MAJORS.values():
        for image in (major.glitchtip_image, major.postgres_image, major.valkey_image):
            assert parse_image(image) == image
        assert image_tag_major(major.glitchtip_image) == major.number


def test_precedence_option_environment_file_default(tmp_path: Path) -> None:
    yaml_text = "http_port: 8001\nretention_days: 30\nproject: fromfile\n"
    environ = {"GLITCHTIP_KIT_HTTP_PORT": "8002", "GLITCHTIP_MAX_EVENT_LIFE_DAYS": "31"}
    settings = load(tmp_path, yaml_text, overrides={"http_port": "8003"}, environ=environ)
    assert settings.http_port == 8003 and settings.sources["http_port"] == "option"
    assert settings.retention_days == 31 and settings.sources["retention_days"] == "environment"
    assert settings.project == "fromfile" and settings.sources["project"] == "file"
    assert settings.platform == "python" and settings.sources["platform"] == "default"
    # The default public URL follows the port.
    assert settings.glitchtip_domain == "http://localhost:8003"


def test_empty_environment_variable_is_unset(tmp_path: Path) -> None:
    settings = load(tmp_path, environ={"GLITCHTIP_KIT_HTTP_PORT": ""})
    assert settings.http_port == 8000


def test_major_5_changes_the_derived_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "glitchtip_major: 5\n")
    assert ("USE_ASYNC_SERVER", "true") in settings.major.web_server_env  # granian ASGI
    assert settings.glitchtip_image == majors.MAJORS[5].glitchtip_image
    assert settings.postgres_version == 17
    assert settings.postgres_data_path == "/var/lib/postgresql/data"
    assert settings.partman_image == "ghcr.io/dbsystel/postgresql-partman:17-5"


def test_partitioning_on_5_is_accepted(tmp_path: Path) -> None:
    settings = load(tmp_path, "glitchtip_major: 5\nadvanced_partitioning: true\n")
    assert settings.advanced_partitioning is True


@pytest.mark.parametrize(
    ("image", "major"),
    [
        ("postgres:17.7", 17),
        ("postgres:16-bookworm", 16),
        ("glitchtip-kit-test/postgres:17", 17),
        ("registry.local:5000/mirror/postgres:18.1-trixie", 18),
        ("glitchtip/glitchtip:v5.1.0", 5),
        ("postgres:stable", None),
        ("postgres@sha256:" + "a" * 64, None),
    ],
)
def test_image_tag_major(image: str, major: int | None) -> None:
    assert image_tag_major(image) == major


def test_unparseable_postgres_tag_assumes_the_major_default(tmp_path: Path) -> None:
    settings = load(tmp_path, "postgres_image: mirror.local/postgres@sha256:" + "b" * 64 + "\n")
    assert settings.postgres_version == 18
    assert settings.postgres_data_path == "/var/lib/postgresql"


def test_test_images_are_accepted(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "glitchtip_image: glitchtip-kit-test/glitchtip:6\n"
        "postgres_image: glitchtip-kit-test/postgres:17\n"
        "valkey_image: glitchtip-kit-test/valkey:8\n",
    )
    assert settings.postgres_version == 17
    assert settings.postgres_data_path == "/var/lib/postgresql/data"


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
        ("::1", "http://[::1]:8000"),
        ("::", "http://127.0.0.1:8000"),
    ],
)
def test_internal_url(tmp_path: Path, address: str, url: str) -> None:
    assert load(tmp_path, overrides={"bind_address": address}).internal_url == url


def test_derive_concurrency() -> None:
    assert derive_concurrency(1, 1024) == (1, 1)
    assert derive_concurrency(2, 4096) == (2, 4)
    assert derive_concurrency(64, 256 * 1024) == (8, 16)
    assert derive_concurrency(16, 2048) == (3, 5)  # memory caps CPUs


def test_public_url_is_normalised(tmp_path: Path) -> None:
    settings = load(tmp_path, overrides={"glitchtip_domain": "https://GlitchTip.Example.com/"})
    assert settings.glitchtip_domain == "https://glitchtip.example.com"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("glitchtip_domain", "ftp://example.com", "glitchtip_domain"),
        ("glitchtip_domain", "example.com", "glitchtip_domain"),
        ("glitchtip_domain", "https://example.com/glitchtip", "glitchtip_domain"),
        ("glitchtip_domain", "https://user:pw@example.com", "glitchtip_domain"),
        ("glitchtip_domain", "https://example.com:99999", "glitchtip_domain"),
        ("http_port", "0", "http_port"),
        ("http_port", "65536", "http_port"),
        ("http_port", "80a", "http_port"),
        ("bind_address", "localhost", "bind_address"),
        ("glitchtip_major", "7", "glitchtip_major"),
        ("glitchtip_image", "glitchtip/glitchtip", "glitchtip_image"),
        ("glitchtip_image", "glitchtip/glitchtip:latest", "glitchtip_image"),
        ("postgres_image", "Postgres:17", "postgres_image"),
        ("valkey_image", "valkey/valkey:9 0", "valkey_image"),
        ("email_url", "smtp://", "email_url"),
        ("email_url", "sendmail://localhost", "email_url"),
        ("email_url", "not a url", "email_url"),
        ("default_from_email", "nobody", "default_from_email"),
        ("admin_email", "admin@", "admin_email"),
        ("retention_days", "0", "retention_days"),
        ("retention_days", "-5", "retention_days"),
        ("retention_days", "ninety", "retention_days"),
        ("worker_concurrency", "0", "worker_concurrency"),
        ("enable_user_registration", "maybe", "enable_user_registration"),
        ("compose_project_name", "Glitch Tip", "compose_project_name"),
        ("postgres_data_path", "relative/path", "postgres_data_path"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, overrides={name: value})
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"{expected} (from option {name})")
    assert caught.value.fix
    assert "\n" not in caught.value.line()


def test_invalid_value_from_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="GLITCHTIP_KIT_HTTP_PORT"):
        load(tmp_path, environ={"GLITCHTIP_KIT_HTTP_PORT": "eighty"})


def test_invalid_value_from_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^retention_days \(from glitchtip.yaml\)"):
        load(tmp_path, "retention_days: true\n")


def test_yaml_native_types(tmp_path: Path) -> None:
    settings = load(tmp_path, "http_port: 9000\nenable_user_registration: yes\n")
    assert settings.http_port == 9000 and settings.enable_user_registration is True


def test_null_in_file_means_default(tmp_path: Path) -> None:
    assert load(tmp_path, "http_port:\n").http_port == 8000


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, "http_prot: 8000\n")
    assert caught.value.message.startswith("http_prot: unknown setting")
    assert "http_port" in caught.value.fix


def test_environment_variable_name_in_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, "GLITCHTIP_DOMAIN: https://x.example.com\n")
    assert "glitchtip_domain" in caught.value.fix


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting"):
        load(tmp_path, overrides={"colour": "blue"})


@pytest.mark.parametrize(
    "text", ["http_port: [1\n", "- a list\n", "just a string\n", "\tbad: indent\n"]
)
def test_unreadable_settings_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError, match=r"^glitchtip\.yaml: "):
        load(tmp_path, text)


def test_settings_file_that_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "glitchtip.yaml").mkdir()
    with pytest.raises(SettingsError, match="cannot be read"):
        load(tmp_path)


def test_settings_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "glitchtip.yaml").write_bytes(b"project: \xff\xfe\n")
    with pytest.raises(SettingsError, match="cannot be read"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("advanced_partitioning: true\n", "GlitchTip 6 has no pg_partman"),
        ("postgres_image: postgres:13.9\n", "older than 14"),
        (
            "postgres_image: postgres:18.1\npostgres_data_path: /var/lib/postgresql/data\n",
            "Postgres 18 keeps its data",
        ),
        (
            "postgres_image: postgres:17.7\npostgres_data_path: /var/lib/postgresql\n",
            "anonymous volume",
        ),
        ("glitchtip_image: glitchtip/glitchtip:v5.1.0\n", "is GlitchTip 5"),
        ("partman_image: ghcr.io/dbsystel/postgresql-partman:17\n", "differs from"),
    ],
)
def test_impossible_combinations_are_refused(tmp_path: Path, yaml_text: str, match: str) -> None:
    with pytest.raises(SettingsError, match=match) as caught:
        load(tmp_path, yaml_text)
    assert caught.value.exit_code == 2


def test_email_url_with_password_refused_in_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, "email_url: smtp+tls://me:hunter2hunter2@mail.example.com:587\n")
    assert "hunter2" not in caught.value.line()
    assert caught.value.message.startswith("email_url")


def test_email_url_with_password_from_environment_is_masked(tmp_path: Path) -> None:
    url = "smtp+tls://me:hunter2hunter2@mail.example.com:587"
    settings = load(tmp_path, environ={"EMAIL_URL": url})
    assert settings.email_url == url
    assert "hunter2" not in settings.display_value("email_url")


def test_invalid_email_url_error_masks_the_password(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, environ={"EMAIL_URL": "smtp+tls://me:hunter2hunter2@:bad"})
    assert "hunter2" not in caught.value.line()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EMAIL_URL", "smtp//me:hunter2hunter2@mail.example.com"),  # missing ':' of the scheme
        ("EMAIL_URL", "smtp:me:hunter2hunter2@mail.example.com"),
        ("EMAIL_URL", "smtp://me:hunter2hunter2@[mail.example.com"),  # urlsplit raises
        ("GLITCHTIP_DOMAIN", "https://me:hunter2hunter2@glitchtip.example.com"),
        ("GLITCHTIP_DOMAIN", "https://me:hunter2hunter2@[glitchtip"),
    ],
)
def test_malformed_url_is_one_line_without_its_password(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, environ={variable: value})
    assert "hunter2" not in caught.value.line(), "the refusal shows the password"


def test_email_url_is_read_back_from_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("EMAIL_URL=smtp://mail.example.com:25\n")
    settings = load(tmp_path)
    assert settings.email_url == "smtp://mail.example.com:25"
    assert settings.sources["email_url"] == ".env"


def test_minimal_profile_on_glitchtip5_runs_threads_and_refuses_another_pool(
    tmp_path: Path,
) -> None:
    """GlitchTip 5's all-in-one (app.py) always starts a threaded worker: the derived pool is
    threads (memory and connections sized for one process), and a pool asked for is refused
    instead of being sized for and then silently not run."""
    derived = load(tmp_path, overrides={"glitchtip_major": 5, "profile": "minimal"}, environ={})
    assert derived.worker_pool == "threads"
    assert derived.sources["worker_pool"] == "derived"
    with pytest.raises(SettingsError) as caught:
        load(
            tmp_path,
            overrides={"glitchtip_major": 5, "profile": "minimal", "worker_pool": "prefork"},
            environ={},
        )
    assert caught.value.line() == (
        "worker_pool (from option worker_pool): prefork, but GlitchTip 5's all-in-one "
        "(profile: minimal) always runs its worker with threads: remove worker_pool, or use "
        "profile: standard for a worker of its own"
    )
    # GlitchTip 6 and the standard profile keep the pool they are given.
    standard = load(tmp_path, overrides={"glitchtip_major": 5, "worker_pool": "prefork"})
    assert standard.worker_pool == "prefork"
