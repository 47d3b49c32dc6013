"""Generate the deployment's secrets once, keep them forever, rotate only on request.

The secrets live in `.env` (mode 0600), read and written only through `provision.envfile`, which
keeps every key it is not given. A secret is generated with `secrets` when its key is missing and
never again: re-running `init` or `render` after any change of settings keeps every secret byte
for byte. A `.env` edited into an invalid state (an empty or too short secret, a password that
would break the database URL) is refused with the fix, and nothing is written.
"""

from __future__ import annotations

import os
import re
import secrets as _random
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.envfile import read_env_file, update_env_file
from provision.errors import SecretsError, UsageError
from provision.fileio import check_writable_target
from provision.locking import locked_for

ENV_HEADER = (
    "# Secrets of this GlitchTip deployment, written by the GlitchTip kit (mode 0600).\n"
    "# Never commit this file. Keys you add are kept; the kit never regenerates a secret.\n"
)

SECRET_KEY_MIN = 50
PASSWORD_MIN = 16


@dataclass(frozen=True)
class SecretSpec:
    """A secret the kit generates: its key, generator, check, and what rotating it breaks."""

    key: str
    generate: Callable[[], str]
    check: Callable[[str], str | None]  # None when fine, else what is wrong
    fix: str
    rotation: str  # what rotating breaks; empty when the kit refuses to rotate it
    refuse_rotation: str = ""  # how to rotate by hand when the kit refuses


def _check_secret_key(value: str) -> str | None:
    if len(value) < SECRET_KEY_MIN:
        return f"is shorter than {SECRET_KEY_MIN} characters"
    if re.search(r"[\s$'\"\\]", value):
        return "contains spaces, quotes, backslashes or '$'"
    return None


def _check_url_safe_password(value: str) -> str | None:
    # The password is embedded in DATABASE_URL, so only URL-unreserved characters are safe.
    if len(value) < PASSWORD_MIN:
        return f"is shorter than {PASSWORD_MIN} characters"
    if not re.fullmatch(r"[A-Za-z0-9._~-]+", value):
        return "has characters other than letters, digits and . _ ~ - (it goes into a URL)"
    return None


def _check_password(value: str) -> str | None:
    if len(value) < PASSWORD_MIN:
        return f"is shorter than {PASSWORD_MIN} characters"
    if re.search(r"[\s$'\"\\]", value):
        return "contains spaces, quotes, backslashes or '$'"
    return None


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        key="SECRET_KEY",
        generate=lambda: _random.token_urlsafe(48),
        check=_check_secret_key,
        fix="restore the previous value, or delete the line to generate a new one "
        "(that logs every user out)",
        rotation="every user is logged out, password-reset and e-mail confirmation links stop "
        "working; web and worker must be restarted (`provision up`)",
    ),
    SecretSpec(
        key="POSTGRES_PASSWORD",
        generate=lambda: _random.token_urlsafe(24),
        check=_check_url_safe_password,
        fix="restore the previous value (the database keeps the password it was created with)",
        rotation="",
        refuse_rotation="the database keeps its password in its volume, so a new value in .env "
        "alone locks GlitchTip out; change it by hand: `docker compose exec postgres psql -U "
        "glitchtip -d glitchtip -c \"ALTER USER glitchtip PASSWORD '<new>'\"`, then put the same "
        "value in .env and run `provision up`",
    ),
    SecretSpec(
        key="DJANGO_SUPERUSER_PASSWORD",
        generate=lambda: _random.token_urlsafe(18),
        check=_check_password,
        fix="restore the previous value (the admin account keeps the password it was created with)",
        rotation="",
        refuse_rotation="the admin account keeps the password it was created with; change it "
        "with `docker compose exec web ./manage.py changepassword <admin e-mail>`, then put the "
        "same value in .env",
    ),
    SecretSpec(
        key="GRAFANA_ADMIN_PASSWORD",
        generate=lambda: _random.token_urlsafe(18),
        check=_check_password,
        fix="restore the previous value (Grafana keeps the password it first started with)",
        rotation="",
        refuse_rotation="Grafana keeps the admin password it first started with in its volume; "
        "change it with `docker compose exec grafana grafana cli admin reset-admin-password "
        "<new>`, then put the same value in .env",
    ),
)

SECRET_BY_KEY: dict[str, SecretSpec] = {spec.key: spec for spec in SECRETS}
# Keys of .env holding secrets (masked everywhere), including those other steps write.
# URLs in .env whose password part is the secret (external services, e-mail).
URL_SECRET_KEYS: tuple[str, ...] = ("EMAIL_URL", "DATABASE_URL", "VALKEY_URL")
SECRET_KEYS: tuple[str, ...] = (
    *SECRET_BY_KEY,
    "GLITCHTIP_API_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    *URL_SECRET_KEYS,
)


def validate_secrets(values: Mapping[str, str], source: str = ".env") -> None:
    """Refuse secrets present in `values` that were edited into an invalid state."""
    for spec in SECRETS:
        if spec.key not in values:
            continue
        value = values[spec.key]
        problem = "is empty" if value == "" else spec.check(value)
        if problem:
            raise SecretsError(f"{spec.key} in {source} {problem}", spec.fix)


def missing_secrets(values: Mapping[str, str]) -> dict[str, str]:
    """Freshly generated values for the secrets absent from `values` (nothing is written)."""
    return {spec.key: spec.generate() for spec in SECRETS if spec.key not in values}


def read_secrets(env_path: Path) -> dict[str, str]:
    """Every key of `.env`, validated (SecretsError if it is unreadable or invalid)."""
    values = read_env_file(env_path)
    validate_secrets(values, source=str(env_path.name))
    return values


def _tighten_mode(env_path: Path) -> None:
    """Make an existing `.env` 0600 through a descriptor opened without following links, so
    the mode of a file the kit does not own is never changed."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(env_path, flags)
    except (FileNotFoundError, IsADirectoryError):
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def ensure_secrets(env_path: Path) -> dict[str, str]:
    """Generate the secrets missing from `env_path` (never the present ones); return all keys."""
    return generate_missing_secrets(env_path)[0]


def generate_missing_secrets(env_path: Path) -> tuple[dict[str, str], list[str]]:
    """Generate the secrets missing from `env_path` (never the present ones).

    Returns (every key of `.env` now, the keys this call generated). Read, generate and write
    happen under the deployment lock, so of two concurrent calls exactly one generates each
    secret and the other sees it. The file is written atomically with mode 0600 only when a
    secret was missing; other keys and comments are kept as they were. A symlink at `env_path`
    is refused (the kit neither writes nor chmods a file it does not own).
    """
    env_path = Path(env_path)
    check_writable_target(env_path)
    with locked_for(env_path):
        values = read_secrets(env_path)
        new = missing_secrets(values)
        if new:
            update_env_file(env_path, new, header=ENV_HEADER)
        _tighten_mode(env_path)
    return {**values, **new}, list(new)


def rotation_notice(key: str) -> str:
    """What rotating `key` breaks; UsageError when the kit refuses to rotate it."""
    spec = SECRET_BY_KEY.get(key)
    if spec is None:
        known = ", ".join(SECRET_BY_KEY)
        raise UsageError(f"{key}: not a secret the kit generates", f"choose one of {known}")
    if not spec.rotation:
        raise UsageError(f"{key}: the kit does not rotate it", spec.refuse_rotation)
    return spec.rotation


def rotate_secret(env_path: Path, key: str) -> str:
    """Replace `key` in `env_path` with a new value; return what that breaks.

    Only on an explicit request (`provision rotate-secret KEY --yes`).
    """
    notice = rotation_notice(key)
    env_path = Path(env_path)
    check_writable_target(env_path)
    with locked_for(env_path):  # a concurrent render must not write the old value back
        values = read_secrets(env_path)
        if key not in values:
            raise SecretsError(f"{key} is not in {env_path.name} yet", "run `provision init` first")
        update_env_file(env_path, {key: SECRET_BY_KEY[key].generate()}, header=ENV_HEADER)
    return notice


def secret_values(values: Mapping[str, str]) -> list[str]:
    """The values in a `.env` mapping that must never be shown (for `masking.redact`)."""
    from urllib.parse import unquote

    from provision.masking import url_passwords

    found = [values[key] for key in SECRET_KEYS if values.get(key) and key not in URL_SECRET_KEYS]
    for key in URL_SECRET_KEYS:
        url = values.get(key)
        if not url:
            continue
        for password in url_passwords(url):  # userinfo's and ?password= (libpq, redis-py)
            found.append(password)
            if unquote(password) != password:
                found.append(unquote(password))  # as a client might print it, decoded
    return found
