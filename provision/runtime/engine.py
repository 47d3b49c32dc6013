"""Docker engine access through the `docker` SDK, imported only when a command needs it.

The kit asks the engine questions Compose cannot answer well: its version and resources (for
preflight), whether an image is already present (so `pull` never touches the network for a local
image), and the state and health of the project's containers (for `status`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.errors import KitError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# Compose stamps each container with the hash of the service configuration it was created from
# (`docker compose config --hash` prints the same hash for the current files).
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
ONEOFF_LABEL = "com.docker.compose.oneoff"  # "True" on `compose run` containers

ENGINE_UNREACHABLE_FIX = (
    "start the Docker engine (`sudo systemctl start docker`) or point DOCKER_HOST at it, "
    "and make sure your user may use it (group `docker`)"
)


@dataclass(frozen=True)
class ContainerState:
    """One container of the project, as the engine reports it."""

    name: str
    service: str
    project: str
    state: str  # running, exited, created, restarting, ...
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    exit_code: int | None
    image: str
    ports: tuple[str, ...] = field(default_factory=tuple)  # "127.0.0.1:8000->8000/tcp"
    image_id: str = ""  # sha256:... of the image the container runs
    config_hash: str = ""  # CONFIG_HASH_LABEL: the configuration it was created from
    oneoff: bool = False  # a `compose run` container, not one `up` manages
    restart_count: int = 0  # restarts by the engine's restart policy (a crash after start)
    started_at: float | None = None  # epoch seconds of the container's last start (None: unknown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "state": self.state,
            "health": self.health,
            "exit_code": self.exit_code,
            "image": self.image,
            "ports": list(self.ports),
        }


class Engine:
    """A thin, lazily connected wrapper over `docker.DockerClient`."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
                from docker.errors import DockerException
            except ImportError:  # pragma: no cover - a dependency of the kit
                raise KitError("the docker SDK is missing", "run `make venv`") from None
            try:
                self._client = docker.from_env(timeout=30)
                self._client.ping()
            except DockerException as exc:
                raise KitError(
                    f"the Docker engine does not answer ({_short(exc)})", ENGINE_UNREACHABLE_FIX
                ) from None
        return self._client

    def version(self) -> dict[str, Any]:
        """The engine's `docker version` data (Version, ApiVersion, ...)."""
        return self.call(self.client.version)

    def info(self) -> dict[str, Any]:
        """The engine's `docker info` data (NCPU, MemTotal, DockerRootDir, ...)."""
        return self.call(self.client.info)

    def image_present(self, reference: str) -> bool:
        """Whether `reference` (repo:tag or id) is in the engine's image store."""
        return self.image_id(reference) is not None

    def image_id(self, reference: str) -> str | None:
        """The ID (sha256:...) `reference` names in the engine's image store, None if absent.

        Compared with a container's image ID, it tells whether a re-tagged or re-pulled image
        would make `compose up` recreate that container.
        """
        from docker.errors import NotFound  # ImageNotFound is one

        try:
            return str(self.call(self.client.api.inspect_image, reference).get("Id") or "")
        except NotFound:
            return None

    def containers(self, project: str | None = None) -> list[ContainerState]:
        """Every container (running or not) of the compose `project`, or of all projects."""
        filters = {"label": f"{PROJECT_LABEL}={project}"} if project else {}
        raw = self.call(self.client.api.containers, all=True, filters=filters)
        states = []
        for item in raw:
            ids = item.get("Id")
            details = self.call(self.client.api.inspect_container, ids)
            states.append(_state_of(item, details))
        return sorted(states, key=lambda c: (c.service, c.name))

    def remove_volume(self, name: str) -> bool:
        """Remove the volume `name`; False when there is none (a `KitError` when it is in use)."""
        return self._found(self.client.api.remove_volume, name)

    def volume_exists(self, name: str) -> bool:
        """Whether the engine has a volume `name`."""
        return self._found(self.client.api.inspect_volume, name)

    def _found(self, function, *args) -> bool:
        """`call(function, *args)`; False when the engine answers "no such object"."""
        from docker.errors import NotFound

        try:
            self.call(function, *args)
        except NotFound:
            return False
        return True

    def pull(self, image: str) -> None:
        """Pull `image` (a `KitError` when the engine cannot)."""
        self.call(self.client.api.pull, image)

    def port_publishers(self, port: int) -> list[ContainerState]:
        """Running containers that publish host `port` (on any address)."""
        found = []
        for item in self.call(self.client.api.containers, filters={"publish": str(port)}):
            labels = item.get("Labels") or {}
            published = [p for p in item.get("Ports") or [] if p.get("PublicPort") == port]
            if published:
                found.append(
                    ContainerState(
                        name=(item.get("Names") or ["?"])[0].lstrip("/"),
                        service=labels.get(SERVICE_LABEL, ""),
                        project=labels.get(PROJECT_LABEL, ""),
                        state=item.get("State", ""),
                        health=None,
                        exit_code=None,
                        image=item.get("Image", ""),
                        ports=tuple(_port_text(p) for p in published),
                    )
                )
        return found

    def call(self, function, *args, **kwargs):
        """`function(*args, **kwargs)` of the Docker SDK with the engine's failures as one-line
        `KitError`s (`NotFound` passes through: absent is an answer)."""
        from docker.errors import APIError, DockerException, NotFound
        from requests.exceptions import RequestException  # the engine vanished mid-session

        try:
            return function(*args, **kwargs)
        except NotFound:
            raise
        except APIError as exc:
            raise KitError(
                f"the Docker engine refused a request ({_short(exc)})", "see its logs"
            ) from None
        except (DockerException, RequestException) as exc:
            raise KitError(
                f"the Docker engine does not answer ({_short(exc)})", ENGINE_UNREACHABLE_FIX
            ) from None


def _port_text(port: dict[str, Any]) -> str:
    ip = port.get("IP") or "0.0.0.0"
    return f"{ip}:{port.get('PublicPort')}->{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"


def _state_of(item: dict[str, Any], details: dict[str, Any]) -> ContainerState:
    labels = item.get("Labels") or {}
    state = details.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    status = state.get("Status") or item.get("State", "")
    exit_code = state.get("ExitCode") if status in ("exited", "dead") else None
    ports = tuple(_port_text(p) for p in item.get("Ports") or [] if p.get("PublicPort"))
    return ContainerState(
        name=(item.get("Names") or ["?"])[0].lstrip("/"),
        service=labels.get(SERVICE_LABEL, ""),
        project=labels.get(PROJECT_LABEL, ""),
        state=status,
        health=health,
        exit_code=exit_code,
        image=(details.get("Config") or {}).get("Image") or item.get("Image", ""),
        ports=tuple(sorted(set(ports))),
        image_id=str(details.get("Image") or item.get("ImageID") or ""),
        config_hash=labels.get(CONFIG_HASH_LABEL, ""),
        oneoff=labels.get(ONEOFF_LABEL, "").lower() == "true",
        restart_count=int(details.get("RestartCount") or 0),
        started_at=_epoch(state.get("StartedAt")),
    )


def _epoch(text: Any) -> float | None:
    """Epoch seconds of the engine's RFC 3339 time with nanoseconds ("...T15:17:18.123456789Z");
    None for the zero time of a container never started, or anything unreadable."""
    import re
    from datetime import datetime

    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", str(text or "")
    )
    if not match or match[1].startswith("0001-"):
        return None
    fraction = (match[2] or ".0")[:7]  # microseconds at most
    zone = "+00:00" if match[3] == "Z" else match[3]
    try:
        return datetime.fromisoformat(match[1] + fraction + zone).timestamp()
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:200]
