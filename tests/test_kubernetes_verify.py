"""`create-project` and `verify` against a GlitchTip that is not a local Compose stack (a cluster's
public URL): the fake GlitchTip over real HTTP stands for it, nothing is published on the kit's
port, and no Docker is asked anything."""

from __future__ import annotations

import contextlib
import json

import pytest
from cli_run import one_line_error, run
from click.testing import CliRunner
from fakeglitchtip import create_superuser, start_fake

from provision.cli import cli
from provision.envfile import read_env_file, update_env_file

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"
# Nothing listens here: a check that used the published port instead of the URL would fail.
UNUSED_PORT = "9"


@pytest.fixture
def fake():
    handle = start_fake(worker=True, worker_interval=0.1)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


def cluster_deployment(directory, fake, target="kubernetes"):
    """Settings of a deployment on a cluster whose public URL is the fake; provisioned through
    `create-project --url` as the render's note says."""
    (directory / "glitchtip.yaml").write_text(
        f"target: {target}\nglitchtip_domain: {fake.url}\nhttp_port: {UNUSED_PORT}\n"
    )
    with contextlib.chdir(directory):
        result = CliRunner().invoke(
            cli,
            ["create-project", "--url", fake.url, "--admin-email", ADMIN,
             "--admin-password", PASSWORD],
            env={"PROVISION_API_BACKOFF": "0.01"},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return directory


def verify(directory, *args, env=None):
    return run(directory, "verify", "--event-timeout", "10", "--json", *args, env=env)


def test_verify_on_kubernetes_uses_the_public_url_without_docker(fake, tmp_path):
    cluster_deployment(tmp_path, fake)
    result = verify(tmp_path, "--skip", "services", "--skip", "disk")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [c["name"] for c in report["checks"]]
    assert names == ["url", "health", "settings", "token", "queue", "event"]
    assert fake.url in report["checks"][1]["detail"]
    assert "processed in" in report["checks"][-1]["detail"]


def test_on_kubernetes_the_services_check_says_what_to_run_instead(fake, tmp_path):
    cluster_deployment(tmp_path, fake)
    result = verify(tmp_path, "--skip", "disk", "--skip", "event")
    assert result.exit_code == 3, result.output
    services = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["services"]
    assert not services["ok"]
    assert services["detail"] == (
        "the kit cannot see Kubernetes pods: check `kubectl -n glitchtip get pods` and run "
        "verify with --skip services"
    )


def test_url_and_token_options_replace_the_published_port_and_the_token_in_env(fake, tmp_path):
    cluster_deployment(tmp_path, fake, target="compose")
    token = read_env_file(tmp_path / ".env")["GLITCHTIP_API_TOKEN"]
    update_env_file(tmp_path / ".env", {"GLITCHTIP_API_TOKEN": ""})
    checks = ["--skip", "services", "--skip", "disk", "--skip", "event", "--skip", "queue"]
    # Without --url the compose target asks the published port, where nothing answers.
    refused = verify(tmp_path, *checks)
    assert refused.exit_code == 3
    result = verify(tmp_path, *checks, "--url", fake.url, env={"GLITCHTIP_API_TOKEN": token})
    assert result.exit_code == 0, result.output
    assert token not in result.output
    by_name = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "user admin@example.com" in by_name["token"]["detail"]


def test_a_url_that_is_not_one_is_refused_in_one_line(tmp_path):
    result = run(tmp_path, "verify", "--url", "glitchtip.example.com/path")
    line = one_line_error(result)
    assert "--url" in line and "https://glitchtip.example.com" in line
