"""Benchmark: bare `compose up --wait` vs a cold `provision up` vs a no-op `provision up`.

Targets (issue 7): a cold `provision up` (empty volumes to a printed DSN) within 1.2x a bare
`docker compose up -d --wait` of the same rendered files, and `provision up` on the running,
healthy stack within 2 s, restarting nothing.

One deployment directory and one compose project serve all three, so the bare run and the kit
start exactly the same files: the files are rendered first, the bare run starts them from empty
volumes and is removed with `down -v`; the kit then starts them again from empty volumes up to
the DSN; then `provision up` runs three more times on the running stack (median reported), and
the containers' IDs and start times must be the same afterwards. Images are the registry-free
test images (glitchtip-kit-test/*, built by tests/stack/build-images.sh). The project is
removed with `down -v` at the end, also after a failure or Ctrl-C; every command is bounded.

Run: `.venv/bin/python bench/bench_start.py [MAJOR]` (default 6; needs the Docker engine).
Exit status 1 when a target is missed or a run fails.
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import clean_env, free_port

IMAGES = {
    "glitchtip": "glitchtip-kit-test/glitchtip:{major}",
    "postgres": "glitchtip-kit-test/postgres:17",
    "valkey": "glitchtip-kit-test/valkey:8",
}
COLD_TARGET = 1.2  # cold `provision up` / bare `up --wait`
NOOP_TARGET = 2.0  # seconds for `provision up` on the running stack
NOOP_RUNS = 3
UP_TIMEOUT = 600  # seconds for one start, bare or kit


class BenchError(Exception):
    """A run failed: the benchmark stops (after cleaning up) with this message."""


def prepare(directory: Path, major: int) -> str:
    """Write glitchtip.yaml for the test images, render the files; return the project name."""
    project = f"gtkbench-{secrets.token_hex(3)}"
    (directory / "glitchtip.yaml").write_text(
        f"glitchtip_major: {major}\n"
        f"glitchtip_image: {IMAGES['glitchtip'].format(major=major)}\n"
        f"postgres_image: {IMAGES['postgres']}\n"
        f"valkey_image: {IMAGES['valkey']}\n"
        f"http_port: {free_port()}\n"
        f"compose_project_name: {project}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "provision", "render", "--dir", str(directory)],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"provision render failed: {done.stderr.strip()[-500:]}")
    return project


def compose_argv(compose: tuple[str, ...], project: str, *args: str) -> list[str]:
    return [*compose, "-f", "compose.yml", "--project-name", project, *args]


def down(compose: tuple[str, ...], directory: Path, project: str) -> None:
    """Remove the project's containers, networks and volumes."""
    subprocess.run(
        compose_argv(compose, project, "down", "-v", "--remove-orphans", "--timeout", "5"),
        cwd=directory, capture_output=True, timeout=300,
    )  # fmt: skip


def bare(compose: tuple[str, ...], directory: Path, project: str) -> float:
    """Seconds for `docker compose up -d --wait` of the rendered files, from empty volumes."""
    down(compose, directory, project)
    began = time.monotonic()
    done = subprocess.run(
        compose_argv(compose, project, "up", "-d", "--wait", "--pull", "never"),
        cwd=directory, capture_output=True, text=True, timeout=UP_TIMEOUT,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        raise BenchError(f"bare compose up failed: {done.stderr.strip()[-1500:]}")
    down(compose, directory, project)  # the kit starts from empty volumes too
    return elapsed


def provision_up(directory: Path) -> tuple[float, str]:
    """Seconds for `provision up --quiet` and the DSN it printed."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "provision", "up", "--quiet", "--dir", str(directory)],
        capture_output=True, text=True, timeout=UP_TIMEOUT, env=clean_env(),
    )  # fmt: skip
    elapsed = time.monotonic() - began
    dsn = done.stdout.strip()
    if done.returncode != 0 or "@" not in dsn:
        raise BenchError(f"provision up failed (exit {done.returncode}): {done.stderr.strip()}")
    return elapsed, dsn


def container_starts(directory: Path, project: str) -> dict[str, tuple[str, str]]:
    """name -> (container ID, StartedAt) of every container of `project`."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    if not listed:
        return {}
    done = subprocess.run(
        ["docker", "inspect", *listed], capture_output=True, text=True, timeout=60
    )
    return {
        item["Name"].lstrip("/"): (item["Id"], item["State"]["StartedAt"])
        for item in json.loads(done.stdout or "[]")
    }


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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def measure(major: int, compose: tuple[str, ...], directory: Path) -> list[str]:
    """Run the three measurements in `directory`; the report lines, then PASS/FAIL."""
    project = prepare(directory, major)
    try:
        bare_s = bare(compose, directory, project)
        cold_s, dsn = provision_up(directory)
        before = container_starts(directory, project)
        noops = []
        for _ in range(NOOP_RUNS):
            elapsed, again = provision_up(directory)
            if again != dsn:
                raise BenchError("a no-op provision up printed another DSN")
            noops.append(elapsed)
        after = container_starts(directory, project)
    finally:
        down(compose, directory, project)
    restarted = sorted(name for name in before if after.get(name) != before[name])
    restarted += sorted(name for name in after if name not in before)
    ratio = cold_s / bare_s
    noop = statistics.median(noops)
    runs = ", ".join(f"{value:.2f}" for value in noops)
    cold_ok, noop_ok = ratio <= COLD_TARGET, noop <= NOOP_TARGET and not restarted
    return [
        f"bench_start: GlitchTip {major} (test images, present locally), one run, "
        f"project {project}",
        f"  bare   docker compose up -d --wait (empty volumes)    {bare_s:6.2f} s",
        f"  cold   provision up to a DSN (empty volumes)           {cold_s:6.2f} s  "
        f"{ratio:.2f}x bare (target <= {COLD_TARGET}x)  {verdict(cold_ok)}",
        f"  no-op  provision up on the running stack (median of {NOOP_RUNS}) {noop:6.2f} s  "
        f"runs {runs} (target <= {NOOP_TARGET:.0f} s)  {verdict(noop_ok)}",
        f"         containers recreated or restarted by the no-op runs: "
        f"{len(restarted)}{' (' + ', '.join(restarted) + ')' if restarted else ''}",
        f"  result: {verdict(cold_ok and noop_ok)}",
    ]


def main() -> int:
    from provision.runtime.compose_binary import compose_command

    major = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    missing = missing_images(major)
    if missing:
        print(f"bench_start: skipped, missing {', '.join(missing)} "
              "(build them with `bash tests/stack/build-images.sh`)")  # fmt: skip
        return 0
    compose = tuple(compose_command())
    with tempfile.TemporaryDirectory(prefix="glitchtip-kit-bench-") as scratch:
        try:
            lines = measure(major, compose, Path(scratch))
        except (BenchError, subprocess.TimeoutExpired) as error:
            print(f"bench_start: FAIL: {error}")
            return 1
    print("\n".join(lines))
    return 0 if lines[-1].endswith("PASS") else 1


if __name__ == "__main__":
    sys.exit(main())
