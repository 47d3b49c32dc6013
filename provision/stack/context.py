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
            self.settings = load_settings(self.directory, self.overrides, self.environ)
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

    def deployment(self) -> Any:
        """The `provision.deployment.Deployment` of the current settings."""
        from provision.deployment import Deployment

        return Deployment(self.load_settings(), self.compose_command)

    def compose(self) -> Any:
        """A `Compose` for the current settings; rebuilt each time so it sees `.env` updates."""
        settings = self.load_settings()
        if self.compose_factory is not None:
            return self.compose_factory(settings)
        return self.deployment().compose()

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


def load_settings(
    directory: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The settings of a deployment (`provision.deployment.load_settings`)."""
    from provision.deployment import load_settings

    return load_settings(directory, overrides, environ)
