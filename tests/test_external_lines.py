"""The external services' checks read whole where test_external_refusals.py reads a part: the
fix of too few connections, the old server's message, an answer that is no version, and the
external Valkey's answer and refusal (issue 20: `check_database` kept surviving mutants of
these texts)."""

from __future__ import annotations

import types

import pytest
from test_external_refusals import answering, settings

from provision import majors
from provision.errors import KitError
from provision.masking import MASK
from provision.stack import external


def test_too_few_connections_names_every_setting_that_lowers_the_pools():
    needed = external.pools_need(settings())
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, f"180001 {needed - 1}\n"))
    assert refused.value.fix == (
        "raise its max_connections, or lower db_pool_max_size, web_concurrency or "
        "worker_concurrency"
    )


def test_an_old_server_and_an_answer_that_is_no_version_are_whole_lines():
    old = (majors.MINIMUM_POSTGRES - 1) * 10000 + 3
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, f"{old} 500\n"))
    assert refused.value.message == (
        f"the external database at db.example.com is Postgres {majors.MINIMUM_POSTGRES - 1}; "
        f"GlitchTip needs {majors.MINIMUM_POSTGRES} or newer"
    )
    with pytest.raises(KitError) as refused:
        external.check_database(settings(), answering(0, "hello s3cr@t\nmore"))
    assert refused.value.message == (
        f"the external database at db.example.com answered 'hello {MASK}', not a version"
    )


def valkey_settings(url="rediss://:p4ss@cache.example.com:6380/0"):
    return types.SimpleNamespace(valkey_url=url, valkey_image="valkey/valkey:9.0")


def test_the_external_valkey_answers_pong_or_is_refused_whole():
    assert external.check_valkey(valkey_settings(), answering(0, "PONG\n")) == (
        "Valkey at cache.example.com"
    )
    for code, output in ((0, "NOAUTH Authentication required. p4ss"), (1, "PONG")):
        with pytest.raises(KitError) as refused:
            external.check_valkey(valkey_settings(), answering(code, output))
        shown = output.replace("p4ss", MASK)
        assert refused.value.line() == (
            f"the external Valkey at cache.example.com does not answer PING ({shown}): check "
            "valkey_url (host, port, password, rediss:// for TLS) and that this host may connect "
            "to it"
        )
