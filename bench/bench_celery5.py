"""What the kit's GlitchTip 5 worker module costs: the REAL Celery 5.5.3 / celery-batches 0.10 /
kombu 5.5.4 worker draining a backlog, with GlitchTip's settings, with the kit's module without
its transport, and with the whole module, side by side.

The kit's module (provision/durability.py) makes the worker acknowledge batches late, retries a
batch the database failed and names a kombu transport whose consumer takes each message with a
Lua script that records it in `unacked` (worker_modules/glitchtip5_transport.py), where kombu
pops with BRPOP and records with a second round trip. This measures that: N ingest tasks queued,
then one worker (`celery -A glitchtip worker`, prefork x 2, prefetch 100) started, timed until
every task is stored; tasks/s = N / that time. The ingest task does no work of its own
(`INGEST_BATCH_SECONDS=0`: one SELECT, one INSERT, one UPDATE per batch of 100), so the figure is
the queue's ceiling, not GlitchTip's (whose batches take far longer): the transport's share of
the time is as large as it can be.

Uses the Docker tier's images and helpers (tests/stack: the celery5, postgres and valkey test
images, built by build-images.sh; `GLITCHTIP_KIT_TEST_IMAGES` picks their namespace).

    .venv/bin/python bench/bench_celery5.py [--tasks 5000] [--runs 2]
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
# The kit's module with kombu's own transport: the setting GlitchTip leaves unset.
WITHOUT_TRANSPORT = "\nCELERY_BROKER_TRANSPORT = None\n"
VARIANTS = (
    ("GlitchTip's alone", False, ""),
    ("kit, kombu's transport", True, WITHOUT_TRANSPORT),
    ("the kit's module", True, ""),
)


def drain_seconds(harness, real, compose, kit: bool, tail: str, tasks: int) -> float:
    """Seconds from starting the worker until `tasks` queued tasks are stored."""
    with tempfile.TemporaryDirectory(prefix="bench-celery5-") as tmp:
        project = harness.ComposeProject(compose, Path(tmp))
        try:
            stack = real.Stack(project, harness.IMAGES, kit, batch_seconds=0, module_tail=tail)
            assert stack.start(tasks) == tasks
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
    real = load_module("celery5_real_stack", STACK / "test_celery5_real_stack.py")
    from provision.runtime.compose_binary import compose_command

    subprocess.run(
        ["bash", str(harness.BUILD_SCRIPT), "postgres", "valkey", "celery5"],
        check=True,
        capture_output=True,
    )
    compose = tuple(compose_command())
    rows = []
    for label, kit, tail in VARIANTS:
        times = [
            drain_seconds(harness, real, compose, kit, tail, args.tasks) for _ in range(args.runs)
        ]
        rows.append((label, statistics.median(times), times))
    print(f"Celery 5.5.3 / kombu 5.5.4, {args.tasks} ingest tasks, 1 worker (prefork x 2,")
    print(f"prefetch 100), median of {args.runs} runs:")
    print(f"{'settings':<24} {'drain s':>8} {'tasks/s':>9}  runs (s)")
    for label, median, times in rows:
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"{label:<24} {median:8.1f} {args.tasks / median:9.0f}  {runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
