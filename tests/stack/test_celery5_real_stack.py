"""The kit's GlitchTip 5 worker module on the REAL Celery, celery-batches and kombu (issue 19).

GlitchTip itself cannot be installed here; its queue libraries can (PyPI). The image
`<namespace>/celery5:5.5.3` (tests/stack/images/celery5) runs Celery 5.5.3 and celery-batches 0.10
(GlitchTip 5.1's uv.lock), kombu 5.5.4 with redis-py 5.2.1, Django 5.2 and psycopg 3 with a tiny
project shaped like GlitchTip 5: the Celery app `glitchtip.celery` (Django settings, namespace
CELERY), `glitchtip.settings` with GlitchTip's broker transport options and pooled database and
nothing about acknowledgement, and the celery-batches task `apps.event_ingest.tasks.ingest_event`
(100 per batch, 2 s), which stores a batch in one transaction (each event once, ON CONFLICT DO
NOTHING as GlitchTip's bulk_create ignore_conflicts, and a count). The worker runs `celery -A
glitchtip worker` with the kit's pool settings (prefork, 2 slots here, prefetch 100) and either
the kit's module (`provision render`'s python/glitchtip_kit_worker_settings.py for GlitchTip 5,
mounted read-only at /kit/python, DJANGO_SETTINGS_MODULE and PYTHONPATH as compose.yml sets
them) or GlitchTip's settings alone. Valkey runs with the kit's flags, Postgres is the test image.

Each run queues N tasks (a backlog, as a burst leaves it), starts the worker (each batch 0.5 s
between its first query and its writes) and, once it has stored a first batch:

- Postgres restarted (`docker compose restart`: a fast shutdown, which aborts the transactions of
  the batches being stored) while a batch is inside its transaction (each batch 2 s there, so
  that the fault lands inside one: `pg_stat_activity` shows it), nothing else done; the kit's
  run must log its retry, the proof that it had one to make;
- worker SIGKILLed, then recreated 11 s later as `provision up` recreates a service.

then waits until nothing is queued or unacknowledged (or nothing changed for STALL_S with the
queue empty: messages left in `unacked` under kombu's default one-hour visibility timeout).

The kit's module also names its kombu transport (CELERY_BROKER_TRANSPORT,
provision/worker_modules/glitchtip5_transport.py), which takes a message and records it in
`unacked` in one Lua script: the killed worker must lose nothing, and two more tests run what
kombu's pop-then-record lost: Valkey SIGKILLed while events are queued and taken, and Valkey at
maxmemory when the worker starts (side by side with GlitchTip's settings, whose worker dies at
its start). Counts print with `pytest -s`. About 7 to 8 minutes for the four tests on 2 CPUs
(the Valkey SIGKILL one up to 2.5 when acknowledgements lost with Valkey wait for a restore:
the kit's transport restores on every 10 s look for a channel's first minute, kombu every
100 s).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from provision import durability

pytestmark = pytest.mark.stack

N = 2000
DRAIN_BOUND_S = 90.0
STALL_S = 15.0  # > kombu's first look (10 s after the worker starts) plus a batch
# A batch's seconds inside its transaction in the Postgres-restart runs (the others: 0.5 s).
POSTGRES_BATCH_SECONDS = 2.0

COMPOSE = """
x-app: &app
  image: {celery5}
  environment: &env
    DATABASE_HOST: postgres
    DATABASE_PASSWORD: test-only-password
    DATABASE_CONN_HEALTH_CHECKS: "true"
    REDIS_URL: redis://valkey:6379/0
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
    command: ["celery", "-A", "glitchtip", "worker", "-l", "info"]
    environment:
      <<: *env
      CELERY_WORKER_POOL: prefork
      CELERY_WORKER_CONCURRENCY: "2"
      CELERY_WORKER_PREFETCH_MULTIPLIER: "100"
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
        batch_seconds: float = 0.5,
        module_tail: str = "",
    ) -> None:
        """`module_tail` is appended to the kit's module (bench/bench_celery5.py: without the
        kit's transport, to measure what it costs)."""
        self.project = project
        python = project.directory / "python"
        python.mkdir()
        (python / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
            durability.worker_settings_module(5) + module_tail
        )
        worker_env = ""
        if kit_module:
            worker_env = (
                f"      DJANGO_SETTINGS_MODULE: {durability.WORKER_SETTINGS_MODULE}\n"
                f"      PYTHONPATH: {durability.WORKER_PYTHONPATH}"
            )
        project.write(
            COMPOSE.format(
                celery5=images["celery5"],
                postgres=images["postgres"],
                valkey=images["valkey"],
                worker_env=worker_env,
                maxmemory=maxmemory,
                batch_seconds=batch_seconds,
            )
        )

    def manage(self, *args: str) -> str:
        done = self.project.run("exec", "-T", "web", "python3", "manage.py", *args, timeout=120)
        return done.stdout.strip()

    def counts(self) -> dict:
        return json.loads(self.manage("counts").splitlines()[-1])

    def start(self, n: int = N) -> int:
        """Services up, tables made, `n` tasks queued: how many."""
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
        return int(self.manage("enqueue", str(n)).splitlines()[-1])

    def wait_in_transaction(self) -> None:
        """Until a batch of the worker is inside its transaction (between its first query and
        its writes: `idle in transaction`), so that a fault now lands inside a batch: the
        backlog can otherwise be all stored before a slow `restart` reaches Postgres (CI once
        restarted it after the last batch, and the kit's run proved nothing)."""
        deadline = time.monotonic() + 60
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND datname = 'postgres' AND pid <> pg_backend_pid()"
        )
        while True:
            done = self.project.run(
                "exec", "-T", "postgres", "psql", "-X", "-A", "-t", "-U", "postgres", "-c", query
            )
            if int(done.stdout.strip() or 0) > 0:
                return
            assert time.monotonic() < deadline, "no batch inside its transaction within 60 s"
            time.sleep(0.2)

    def wait_stored(self, at_least: int) -> None:
        deadline = time.monotonic() + 60
        while self.counts()["stored"] < at_least:
            assert time.monotonic() < deadline, "the worker stored nothing within 60 s"
            time.sleep(0.5)

    def produce(self, *args: str) -> dict:
        """`manage.py produce ARGS` (GlitchTip 5's web queuing events): accepted and refused."""
        return json.loads(self.manage("produce", *args).splitlines()[-1])

    def drain(self, bound: float = DRAIN_BOUND_S, stall: float = STALL_S) -> dict:
        """Counts once nothing is queued or unacknowledged, or the queue is empty and nothing
        changed for `stall` s (messages stranded in `unacked`), or after `bound` s."""
        deadline = time.monotonic() + bound
        last, since = None, time.monotonic()
        while True:
            counts = self.counts()
            if counts["queued"] == 0 and counts["unacked"] == 0:
                time.sleep(2)  # a batch between the two finishes its write
                again = self.counts()
                if again == counts:
                    return counts
                counts = again
            if counts != last:
                last, since = counts, time.monotonic()
            elif counts["queued"] == 0 and time.monotonic() - since > stall:
                return counts
            if time.monotonic() > deadline:
                return counts
            time.sleep(1)


def run(project, images, kit_module: bool, fault: str) -> tuple[dict, str]:
    # Postgres restart: batches of 2 s between their first query and their writes (20 batches
    # on 2 slots, about 20 s), restarted while one is inside its transaction.
    batch_seconds = POSTGRES_BATCH_SECONDS if fault == "postgres-restart" else 0.5
    stack = Stack(project, images, kit_module, batch_seconds=batch_seconds)
    assert stack.start() == N
    project.run("up", "-d", "worker")
    stack.wait_stored(100)
    if fault == "postgres-restart":
        stack.wait_in_transaction()
        project.run("restart", "postgres")
    else:
        project.run("kill", "-s", "SIGKILL", "worker")
        # `provision up` (an operator's reaction, later than the 10 s visibility timeout, as in
        # test_durability_stack.py) recreates the service: a new container. kombu restores
        # messages older than the timeout when the worker's event loop starts
        # (`MultiChannelPoller.on_poll_init` -> `QoS.restore_visible`, its 1st call) and then
        # only every 100 s (its 11th, 21st... call of a 10 s timer): a worker back sooner than
        # the timeout waited ~100 s for them (measured: docs/durability.md); the kit's
        # transport acts on every look for the channel's first minute.
        time.sleep(durability.CELERY_VISIBILITY_TIMEOUT + 1)
        project.run("up", "-d", "--force-recreate", "--no-deps", "worker")
    counts = stack.drain()
    logs = project.run("logs", "--no-color", "worker").stdout
    label = "kit module" if kit_module else "GlitchTip's settings"
    print(f"\n[celery 5.5.3 + celery-batches 0.10, {fault}, {label}] queued {N}: {counts}")
    return counts, logs


def test_kit_module_retries_a_batch_postgres_aborted_on_the_real_libraries(tmp_path, stack_env):
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with stack_env.compose_project(tmp_path / "without") as project:
        without, logs_without = run(project, stack_env.images, False, "postgres-restart")
    with stack_env.compose_project(tmp_path / "with") as project:
        with_kit, logs_with = run(project, stack_env.images, True, "postgres-restart")

    # GlitchTip's settings alone: celery-batches logs the aborted batch and drops it.
    assert without["stored"] < N, without
    assert "Error: " in logs_without
    # The kit's module: the annotation retried it; every event stored, nothing left behind.
    assert with_kit == {**with_kit, "stored": N, "queued": 0, "unacked": 0}, with_kit
    assert "because the database went away" in logs_with
    assert with_kit["counted"] >= N


def test_kit_module_gets_a_killed_workers_batches_back_on_the_real_libraries(tmp_path, stack_env):
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with stack_env.compose_project(tmp_path / "without") as project:
        without, _logs = run(project, stack_env.images, False, "worker-kill")
    with stack_env.compose_project(tmp_path / "with") as project:
        with_kit, _logs = run(project, stack_env.images, True, "worker-kill")

    # GlitchTip's settings: the batches being stored were acknowledged when they started, and the
    # prefetched rest waits in `unacked` for kombu's one-hour visibility timeout.
    assert without["stored"] < N, without
    # The kit's module: everything back within the restarted worker's first look, and nothing
    # lost between the pop and its `unacked` record (the kit's transport takes a message with
    # one script that records it; kombu's BRPOP-then-QoS.append lost 1 of 2,000 here).
    assert with_kit == {**with_kit, "stored": N, "queued": 0, "unacked": 0}, with_kit


def test_kit_transport_loses_nothing_to_a_killed_valkey_on_the_real_libraries(tmp_path, stack_env):
    """Valkey SIGKILLed while events are queued and taken (kit module only: the loss this closes,
    a BRPOP reply lost with the connection after Valkey applied the pop, was 1 of 1,680 with
    kombu's own transport, too rare to show side by side in one run). The producer queues at
    120/s for 14 s; Valkey (AOF on, the kit's flags) is killed 5 s in and started again 2 s
    later, as the restart policy or `provision up` does; the worker keeps running."""
    (tmp_path / "killed").mkdir()
    with stack_env.compose_project(tmp_path / "killed") as project:
        stack = Stack(project, stack_env.images, kit_module=True)
        assert stack.start(0) == 0
        project.run("up", "-d", "worker")
        produced: dict = {}
        producer = threading.Thread(
            target=lambda: produced.update(stack.produce("14", "--rate", "120")), daemon=True
        )
        producer.start()
        time.sleep(5)
        project.run("kill", "-s", "SIGKILL", "valkey")
        time.sleep(2)
        project.run("up", "-d", "--no-deps", "valkey")
        producer.join(timeout=120)
        assert produced, "the producer did not finish"
        # Acknowledgements sent while Valkey was down are lost: those messages come back from
        # `unacked` (stored again, counted twice) at a look of the reconnected channel, which
        # the kit's transport makes every 10 s for its first minute (kombu's own: every 100 s,
        # 1,600 stored + 276 waiting in `unacked` after 15 s in one run before this).
        counts = stack.drain(bound=120, stall=45)
        logs = project.run("logs", "--no-color", "worker").stdout
    print(f"\n[celery 5.5.3, Valkey SIGKILL, kit module] {produced}: {counts}")
    if counts["unacked"]:
        print("\n".join(line for line in logs.splitlines() if "Task apps" not in line)[-6000:])
    assert "KitRedisTransport" in logs
    # Every accepted event stored (by its id), nothing left in Valkey. A queuing that raised
    # because the connection died may still have been applied by Valkey: that event was refused
    # (the SDK sends it again) and is stored too, so `stored` may exceed `accepted` by at most
    # the refused ones (CI once: 1,677 accepted, 3 refused, 1,678 stored).
    assert counts == {**counts, "missing": 0, "queued": 0, "unacked": 0}, (produced, counts)
    assert produced["accepted"] <= counts["stored"] <= produced["accepted"] + produced["refused"]


def test_kit_transport_drains_a_full_valkey_on_the_real_libraries(tmp_path, stack_env):
    """Valkey at maxmemory (16 MiB, noeviction) refuses a write that may grow memory, and
    kombu's BRPOP is not one: with kombu's own transport a message popped while Valkey is full
    can have its `unacked` record refused and is lost. The kit's take script pops first, and
    Valkey does not refuse a script's writes after its first one, so every message is recorded
    and the full queue drains. Events of 20 KB are queued with the worker stopped until the
    first is refused; then the worker starts. GlitchTip's settings and the kit's module, side
    by side."""
    results = {}
    for kit_module in (False, True):
        label = "kit" if kit_module else "glitchtip"
        (tmp_path / label).mkdir()
        with stack_env.compose_project(tmp_path / label) as project:
            stack = Stack(project, stack_env.images, kit_module=kit_module, maxmemory="16mb")
            assert stack.start(0) == 0
            produced = stack.produce("60", "--rate", "2000", "--pad", "20000", "--until-full")
            project.run("up", "-d", "worker")
            # kombu's transport: the worker dies at its start, nothing changes; 30 s shows it.
            counts = stack.drain(bound=DRAIN_BOUND_S if kit_module else 30)
        print(f"\n[celery 5.5.3, Valkey full (16 MiB), {label}] {produced}: {counts}")
        assert produced["refused"] == 1 and produced["accepted"] > 300, produced
        results[label] = (produced, counts)
    # GlitchTip's settings: the worker died of a refused queue binding, nothing was stored.
    produced, counts = results["glitchtip"]
    assert counts["stored"] < produced["accepted"], counts
    produced, counts = results["kit"]
    # The one refusal was Valkey's OOM error: not applied, so stored is exactly the accepted.
    assert counts == {
        **counts,
        "stored": produced["accepted"],
        "missing": 0,
        "queued": 0,
        "unacked": 0,
    }, (produced, counts)
