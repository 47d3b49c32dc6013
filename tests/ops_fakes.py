"""Fakes for the fast ops tests: a Compose whose every call runs `ops_fake_compose.py`, and an
engine that reports given containers. See ops_fake_compose.py for the state files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from provision.masking import redact
from provision.runtime.compose import Compose
from provision.runtime.process import ProcessResult

SCRIPT = Path(__file__).resolve().parent / "ops_fake_compose.py"
sys.path.insert(0, str(SCRIPT.parent))
from ops_fake_compose import SERVICES  # noqa: E402


def fake_compose_fixture(monkeypatch):
    """For a fixture (`yield from`): `use(state_dir)` makes the kit's own `Compose` run the
    fake for the rest of the test.

    `compose_command()` is cached per process, so the cache is cleared before and after (a
    real Compose found by an earlier test must not be used here, nor the fake afterwards), and
    DOCKER_HOST points nowhere: if anything still reached for a real engine, it would fail
    instead of creating containers on the host's engine.
    """
    from provision.runtime.compose_binary import compose_command

    def use(state_dir: Path) -> None:
        monkeypatch.setenv("GLITCHTIP_KIT_COMPOSE", str(compose_binary(state_dir)))
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        compose_command.cache_clear()

    yield use
    compose_command.cache_clear()


def compose_binary(state_dir: Path) -> Path:
    """An executable 'Compose v2' for GLITCHTIP_KIT_COMPOSE that runs the fake script."""
    path = Path(state_dir) / "fake-compose"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPT}" "{state_dir}" "$@"\n')
    path.chmod(0o755)
    return path


class FakeCompose:
    """The parts of `provision.runtime.compose.Compose` backup and restore use."""

    def __init__(self, directory: Path, state_dir: Path, secrets: list[str] = ()) -> None:
        self.directory = Path(directory)
        self.state_dir = Path(state_dir)
        self.secrets = list(secrets)
        # (args, timeout) of every run: the bound the kit gave each call (the real Compose.run
        # hands it to the child's wait; this fake's children never hang).
        self.timeouts: list[tuple[tuple[str, ...], float | None]] = []

    # state -----------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        return json.loads((self.state_dir / "state.json").read_text())

    def set_state(self, **values) -> None:
        state = self.state
        state.update(values)
        (self.state_dir / "state.json").write_text(json.dumps(state))

    def calls(self) -> list[str]:
        log = self.state_dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    # the Compose interface -------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, str(SCRIPT), str(self.state_dir), *args]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    # the real one: the child's environment without what the deployment's .env defines
    child_env = Compose.child_env

    def run(self, *args: str, env=None, timeout=600) -> ProcessResult:
        self.timeouts.append((args, timeout))  # 600: the real Compose.run's default
        if args[:1] == ("config",) and args[1:3] == ("--format", "json"):
            document = {"services": SERVICES, "volumes": {"uploads": {"name": "x_uploads"}}}
            return ProcessResult(tuple(args), 0, json.dumps(document), "")
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=60)
        return ProcessResult(
            tuple(args), done.returncode, self.redact(done.stdout), self.redact(done.stderr)
        )

    def stream(self, *args: str, on_line, env=None, timeout=None) -> ProcessResult:
        result = self.run(*args, timeout=timeout)
        for line in result.output.splitlines():
            on_line(line)
        return result

    def services(self) -> dict:
        return SERVICES

    def ps(self, *services: str) -> list[dict]:
        """The rows the fake script prints for `compose ps` (health included)."""
        result = self.run("ps", "-a", "--format", "json", *services)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def make_state(state_dir: Path, db: bytes, uploads: bytes, **state) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "db.bin").write_bytes(db)
    (state_dir / "uploads.tar").write_bytes(uploads)
    base = {"postgres": "running", "server_major": 17, "tables": 3}
    base.update(state)
    (state_dir / "state.json").write_text(json.dumps(base))


class FakeEngine:
    """`Engine.containers` and `Engine.info` from given values."""

    def __init__(self, containers: list, root: Path) -> None:
        self._containers = containers
        self.root = root

    def containers(self, project=None) -> list:
        return list(self._containers)

    def info(self) -> dict:
        return {"DockerRootDir": str(self.root)}
