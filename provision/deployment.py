"""One deployment: the object every command starts from.

A deployment is a directory with its settings (`glitchtip.yaml`, the environment, `.env`'s
recorded choices), its secrets (`.env`, and the DSN's public key in `.glitchtiprc`), the compose
files that apply to it, and the handles that act on it: Compose, the Docker CLI, the engine,
the lock. Each of those facts is decided here once:

- which compose files apply (`compose_files`: compose.yml, compose.part.yml with GlitchTip 5's
  pg_partman, compose.metrics.yml with `metrics`); render writes the same list to `.env`'s
  `COMPOSE_FILE`, and every Compose handle runs with it;
- which values are masked (`secrets`: the secret values of `.env` and the DSN's public key,
  which GlitchTip's access log shows as `sentry_key=`); Compose and the Docker CLI both get it.

Nothing here runs a process: the runtime adapters (`provision.runtime`) do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import KitError

COMPOSE_FILE = "compose.yml"
PART_FILE = "compose.part.yml"
METRICS_FILE = "compose.metrics.yml"
ENV_FILE = ".env"


def uses_partman(settings: Any) -> bool:
    """Whether this deployment runs GlitchTip 5's pg_partman advanced partitioning."""
    major = getattr(settings, "major", None)
    supported = getattr(major, "supports_partman", settings.glitchtip_major == 5)
    return bool(settings.advanced_partitioning and supported)


def compose_files(settings: Any, metrics: bool | None = None) -> list[str]:
    """The compose files of this deployment, in `-f` order (also `.env`'s COMPOSE_FILE).

    compose.metrics.yml is included when the `metrics` setting is on, or when `metrics` is
    True (to remove the metrics services of a deployment that just turned them off)."""
    files = [COMPOSE_FILE]
    if uses_partman(settings):
        files.append(PART_FILE)
    if getattr(settings, "metrics", False) if metrics is None else metrics:
        files.append(METRICS_FILE)
    return files


def load_settings(
    directory: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The validated settings of the deployment in `directory` (the choices its first render
    recorded in `.env` are read back by the settings' own `.env` fallback)."""
    from provision.settings import load_settings as load

    return load(Path(directory), overrides=overrides, environ=environ)


def _dsn_key(directory: Path) -> list[str]:
    """The public key of the DSN in `.glitchtiprc`: GlitchTip's access log shows it as
    `sentry_key=...`, and only the DSN output itself should reveal it."""
    from provision.dsn import RC_NAME, parse_dsn, read_rc_dsn

    rc = directory / RC_NAME
    if not rc.is_file():
        return []
    try:
        value = read_rc_dsn(rc)
        return [parse_dsn(value).public_key] if value else []
    except KitError:
        return []


def secrets_of(directory: Path) -> list[str]:
    """Every value to mask in what Compose, docker or an error prints for the deployment in
    `directory`: the secret values of its `.env` and the DSN's public key. Needs no settings, so
    a failure to load them is still reported masked."""
    from provision.envfile import read_env_file
    from provision.runtime.compose import secret_values

    directory = Path(directory)
    return [*secret_values(read_env_file(directory / ENV_FILE)), *_dsn_key(directory)]


@dataclass
class Deployment:
    """The deployment of loaded `settings`; `compose_command` overrides Compose's argv."""

    settings: Any
    compose_command: Sequence[str] | None = None

    @classmethod
    def load(
        cls,
        directory: Path,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Deployment:
        """The deployment in `directory`, its settings loaded and validated."""
        return cls(load_settings(directory, overrides, environ))

    @property
    def directory(self) -> Path:
        return Path(self.settings.directory)

    @property
    def env_path(self) -> Path:
        return self.directory / ENV_FILE

    def env(self) -> dict[str, str]:
        """`.env` as it is now ({} when there is none yet)."""
        from provision.envfile import read_env_file

        return read_env_file(self.env_path)

    def secrets(self) -> list[str]:
        """Every value to mask (`secrets_of` its directory)."""
        return secrets_of(self.directory)

    @property
    def uses_partman(self) -> bool:
        return uses_partman(self.settings)

    def compose_files(self, metrics: bool | None = None) -> list[str]:
        return compose_files(self.settings, metrics)

    def compose(self, metrics: bool | None = None) -> Any:
        """A Compose over this deployment's files that are on disk (a deployment rendered
        before a file existed runs without it), secrets masked. Built anew on each call so it
        sees `.env` as it is now."""
        from provision.runtime.compose import Compose

        first, *more = self.compose_files(metrics)  # compose.yml: its absence is reported
        files = [first, *(name for name in more if (self.directory / name).exists())]
        project = self.settings.compose_project_name
        return Compose(self.directory, project, files, self.secrets(), self.compose_command)

    def project(self, project_name: str, files: Sequence[str]) -> Any:
        """A Compose of another project in this directory (the load test's Locust), with this
        deployment's secrets masked."""
        from provision.runtime.compose import Compose

        return Compose(self.directory, project_name, files, self.secrets(), self.compose_command)

    def docker(self) -> Any:
        """The `docker` CLI with this deployment's secrets masked (Swarm)."""
        from provision.runtime.docker import DockerCLI

        return DockerCLI(self.secrets())

    def engine(self) -> Any:
        """The Docker engine (connected on first use)."""
        from provision.runtime.engine import Engine

        return Engine()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The deployment lock, held around every read-modify-write of its files."""
        from provision.locking import locked

        return locked(self.directory)
