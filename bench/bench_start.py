"""Benchmark: `provision up` to a DSN vs a bare `docker compose up -d --wait` (target <= 1.5x).

Both start the same rendered compose.yml from empty volumes with the registry-free test images
(glitchtip-kit-test/*, built by tests/stack/build-images.sh): the bare run measures what Compose
and the containers cost; the kit's run adds preflight, render, the pull check, the migrate check,
the admin, the API token, organization, team, project and the DSN. Each run gets its own project
name, port and directory, and is removed with `down -v` afterwards.

Run: `.venv/bin/python bench/bench_start.py [MAJOR]` (default 6; needs the Docker engine).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGES = {
    "glitchtip": "glitchtip-kit-test/glitchtip:{major}",
    "postgres": "glitchtip-kit-test/postgres:17",
    "valkey": "glitchtip-kit-test/valkey:8",
}
TARGET = 1.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(directory: Path, major: int) -> str:
    """Write glitchtip.yaml for the test images; return the compose project name."""
    project = f"gtkbench-{secrets.token_hex(3)}"
    (directory / "glitchtip.yaml").write_text(
        f"glitchtip_major: {major}\n"
        f"glitchtip_image: {IMAGES['glitchtip'].format(major=major)}\n"
        f"postgres_image: {IMAGES['postgres']}\n"
        f"valkey_image: {IMAGES['valkey']}\n"
        f"http_port: {free_port()}\n"
        f"compose_project_name: {project}\n"
    )
    return project


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP_")}


def down(compose: tuple[str, ...], project: str) -> None:
    subprocess.run(
        [*compose, "--project-name", project, "down", "-v", "--remove-orphans", "--timeout", "5"],
        capture_output=True,
        timeout=300,
    )


def bare(root: Path, major: int, compose: tuple[str, ...]) -> float:
    """Seconds for `docker compose up -d --wait` of the rendered files (rendered beforehand)."""
    from provision.render import write_rendered
    from provision.settings import load_settings

    directory = root / "bare"
    directory.mkdir()
    project = prepare(directory, major)
    write_rendered(load_settings(directory, environ=clean_env()))
    try:
        began = time.monotonic()
        done = subprocess.run(
            [*compose, "-f", "compose.yml", "--project-name", project,
             "up", "-d", "--wait", "--pull", "never"],
            cwd=directory, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        elapsed = time.monotonic() - began
        if done.returncode != 0:
            sys.exit(f"bare compose up failed:\n{done.stderr[-3000:]}")
        return elapsed
    finally:
        down(compose, project)


def kit(root: Path, major: int, compose: tuple[str, ...]) -> float:
    """Seconds for `provision up --quiet` from an empty directory to a printed DSN."""
    directory = root / "kit"
    directory.mkdir()
    project = prepare(directory, major)
    try:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "provision", "up", "--quiet", "--dir", str(directory)],
            capture_output=True, text=True, timeout=900, env=clean_env(),
        )  # fmt: skip
        elapsed = time.monotonic() - began
        if done.returncode != 0 or "@" not in done.stdout:
            sys.exit(f"provision up failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        return elapsed
    finally:
        down(compose, project)


def missing_images(major: int) -> list[str]:
    """The test images (or the engine) this benchmark cannot find."""
    wanted = [image.format(major=major) for image in IMAGES.values()]
    try:
        return [
            image
            for image in wanted
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                              timeout=30).returncode != 0
        ]  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ["(no Docker engine)"]


def main() -> None:
    from provision.compose_binary import compose_command

    major = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    missing = missing_images(major)
    if missing:
        print(f"bench_start: skipped, missing {', '.join(missing)} "
              "(build them with `bash tests/stack/build-images.sh`)")  # fmt: skip
        return
    compose = compose_command()
    with tempfile.TemporaryDirectory(prefix="glitchtip-kit-bench-") as scratch:
        root = Path(scratch)
        bare_s = bare(root, major, compose)
        kit_s = kit(root, major, compose)
    ratio = kit_s / bare_s
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"bench_start (GlitchTip {major} test images, empty volumes, images present)")
    print(f"  docker compose up -d --wait      {bare_s:6.1f} s")
    print(f"  provision up (to a DSN)          {kit_s:6.1f} s")
    print(f"  ratio                            {ratio:6.2f}x  (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
