"""Secrets: generated once, kept byte for byte, refused when edited into an invalid state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.errors import SecretsError, UsageError
from provision.secrets import (
    SECRETS,
    ensure_secrets,
    rotate_secret,
    rotation_notice,
    secret_values,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_generates_every_secret_with_mode_0600(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    assert mode(env) == 0o600
    assert len(values["SECRET_KEY"]) >= 50
    assert len(values["POSTGRES_PASSWORD"]) >= 16
    assert len(values["DJANGO_SUPERUSER_PASSWORD"]) >= 16
    assert len(set(values.values())) == 3
    assert env.read_text().startswith("# Secrets of this GlitchTip deployment")


def test_never_regenerates(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    before = env.read_bytes()
    mtime = env.stat().st_mtime_ns
    ensure_secrets(env)
    assert env.read_bytes() == before
    assert env.stat().st_mtime_ns == mtime


def test_generates_only_the_missing_and_keeps_other_keys(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    key = "k" * 60
    env.write_text(
        f"# mine\nSECRET_KEY={key}\nGLITCHTIP_API_TOKEN=abc123\nMY_OWN=1\n"
        "DJANGO_SUPERUSER_EMAIL=root@example.com\n"
    )
    values = ensure_secrets(env)
    text = env.read_text()
    assert values["SECRET_KEY"] == key
    assert text.startswith(f"# mine\nSECRET_KEY={key}\nGLITCHTIP_API_TOKEN=abc123\nMY_OWN=1\n")
    assert "POSTGRES_PASSWORD=" in text and "DJANGO_SUPERUSER_EMAIL=root@example.com" in text


def test_tightens_a_readable_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    os.chmod(env, 0o644)
    ensure_secrets(env)
    assert mode(env) == 0o600


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("SECRET_KEY=short\n", "SECRET_KEY in .env is shorter"),
        ("SECRET_KEY=\n", "SECRET_KEY in .env is empty"),
        ("POSTGRES_PASSWORD=has@at/slash-1234567\n", "POSTGRES_PASSWORD in .env has characters"),
        ("POSTGRES_PASSWORD=short\n", "POSTGRES_PASSWORD in .env is shorter"),
        ("DJANGO_SUPERUSER_PASSWORD=\n", "DJANGO_SUPERUSER_PASSWORD in .env is empty"),
        ("this is not a dotenv line\n", "line 1 is not KEY=value"),
    ],
)
def test_invalid_env_is_refused_and_untouched(tmp_path: Path, content: str, match: str) -> None:
    env = tmp_path / ".env"
    env.write_text(content)
    with pytest.raises(SecretsError, match=match) as caught:
        ensure_secrets(env)
    assert caught.value.exit_code == 2
    assert env.read_text() == content


def test_error_does_not_show_the_secret(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("SECRET_KEY=tooshortbutsecret\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert "tooshortbutsecret" not in caught.value.line()


def test_rotate_secret_key_changes_only_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    notice = rotate_secret(env, "SECRET_KEY")
    assert "logged out" in notice
    after = ensure_secrets(env)
    assert after["SECRET_KEY"] != values["SECRET_KEY"]
    assert after["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert mode(env) == 0o600


@pytest.mark.parametrize("key", ["POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD"])
def test_rotation_of_passwords_kept_elsewhere_is_refused(tmp_path: Path, key: str) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    before = env.read_bytes()
    with pytest.raises(UsageError, match="does not rotate") as caught:
        rotate_secret(env, key)
    assert "docker compose exec" in caught.value.fix
    assert env.read_bytes() == before


def test_rotation_of_unknown_name_is_refused() -> None:
    with pytest.raises(UsageError, match="not a secret the kit generates"):
        rotation_notice("NOPE")


def test_secret_values_include_email_password_only() -> None:
    values = {
        "SECRET_KEY": "s" * 50,
        "EMAIL_URL": "smtp://u:mailpassword@mail.example.com",
        "OTHER": "visible",
    }
    found = secret_values(values)
    assert "s" * 50 in found and "mailpassword" in found
    assert "visible" not in found and values["EMAIL_URL"] not in found


def test_every_secret_generator_passes_its_check() -> None:
    for spec in SECRETS:
        assert spec.check(spec.generate()) is None
