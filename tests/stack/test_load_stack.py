"""The load test on a real engine: `provision load` against the GlitchTip 6 stand-in stack, and
`make locust-start` / `make locust-stop` (the web UI answering on 127.0.0.1).

The Locust image is the registry-free one of build-images.sh (`<namespace>/locust:2`, Locust
2.47 from PyPI wheels), set as `locust_image`. The headless run is short (10 s) and capped by
`--rate`, so the stand-in's worker stores everything within the drain bound: nothing accepted
may be lost. Every command's output is printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """A deployment directory with the test images, driven through the real CLI."""

    def __init__(self, directory: Path, images: dict[str, str]) -> None:
        self.directory = directory
        self.project = f"gtkload-{secrets.token_hex(4)}"
        self.locust_port = free_port()
        (directory / "glitchtip.yaml").write_text(
            "\n".join(
                [
                    "glitchtip_major: 6",
                    f"glitchtip_image: {images['glitchtip6']}",
                    f"postgres_image: {images['postgres']}",
                    f"valkey_image: {images['valkey']}",
                    f"locust_image: {images['locust']}",
                    f"http_port: {free_port()}",
                    f"locust_port: {self.locust_port}",
                    f"compose_project_name: {self.project}",
                ]
            )
            + "\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP_")}

    def run(self, argv: list[str], timeout: float, env: dict | None = None):
        began = time.monotonic()
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
        )
        print(
            f"$ {' '.join(argv[2:] if argv[0] == sys.executable else argv)}"
            f"    # exit {done.returncode}, {time.monotonic() - began:.1f} s\n"
            f"{done.stdout}{done.stderr}",
            flush=True,
        )
        return done

    def provision(self, *args: str, timeout: float = 420, check: bool = True):
        done = self.run(
            [sys.executable, "-m", "provision", *args, "--dir", str(self.directory)], timeout
        )
        if check:
            assert done.returncode == 0, done.stderr[-3000:]
        return done

    def containers(self, project: str) -> list[str]:
        done = subprocess.run(
            ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout.split()

    def teardown(self) -> None:
        from provision.runtime.compose_binary import compose_command

        self.provision("load", "--stop", check=False, timeout=180)
        self.provision("down", "--volumes", "--yes", check=False, timeout=300)
        for project in (f"{self.project}-locust", self.project):
            subprocess.run(
                [*compose_command(), "--project-name", project, "down", "-v", "--remove-orphans",
                 "--timeout", "5"],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip


@pytest.fixture
def stack(tmp_path, stack_env):
    deployment = Stack(tmp_path, stack_env.images)
    try:
        deployment.provision("up", "--pull", "never", "--quiet")
        yield deployment
    finally:
        deployment.teardown()


def test_headless_load_then_the_web_ui(stack):
    from provision.load.report import REPORT_FILES, parse_stats
    from provision.load.run import RESULT_KEYS

    done = stack.provision(
        "load", "--json", "--duration", "10s", "--users", "4", "--spawn-rate", "4",
        "--rate", "5", "--workers", "1", "--issues", "6", "--drain-timeout", "90",
        timeout=400,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert set(RESULT_KEYS) <= set(result)
    assert result["target"] == "http://web:8000" and result["project"] == "loadtest"
    assert result["requests"] > 50 and result["failures"] == 0
    # Nothing lost: every event GlitchTip accepted was stored by its worker.
    assert result["events_processed"] == result["events_sent"] == result["requests"]
    assert result["transactions_processed"] > 0
    assert result["drain_s"] is not None and 0 <= result["drain_s"] <= 90
    assert result["processed_per_s"] > 0 and result["p95_ms"] is not None
    assert set(result["by_kind"]) == {"error_gzip", "error_plain", "message", "transaction",
                                      "store"}  # fmt: skip
    assert result["queue_keys"] == ["{vt}:q:ingest", "{vt}:q:default"]

    report_dir = Path(result["report_dir"])
    assert report_dir.parent == stack.directory / "reports"
    for name in REPORT_FILES:
        assert (report_dir / name).is_file(), name
    stats = parse_stats((report_dir / "locust_stats.csv").read_text())
    assert stats.requests == result["requests"]
    assert "<html" in (report_dir / "report.html").read_text()[:2000].lower()
    # The DSN's key is not printed, and no Locust container is left behind.
    import re

    assert not re.search(r"[0-9a-f]{32}@", done.stdout + done.stderr)
    assert stack.containers(f"{stack.project}-locust") == []
    # The production project's DSN file is untouched by the load test's project.
    assert "loadtest" not in (stack.directory / ".glitchtiprc").read_text()

    # make locust-start: the UI on 127.0.0.1:<locust_port>, then make locust-stop.
    make_env = {"GLITCHTIP_KIT_DIR": str(stack.directory)}
    started = stack.run(["make", "-C", str(REPO), "locust-start"], 300, env=make_env)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{stack.locust_port}/"
    status = None
    for _ in range(60):
        try:
            import httpx

            status = httpx.get(url, timeout=2).status_code
            if status == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    assert status == 200, f"Locust's UI did not answer on {url}"
    # The UI's master and worker load the stack too (DSN and Host header from the environment).
    for _ in range(30):  # the worker connects to the master a moment after both started
        if httpx.get(url + "stats/requests", timeout=10).json().get("worker_count", 0) >= 1:
            break
        time.sleep(1)
    swarm = httpx.post(url + "swarm", data={"user_count": 1, "spawn_rate": 1}, timeout=10)
    assert swarm.json()["success"] is True
    stats: dict = {}
    for _ in range(20):
        time.sleep(1)
        stats = httpx.get(url + "stats/requests", timeout=10).json()
        if stats["stats"] and stats["stats"][-1]["num_requests"] >= 5:
            break
    total = stats["stats"][-1]
    assert total["name"] == "Aggregated" and total["num_requests"] >= 5, stats
    assert total["num_failures"] == 0, stats.get("errors")
    stopped = stack.run(["make", "-C", str(REPO), "locust-stop"], 300, env=make_env)
    assert stopped.returncode == 0, stopped.stderr
    assert "Locust stopped." in stopped.stdout
    assert stack.containers(f"{stack.project}-locust") == []
