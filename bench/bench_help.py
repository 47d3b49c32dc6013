"""Benchmark: how long `provision --help` takes as a fresh process (target: under 100 ms).

The CLI loads its commands lazily and each command imports its heavy libraries (jinja2, httpx,
docker) only when it runs, so `--help` should cost little more than starting Python and Click.
Run: `.venv/bin/python bench/bench_help.py` (or `make bench`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
TARGET_SECONDS = 0.100


def _provision_argv() -> list[str]:
    script = Path(sys.executable).with_name("provision")
    if script.exists():
        return [str(script)]
    found = shutil.which("provision")
    return [found] if found else [sys.executable, "-m", "provision"]


def main() -> int:
    argv = [*_provision_argv(), "--help"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run(argv, capture_output=True, check=True, env=env)  # warm the bytecode cache
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    print(
        f"provision --help: median {median * 1000:.0f} ms, min {min(samples) * 1000:.0f} ms, "
        f"max {max(samples) * 1000:.0f} ms over {RUNS} runs "
        f"(target < {TARGET_SECONDS * 1000:.0f} ms)"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
