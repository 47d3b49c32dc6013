"""What the kit's GlitchTip 6 task backends cost: the REAL django-vtasks 2.1.2 worker draining a
backlog, with GlitchTip's settings and with the kit's worker module, side by side.

The kit's module (provision/worker_modules/glitchtip6.py) replaces django-vtasks' Valkey backend
(standard profile) and database backend (minimal profile, VALKEY_URL="") with subclasses that
record each batch until it is stored (a processing list / PROCESSING rows), keep a liveness
key or row, and look for dead workers' batches every 10 s. This measures what that costs: N
ingest tasks queued, then one worker (`manage.py runworker`, concurrency 2) started, timed
until every task is stored; tasks/s = N / that time. The ingest task does no work of its own
(`INGEST_BATCH_SECONDS=0`: one SELECT, one INSERT, one UPDATE per batch of 100), so the figure
is the queue's ceiling, not GlitchTip's (whose batches take far longer): the backend's share of
the time is as large as it can be.

Uses the Docker tier's images and helpers (tests/stack: the vtasks, postgres and valkey test
images, built by build-images.sh; `GLITCHTIP_KIT_TEST_IMAGES` picks their namespace).

    .venv/bin/python bench/bench_vtasks.py [--tasks 5000] [--runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import load_module, seconds_to_store

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "tests" / "stack"


def drain_seconds(harness, real, images, compose, backend: str, kit: bool, tasks: int) -> float:
    """Seconds from starting the worker until `tasks` queued tasks are stored."""
    with tempfile.TemporaryDirectory(prefix="bench-vtasks-") as tmp:
        project = harness.ComposeProject(compose, Path(tmp))
        try:
            stack = real.Stack(project, images, kit, backend=backend, batch_seconds=0)
            queued = stack.start(str(tasks))
            assert queued == tasks, queued
            return seconds_to_store(project, stack, tasks)
        finally:
            project.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each; the median is shown")
    args = parser.parse_args()

    sys.path.insert(0, str(STACK))
    harness = load_module("stack_conftest", STACK / "conftest.py")
    real = load_module("vtasks_real_stack", STACK / "test_vtasks_real_stack.py")
    from provision.runtime.compose_binary import compose_command

    subprocess.run(
        ["bash", str(harness.BUILD_SCRIPT), "postgres", "valkey", "vtasks"],
        check=True,
        capture_output=True,
    )
    compose = tuple(compose_command())
    rows = []
    for backend in ("valkey", "database"):
        for kit in (False, True):
            times = [
                drain_seconds(harness, real, harness.IMAGES, compose, backend, kit, args.tasks)
                for _ in range(args.runs)
            ]
            rows.append((backend, kit, statistics.median(times), times))
    print(f"django-vtasks 2.1.2, {args.tasks} ingest tasks, 1 worker (concurrency 2), median of")
    print(f"{args.runs} runs:")
    print(f"{'backend':<10} {'settings':<22} {'drain s':>8} {'tasks/s':>9}  runs (s)")
    for backend, kit, median, times in rows:
        label = "the kit's module" if kit else "GlitchTip's alone"
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"{backend:<10} {label:<22} {median:8.1f} {args.tasks / median:9.0f}  {runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
