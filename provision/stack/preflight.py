"""Preflight: check everything `up` needs, changing nothing.

The engine answers and is new enough, Compose v2 is there, the machine meets GlitchTip's minimum
(1 CPU, 1 GiB RAM, room for images and data), the web port is free or already published by this
deployment's own web container, the settings are valid, and an external database or Valkey
(`database_url`, `valkey_url`) answers (see `external.py`). Every problem found is reported at
once, so one edit fixes them all.
"""

from __future__ import annotations

import errno
import shutil
import socket
from collections.abc import Callable
from typing import Any

from provision.errors import KitError
from provision.stack.context import StackContext
from provision.steps import StepOutcome

MIN_ENGINE = (20, 10)
MIN_CPUS = 1
MIN_MEMORY = 1 << 30  # GlitchTip's documented minimum: 1 GB RAM
MIN_DISK = 2 << 30  # images (~1 GiB) plus a first database
GIB = 1 << 30


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.replace("-", ".").replace("+", ".").split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def check_engine_version(version: dict[str, Any]) -> str:
    """The engine's version text; a `KitError` if it is older than Docker Engine 20.10."""
    text = str(version.get("Version", "?"))
    if _version_tuple(text)[:2] < MIN_ENGINE:
        raise KitError(
            f"Docker Engine {text} is older than 20.10",
            "upgrade Docker Engine (https://docs.docker.com/engine/install/)",
        )
    return text


def check_compose_version(version: Callable[[], tuple[int, ...]]) -> str:
    """Compose v2's version text; `compose_binary` raises when none >= 2.20 is found."""
    return ".".join(str(part) for part in version())


def check_resources(info: dict[str, Any], disk_free: int | None) -> tuple[list[str], str]:
    """Problems with CPU, memory and disk, and a one-line summary of what was found."""
    problems = []
    cpus = int(info.get("NCPU") or 0)
    memory = int(info.get("MemTotal") or 0)
    if cpus and cpus < MIN_CPUS:
        problems.append(f"{cpus} CPUs (need {MIN_CPUS})")
    if memory and memory < MIN_MEMORY:
        problems.append(f"{memory / GIB:.1f} GiB RAM (GlitchTip needs at least 1 GiB)")
    if disk_free is not None and disk_free < MIN_DISK:
        problems.append(
            f"{disk_free / GIB:.1f} GiB free for Docker (need {MIN_DISK / GIB:.0f} GiB): "
            "free space with `docker system prune`"
        )
    disk = f"{disk_free / GIB:.0f} GiB free" if disk_free is not None else "disk not checked"
    summary = f"{cpus} CPUs, {memory / GIB:.1f} GiB RAM, {disk}"
    return problems, summary


def docker_disk_free(info: dict[str, Any]) -> int | None:
    """Free bytes where the engine keeps images and volumes, if that path is visible here."""
    root = info.get("DockerRootDir")
    if not root:
        return None
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return None  # a remote engine, or a root dir we may not see


def port_is_free(host: str, port: int) -> bool:
    """Whether `host:port` can be bound now; the probe socket is closed at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("" if host in ("0.0.0.0", "::") else host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise KitError(
                f"cannot check {host}:{port} ({exc.strerror})",
                "set bind_address to an address of this host",
            ) from None
    return True


def check_port(
    settings: Any,
    engine: Any,
    is_free: Callable[[str, int], bool] = port_is_free,
    service: str = "web",
    setting: str = "http_port",
) -> str:
    """'free' or 'ours' for the host port `setting` of `service` (the web port by default); a
    `KitError` naming whoever else holds it."""
    host, port = settings.bind_address, int(getattr(settings, setting))
    if setting == "http_port" and getattr(settings, "proxy_enabled", False):
        host = "127.0.0.1"  # with the TLS proxy, the kit's plain-HTTP door is on loopback only
    variable = f"GLITCHTIP_KIT_{setting.upper()}"
    for container in engine.port_publishers(port):
        # The kit's door moves between web and proxy when the proxy is switched: both are ours.
        ours = {service, "web", "proxy"} if setting == "http_port" else {service}
        if container.project == settings.compose_project_name and container.service in ours:
            return f"port {host}:{port} already ours ({container.name})"
        raise KitError(
            f"port {port} is published by container {container.name}",
            f"stop it, or choose another port ({setting} in glitchtip.yaml or {variable})",
        )
    if not is_free(host, port):
        raise KitError(
            f"port {host}:{port} is in use by another program",
            f"stop it (see `ss -ltnp`), or choose another port ({setting} in glitchtip.yaml "
            f"or {variable})",
        )
    return f"port {host}:{port} free"


# With metrics on, the host ports Prometheus and Grafana publish are checked like the web's.
METRICS_PORTS = (("prometheus", "prometheus_port"), ("grafana", "grafana_port"))
# With the TLS proxy it publishes them all; web publishes none.
PROXY_PORTS = (("proxy", "http_port"), ("proxy", "proxy_http_port"), ("proxy", "proxy_https_port"))


def preflight(
    ctx: StackContext,
    compose_version: Callable[[], tuple[int, ...]] | None = None,
    disk_free: Callable[[dict[str, Any]], int | None] = docker_disk_free,
    is_free: Callable[[str, int], bool] = port_is_free,
    run_probe: Callable[[str, str, dict[str, str]], Any] | None = None,
) -> StepOutcome:
    """The preflight step: settings, engine, Compose, resources, port, and the external
    database and Valkey when the settings name them (they answer; Postgres is new enough).
    Changes nothing, except pulling the image a probe runs in when it is missing."""
    if compose_version is None:
        from provision.runtime.compose_binary import compose_version as compose_version_default

        compose_version = compose_version_default
    settings = ctx.load_settings()  # a SettingsError names the bad setting
    engine = ctx.engine()
    problems: list[str] = []
    found: list[str] = [f"GlitchTip {settings.glitchtip_major}"]
    # `docker info` also carries the engine version: one engine call answers both questions.
    info = engine.info()
    version = {"Version": info["ServerVersion"]} if info.get("ServerVersion") else None
    try:
        found.append(f"engine {check_engine_version(version or engine.version())}")
    except KitError as error:
        problems.append(error.line())
    try:
        found.append(f"compose {check_compose_version(compose_version)}")
    except KitError as error:
        problems.append(error.line())
    resource_problems, summary = check_resources(info, disk_free(info))
    problems.extend(resource_problems)
    found.append(summary)
    front = PROXY_PORTS if getattr(settings, "proxy_enabled", False) else (("web", "http_port"),)
    ports = [*front, *(METRICS_PORTS if settings.metrics else ())]
    for service, setting in ports:
        try:
            found.append(check_port(settings, engine, is_free, service, setting))
        except KitError as error:
            problems.append(error.line())
    if settings.external_database or settings.external_valkey:
        from provision.stack.external import check_external_services, engine_runner

        try:
            external_found, external_problems = check_external_services(
                settings, run_probe or engine_runner(engine)
            )
        except KitError as error:  # the engine failed to run a probe at all
            external_found, external_problems = [], [error.line()]
        found.extend(external_found)
        problems.extend(external_problems)
    if problems:
        raise KitError("; ".join(problems))
    return StepOutcome(detail=", ".join(found), changed=False)
