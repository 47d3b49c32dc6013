"""The locked-down stack on a real engine: `provision up` with every container stripped of its
capabilities, on a read-only root file system, with memory, CPU and pids limits; an event
through the DSN; a second `up` that changes nothing; `down`; `up` again with the data kept.

What the engine really applied is read back with `docker inspect` (not from the compose file),
and the processes' users from /proc inside the containers. The stand-ins copy where the real
images write (docs/hardening.md): GlitchTip 5's Celery beat keeps its schedule in /tmp, so a
read-only stand-in without a writable /tmp loses its beat as the real one does.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_up_stack import Deployment, send_event, wait_for_issue

pytestmark = pytest.mark.stack

# Capabilities each service may hold; everything else is dropped (cap_drop: [ALL]).
ALLOWED_CAPS: dict[str, set[str]] = {"proxy": {"CAP_NET_BIND_SERVICE", "NET_BIND_SERVICE"}}
# The services' users: the image's own non-root user everywhere.
USERS = {"postgres": "postgres", "valkey": "valkey", "web": "app", "worker": "app"}


def inspect(deployment: Deployment) -> dict[str, dict]:
    """service name -> `docker inspect` of its container (running or exited)."""
    ids = deployment.container_ids()
    done = subprocess.run(
        ["docker", "inspect", *ids.values()], capture_output=True, text=True, timeout=60, check=True
    )
    found = {}
    for container in json.loads(done.stdout):
        service = container["Config"]["Labels"]["com.docker.compose.service"]
        found[service] = container
    return found


def megabytes(value: str) -> int:
    assert value.endswith("m"), value
    return int(value[:-1]) * 1024 * 1024


def check_locked_down(deployment: Deployment) -> dict[str, dict]:
    env = deployment.env_file()
    containers = inspect(deployment)
    assert {"postgres", "valkey", "migrate", "web", "worker"} <= set(containers)
    for service, container in containers.items():
        host = container["HostConfig"]
        assert host["CapDrop"] == ["ALL"], (service, host["CapDrop"])
        assert set(host["CapAdd"] or ()) <= ALLOWED_CAPS.get(service, set()), service
        assert host["ReadonlyRootfs"] is True, service
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0, service
        assert host["Privileged"] is False, service
    limits = {
        "web": ("GLITCHTIP_KIT_WEB_MEMORY_LIMIT", "GLITCHTIP_KIT_WEB_PIDS_LIMIT"),
        "worker": ("GLITCHTIP_KIT_WORKER_MEMORY_LIMIT", "GLITCHTIP_KIT_WORKER_PIDS_LIMIT"),
        "migrate": ("GLITCHTIP_KIT_WORKER_MEMORY_LIMIT", "GLITCHTIP_KIT_WORKER_PIDS_LIMIT"),
        "postgres": ("GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT", "GLITCHTIP_KIT_POSTGRES_PIDS_LIMIT"),
    }
    for service, (memory, pids) in limits.items():
        host = containers[service]["HostConfig"]
        assert host["Memory"] == megabytes(env[memory]), service  # from .env, not the fallback
        assert host["PidsLimit"] == int(env[pids]), service
        assert host["NanoCpus"] == int(env["GLITCHTIP_KIT_CPUS"]) * 10**9, service
    assert containers["valkey"]["HostConfig"]["Memory"] == megabytes(
        env["GLITCHTIP_KIT_VALKEY_MEMORY_LIMIT"]
    )
    for service, user in USERS.items():
        # Every process of the running container, by the kernel's account (not `user:`).
        script = (
            "for s in /proc/[0-9]*/status; do "
            "awk '/^Uid:/ {print $2; exit}' \"$s\" 2>/dev/null; done | sort -u; "
            f"id -u {user}; grep -h '^CapEff' /proc/1/status"
        )
        done = deployment.compose("exec", "-T", service, "sh", "-c", script)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.split()  # uids..., `id -u`, "CapEff:", hex
        expected_uid, effective = lines[-3], lines[-1]
        assert set(lines[:-3]) == {expected_uid}, (service, done.stdout)
        assert expected_uid != "0", service
        assert int(effective, 16) == 0, (service, effective)  # no capability at all
    return containers


@pytest.fixture
def locked(tmp_path, stack_env):
    made: list[Deployment] = []

    def make(major: int) -> Deployment:
        directory = tmp_path / f"gt{major}"
        directory.mkdir()
        deployment = Deployment(directory, major, stack_env.images)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.teardown()


@pytest.mark.parametrize("major", [6, 5])
def test_locked_down_stack_up_event_second_up_down_up(locked, major: int) -> None:
    gt = locked(major)
    first = gt.provision("up")
    assert "DSN:" in first.stdout
    check_locked_down(gt)
    from secret_check import assert_no_secret_in_containers

    assert_no_secret_in_containers(
        gt.directory, gt.project, {"postgres", "valkey", "migrate", "web", "worker"}
    )
    dsn = gt.dsn()
    message = f"locked-down stack {major}"
    send_event(dsn, gt.port, message)
    print(f"event visible after {wait_for_issue(gt, 'glitchtip', 'default', message):.1f} s")
    if major == 5:
        # Celery beat opened its schedule in the tmpfs (-s /tmp/celerybeat-schedule).
        beat = gt.compose("exec", "-T", "worker", "test", "-f", "/tmp/celerybeat-schedule")
        assert beat.returncode == 0, beat.stdout + beat.stderr
        logs = gt.compose("logs", "worker").stdout
        assert "Process Beat" not in logs, logs[-2000:]
    # The root file system really refuses writes, even to root in a root-owned directory
    # (where only the read-only mount, not a permission, stands in the way).
    probe = "touch /etc/kit-probe 2>&1; echo rc=$?"
    refused = gt.compose("exec", "-T", "-u", "0", "web", "sh", "-c", probe)
    assert "Read-only file system" in refused.stdout and "rc=1" in refused.stdout, refused.stdout

    ids = gt.container_ids()
    env_before = (gt.directory / ".env").read_text()
    second = gt.up_json()
    assert second["ok"] is True and second["changed"] is False, second
    assert gt.container_ids() == ids
    assert (gt.directory / ".env").read_text() == env_before

    gt.provision("down")
    assert gt.container_ids() == {}
    again = gt.provision("up")
    assert "DSN:" in again.stdout and gt.dsn() == dsn
    wait_for_issue(gt, "glitchtip", "default", message)  # the data survived, read-only roots
    check_locked_down(gt)


def test_standin_beat_fails_without_a_writable_tmp(stack_env) -> None:
    """The stand-in is as rude as GlitchTip 5's image: on a read-only root without a tmpfs at
    /tmp, Celery beat cannot open its schedule (-s /tmp/celerybeat-schedule) and dies."""
    image = stack_env.images["glitchtip5"]
    probe = (
        "from standin.cli import _open_beat_schedule as beat; "
        "print(beat(['worker', '-B', '-s', '/tmp/celerybeat-schedule']))"
    )
    bare = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--cap-drop", "ALL",
         "--entrypoint", "python3", image, "-c", probe],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bare.stdout.strip() == "False", bare.stdout + bare.stderr
    assert "Read-only file system" in bare.stderr, bare.stderr
    with_tmp = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--cap-drop", "ALL", "--tmpfs", "/tmp",
         "--entrypoint", "python3", image, "-c", probe],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert with_tmp.stdout.strip() == "True", with_tmp.stdout + with_tmp.stderr
