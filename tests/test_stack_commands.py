"""The stack commands through the real CLI (CliRunner), with the Docker edges faked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from provision.cli import cli
from provision.deployment import Deployment
from provision.errors import KitError
from provision.stack import up as up_module
from provision.steps import Step, StepOutcome

DSN = "http://0123456789abcdef0123456789abcdef@localhost:18000/1"


@pytest.fixture
def runner(kit_environ):
    return CliRunner()


def fake_steps(fail_at: str | None = None):
    def make(name):
        def action(ctx):
            if name == fail_at:
                raise KitError(f"{name} broke", "fix it")
            if name == "wrap-up":
                ctx.results["summary"] = {
                    "url": "http://localhost:18000",
                    "local_url": "http://127.0.0.1:18000",
                    "glitchtip_major": 6,
                    "admin_email": "admin@example.com",
                    "admin_password": "kept in .env, key DJANGO_SUPERUSER_PASSWORD",
                    "organization": "glitchtip",
                    "project": "default",
                    "dsn": DSN,
                    "dsn_file": str(ctx.directory / ".glitchtiprc"),
                    "next": ["provision status"],
                }
            return StepOutcome(f"{name} fine", changed=False)

        return Step(name, f"{name} title", action)

    return [make(name) for name in ("preflight", "render", "start", "wrap-up")]


def test_up_prints_progress_and_the_wrap_up(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(up_module, "STEPS", fake_steps())
    result = runner.invoke(cli, ["up", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "[1/4] preflight: preflight title" in result.output
    assert "ok (" in result.output
    assert f"DSN:            {DSN}" in result.output
    assert "Done in" in result.output and "nothing changed" in result.output


def test_up_quiet_prints_only_the_dsn(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(up_module, "STEPS", fake_steps())
    result = runner.invoke(cli, ["up", "--quiet", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == DSN + "\n"


def test_up_json_is_one_document(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(up_module, "STEPS", fake_steps())
    result = runner.invoke(cli, ["up", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [s["name"] for s in document["steps"]] == ["preflight", "render", "start", "wrap-up"]
    assert document["result"]["dsn"] == DSN


def test_up_failure_is_one_line_with_the_step_and_the_next_command(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(up_module, "STEPS", fake_steps(fail_at="start"))
    result = runner.invoke(cli, ["up", "--dir", str(tmp_path), "--partman"])
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"error: step 'start' failed: start broke: fix it: then run: provision up --dir "
        f"{tmp_path} --partman"
    ]
    assert "wrap-up" not in result.stdout


def test_up_failure_in_json_mode_still_reports_the_steps(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(up_module, "STEPS", fake_steps(fail_at="render"))
    result = runner.invoke(cli, ["up", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["error"]["step"] == "render"
    assert [s["status"] for s in document["steps"]] == ["ok", "failed"]


def test_up_with_bad_settings_fails_in_preflight_and_changes_nothing(runner, tmp_path):
    result = runner.invoke(cli, ["up", "--dir", str(tmp_path), "--http-port", "99999"])
    assert result.exit_code == 2
    assert "step 'preflight' failed: http_port" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_down_without_rendered_files_says_what_to_do(runner, tmp_path):
    result = runner.invoke(cli, ["down", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no compose.yml" in result.stderr


def test_down_volumes_asks_first(runner, tmp_path, monkeypatch):
    from provision.stack import down

    calls = []
    monkeypatch.setattr(down, "stop_stack", lambda compose, volumes: calls.append(volumes) or "x")
    (tmp_path / "compose.yml").write_text("services: {}\n")
    refused = runner.invoke(cli, ["down", "--volumes", "--dir", str(tmp_path)], input="n\n")
    assert refused.exit_code == 1 and calls == []
    assert "Delete the volumes of 'glitchtip'" in refused.output
    agreed = runner.invoke(cli, ["down", "--volumes", "--dir", str(tmp_path)], input="y\n")
    assert agreed.exit_code == 0 and calls == [True]
    assert runner.invoke(cli, ["down", "-v", "--yes", "--dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli, ["down", "--dir", str(tmp_path)]).exit_code == 0
    assert calls == [True, True, False]


def test_partman_refuses_where_partitioning_is_off(runner, tmp_path):
    result = runner.invoke(cli, ["partman", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "advanced partitioning is off" in result.stderr


def test_status_json(runner, tmp_path, monkeypatch):
    from provision.runtime import engine

    class NoContainers:
        def containers(self, project=None):
            return []

    monkeypatch.setattr(engine, "Engine", NoContainers)
    result = runner.invoke(cli, ["status", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["up"] is False
    checked = runner.invoke(cli, ["status", "--check", "--dir", str(tmp_path)])
    assert checked.exit_code == 3
    assert "no containers" in checked.stdout


def test_recorded_partitioning_is_kept_without_the_flag(tmp_path):
    from provision.deployment import load_settings

    (tmp_path / ".env").write_text("GLITCHTIP_KIT_ADVANCED_PARTITIONING=true\n")
    settings = load_settings(tmp_path, {"glitchtip_major": "5"}, environ={})
    assert settings.advanced_partitioning is True
    (tmp_path / ".env").write_text("GLITCHTIP_KIT_ADVANCED_PARTITIONING=false\n")
    assert not load_settings(tmp_path, {"glitchtip_major": "5"}, {}).advanced_partitioning


def test_up_on_a_current_stack_changes_nothing_and_says_so(runner, tmp_path, monkeypatch):
    """The real steps, with Compose and the engine faked and GlitchTip served by the fake: the
    second `up --json` runs no `compose up` and no `createsuperuser`, and reports
    `"changed": false`."""
    from fakeglitchtip import create_superuser, start_fake
    from test_stack_steps import HASHES, IMAGE_IDS, STACK_SERVICES, FakeCompose, FakeEngine, running

    from provision.envfile import read_env_file
    from provision.runtime import engine as engine_module

    glitchtip = start_fake()
    try:
        port = glitchtip.url.rsplit(":", 1)[1]
        (tmp_path / "glitchtip.yaml").write_text(
            f"http_port: {port}\ncompose_project_name: gtkit\n"
        )
        compose = FakeCompose(services=STACK_SERVICES, hashes=HASHES)
        engine = FakeEngine(publishers=[running("web")])
        engine.image_ids = dict(IMAGE_IDS)
        engine.containers_list = [running(name) for name in STACK_SERVICES]
        monkeypatch.setattr(engine_module, "Engine", lambda: engine)
        monkeypatch.setattr(Deployment, "compose", lambda self, metrics=None: compose)
        assert runner.invoke(cli, ["render", "--dir", str(tmp_path)]).exit_code == 0
        password = read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]
        create_superuser(glitchtip.store, "admin@example.com", password)  # what migrate does

        first = runner.invoke(cli, ["up", "--json", "--dir", str(tmp_path)])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout)["changed"] is True  # token, organization, project
        again = runner.invoke(cli, ["up", "--json", "--dir", str(tmp_path)])
        assert again.exit_code == 0, again.output
        document = json.loads(again.stdout)
    finally:
        glitchtip.stop()
    assert document["changed"] is False
    assert [s["changed"] for s in document["steps"] if s["status"] == "ok"] == [False] * 12
    assert compose.calls == []  # neither `up` nor `exec ... createsuperuser`, in either run
    assert document["result"]["dsn"].startswith("http://")
    assert password not in again.output
