"""What `provision upgrade` takes the deployment to run now (`current_state`), read whole: the
Postgres volume from Compose, else from .env, else the default name; the server's major, else
the settings'; and the refusals before anything is planned, as complete lines."""

from __future__ import annotations

import json

import pytest
from test_ops_upgrade import FakeCompose, FakeOps, context, deployment

from provision.errors import KitError
from provision.ops import upgrade
from provision.runtime.process import ProcessResult


class AnsweringCompose(FakeCompose):
    """Compose whose `config` names the Postgres volume and whose psql reports Postgres 18."""

    def __init__(self, volume: str | None = None, rows=None):
        super().__init__(rows)
        self.volume = volume

    def run(self, *args, env=None, timeout=None):
        self.calls.append(args)
        if args[:1] == ("config",) and args[1:3] != ("--format", "json"):
            # Compose's `config --format` takes yaml or json, lower-case (its source refuses
            # any other value: "unsupported format"); not recorded from a real run.
            return ProcessResult(("compose", *args), 1, "", f"unsupported format {args[2]!r}")
        if args[:1] == ("config",) and self.volume:
            volumes = {"postgres-data": {"name": self.volume}}
            return ProcessResult(("compose", *args), 0, json.dumps({"volumes": volumes}), "")
        if "SHOW server_version_num" in args:
            return ProcessResult(("compose", *args), 0, "180004\n", "")
        return ProcessResult(("compose", *args), 0, "", "")


def current(directory, compose, tmp_path):
    return upgrade.current_state(context(directory, compose), FakeOps(tmp_path).ops())


def test_what_runs_now_comes_from_the_settings_compose_and_the_server(tmp_path):
    directory = deployment(tmp_path)
    found = current(directory, AnsweringCompose("named_by_compose"), tmp_path)
    assert (
        found.major,
        found.glitchtip_image,
        found.postgres_image,
        found.postgres_major,
        found.valkey_image,
        found.partman,
        found.compose_project_name,
        found.postgres_volume,
        found.server_version,
        found.partman_image,
    ) == (
        5,
        "glitchtip/glitchtip:v5.1.0",
        "postgres:17.7",
        18,  # the server's answer wins over the settings' 17
        "valkey/valkey:8.1",
        False,
        "gtkit",
        "named_by_compose",
        "5.1.0",
        "ghcr.io/dbsystel/postgresql-partman:17-5",
    )
    assert found.sources["glitchtip_major"] == "file"
    assert found.sources["glitchtip_image"] == "derived"


def test_without_compose_the_volume_comes_from_env_else_the_default_name(tmp_path):
    directory = deployment(tmp_path)
    plain = current(directory, FakeCompose(), tmp_path)
    assert (plain.postgres_volume, plain.postgres_major) == ("gtkit_postgres-data", 17)
    with open(directory / ".env", "a") as handle:
        handle.write("GLITCHTIP_KIT_POSTGRES_VOLUME=gtkit_postgres-18\n")
    assert current(directory, FakeCompose(), tmp_path).postgres_volume == "gtkit_postgres-18"


def test_a_stack_not_all_running_is_refused_naming_each_service(tmp_path):
    directory = deployment(tmp_path)
    rows = [
        {"Service": "postgres", "State": "running", "Health": "healthy"},
        {"Service": "valkey", "State": "exited"},
        {"Service": "web", "State": "running", "Health": "unhealthy"},
        {"Service": "migrate", "State": "", "Health": ""},
    ]
    with pytest.raises(KitError) as caught:
        current(directory, FakeCompose(rows), tmp_path)
    assert caught.value.exit_code == 2
    assert caught.value.line() == (
        "the stack is not running (valkey is exited, web is unhealthy, worker has no "
        "container); an upgrade starts from a working one: start it with `provision up` (and "
        "check `provision verify`), then upgrade"
    )
    rows = [*rows[:1], {"Service": "valkey", "State": ""}, *FakeCompose().rows[2:]]
    with pytest.raises(KitError) as caught:
        current(directory, FakeCompose(rows), tmp_path)
    assert "(valkey is not running)" in caught.value.line()


def test_profile_minimal_is_refused_with_the_way_round(tmp_path):
    directory = deployment(tmp_path, profile="minimal")
    with pytest.raises(KitError) as caught:
        current(directory, FakeCompose(), tmp_path)
    assert caught.value.line() == (
        "provision upgrade runs on profile standard only, not on profile minimal: switch first "
        "(profile: standard in glitchtip.yaml, or `provision up --set profile=standard`), "
        "upgrade, then switch back to minimal"
    )


@pytest.fixture
def canned():
    import http.server
    import threading

    from test_verify_lines import Canned

    routes: dict[str, tuple[int, str, bytes]] = {}
    handler = type("Handler", (Canned,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield routes, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_running_version_is_what_api_settings_reports(canned):
    import types

    routes, url = canned
    settings = types.SimpleNamespace(internal_url=url + "/")
    path = "/api/settings/"
    routes[path] = (200, "application/json", b'{"version": "5-snapshot+c264800"}')
    assert upgrade.server_version(settings) == "5-snapshot+c264800"
    for body in (b'{"version": ""}', b"[]", b"<html>"):
        routes[path] = (200, "application/json", body)
        assert upgrade.server_version(settings) is None, body
    routes[path] = (503, "text/plain", b"down")
    with pytest.raises(KitError) as caught:
        upgrade.server_version(settings)
    assert caught.value.line() == (
        f"{url}/api/settings/ answered HTTP 503: see `provision status` and `provision logs web`"
    )


def test_a_glitchtip_that_does_not_answer_is_named_with_the_fix(tmp_path):
    import socket
    import types

    with socket.socket() as probe:  # a port nothing listens on (bound, then closed)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(KitError) as caught:
        upgrade.server_version(types.SimpleNamespace(internal_url=url))
    assert caught.value.line() == (
        f"GlitchTip does not answer at {url}/api/settings/ (ConnectError): see `provision "
        "status`; the upgrade needs a running, healthy stack"
    )
