"""Time re-runs of `provision create-project` against the fake GlitchTip.

Starts the fake, runs create-project once on the fresh server, then N re-runs of the real CLI in
subprocesses, and prints the median/max seconds of a re-run and the POSTs the re-runs made
(target: < 0.3 s, 0 POSTs). Usage: .venv/bin/python bench/bench_create_project.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.3  # a create-project re-run: lists only, no POST
sys.path.insert(0, str(ROOT / "tests"))

from fakeglitchtip import create_superuser, start_fake  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    provision = str(Path(sys.executable).parent / "provision")
    fake = start_fake()
    create_superuser(fake.store, "admin@example.com", "admin-Passw0rd-123")
    env = {**os.environ, "GLITCHTIP_ADMIN_EMAIL": "admin@example.com",
           "GLITCHTIP_ADMIN_PASSWORD": "admin-Passw0rd-123"}  # fmt: skip
    # Users' runs import cached bytecode; with PYTHONDONTWRITEBYTECODE set (some shells and CI
    # images set it) every run would compile the kit's modules again (about 0.1 s of 0.3).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [provision, "create-project", "--url", fake.url, "--org", "Acme", "--project", "Web"]
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        first = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        fresh = time.perf_counter() - started
        if first.returncode:
            raise SystemExit(first.stderr)
        fake.clear_log()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            again = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            assert again.stdout == first.stdout, "a re-run printed another DSN"
    posts = fake.count("POST")
    fake.stop()
    print(f"fresh run: {fresh:.3f} s ({len(first.stdout.strip()) and 'DSN printed'})")
    print(f"re-runs: {runs}, median {statistics.median(times):.3f} s, max {max(times):.3f} s")
    median = statistics.median(times)
    verdict = "PASS" if posts == 0 and median < TARGET_SECONDS else "FAIL"
    print(f"POSTs during re-runs: {posts} (target 0); re-run < {TARGET_SECONDS} s: {verdict}")


if __name__ == "__main__":
    main()
