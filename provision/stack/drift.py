"""Drift: what `docker compose up` would change in a running deployment, without running it.

`compose up --wait` on a healthy stack is not free: Compose starts the exited one-shot `migrate`
again (every migration check, then the wait for it) and waits for every healthcheck, about 6 s
on a real GlitchTip. The start step asks this module first and skips `up` only when every
service Compose manages already runs exactly what `up` would create:

- one container per service, created from the configuration the rendered files give now (the
  `com.docker.compose.config-hash` label equals `docker compose config --hash`, which covers
  the image reference, the interpolated `.env` values, ports, volumes, healthchecks);
- running the image ID the image reference names now (a re-pulled or re-tagged image);
- long-running services `running` and, when they have a healthcheck, `healthy`;
- one-shots (a service others wait for with `service_completed_successfully`, e.g. `migrate`)
  `exited` with status 0.

Anything else, including a fact that cannot be read, is a reason to run `up`: a wrong skip
leaves a stack stale or broken, a needless `up` only costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

COMPLETED = "service_completed_successfully"


def one_shots(services: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Services another service waits for to exit 0 (`migrate`): exited 0 is their good state."""
    found: set[str] = set()
    for spec in services.values():
        depends = spec.get("depends_on") or {}
        if isinstance(depends, Mapping):
            for name, condition in depends.items():
                if isinstance(condition, Mapping) and condition.get("condition") == COMPLETED:
                    found.add(name)
    return found


def dependencies(services: Mapping[str, Mapping[str, Any]], name: str) -> set[str]:
    """Every service `name` depends on, directly or through others."""
    found: set[str] = set()
    todo = [name]
    while todo:
        depends = services.get(todo.pop(), {}).get("depends_on") or {}
        for dependency in depends:
            if dependency not in found:
                found.add(dependency)
                todo.append(dependency)
    return found


def rerun_needed(services: Mapping[str, Mapping[str, Any]], current: Iterable[str]) -> bool:
    """Whether `compose up` must run the one-shots again (migrate) rather than leave them be.

    Only when a one-shot and everything it depends on are current may it be left alone: a
    recreated Postgres may hold a new, empty database (another data path or major), and a new
    GlitchTip image may bring migrations.
    """
    current = set(current)
    return any(not {name, *dependencies(services, name)} <= current for name in one_shots(services))


def _state_reason(container: Any, one_shot: bool) -> str | None:
    if one_shot:
        if container.state != "exited":
            return f"is {container.state or 'not started'}"
        if container.exit_code != 0:
            return f"exited {container.exit_code}"
        return None
    if container.state != "running":
        return f"is {container.state or 'not started'}"
    if container.health not in (None, "healthy"):
        return f"is {container.health}"
    return None


def service_drift(
    services: Mapping[str, Mapping[str, Any]],
    hashes: Mapping[str, str],
    image_ids: Mapping[str, str | None],
    containers: Sequence[Any],
    ignore: Iterable[str] = (),
) -> dict[str, list[str]]:
    """service -> why `compose up` would change it (an empty list: it is current).

    `services` is `compose config`'s service map, `hashes` what `config --hash` prints for each
    service, `image_ids` the engine's ID for each image reference (None: not present),
    `containers` the project's `ContainerState`s. Services in `ignore` (one-shots run by their
    own step) are not compared.
    """
    ignored = set(ignore)
    waited = one_shots(services)
    by_service: dict[str, list[Any]] = {}
    for container in containers:
        if not getattr(container, "oneoff", False):  # `compose run` leftovers: not up's
            by_service.setdefault(container.service, []).append(container)
    found: dict[str, list[str]] = {}
    for name, spec in services.items():
        if name in ignored:
            continue
        reasons = found.setdefault(name, [])
        mine = by_service.get(name, [])
        if len(mine) != 1:
            reasons.append(
                f"{name} has {len(mine)} containers" if mine else f"{name} has no container"
            )
            continue
        container = mine[0]
        wanted_hash = hashes.get(name)
        if not wanted_hash or container.config_hash != wanted_hash:
            reasons.append(f"{name}: configuration changed")
        wanted_image = image_ids.get(str(spec.get("image") or ""))
        if not wanted_image or container.image_id != wanted_image:
            reasons.append(f"{name}: image changed")
        state = _state_reason(container, name in waited)
        if state:
            reasons.append(f"{name} {state}")
    return found


def drift(
    services: Mapping[str, Mapping[str, Any]],
    hashes: Mapping[str, str],
    image_ids: Mapping[str, str | None],
    containers: Sequence[Any],
    ignore: Iterable[str] = (),
) -> list[str]:
    """Why `compose up` would change something, one short reason each; [] when nothing."""
    found = service_drift(services, hashes, image_ids, containers, ignore)
    if not found:
        return ["the rendered files name no service to compare"]
    return [reason for reasons in found.values() for reason in reasons]
