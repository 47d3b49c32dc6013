"""`up` and `verify` notice a worker or a scheduler that died after start (stack/liveness)."""

from __future__ import annotations

from pathlib import Path

from provision.runtime.engine import ContainerState
from provision.settings import load_settings
from provision.stack import liveness


def settings(tmp_path: Path, **overrides):
    return load_settings(tmp_path, {k: str(v) for k, v in overrides.items()}, environ={})


def container(
    service: str, state="running", health="healthy", restarts=0, code=None, started_at=None
):
    return ContainerState(
        name=f"p-{service}-1", service=service, project="p", state=state, health=health,
        exit_code=code, image="i", restart_count=restarts, started_at=started_at,
    )  # fmt: skip


def no_logs(service: str) -> str:
    return ""


HEALTHY = [container("postgres"), container("valkey"), container("web"), container("worker")]
BEAT_DIED = (
    "[2026-12-06 13:00:00,000: ERROR/Beat] Process Beat:\n"
    "Traceback (most recent call last):\n"
    "OSError: [Errno 30] Read-only file system: 'celerybeat-schedule'\n"
)


def test_a_healthy_stack_has_no_problem(tmp_path):
    assert liveness.problems(settings(tmp_path, glitchtip_major=5), HEALTHY, no_logs) == []


def test_a_worker_that_crashed_after_start_is_named_even_when_running_again(tmp_path):
    s = settings(tmp_path, glitchtip_major=6)
    crashed = [*HEALTHY[:3], container("worker", restarts=2)]
    assert liveness.problems(s, crashed, no_logs) == ["worker crashed and was restarted 2 time(s)"]
    gone = [*HEALTHY[:3], container("worker", state="exited", health=None, code=137)]
    assert liveness.problems(s, gone, no_logs) == ["worker is exited (exit 137)"]
    restarting = [*HEALTHY[:3], container("worker", state="restarting", health=None)]
    assert liveness.problems(s, restarting, no_logs) == ["worker is restarting"]
    assert liveness.problems(s, HEALTHY[:3], no_logs) == ["worker has no container"]


def test_a_dead_beat_in_a_living_worker_is_found_in_its_log(tmp_path):
    s = settings(tmp_path, glitchtip_major=5)
    asked = []

    def logs(service: str) -> str:
        asked.append(service)
        return BEAT_DIED

    found = liveness.problems(s, HEALTHY, logs)
    assert asked == ["worker"]
    assert found == ["the scheduler (Celery beat) in worker died: "
                     "[2026-12-06 13:00:00,000: ERROR/Beat] Process Beat:"]  # fmt: skip


def test_profile_minimal_reads_the_all_in_one_web(tmp_path):
    s = settings(tmp_path, glitchtip_major=5, profile="minimal")
    thread = "OSError: [Errno 30] Read-only file system: 'celerybeat-schedule'\n"
    found = liveness.problems(s, HEALTHY[:3], lambda service: thread if service == "web" else "")
    assert found == [f"the scheduler (Celery beat) in web died: {thread.strip()}"]


def test_a_healthy_beat_log_is_no_problem(tmp_path):
    banner = ". db -> /tmp/celerybeat-schedule\nbeat: Starting...\n"
    assert liveness.problems(settings(tmp_path, glitchtip_major=5), HEALTHY, lambda s: banner) == []


def test_glitchtip_6_has_no_beat_marker_to_read(tmp_path):
    asked = []
    s = settings(tmp_path, glitchtip_major=6)
    assert liveness.problems(s, HEALTHY, lambda service: asked.append(service) or BEAT_DIED) == []
    assert asked == []


def test_a_restart_long_ago_that_has_run_healthy_since_is_no_failure(tmp_path):
    """The engine's restart count never goes down: a worker restarted after an OOM kill last
    week must not fail every later `up` and `verify`; one restarted a minute ago still does."""
    import time

    s = settings(tmp_path, glitchtip_major=6)
    old = [*HEALTHY[:3], container("worker", restarts=1, started_at=time.time() - 86400)]
    assert liveness.problems(s, old, no_logs) == []
    recent = [*HEALTHY[:3], container("worker", restarts=1, started_at=time.time() - 60)]
    assert liveness.problems(s, recent, no_logs) == ["worker crashed and was restarted 1 time(s)"]


def test_the_engines_start_time_is_read_with_nanoseconds_and_the_zero_time_is_unknown():
    from provision.runtime.engine import _epoch

    assert _epoch("2026-12-06T15:17:18.123456789Z") == 1796570238.123456
    assert _epoch("2026-12-06T16:17:18+01:00") == 1796570238.0
    assert _epoch("0001-01-01T00:00:00Z") is None
    assert _epoch("") is None and _epoch(None) is None and _epoch("yesterday") is None
