"""`provision upgrade` on a real Docker engine, with the registry-free test images.

Each test deploys with the real CLI (`provision up`), sends events through the DSN, runs
`provision upgrade`, and reads the events straight from the stand-in's database (the ids of
every stored event, not an API page) before and after:

- GlitchTip 5 -> 6 (`--to 6`: a tag of the same repository): every event and the DSN kept, the
  6 worker running, a new event processed afterwards.
- 5 -> a 6 stand-in whose migrations change the database and then fail (test-only image
  `<ns>/glitchtip:6-failmigrate`): the upgrade rolls back; every file byte for byte as before,
  the database restored (the failed migration's row is gone), events kept, `verify` passes.
- Postgres 17 -> 18 (`--postgres 18`: Debian sid's PostgreSQL 18 in the official 18 layout):
  every event kept, the data in a new volume, the old volume kept with its removal command.
- 5 -> 6-failmigrate with Postgres 17 -> 18 in one run: the dump reaches the new volume, the
  migrations fail, and the rollback puts 5, Postgres 17 and the old volume back (no restore
  needed: it was never written), the new volume removed, events kept.

Every command's output and wall time is printed (visible with `pytest -s`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from stack.test_up_stack import Deployment, send_event, wait_for_issue

pytestmark = pytest.mark.stack

ORG, PROJECT = "glitchtip", "default"


class UpgradeDeployment(Deployment):
    """A deployment with helpers to read what the upgrade must keep."""

    def psql(self, sql: str) -> str:
        done = self.compose(
            "exec", "-T", "postgres", "sh", "-c",
            'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -X -A -t -U glitchtip -d glitchtip -c "$0"',
            sql,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def event_ids(self) -> set[str]:
        """The id of every event the stand-in stored (its state row in Postgres)."""
        text = self.psql("SELECT doc->'events' FROM glitchtip_standin_state WHERE id = 1")
        return set(json.loads(text or "{}"))

    def files(self) -> dict[str, bytes]:
        names = ("glitchtip.yaml", ".env", "compose.yml", "compose.part.yml", ".glitchtiprc")
        here = self.directory
        return {name: (here / name).read_bytes() for name in names if (here / name).exists()}

    def service_image(self, service: str) -> str:
        done = self.compose("ps", "--format", "json", service)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert rows, f"{service} has no container"
        return rows[0]["Image"]

    def teardown(self) -> None:
        super().teardown()
        # The upgrade keeps the old Postgres volume outside compose.yml: remove it too.
        listed = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter",
             f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, timeout=60,
        ).stdout.split()  # fmt: skip
        if listed:
            subprocess.run(["docker", "volume", "rm", *listed], capture_output=True, timeout=120)


@pytest.fixture
def deploy(tmp_path, stack_env):
    made: list[UpgradeDeployment] = []

    def make(major: int) -> UpgradeDeployment:
        directory = tmp_path / f"gt{major}"
        directory.mkdir(exist_ok=True)
        deployment = UpgradeDeployment(directory, major, stack_env.images)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.teardown()


def seeded(deployment: UpgradeDeployment, count: int = 3) -> set[str]:
    """`up`, then `count` events through the DSN, all processed; their stored ids."""
    began = time.monotonic()
    deployment.provision("up")
    dsn = deployment.dsn()
    for index in range(count):
        send_event(dsn, deployment.port, f"before upgrade {index}")
    wait_for_issue(deployment, ORG, PROJECT, f"before upgrade {count - 1}")
    ids = deployment.event_ids()
    assert len(ids) >= count, ids
    print(f"[upgrade] seeded {len(ids)} events in {time.monotonic() - began:.1f} s")
    return ids


def test_upgrade_5_to_6_keeps_every_event_and_the_dsn(deploy, stack_env):
    began = time.monotonic()
    deployment = deploy(5)
    before = seeded(deployment)
    rc_before = (deployment.directory / ".glitchtiprc").read_bytes()

    done = deployment.provision("upgrade", "--to", "6", "--event-timeout", "60")
    assert "Upgraded to" in done.stdout, done.stdout

    target = stack_env.images["glitchtip6"]
    assert target.endswith(":6")
    assert deployment.service_image("web") == target
    assert deployment.service_image("worker") == target
    assert before <= deployment.event_ids()  # every event kept (verify added its own)
    assert (deployment.directory / ".glitchtiprc").read_bytes() == rc_before
    settings = (deployment.directory / "glitchtip.yaml").read_text()
    assert "glitchtip_major: 6" in settings and f"glitchtip_image: {target}" in settings
    compose = (deployment.directory / "compose.yml").read_text()
    assert "./bin/run-worker.sh" in compose and "GLITCHTIP_RETENTION_DAYS" in compose
    backups = sorted((deployment.directory / "backups").glob("glitchtip-*-5.tar"))
    assert len(backups) == 1, backups
    # GlitchTip 6's worker processes a new event through the same DSN.
    send_event(deployment.dsn(), deployment.port, "after upgrade")
    wait_for_issue(deployment, ORG, PROJECT, "after upgrade")
    deployment.provision("verify")
    print(f"[upgrade] 5 -> 6 test: {time.monotonic() - began:.1f} s")


def test_failed_migration_rolls_back_to_a_working_stack(deploy, stack_env):
    began = time.monotonic()
    deployment = deploy(5)
    before = seeded(deployment)
    files = deployment.files()
    previous = stack_env.images["glitchtip5"]

    failing = stack_env.images["glitchtip6_failmigrate"]
    done = deployment.provision("upgrade", "--to", failing, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: upgrade to ") and "failed at 'start'" in line, line
    assert f"rolled back to {previous}" in line and "backup: " in line, line
    assert "database restored from the backup" in line and "verify passed" in line, line

    assert deployment.files() == files  # every file byte for byte
    assert deployment.service_image("web") == previous
    assert deployment.service_image("worker") == previous
    migrations = deployment.psql("SELECT name FROM glitchtip_standin_migrations")
    assert "9999_failmigrate" not in migrations  # the half-applied migration is undone
    assert before <= deployment.event_ids()
    send_event(deployment.dsn(), deployment.port, "after rollback")
    wait_for_issue(deployment, ORG, PROJECT, "after rollback")
    deployment.provision("verify")
    print(f"[upgrade] rollback test: {time.monotonic() - began:.1f} s")


def test_postgres_major_upgrade_keeps_every_event(deploy, stack_env):
    began = time.monotonic()
    deployment = deploy(6)
    before = seeded(deployment)
    old_volume = f"{deployment.project}_postgres-data"
    assert deployment.psql("SHOW server_version_num").startswith("17")

    done = deployment.provision("upgrade", "--postgres", "18")
    new_volume = f"{deployment.project}_postgres-18"
    assert f"docker volume rm {old_volume}" in done.stdout, done.stdout

    assert deployment.psql("SHOW server_version_num").startswith("18")
    assert deployment.service_image("postgres") == stack_env.images["postgres18"]
    assert before <= deployment.event_ids()
    volumes = deployment.volumes()
    assert old_volume in volumes and new_volume in volumes, volumes
    mounts = subprocess.run(
        ["docker", "inspect", "--format", "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}",
         f"{deployment.project}-postgres-1"],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert f"{new_volume}:/var/lib/postgresql " in mounts, mounts
    env = deployment.env_file()
    assert env["GLITCHTIP_KIT_POSTGRES_VOLUME"] == new_volume
    send_event(deployment.dsn(), deployment.port, "after postgres upgrade")
    wait_for_issue(deployment, ORG, PROJECT, "after postgres upgrade")
    # A second `up` changes nothing: the settings of record name the new volume and image.
    assert deployment.up_json()["changed"] is False
    print(f"[upgrade] postgres 17 -> 18 test: {time.monotonic() - began:.1f} s")


def test_failed_upgrade_with_postgres_rolls_back_to_the_old_volume(deploy, stack_env):
    """5 -> 6 and Postgres 17 -> 18 in one run, whose migrations fail after the dump was moved
    to the new volume: back on 5, Postgres 17 and the old volume; the new volume removed."""
    began = time.monotonic()
    deployment = deploy(5)
    before = seeded(deployment)
    files = deployment.files()
    old_volume = f"{deployment.project}_postgres-data"
    new_volume = f"{deployment.project}_postgres-18"

    failing = stack_env.images["glitchtip6_failmigrate"]
    done = deployment.provision("upgrade", "--to", failing, "--postgres", "18", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[5/7] postgres" in done.stdout and "dump restored into volume" in done.stdout
    line = done.stderr.strip().splitlines()[-1]
    assert "failed at 'start'" in line and f"new volume {new_volume} removed" in line, line
    assert "database restored" not in line  # the old volume was never written: no restore

    assert deployment.files() == files
    assert deployment.psql("SHOW server_version_num").startswith("17")
    assert deployment.service_image("postgres") == stack_env.images["postgres"]
    assert deployment.service_image("web") == stack_env.images["glitchtip5"]
    volumes = deployment.volumes()
    assert old_volume in volumes and new_volume not in volumes, volumes
    assert before <= deployment.event_ids()
    send_event(deployment.dsn(), deployment.port, "after postgres rollback")
    wait_for_issue(deployment, ORG, PROJECT, "after postgres rollback")
    print(f"[upgrade] postgres rollback test: {time.monotonic() - began:.1f} s")


def test_refusals_change_nothing(deploy, stack_env, tmp_path: Path):
    """On a running 6 stack: a downgrade to 5 and an unknown major are refused, files intact."""
    deployment = deploy(6)
    deployment.provision("up")
    files = deployment.files()
    for args, words in (
        (("--to", stack_env.images["glitchtip5"]), "older than the GlitchTip 6"),
        (("--to", "9.0.0"), "GlitchTip 9, which this kit does not know"),
        (("--postgres", "16"), "older than the running Postgres 17"),
    ):
        done = deployment.provision("upgrade", *args, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert words in done.stderr, done.stderr
        assert deployment.files() == files
    plan = deployment.provision("upgrade", "--postgres", "18", "--dry-run", "--json")
    document = json.loads(plan.stdout)
    assert document["changed"] is False and "postgres" in document["plan"]["steps"]
    assert document["plan"]["to"]["postgres_volume"] == f"{deployment.project}_postgres-18"
    assert deployment.files() == files
    assert not (deployment.directory / "backups").exists()
