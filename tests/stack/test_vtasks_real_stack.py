"""The kit's GlitchTip 6 worker module on the REAL django-vtasks 2.1.2 (issue 19).

GlitchTip itself cannot be installed here; django-vtasks can (PyPI). The image
`<namespace>/vtasks:2.1.2` (tests/stack/images/vtasks) runs django-vtasks 2.1.2, Django 6.0 and
django-vcache with a tiny project whose `glitchtip.settings` names the task backend, queues and
ingest batch queue as GlitchTip 6's settings do, and whose ingest batch task stores each event
once (ON CONFLICT DO NOTHING, as GlitchTip's bulk_create ignore_conflicts) and counts it. The
worker runs `manage.py runworker` (GlitchTip's bin/run-worker.sh) with the kit's module
(`provision render`'s python/glitchtip_kit_worker_settings.py for GlitchTip 6, mounted read-only
at /kit/python, DJANGO_SETTINGS_MODULE and PYTHONPATH as compose.yml sets them) or, to show what
the kit changes, with GlitchTip's settings alone. Valkey runs with the kit's flags (append-only
file, noeviction), Postgres is the test image.

Each run enqueues N ingest tasks first (a backlog, as a burst leaves it), starts the worker
(concurrency 2, each batch 0.5 s of "processing" between its first query and its writes), then:

- worker SIGKILLed 3 s in, then recreated as `provision up` recreates a service (a new
  container, so a new hostname and worker id);
- Postgres restarted (`docker compose restart`, a fast shutdown that ends open sessions) 3 s in,
  nothing else done.

and waits (at most 90 s) until nothing is queued or in a processing list. With the kit's module:
stored == N, nothing dead-lettered. Without it: fewer stored (the batches the killed worker had
popped; the batches dead-lettered by the restart). Counts print with `pytest -s`. About 4
minutes for the four runs on 2 CPUs.

A last test pushes one task straight into the live worker's processing list (what a fetch whose
reply died with Valkey leaves): the kit's module puts it back and stores it within 40 s, GlitchTip's
settings leave it there (about 80 s for both sides).
"""

from __future__ import annotations

import json
import time

import pytest

from provision import durability
from provision.stack import queue_health

pytestmark = pytest.mark.stack

N = 2000
FAULT_AFTER_S = 3.0
DRAIN_BOUND_S = 90.0
# What the worker's VALKEY_URL is for each of django-vtasks' backends GlitchTip uses: the
# Valkey backend (standard profile), the database backend (VALKEY_URL="": minimal profile).
VALKEY_URLS = {"valkey": "redis://valkey:6379/0", "database": ""}
# The database backend without the kit never gives a stranded row back while its worker lives
# (nor, after a recreate, ever): waiting longer than this for it to drain shows nothing more.
STRANDED_BOUND_S = 30.0

COMPOSE = """
x-app: &app
  image: {vtasks}
  environment: &env
    DATABASE_HOST: postgres
    DATABASE_PASSWORD: test-only-password
    DATABASE_CONN_HEALTH_CHECKS: "true"
    VALKEY_URL: "{valkey_url}"
    VTASKS_CONCURRENCY: "2"
    INGEST_BATCH_SECONDS: "{batch_seconds}"
services:
  postgres:
    image: {postgres}
    environment:
      POSTGRES_PASSWORD: test-only-password
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1s
      retries: 60
  valkey:
    image: {valkey}
    command: ["valkey-server", "--appendonly", "yes", "--appendfsync", "everysec",
              "--maxmemory", "{maxmemory}", "--maxmemory-policy", "noeviction"]
  web:
    <<: *app
    command: ["sleep", "infinity"]
  worker:
    <<: *app
    command: ["python3", "manage.py", "runworker"]
    environment:
      <<: *env
{worker_env}
    volumes:
      - ./python:/kit/python:ro
"""


class Stack:
    def __init__(
        self,
        project,
        images: dict[str, str],
        kit_module: bool,
        maxmemory: str = "256mb",
        backend: str = "valkey",
        batch_seconds: float = 0.5,
    ) -> None:
        self.project = project
        python = project.directory / "python"
        python.mkdir()
        module = python / f"{durability.WORKER_SETTINGS_MODULE}.py"
        module.write_text(durability.worker_settings_module(6))
        worker_env = ""
        if kit_module:
            worker_env = (
                f"      DJANGO_SETTINGS_MODULE: {durability.WORKER_SETTINGS_MODULE}\n"
                f"      PYTHONPATH: {durability.WORKER_PYTHONPATH}"
            )
        project.write(
            COMPOSE.format(
                vtasks=images["vtasks"],
                postgres=images["postgres"],
                valkey=images["valkey"],
                worker_env=worker_env,
                maxmemory=maxmemory,
                valkey_url=VALKEY_URLS[backend],
                batch_seconds=batch_seconds,
            )
        )

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = self.project.run("exec", "-T", "web", "python3", "manage.py", *args, timeout=timeout)
        return done.stdout.strip()

    def counts(self) -> dict:
        return json.loads(self.manage("counts").splitlines()[-1])

    def start(self, *enqueue: str) -> int:
        """Services up, tables made, tasks queued (`enqueue` arguments, default N): how many."""
        self.project.run("up", "-d", "--wait", "postgres", "valkey", "web")
        deadline = time.monotonic() + 60
        while True:
            done = self.project.run(
                "exec", "-T", "web", "python3", "manage.py", "setup_tables", check=False
            )
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline, done.stderr[-2000:]
            time.sleep(1)
        return int(self.manage("enqueue", *(enqueue or (str(N),))).splitlines()[-1])

    def drain(self, bound: float = DRAIN_BOUND_S) -> dict:
        """Counts once nothing is queued or being processed (or after `bound` seconds)."""
        deadline = time.monotonic() + bound
        while True:
            counts = self.counts()
            if counts["queued"] == 0 and counts["processing"] == 0:
                time.sleep(2)  # a batch between the two lists finishes its write
                counts = self.counts()
                if counts["queued"] == 0 and counts["processing"] == 0:
                    return counts
            if time.monotonic() > deadline:
                return counts
            time.sleep(2)


def read_database_queue(project) -> dict:
    """What `provision status`/`verify` read from the database backend's tables (the kit's
    query, provision/stack/queue_health.py), run on the real django-vtasks schema."""
    done = project.run(
        "exec", "-T", "postgres", "psql", "-X", "-A", "-t", "-U", "postgres",
        "-c", queue_health._DATABASE_SQL,
    )  # fmt: skip
    found = queue_health.parse_database(done.stdout)
    return {k: found[k] for k in ("backlog", "dead_letters", "held_by_gone_workers")}


def run(
    project,
    images,
    kit_module: bool,
    fault: str,
    backend: str = "valkey",
    bound: float = DRAIN_BOUND_S,
) -> dict:
    stack = Stack(project, images, kit_module, backend=backend)
    assert stack.start() == N
    project.run("up", "-d", "worker")
    time.sleep(FAULT_AFTER_S)
    if fault == "worker-kill":
        project.run("kill", "-s", "SIGKILL", "worker")
        # `provision up` recreates a changed service: a new container, hostname and worker id.
        project.run("up", "-d", "--force-recreate", "--no-deps", "worker")
    else:
        project.run("restart", "postgres")
    counts = stack.drain(bound)
    if backend == "database":
        counts["read_by_status"] = read_database_queue(project)
    label = "kit module" if kit_module else "GlitchTip's settings"
    print(f"\n[vtasks 2.1.2, {backend} backend, {fault}, {label}] enqueued {N}: {counts}")
    return counts


@pytest.mark.parametrize("fault", ["worker-kill", "postgres-restart"])
def test_kit_module_keeps_every_batch_on_the_real_library(fault, tmp_path, stack_env):
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with stack_env.compose_project(tmp_path / "without") as project:
        without = run(project, stack_env.images, kit_module=False, fault=fault)
    with stack_env.compose_project(tmp_path / "with") as project:
        with_kit = run(project, stack_env.images, kit_module=True, fault=fault)

    # GlitchTip's settings alone: the fault costs events (the brief's baseline).
    assert without["stored"] < N, without
    # The kit's module: every enqueued event stored, nothing dead-lettered or left behind.
    assert with_kit == {**with_kit, "stored": N, "failed": 0, "queued": 0, "processing": 0}
    assert with_kit["counted"] >= N


@pytest.mark.parametrize("fault", ["worker-kill", "postgres-restart"])
def test_kit_module_keeps_every_database_batch_on_the_real_library(fault, tmp_path, stack_env):
    """The minimal profile's database backend (VALKEY_URL=""): vtasks marks a fetched batch's
    rows PROCESSING with its worker id and gives them back only when a worker of the same
    hostname but another pid starts; a batch failing while the database is away cannot be
    marked FAILED either. The kit's KitDatabaseTaskBackend gives back the rows of workers
    without a liveness row, and its own rows it no longer holds."""
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with stack_env.compose_project(tmp_path / "without") as project:
        without = run(
            project,
            stack_env.images,
            kit_module=False,
            fault=fault,
            backend="database",
            bound=STRANDED_BOUND_S,
        )
    with stack_env.compose_project(tmp_path / "with") as project:
        with_kit = run(project, stack_env.images, kit_module=True, fault=fault, backend="database")

    # GlitchTip's settings alone: rows stranded PROCESSING (or FAILED), events not stored.
    assert without["stored"] < N, without
    assert with_kit == {**with_kit, "stored": N, "failed": 0, "queued": 0, "processing": 0}
    assert with_kit["counted"] >= N
    # `provision status` reads the same from the real tables: the stranded rows (no liveness
    # row: GlitchTip's settings keep none) and the FAILED ones; nothing once the kit is done.
    assert without["read_by_status"] == {
        "backlog": without["queued"],
        "dead_letters": without["failed"],
        "held_by_gone_workers": without["processing"],
    }
    assert with_kit["read_by_status"] == {
        "backlog": 0,
        "dead_letters": 0,
        "held_by_gone_workers": 0,
    }


def test_kit_module_drains_a_full_valkey_on_the_real_library(tmp_path, stack_env):
    """Valkey at maxmemory (noeviction) refuses LMOVE, which writes, but not django-vtasks'
    BLMPOP: the kit's backend falls back to that pop while Valkey is full, so every task queued
    before the queue filled is stored (a recorded fetch alone would store none)."""
    (tmp_path / "full").mkdir()
    with stack_env.compose_project(tmp_path / "full") as project:
        stack = Stack(project, stack_env.images, kit_module=True, maxmemory="16mb")
        queued = stack.start("5000", "--pad", "20000", "--until-full")
        assert 0 < queued < 5000  # the queue filled up
        project.run("up", "-d", "worker")
        counts = stack.drain()
        print(f"\n[vtasks 2.1.2, queue full (16 MiB), kit module] queued {queued}: {counts}")
        logs = project.run("logs", "--no-color", "worker").stdout
    # The recorded fetch was refused and the fallback drained the queue.
    assert "Valkey is full: fetching a batch without a processing record" in logs
    assert counts == {**counts, "stored": queued, "failed": 0, "queued": 0, "processing": 0}


# Run inside the worker's container (`manage.py shell -c`): one ingest task built by
# django-vtasks 2.1.2's own code, LPUSHed straight into the running worker's processing list
# (`{vt}:processing:<hostname>-<pid of runworker>`), what a fetch leaves there when Valkey
# applied the move and the reply died with the connection.
STRAND = """
import os, socket, uuid
from django.tasks import task_backends
from django_vtasks.serialization import serialize
from ingest.tasks import ingest_event
pids = [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())
        and b"runworker" in open(f"/proc/{p}/cmdline", "rb").read()]
assert len(pids) == 1, pids
backend = task_backends["default"]
data = backend._build_task_data(ingest_event, ({"event_id": uuid.uuid4().hex},), {})
data["id"] = uuid.uuid4().hex
key = backend._get_key(f"processing:{socket.gethostname()}-{pids[0]}")
print(key, backend.driver.lpush_sync(key, [serialize(data)]))
"""
# The worker has started (and run its start-up rescue of its own list) this long after its
# process appeared: the injection then lands in a LIVE worker's list.
WORKER_STARTED_S = 8.0
# The kit's sweep puts an entry back once it saw it unheld twice, _RESCUE_EVERY (10 s) apart,
# on a 3 s tick: at most about 26 s.
STRANDED_STORED_S = 40.0


def strand_one(project, images, kit_module: bool, bound: float) -> dict:
    stack = Stack(project, images, kit_module)
    assert stack.start("0") == 0
    project.run("up", "-d", "worker")
    deadline = time.monotonic() + 60
    while True:
        ps = project.run("exec", "-T", "worker", "sh", "-c", "cat /proc/[0-9]*/cmdline",
                         check=False)  # fmt: skip
        if "runworker" in ps.stdout:
            break
        assert time.monotonic() < deadline, ps.stderr[-2000:]
        time.sleep(1)
    time.sleep(WORKER_STARTED_S)
    done = project.run(
        "exec", "-T", "worker", "python3", "manage.py", "shell", "-c", STRAND, timeout=120
    )
    key, length = done.stdout.split()[-2:]
    assert length == "1", done.stdout
    began = time.monotonic()
    counts = stack.drain(bound)
    counts["waited_s"] = round(time.monotonic() - began, 1)
    label = "kit module" if kit_module else "GlitchTip's settings"
    print(f"\n[vtasks 2.1.2, one task pushed into the live worker's {key}, {label}] {counts}")
    return counts


def test_kit_module_puts_back_a_task_stranded_in_a_live_workers_list(tmp_path, stack_env):
    """A fetch whose reply died with Valkey (applied, kept in the append-only file) leaves the
    task in the live worker's own processing list. django-vtasks rescues that list only when a
    worker with the same hostname starts; the kit's backend, whose worker knows which tasks it
    holds, puts back an entry it did not hold in two consecutive sweeps."""
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with stack_env.compose_project(tmp_path / "without") as project:
        without = strand_one(project, stack_env.images, kit_module=False, bound=STRANDED_BOUND_S)
    with stack_env.compose_project(tmp_path / "with") as project:
        with_kit = strand_one(project, stack_env.images, kit_module=True, bound=STRANDED_STORED_S)
        logs = project.run("logs", "--no-color", "worker").stdout
    # GlitchTip's settings alone: still in the list, never stored while the worker lives.
    assert without == {**without, "stored": 0, "processing": 1, "queued": 0, "failed": 0}
    # The kit's module: stored once, the list empty, within the sweep's bound.
    assert with_kit == {**with_kit, "stored": 1, "processing": 0, "queued": 0, "failed": 0}
    assert with_kit["waited_s"] < STRANDED_STORED_S
    assert "Put back 1 task(s) of this worker's own list that it never received" in logs
