"""The external-database checks' refusals, whole: the problem line and the fix the user reads,
for every loopback spelling and every answer psql can give (through a fake `docker run`)."""

from __future__ import annotations

import types

import pytest

from provision.errors import KitError
from provision.masking import MASK
from provision.stack import external

LOOPBACK_FIX = (
    "use an address GlitchTip's containers can reach (the server's name or IP; for a server on "
    "this host, the address of its docker0 bridge or of the host)"
)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("postgres://gt:pw@LOCALHOST:5432/gt", "localhost"),
        ("postgres://gt:pw@localhost/gt", "localhost"),
        ("postgres://gt:pw@[::1]:5432/gt", "::1"),
        ("postgres://gt:pw@0.0.0.0/gt", "0.0.0.0"),
        ("postgres://gt:pw@127.3.4.5/gt", "127.3.4.5"),
    ],
)
def test_every_loopback_spelling_is_refused_with_its_fix(url, host):
    with pytest.raises(KitError) as refused:
        external.check_not_loopback(url, "database_url")
    assert (
        refused.value.message == f"database_url: {host} is the container's own loopback, "
        "not this host's"
    )
    assert refused.value.fix == LOOPBACK_FIX


@pytest.mark.parametrize("host", ["db.example.com", "10.0.0.5", "172.17.0.1", "127example.org"])
def test_reachable_hosts_pass(host):
    external.check_not_loopback(f"postgres://gt:pw@{host}:5432/gt", "database_url")


def settings(url="postgres://gt:s3cr%40t@db.example.com:5432/glitchtip"):
    from provision import majors

    return types.SimpleNamespace(
        effective_database_url=url,
        postgres_image="postgres:18.1",
        major=majors.MAJORS[6],
        worker_pool="threads",
        worker_concurrency=2,
        web_concurrency=2,
        db_pool_max_size=5,
        profile="standard",
    )


def answering(code: int, output: str):
    calls = []

    def run(image, script, environment):
        calls.append((image, environment))
        return external.ProbeResult(code, output)

    run.calls = calls
    return run


def test_a_database_that_does_not_answer_names_the_fix_and_hides_the_password():
    run = answering(2, "psql: error: connection to server failed: password s3cr@t rejected\nhint")
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), run)
    assert refused.value.message == (
        "the external database at db.example.com does not answer (psql: error: connection to "
        f"server failed: password {MASK} rejected)"
    )
    assert refused.value.fix == (
        "check database_url (host, port, user, password, database) and database_sslmode, and "
        "that this host may connect to it"
    )
    image, environment = run.calls[0]
    assert image == "postgres:18.1" and environment["PGPASSWORD"] == "s3cr@t"
    assert "s3cr" not in environment["KIT_PROBE_URL"]


def test_a_database_probe_that_fails_silently_says_so():
    """psql killed before it printed anything (an image without psql, an OOM kill): the line
    says there was no output rather than showing empty parentheses."""
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(137, "  \n\n"))
    assert refused.value.message == (
        "the external database at db.example.com does not answer (no output)"
    )


@pytest.mark.parametrize("output", ["", "hello", "170004", "170004 100 x", "17.4 100"])
def test_an_answer_that_is_no_version_is_refused(output):
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, output))
    assert refused.value.message.startswith("the external database at db.example.com answered ")
    assert refused.value.message.endswith(", not a version")
    assert refused.value.fix == "check that database_url names a Postgres server"


def test_an_old_server_and_too_few_connections_are_refused_with_their_fix():
    from provision import majors

    old = (majors.MINIMUM_POSTGRES - 1) * 10000 + 3
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, f"{old} 500\n"))
    assert refused.value.fix == (
        f"upgrade that server, or point database_url at Postgres {majors.MINIMUM_POSTGRES}+"
    )
    needed = external.pools_need(settings())
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, f"180001 {needed - 1}\n"))
    assert refused.value.message == (
        f"the external database at db.example.com allows {needed - 1} connections, but the web "
        f"and worker pools may open {needed}"
    )
    assert "raise its max_connections" in refused.value.fix
    found = external.check_database(settings(), answering(0, f"180001 {needed}\n"))
    assert found == f"Postgres 18 at db.example.com (max_connections {needed}, pools {needed})"
