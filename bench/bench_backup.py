"""Benchmark: `provision backup` and `provision restore` of a database of at least 1 GB.

Figures (issue 10): seconds and peak memory of the kit's own process for each, printed side by
side with the database and archive sizes and the throughput. The point of the streaming design
is that the kit's memory stays flat whatever the database size (pg_dump's bytes pass through in
1 MiB chunks), so the peak RSS must stay far below the database size.

A throw-away deployment of its own (compose project `bench-<hex>`, a free port on 127.0.0.1,
the registry-free test images `$GLITCHTIP_KIT_TEST_IMAGES/*`, default glitchtip-kit-test) is
started with `provision up`; its Postgres is filled with generated rows (random hex text, in
bounded batches) until `pg_database_size` passes BENCH_DB_GB (default 1.0); then `backup`,
`down --volumes`, `restore --no-verify`, and the row count is compared. Peak memory is read two
ways: VmHWM of the kit's Python process itself (polled from /proc), and ru_maxrss from wait4
(the largest process of its tree, which includes the Compose binary it runs).
The project and its volumes are removed at the end, also after a failure or Ctrl-C.

Run: `.venv/bin/python bench/bench_backup.py` (needs the Docker engine; several minutes,
~3 GB of disk: volume, archive, restored volume). Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import free_port

NAMESPACE = os.environ.get("GLITCHTIP_KIT_TEST_IMAGES", "").strip() or "glitchtip-kit-test"
TARGET_GB = float(os.environ.get("BENCH_DB_GB", "1.0"))
BATCH_ROWS = 200_000  # one INSERT ... generate_series: bounded work per statement
ROW_SQL = " || ".join(["md5(random()::text)"] * 16)  # 512 random hex characters a row
MAX_BATCHES = 40  # bounded: ~ 40 x 110 MB at most
TIMEOUT = 1800
PROVISION = [sys.executable, "-m", "provision"]


def measured(argv: list[str], env: dict[str, str]) -> dict:
    """Run `argv`; its wall seconds, the Python process's VmHWM and the tree's ru_maxrss."""
    began = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
        hwm_kb = 0
        status_path = Path(f"/proc/{process.pid}/status")
        while True:  # wait4 (not poll) reaps it, so its rusage is ours to read
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            try:  # VmHWM only grows: the last read before the exit is (nearly) the peak
                for line in status_path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm_kb = max(hwm_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            if time.monotonic() - began > TIMEOUT:
                process.kill()
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.monotonic() - began
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:])} failed ({process.returncode}):\n{stdout}{stderr}")
    return {
        "seconds": seconds,
        "kit_rss_mb": hwm_kb / 1024,
        "tree_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    project = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    (directory / "glitchtip.yaml").write_text(
        f"glitchtip_image: {NAMESPACE}/glitchtip:6\npostgres_image: {NAMESPACE}/postgres:17\n"
        f"valkey_image: {NAMESPACE}/valkey:8\nhttp_port: {port}\n"
        f"compose_project_name: {project}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP_")}
    env["GLITCHTIP_KIT_DIR"] = str(directory)

    def provision(*args: str) -> str:
        done = subprocess.run(
            [*PROVISION, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        if done.returncode != 0:
            raise SystemExit(f"provision {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def psql(sql: str) -> str:
        from provision.runtime.compose_binary import compose_command

        done = subprocess.run(
            [*compose_command(), "-f", "compose.yml", "--project-name", project, "exec", "-T",
             "postgres", "psql", "-X", "-A", "-t", "-U", "glitchtip", "-d", "glitchtip", "-c", sql],
            cwd=directory, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"psql failed: {done.stderr}")
        return done.stdout.strip()

    try:
        began = time.monotonic()
        provision("up", "--quiet", "--pull", "never")
        print(f"deployment {project} up in {time.monotonic() - began:.0f} s; filling Postgres")
        psql("CREATE TABLE bench_fill (id bigint PRIMARY KEY, payload text NOT NULL)")
        size = 0
        began = time.monotonic()
        for batch in range(MAX_BATCHES):
            start = batch * BATCH_ROWS
            psql(
                f"INSERT INTO bench_fill SELECT g, {ROW_SQL} "
                f"FROM generate_series({start + 1}, {start + BATCH_ROWS}) g"
            )
            size = int(psql("SELECT pg_database_size(current_database())"))
            if size >= TARGET_GB * 1e9:
                break
        rows = int(psql("SELECT count(*) FROM bench_fill"))
        took = time.monotonic() - began
        print(f"filled {rows:,} rows, database {size / 1e9:.2f} GB in {took:.0f} s")
        if size < TARGET_GB * 1e9:
            raise SystemExit(f"the database reached only {size / 1e9:.2f} GB")

        backup = measured([*PROVISION, "backup", "--json"], env)
        archive = Path(json.loads(backup["stdout"])["path"])
        archive_size = archive.stat().st_size
        provision("down", "--volumes", "--yes")
        restore = measured([*PROVISION, "restore", str(archive), "--no-verify"], env)
        restored_rows = int(psql("SELECT count(*) FROM bench_fill"))
        restored_size = int(psql("SELECT pg_database_size(current_database())"))
    finally:
        subprocess.run(
            [*PROVISION, "down", "--volumes", "--yes"], env=env, capture_output=True, timeout=600
        )
        for path in sorted(directory.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        directory.rmdir()

    print()
    print(f"database {size / 1e9:.2f} GB ({rows:,} rows); archive {archive_size / 1e9:.2f} GB")
    print(f"{'':10} {'seconds':>8} {'MB/s (db)':>10} {'kit RSS MB':>11} {'tree RSS MB':>12}")
    for name, figures in (("backup", backup), ("restore", restore)):
        print(
            f"{name:10} {figures['seconds']:8.1f} {size / 1e6 / figures['seconds']:10.1f} "
            f"{figures['kit_rss_mb']:11.1f} {figures['tree_rss_mb']:12.1f}"
        )
    print("restore includes: postgres start, pg_restore, uploads, migrations, stack start")
    same = restored_rows == rows
    print(f"rows after restore: {restored_rows:,} ({'same' if same else 'DIFFERENT'}); "
          f"database {restored_size / 1e9:.2f} GB")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
