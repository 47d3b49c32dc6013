"""Backup, restore and verify on a real Docker engine with the GlitchTip 6 stand-in.

The stand-in keeps its whole state (issues, events) in Postgres, so what `pg_dump` saw is what
comes back. Events are sent through the DSN, the project's events are read through the API
(every page), and the same ids must be there after `backup`, `down --volumes` and `restore`; a
backup taken while events keep arriving must restore to a consistent state; a corrupted archive
must be refused before anything changes. Every command's output is printed (`pytest -s`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from test_up_stack import Deployment, send_event

pytestmark = pytest.mark.stack

SETTLE = 60.0  # seconds for queued events to be processed


def events(deployment: Deployment, project: str = "default") -> dict[str, str]:
    """eventID -> groupID of every event of `project` (the default one), through every page."""
    from provision.api.client import GlitchTipClient

    token = deployment.env_file()["GLITCHTIP_API_TOKEN"]
    path = f"/api/0/projects/glitchtip/{project}/events/"
    with GlitchTipClient(f"http://127.0.0.1:{deployment.port}", token) as client:
        listed = client.paginate(path, action="list events")
    return {item["eventID"]: str(item.get("groupID")) for item in listed}


def issue_ids(deployment: Deployment) -> set[str]:
    from provision.api.client import GlitchTipClient

    token = deployment.env_file()["GLITCHTIP_API_TOKEN"]
    with GlitchTipClient(f"http://127.0.0.1:{deployment.port}", token) as client:
        listed = client.paginate("/api/0/projects/glitchtip/default/issues/", action="list issues")
    return {str(item["id"]) for item in listed}


def settle(deployment: Deployment, count: int) -> dict[str, str]:
    """Wait until the project has at least `count` events; return them."""
    deadline = time.monotonic() + SETTLE
    while True:
        found = events(deployment)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def backup(deployment: Deployment, *args: str) -> Path:
    if "--json" in args:
        path = Path(json.loads(deployment.provision("backup", *args).stdout)["path"])
    else:  # the output a person sees, for the transcript
        done = deployment.provision("backup", *args)
        match = re.match(r"backup written: (\S+) \(", done.stdout)
        assert match, done.stdout
        path = Path(match.group(1))
    assert path.stat().st_mode & 0o777 == 0o600
    return path


@pytest.fixture
def deployment(tmp_path, stack_env):
    made = []

    def make(name: str) -> Deployment:
        directory = tmp_path / name
        directory.mkdir()
        made.append(Deployment(directory, 6, stack_env.images))
        return made[-1]

    yield make
    for one in made:
        one.teardown()


def test_backup_down_volumes_restore_keeps_every_event(deployment):
    d = deployment("gt6")
    d.provision("up")
    for number in range(12):
        send_event(d.dsn(), d.port, f"before backup {number}")
    before = settle(d, 12)
    assert len(before) == 12
    d.provision("verify", "--event-timeout", "60")  # real output
    before = events(d)
    assert len(before) == 12  # verify's test event went to the kit's own project (issue 18)
    assert len(events(d, "glitchtip-kit-verify")) == 1
    archive = backup(d, "--keep", "2")
    names = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD", "GLITCHTIP_API_TOKEN")
    secrets = [d.env_file()[name] for name in names]

    # A corrupted copy is refused before anything changes: same events, no file kept aside.
    bad = archive.with_name("corrupted.tar")
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0xFF
    bad.write_bytes(bytes(data))
    files = sorted(p.name for p in d.directory.iterdir())
    refused = d.provision("restore", str(bad), "--replace", check=False)
    assert refused.returncode == 2 and "not a usable backup" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert sorted(p.name for p in d.directory.iterdir()) == files
    assert events(d) == before

    # Into a used database without --replace: refused, nothing changed.
    refused = d.provision("restore", str(archive), check=False)
    assert refused.returncode == 2 and "--replace" in refused.stderr
    assert events(d) == before

    d.provision("down", "--volumes", "--yes")
    assert not d.volumes()
    restored = d.provision("restore", str(archive), "--event-timeout", "60")
    after = events(d)
    print(f"events: {len(before)} at the backup, {len(after)} after the restore")
    # Every event is back under its id and issue; restore's verify added none to the project.
    assert after == before
    assert len(events(d, "glitchtip-kit-verify")) == 2  # the archived one and restore's
    assert "ok   event" in restored.stdout and "restored " in restored.stdout
    for text in (restored.stdout + restored.stderr, refused.stdout + refused.stderr):
        assert not any(secret in text for secret in secrets)

    # --replace on the running stack: the current state is backed up first, then replaced.
    send_event(d.dsn(), d.port, "after restore, to be replaced")
    settle(d, len(after) + 1)
    replaced = d.provision("restore", str(archive), "--replace", "--no-verify")
    assert "the state before the restore is in " in replaced.stdout
    assert set(events(d)) == set(before)
    kept = sorted(p.name for p in (d.directory / "backups").iterdir() if p.name != bad.name)
    assert len(kept) == 2 and archive.name in kept  # the archive and the pre-restore backup


def test_backup_during_ingest_restores_consistently(deployment):
    d = deployment("ingest")
    d.provision("up")
    for number in range(20):
        send_event(d.dsn(), d.port, f"seed {number}")
    seeded = settle(d, 20)
    assert len(seeded) == 20
    sent: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        number = 0
        while not stop.is_set() and number < 2000:  # bounded
            message = f"during backup {number}"
            send_event(d.dsn(), d.port, message)
            sent.append(message)
            number += 1

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    time.sleep(0.5)
    try:
        archive = backup(d, "--json")
    finally:
        stop.set()
        sender.join(timeout=60)
    assert sent, "no event was sent while the backup ran"
    total = settle(d, 20 + len(sent))
    print(f"{len(sent)} events sent during the backup; {len(total)} in GlitchTip after it")

    d.provision("down", "--volumes", "--yes")
    restored_dir = deployment("restored")  # a new, empty directory on the same host
    restored_dir.project, restored_dir.port = d.project, d.port
    for name in ("glitchtip.yaml", ".env"):  # the new directory starts empty: restore makes it
        (restored_dir.directory / name).unlink(missing_ok=True)
    # The same deployment brought back: its project name, port and (test) images, as asked.
    restored_dir.provision("restore", str(archive), "--no-verify", "--archived-identity")
    after = events(restored_dir)
    print(f"restored {len(after)} events: the {len(seeded)} seeded and "
          f"{len(after) - len(seeded)} of the {len(sent)} sent during the backup")  # fmt: skip
    # The dump is one snapshot: everything processed before it, nothing that was never sent,
    # and every event's issue exists (no half-written state).
    assert set(seeded) <= set(after) <= set(total)
    assert set(after.values()) <= issue_ids(restored_dir)
    restored_dir.provision("verify", "--event-timeout", "60")
