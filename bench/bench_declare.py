"""Benchmark: `provision plan` and `apply` of 50 projects with alerts and monitors, fresh and
re-run, against the fake GlitchTip (issue 22).

Writes a declaration of N projects (default 50; each with a named key, two alerts with an
e-mail and a webhook recipient, and a DSN file) and N monitors, then runs the real CLI in
subprocesses: plan (fresh), apply (fresh), plan (re-run), apply (re-run). For each: seconds and
the requests the fake answered, by method, printed side by side. A re-run must write nothing.
Usage: .venv/bin/python bench/bench_declare.py [N]   (about 10 s; not part of `make test`)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeglitchtip import create_superuser, start_fake  # noqa: E402

METHODS = ("GET", "POST", "PUT", "DELETE")


def declaration(count: int) -> str:
    lines = ["organization: Bench", "teams: [backend, frontend]", "projects:"]
    for n in range(count):
        lines += [
            f"  - name: app-{n:03d}",
            "    platform: python",
            "    teams: [backend]",
            "    keys:",
            '      - name: ""',
            "      - name: ci",
            "        rate_limit: {window: 60, count: 100}",
            "    alerts:",
            "      - {name: burst, quantity: 5, timespan_minutes: 10, recipients: [{type: email},"
            f" {{type: webhook, url: 'https://hooks.example.com/{n}'}}]}}",
            "      - {name: any, quantity: 1, timespan_minutes: 1, recipients: [{type: email}]}",
            f"    dsn_files: [{{path: apps/app-{n:03d}.glitchtiprc}}]",
        ]
    lines.append("monitors:")
    for n in range(count):
        lines.append(
            f"  - {{name: health-{n:03d}, type: GET, url: 'https://app{n}.example.com/',"
            f" timeout: 10, project: app-{n:03d}}}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    provision = str(Path(sys.executable).parent / "provision")
    fake = start_fake()
    create_superuser(fake.store, "admin@example.com", "admin-Passw0rd-123")
    env = {
        **os.environ,
        "GLITCHTIP_URL": fake.url,
        "GLITCHTIP_ADMIN_EMAIL": "admin@example.com",
        "GLITCHTIP_ADMIN_PASSWORD": "admin-Passw0rd-123",
    }
    rows = []
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "apps").mkdir()
        (Path(work) / "glitchtip-resources.yaml").write_text(declaration(count))
        for label, command in (
            ("plan, fresh", "plan"),
            ("apply, fresh", "apply"),
            ("plan, re-run", "plan"),
            ("apply, re-run", "apply"),
        ):
            fake.clear_log()
            started = time.perf_counter()
            done = subprocess.run(
                [provision, command], cwd=work, env=env, capture_output=True, text=True
            )
            seconds = time.perf_counter() - started
            if done.returncode not in (0, 3):
                raise SystemExit(f"{command} failed: {done.stderr[-500:]}")
            rows.append((label, done.returncode, seconds, {m: fake.count(m) for m in METHODS}))
    fake.stop()
    print(f"{count} projects (2 keys, 2 alerts, 1 DSN file each), {count} monitors")
    print(
        f"{'run':<15}{'exit':>5}{'seconds':>9}{'requests':>9}" + "".join(f"{m:>8}" for m in METHODS)
    )
    for label, code, seconds, counts in rows:
        total = sum(counts.values())
        print(
            f"{label:<15}{code:>5}{seconds:>9.2f}{total:>9}"
            + "".join(f"{counts[m]:>8}" for m in METHODS)
        )
    rerun_writes = sum(rows[3][3][m] for m in ("POST", "PUT", "DELETE"))
    print(
        f"writes in the apply re-run: {rerun_writes} (target 0): "
        f"{'PASS' if rerun_writes == 0 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
