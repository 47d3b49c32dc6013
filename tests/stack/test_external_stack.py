"""`provision up` against an external Postgres and Valkey on a real engine (issue 12).

What an operator has: a database and a Valkey the kit does not run, reachable at an address
GlitchTip's containers can reach (another machine, a managed service). Here they are ordinary
containers started outside the kit's project, published on the address of Docker's default
bridge on this host (172.17.0.x: reachable from every container, not from other machines; the
host's 127.0.0.1 would be each container's own loopback). Both have passwords, which must
appear in no output and no rendered file.

The test: preflight asks both servers; `up` starts no postgres or valkey of its own; an event
sent through the DSN is processed by the worker (queued in the external Valkey, stored in the
external Postgres); `down --volumes` leaves the external servers and their data alone.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time

import pytest
from test_up_stack import Deployment, send_event, wait_for_issue

pytestmark = pytest.mark.stack

DB_PASSWORD = "ext-Db-" + secrets.token_hex(6)
VALKEY_PASSWORD = "ext-Vk-" + secrets.token_hex(6)


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ...: {done.stderr[-500:]}")
    return done.stdout.strip()


def bridge_address() -> str:
    """The default bridge's gateway (docker0's address). An engine may list only the subnet
    (Engine 20.10 here: `[{"Subnet":"172.17.0.0/16"}]`): docker0 then holds its first address."""
    import ipaddress

    gateway = docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}")
    if gateway:
        return gateway
    subnet = docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Subnet}}")
    return str(next(ipaddress.ip_network(subnet).hosts()))


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def wait_until(what: str, check, timeout: float = 60.0) -> None:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(1)


@pytest.fixture
def external_servers(stack_env):
    """An external Postgres and Valkey (passwords set), removed at the end."""
    address = bridge_address()
    tag = secrets.token_hex(4)
    names = {"postgres": f"gtk-ext-{tag}-postgres", "valkey": f"gtk-ext-{tag}-valkey"}
    ports = {"postgres": free_port(address), "valkey": free_port(address)}
    try:
        docker(
            "run", "--detach", "--name", names["postgres"],
            "--env", "POSTGRES_USER=ext", "--env", "POSTGRES_DB=extdb",
            "--env", f"POSTGRES_PASSWORD={DB_PASSWORD}",
            "--publish", f"{address}:{ports['postgres']}:5432",
            stack_env.images["postgres"],
        )  # fmt: skip
        docker(
            "run", "--detach", "--name", names["valkey"],
            "--publish", f"{address}:{ports['valkey']}:6379",
            stack_env.images["valkey"],
            "valkey-server", "--requirepass", VALKEY_PASSWORD, "--protected-mode", "no",
        )  # fmt: skip
        wait_until(
            "external postgres",
            lambda: docker(
                "exec", names["postgres"], "pg_isready", "-h", "127.0.0.1", "-U", "ext",
                check=False,
            ).endswith("accepting connections"),
        )  # fmt: skip
        yield {
            "names": names,
            "database_url": (f"postgres://ext:{DB_PASSWORD}@{address}:{ports['postgres']}/extdb"),
            "valkey_url": f"redis://:{VALKEY_PASSWORD}@{address}:{ports['valkey']}/0",
        }
    finally:
        for name in names.values():
            docker("rm", "--force", "--volumes", name, check=False)


def public_tables(name: str) -> int:
    out = docker(
        "exec", name, "psql", "-U", "ext", "-d", "extdb", "-XAtc",
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )  # fmt: skip
    return int(out)


def test_up_against_external_postgres_and_valkey_then_down_leaves_them(
    tmp_path, stack_env, external_servers
):
    gt = Deployment(tmp_path, 6, stack_env.images)
    gt.env.update(
        GLITCHTIP_KIT_DATABASE_URL=external_servers["database_url"],
        GLITCHTIP_KIT_VALKEY_URL=external_servers["valkey_url"],
        GLITCHTIP_KIT_DATABASE_SSLMODE="disable",
    )
    names = external_servers["names"]
    try:
        up = gt.provision("up")
        said = up.stdout + up.stderr
        assert "Postgres 17 at" in said and "Valkey at" in said  # preflight asked both
        for name in ("compose.yml", "compose.metrics.yml", "glitchtip.yaml"):
            text = (tmp_path / name).read_text()
            assert DB_PASSWORD not in text and VALKEY_PASSWORD not in text, name
        assert DB_PASSWORD not in said and VALKEY_PASSWORD not in said
        assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600

        services = set(gt.compose("ps", "--all", "--format", "{{.Service}}").stdout.split())
        assert services == {"migrate", "web", "worker"}, services
        # Issue 18: the external URLs with their passwords reach GlitchTip as files only.
        from secret_check import assert_no_secret_in_containers

        assert_no_secret_in_containers(tmp_path, gt.project, {"migrate", "web", "worker"})
        inspected = docker("inspect", *gt.container_ids().values())
        assert DB_PASSWORD not in inspected and VALKEY_PASSWORD not in inspected
        assert (tmp_path / "secrets" / "valkey_url").read_text() == external_servers["valkey_url"]
        assert public_tables(names["postgres"]) > 0  # migrate ran in the external database

        config = gt.provision("config").stdout
        assert "********@" in config and DB_PASSWORD not in config

        send_event(gt.dsn(), gt.port, "external services event")
        waited = wait_for_issue(gt, "glitchtip", "default", "external services event")
        print(f"event processed through the external Valkey in {waited:.1f} s", flush=True)

        # A second `up` with nothing given: .env holds the choice, the stack is current.
        for key in (
            "GLITCHTIP_KIT_DATABASE_URL",
            "GLITCHTIP_KIT_VALKEY_URL",
            "GLITCHTIP_KIT_DATABASE_SSLMODE",
        ):
            gt.env.pop(key)
        again = gt.provision("up")
        assert "Postgres 17 at" in again.stdout + again.stderr

        tables = public_tables(names["postgres"])
        gt.provision("down", "--volumes", "--yes")
        for name in names.values():
            assert docker("inspect", "-f", "{{.State.Running}}", name) == "true", name
        assert public_tables(names["postgres"]) == tables  # the data is where it was
        pong = docker(
            "exec", "--env", f"REDISCLI_AUTH={VALKEY_PASSWORD}", names["valkey"],
            "valkey-cli", "--no-auth-warning", "PING",
        )  # fmt: skip
        assert pong == "PONG"
    finally:
        with contextlib.suppress(Exception):
            gt.teardown()


def test_preflight_refuses_a_wrong_password_in_one_line(tmp_path, stack_env, external_servers):
    gt = Deployment(tmp_path, 6, stack_env.images)
    wrong = external_servers["database_url"].replace(DB_PASSWORD, "not-the-password")
    gt.env.update(
        GLITCHTIP_KIT_DATABASE_URL=wrong, GLITCHTIP_KIT_VALKEY_URL=external_servers["valkey_url"]
    )
    try:
        failed = gt.provision("up", check=False)
        assert failed.returncode != 0
        assert "the external database at" in failed.stderr
        assert "password authentication failed" in failed.stderr
        assert "not-the-password" not in failed.stdout + failed.stderr
        assert gt.container_ids() == {}  # preflight changes nothing: no container started
    finally:
        with contextlib.suppress(Exception):
            gt.teardown()
