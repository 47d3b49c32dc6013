"""The state one `provision up` run carries from step to step.

Steps read what they need from a `StackContext` and leave their results in it (the settings that
preflight loaded, the DSN that the project step obtained). The engine and Compose are reached
through factories so tests can hand in fakes without patching anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.render import LOCK_KEY as PARTITIONING_LOCK  # written by the first render

PARTITIONING_ENV = "GLITCHTIP_ADVANCED_PARTITIONING"


def with_recorded_choices(
    directory: Path, overrides: Mapping[str, Any] | None, environ: Mapping[str, str] | None
) -> dict[str, Any]:
    """`overrides` plus the choices the first render recorded in `.env`.

    Advanced partitioning is fixed at the first render (`up --partman`); later commands (`up`,
    `down`, `status`, `partman`) must see the same choice without the flag being repeated.
    An explicit option, variable or glitchtip.yaml value still wins (and render refuses a switch).
    """
    import os

    from provision.envfile import read_env_file

    result = dict(overrides or {})
    environ = os.environ if environ is None else environ
    if result.get("advanced_partitioning") is None and not environ.get(PARTITIONING_ENV):
        recorded = read_env_file(Path(directory) / ".env").get(PARTITIONING_LOCK)
        if recorded == "true" and not _file_sets_partitioning(Path(directory)):
            result["advanced_partitioning"] = True
    return result


def _file_sets_partitioning(directory: Path) -> bool:
    from provision.settings import read_settings_file

    return read_settings_file(directory / "glitchtip.yaml").get("advanced_partitioning") is not None


def _ignore(_: str) -> None:
    return None


@dataclass
class StackContext:
    """Inputs and accumulated results of one run of the stack steps."""

    directory: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None
    pull_policy: str = "missing"
    wait_timeout: float = 300.0
    resume_command: str = "provision up"
    note: Callable[[str], None] = _ignore
    engine_factory: Callable[[], Any] | None = None
    compose_factory: Callable[[Any], Any] | None = None
    compose_command: Sequence[str] | None = None
    settings: Any = None
    results: dict[str, Any] = field(default_factory=dict)
    _engine: Any = None
    _services: dict[str, dict] | None = None

    def load_settings(self) -> Any:
        """Load (once) and return the validated settings of `directory`."""
        if self.settings is None:
            self.settings = load_stack_settings(self.directory, self.overrides, self.environ)
        return self.settings

    def engine(self) -> Any:
        """The Docker engine wrapper, connected on first use."""
        if self._engine is None:
            if self.engine_factory is not None:
                self._engine = self.engine_factory()
            else:
                from provision.runtime.engine import Engine

                self._engine = Engine()
        return self._engine

    def compose(self) -> Any:
        """A `Compose` for the current settings; rebuilt each time so it sees `.env` updates."""
        settings = self.load_settings()
        if self.compose_factory is not None:
            return self.compose_factory(settings)
        from provision.runtime.compose import Compose

        return Compose.for_settings(settings, command=self.compose_command)

    def files_changed(self) -> None:
        """Forget the settings and services read so far: the deployment's files just changed
        (a restore or an upgrade wrote them), so the next read sees the new ones."""
        self.settings = None
        self._services = None

    def services(self) -> dict[str, dict]:
        """The services of the rendered files, asked of Compose once per run.

        Every step that needs them runs after the render step, and nothing later in a run
        rewrites the files, so one `compose config` (~0.1 s) serves pull and start alike.
        """
        if self._services is None:
            self._services = dict(self.compose().services())
        return self._services

    @property
    def env_path(self) -> Path:
        return Path(self.directory) / ".env"


def load_stack_settings(
    directory: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The settings of a deployment, with the choices its first render recorded."""
    from provision.settings import load_settings

    merged = with_recorded_choices(Path(directory), overrides, environ)
    return load_settings(Path(directory), overrides=merged, environ=environ)
