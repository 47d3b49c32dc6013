"""How each secret reaches a container: one table, files only, never an environment value.

`.env` stays the one source of truth for secrets. Every render (and every step that adds a
secret to `.env`: the API token, a restore) derives the files in `secrets/` from it, and the
compose files hand them to the containers as Compose `secrets:` with a `file:` source, which a
service reads as `NAME_FILE` (GlitchTip 5 and 6 through django-environ's FileAwareEnv, the
Postgres image's POSTGRES_PASSWORD_FILE, Grafana's `__FILE`, the exporters' `_FILE` options) or
from a path in its own configuration. So no secret value is in a compose file, in `docker
compose config`, or in `docker inspect` of any container, running or exited. Swarm reads the same
table: the same names, as versioned Swarm secrets (provision/swarm/secrets.py).

Why these modes. Without Swarm, Compose bind-mounts the host file at /run/secrets/NAME: the
container sees the host file's owner and mode. The readers run as users the host does not have
(GlitchTip's app 5000, postgres, grafana 472, nobody) and Compose's `uid`/`gid` make Engine 20.10
look them up in the host's passwd and fail; so the files are world-readable (0644) and the
protection is on the host: `secrets/` is 0700, owned by whoever runs the kit (root or not), and
no other host user can reach inside. A bind mount needs no writable root, so read-only containers
keep working. Values are written without a trailing newline: FileAwareEnv uses the file's bytes
as they are.

A replaced file (atomic rename) is a new inode that a running container does not see: each
service carries a label with a keyed digest of its secrets (from `.env`, like Swarm's secret
versions), so a rotated secret changes the service's configuration and `up` recreates it.

To give a container a new secret, add a row to TABLE.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRETS_DIR = "secrets"
CONTAINER_DIR = "/run/secrets"
DIRECTORY_MODE = 0o700  # the host-side protection: only the kit's user enters
FILE_MODE = 0o644  # readable by the containers' own users through the bind mount
# Every service that runs GlitchTip (migrate, web, worker, partman-setup) reads these through the
# shared environment partial (templates/_glitchtip_environment.j2).
GLITCHTIP = "glitchtip"
VERSION_PREFIX = "GLITCHTIP_KIT_DIGEST_"  # .env keys holding each reader's secrets digest


def _env(key: str) -> Callable[[Any, Mapping[str, str]], str | None]:
    return lambda _settings, env: env.get(key) or None


def database_url(settings: Any, env: Mapping[str, str]) -> str | None:
    """The URL GlitchTip reaches Postgres at: an external one's (`database_url` with its TLS
    mode), else the bundled `postgres` service with the password of `.env`."""
    external = getattr(settings, "effective_database_url", "")
    if external:
        return external
    password = env.get("POSTGRES_PASSWORD")
    return f"postgres://glitchtip:{password}@postgres:5432/glitchtip" if password else None


def _email_url(settings: Any, _env: Mapping[str, str]) -> str:
    return settings.email_url or "consolemail://"


def _external_valkey(settings: Any, _env: Mapping[str, str]) -> str | None:
    return settings.valkey_url if getattr(settings, "external_valkey", False) else None


def _s3(name: str) -> Callable[[Any, Mapping[str, str]], str | None]:
    def value(settings: Any, _env: Mapping[str, str]) -> str | None:
        if not getattr(settings, "s3_uploads", False):
            return None
        return getattr(settings, name, "") or None

    return value


def _bundled_postgres(settings: Any, env: Mapping[str, str]) -> str | None:
    if getattr(settings, "external_database", False):
        return None
    return env.get("POSTGRES_PASSWORD") or None


def _token(_settings: Any, env: Mapping[str, str]) -> str:
    # Always a file: the metrics services are defined before the project step mints the token;
    # an empty file until then, like the environment secret it replaced.
    return env.get("GLITCHTIP_API_TOKEN", "")


@dataclass(frozen=True)
class SecretFile:
    """One secret: its file name (secrets/NAME, /run/secrets/NAME, the Swarm secret's short
    name), its value from the settings and `.env` (None: not in this deployment), and which
    service reads it through which variables (none: the service's command or configuration
    names the path itself)."""

    name: str
    value: Callable[[Any, Mapping[str, str]], str | None]
    readers: Mapping[str, tuple[str, ...]]


TABLE: tuple[SecretFile, ...] = (
    SecretFile("secret_key", _env("SECRET_KEY"), {GLITCHTIP: ("SECRET_KEY_FILE",)}),
    SecretFile("database_url", database_url, {GLITCHTIP: ("DATABASE_URL_FILE",)}),
    SecretFile("email_url", _email_url, {GLITCHTIP: ("EMAIL_URL_FILE",)}),
    # GlitchTip 6 reads VALKEY_URL, 5 REDIS_URL: both name the one file.
    SecretFile("valkey_url", _external_valkey, {GLITCHTIP: ("VALKEY_URL_FILE", "REDIS_URL_FILE")}),
    SecretFile(
        "aws_access_key_id", _s3("uploads_access_key_id"), {GLITCHTIP: ("AWS_ACCESS_KEY_ID_FILE",)}
    ),
    SecretFile(
        "aws_secret_access_key",
        _s3("uploads_secret_access_key"),
        {GLITCHTIP: ("AWS_SECRET_ACCESS_KEY_FILE",)},
    ),
    # Django's createsuperuser reads the password from the environment only: migrate's shell
    # reads the file into its own process environment, which `docker inspect` does not show.
    SecretFile("django_superuser_password", _env("DJANGO_SUPERUSER_PASSWORD"), {"migrate": ()}),
    SecretFile(
        "postgres_password",
        _bundled_postgres,
        {
            "postgres": ("POSTGRES_PASSWORD_FILE",),
            "postgres-exporter": ("DATA_SOURCE_PASS_FILE",),
            # compose.part.yml's pg_partman configuration (provision/partman_sql.py).
            "partman-config": (),
        },
    ),
    SecretFile(
        "grafana_admin_password",
        _env("GRAFANA_ADMIN_PASSWORD"),
        {"grafana": ("GF_SECURITY_ADMIN_PASSWORD__FILE",)},
    ),
    # Prometheus's scrape config (credentials_file) and the project exporter's config.json.
    SecretFile("glitchtip_api_token", _token, {"prometheus": (), "project-exporter": ()}),
)
BY_NAME: dict[str, SecretFile] = {row.name: row for row in TABLE}
# Services that belong to more than one reader group: migrate is a GlitchTip service (it gets
# GLITCHTIP's files) and reads the admin's password too.
MEMBERS: dict[str, tuple[str, ...]] = {"migrate": (GLITCHTIP, "migrate")}


def path_in_container(name: str) -> str:
    return f"{CONTAINER_DIR}/{name}"


def values(settings: Any, env: Mapping[str, str]) -> dict[str, str]:
    """File name -> value of every secret this deployment has (table order)."""
    found = {}
    for row in TABLE:
        value = row.value(settings, env)
        if value is not None:
            found[row.name] = value
    return found


def _groups(service: str) -> tuple[str, ...]:
    return MEMBERS.get(service, (service,))


def mounts(service: str, present: Mapping[str, str] | None = None) -> list[str]:
    """The secret files `service` gets (a reader group such as GLITCHTIP, or a service), limited
    to those `present` holds when given."""
    groups = _groups(service)
    return [
        row.name
        for row in TABLE
        if any(group in row.readers for group in groups)
        and (present is None or row.name in present)
    ]


def environment(service: str, present: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, path) pairs `service` (or reader group) points at its files."""
    pairs = []
    for name in mounts(service, present):
        for group in _groups(service):
            for variable in BY_NAME[name].readers.get(group, ()):
                pairs.append((variable, path_in_container(name)))
    return pairs


def version_key(service: str) -> str:
    """The `.env` key of `service`'s secrets digest (a reader group or a service name)."""
    return VERSION_PREFIX + service.upper().replace("-", "_")


def readers() -> list[str]:
    """Every reader group and service of TABLE, in table order."""
    return list(dict.fromkeys(group for row in TABLE for group in row.readers))


def versions(found: Mapping[str, str]) -> dict[str, str]:
    """`.env` key -> 12 hex digits digesting the secrets each reader holds: an HMAC keyed with
    those secrets themselves. Every reader holds a generated secret (SECRET_KEY, a password, the
    token), so the digest reveals nothing, not even of a weak SMTP password beside them; and it
    depends on that reader's secrets only: a rotated SECRET_KEY recreates GlitchTip's
    containers, never Postgres or Grafana."""
    digests = {}
    for reader in readers():
        joined = "\0".join(f"{name}={found[name]}" for name in mounts(reader, found))
        digests[version_key(reader)] = hmac.new(
            joined.encode(), reader.encode(), hashlib.sha256
        ).hexdigest()[:12]
    return digests


class SecretPlan:
    """What the compose templates need of TABLE for one deployment."""

    def __init__(self, present: Mapping[str, str] | None = None):
        # The secrets this deployment has, by name (None: every row of TABLE); only the names
        # matter to the templates, which hold names and paths, never values.
        self._present = present

    def env(self, service: str) -> list[tuple[str, str]]:
        return environment(service, self._present)

    def mounts(self, service: str) -> list[str]:
        return mounts(service, self._present)

    def defined(self, *services: str) -> list[str]:
        """The files `services` mount, each once, in table order (a compose file's `secrets:`)."""
        wanted = {name for service in services for name in self.mounts(service)}
        return [row.name for row in TABLE if row.name in wanted]

    def version_key(self, service: str) -> str:
        return version_key(service)


def plan_for(settings: Any) -> SecretPlan:
    """The names of the secrets `settings` gives values (values themselves are not needed: the
    templates hold only names and paths)."""
    names = {row.name: "" for row in TABLE if row.value(settings, _NAMES_ONLY) is not None}
    return SecretPlan(names)


class _AnyValue(dict):
    """A `.env` stand-in where every key has a value: which rows exist depends on the settings,
    never on whether `.env` holds the secret yet (the committed renders have no `.env`)."""

    def get(self, key, default=None):
        return "x"


_NAMES_ONLY = _AnyValue()


def directory_of(settings: Any) -> Path:
    return Path(settings.directory) / SECRETS_DIR


def check_directory(directory: Path) -> None:
    """Refuse (before any write) a `secrets/` that is a symlink or not a directory, and any
    file in it that is a symlink or not a regular file: the kit writes only into its own."""
    from provision.errors import UsageError
    from provision.fileio import check_writable_target

    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise UsageError(
            f"{directory} is a symbolic link or not a directory",
            "the kit keeps the secret files in a directory of its own: move it away and render "
            "again",
        )
    for row in TABLE:
        check_writable_target(directory / row.name)


def write_files(directory: Path, found: Mapping[str, str]) -> list[Path]:
    """Make `directory` 0700 and write each secret file (0644, atomic, no trailing newline);
    remove the table's files this deployment no longer has. The paths changed."""
    from provision.errors import KitError
    from provision.fileio import write_atomic

    check_directory(directory)
    changed: list[Path] = []
    try:
        directory.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
        info = os.lstat(directory)
        if stat.S_IMODE(info.st_mode) != DIRECTORY_MODE:
            os.chmod(directory, DIRECTORY_MODE)
    except OSError as exc:
        raise KitError(
            f"cannot prepare {directory} ({exc.strerror or exc.__class__.__name__})",
            f"check that {directory.parent} is writable by you",
        ) from None
    for name, value in found.items():
        path = directory / name
        if write_atomic(path, value, mode=FILE_MODE):
            changed.append(path)
    for row in TABLE:
        stale = directory / row.name
        if row.name not in found and stale.exists():
            stale.unlink()
            changed.append(stale)
    return changed


def sync(settings: Any) -> list[Path]:
    """Derive `secrets/` and the digests in `.env` from `.env` again (under the deployment
    lock): after a step added a secret to `.env` (the API token) or replaced `.env` (restore)."""
    from provision.envfile import read_env_file, update_env_file
    from provision.locking import locked

    directory = Path(settings.directory)
    with locked(directory):
        env = read_env_file(directory / ".env")
        found = values(settings, env)
        changed = write_files(directory_of(settings), found)
        if env.get("SECRET_KEY") and update_env_file(directory / ".env", versions(found)):
            changed.append(directory / ".env")
    return changed
