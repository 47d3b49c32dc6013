"""profile minimal on a real engine: GlitchTip's all-in-one through `provision up`.

The stand-in copies the official images' all-in-one: 6's bin/start.sh with SERVER_ROLE=all_in_one
runs bin/run-all-in-one.sh (web with the worker embedded; with VALKEY_URL="" the tasks go
through Postgres, django-vtasks' database backend); 5's bin/run-all-in-one.sh runs app.py (web,
Celery worker and beat in one process, Valkey as broker). Each test: up, an event through the
DSN processed by the in-process worker, a second up that changes nothing, down, up.
"""

from __future__ import annotations

import json
import time

import pytest
from test_up_stack import Deployment, send_event, wait_for_issue

pytestmark = pytest.mark.stack


@pytest.fixture
def deploy(tmp_path, stack_env):
    made: list[Deployment] = []

    def make(major: int, profile: str = "minimal", release: str = "") -> Deployment:
        directory = tmp_path / f"gt{major}-{profile}"
        directory.mkdir(exist_ok=True)
        deployment = Deployment(directory, major, stack_env.images, release=release)
        with (directory / "glitchtip.yaml").open("a") as settings:
            settings.write(f"profile: {profile}\n")
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.teardown()


def services(deployment: Deployment) -> set[str]:
    """The services that have a container, from the container names (<project>-<svc>-1)."""
    prefix = f"{deployment.project}-"
    return {name[len(prefix) :].rsplit("-", 1)[0] for name in deployment.container_ids()}


def set_profile(deployment: Deployment, profile: str) -> None:
    path = deployment.directory / "glitchtip.yaml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("profile:")]
    path.write_text("\n".join([*lines, f"profile: {profile}"]) + "\n")


BEAT_SCHEDULE = "/tmp/celerybeat-schedule"


@pytest.mark.parametrize(
    ("major", "expected", "release"),
    [(6, set(), ""), (5, {"valkey"}, "v5.1.0"), (5, {"valkey"}, "snapshot")],
)
def test_minimal_up_event_second_up_down_up(deploy, major, expected, release):
    gt = deploy(major, release=release)
    first = gt.provision("up")
    assert "DSN:" in first.stdout
    assert services(gt) == {"postgres", "migrate", "web"} | expected
    dsn = gt.dsn()
    if major == 5:
        # The all-in-one's beat kept its schedule (v5.1.0: in the working directory, /tmp).
        assert gt.compose("exec", "-T", "web", "test", "-f", BEAT_SCHEDULE).returncode == 0
        log = gt.provision("logs", "web", "--tail", "400").stdout
        assert "Process Beat:" not in log and "Read-only file system" not in log, log
    from secret_check import assert_no_secret_in_containers  # issue 18

    assert_no_secret_in_containers(gt.directory, gt.project, {"postgres", "migrate", "web"})

    message = f"kit minimal stack test {major}"
    send_event(dsn, gt.port, message)
    seconds = wait_for_issue(gt, "glitchtip", "default", message)
    print(f"event processed by the all-in-one after {seconds:.1f} s")
    logs = gt.provision("logs", "web", "--tail", "200").stdout
    assert "stand-in worker" in logs  # processed inside web: there is no worker container
    if major == 5:
        # app.py's embedded worker: threads, sized by the kit's settings module (it reads no
        # CELERY_* variable), with a window that holds a full batch of 100.
        env = gt.env_file()
        banner = next(line for line in logs.splitlines() if "stand-in worker" in line)
        assert (
            f"celery pool=threads concurrency={env['GLITCHTIP_KIT_WORKER_CONCURRENCY']} "
            f"prefetch={env['GLITCHTIP_KIT_WORKER_PREFETCH']} " in banner
        ), banner
    if major == 6:
        # The all-in-one loads the kit's module: django-vtasks' database backend (VALKEY_URL="")
        # replaced by the kit's subclass (proved on the real library: test_vtasks_real_stack).
        banner = next(line for line in logs.splitlines() if "stand-in worker" in line)
        assert "task backend glitchtip_kit_worker_settings.KitDatabaseTaskBackend" in banner, banner
    verified = gt.provision("verify")  # services, health, an event through the DSN processed
    assert "event" in verified.stdout
    status = json.loads(gt.provision("status", "--json").stdout)
    assert status["up"] is True, status
    # The queue is read where it is: Valkey on 5; on 6 django-vtasks' table in Postgres.
    assert status["queue"]["ok"] is True and status["queue"]["error"] is None, status["queue"]

    ids = gt.container_ids()
    second = gt.up_json()
    changed = [(s["name"], s.get("detail")) for s in second["steps"] if s.get("changed")]
    assert second["ok"] is True and changed == [], changed
    assert gt.container_ids() == ids

    volumes = gt.volumes()
    gt.provision("down")
    assert gt.container_ids() == {}
    assert gt.volumes() == volumes
    again = gt.provision("up")
    assert "DSN:" in again.stdout and gt.dsn() == dsn
    wait_for_issue(gt, "glitchtip", "default", message)  # the data survived
    send_event(dsn, gt.port, message + " after restart")
    wait_for_issue(gt, "glitchtip", "default", message + " after restart")
    if release == "v5.1.0":
        beat_dies_where_the_image_puts_it(gt)


def beat_dies_where_the_image_puts_it(gt: Deployment) -> None:
    """Measured on the v5.1.0 stand-in: the all-in-one in the image's working directory (/code,
    read-only) loses its beat while web stays healthy; `verify` says so, and `up` (which
    renders /tmp again) brings it back."""
    override = gt.directory / "cwd-override.yml"
    override.write_text("services:\n  web:\n    working_dir: /code\n")
    done = gt.compose("-f", str(override), "up", "-d", "--wait", "--no-deps", "web")
    assert done.returncode == 0, done.stdout + done.stderr  # healthy: no healthcheck sees it
    deadline = time.monotonic() + 30
    while "celerybeat-schedule" not in gt.compose("logs", "--no-color", "web").stdout:
        assert time.monotonic() < deadline, "the beat did not fail in /code"
        time.sleep(1)
    verified = gt.provision("verify", check=False)
    print(verified.stdout + verified.stderr)
    assert verified.returncode != 0
    assert "the scheduler (Celery beat) in web died" in verified.stdout + verified.stderr
    override.unlink()
    report = gt.up_json()
    assert report["ok"], report
    assert {s["name"]: s["status"] for s in report["steps"]}["alive"] == "ok", report


def test_switch_standard_to_minimal_keeps_data_and_retires_worker_and_valkey(deploy):
    gt = deploy(6, profile="standard")
    gt.provision("up")
    assert {"valkey", "worker"} <= services(gt)
    dsn = gt.dsn()
    send_event(dsn, gt.port, "before the switch")
    wait_for_issue(gt, "glitchtip", "default", "before the switch")

    set_profile(gt, "minimal")
    switched = gt.provision("up")
    assert "removed valkey and worker of profile standard" in switched.stdout
    assert services(gt) == {"postgres", "migrate", "web"}
    assert gt.dsn() == dsn  # same database, same project and key
    wait_for_issue(gt, "glitchtip", "default", "before the switch")
    send_event(dsn, gt.port, "after the switch")
    wait_for_issue(gt, "glitchtip", "default", "after the switch")

    set_profile(gt, "standard")  # and back: Compose brings worker and valkey again
    gt.provision("up")
    assert {"valkey", "worker"} <= services(gt)
    send_event(dsn, gt.port, "back on standard")
    wait_for_issue(gt, "glitchtip", "default", "back on standard")
