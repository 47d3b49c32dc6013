"""The metrics services in `up`, `status`, `down --only-metrics` and the Make targets.

Compose and the engine are the fakes of `test_stack_steps`; Prometheus's targets API is a
recorded-shape answer (the Prometheus HTTP API's `/api/v1/targets`), handed in as a function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_run import one_line_error, run
from test_stack_steps import (
    GT_ID,
    HASHES,
    IMAGE_IDS,
    STACK_SERVICES,
    FakeCompose,
    FakeEngine,
    make_ctx,
    ok,
    running,
)

from provision.deployment import Deployment
from provision.envfile import read_env_file, update_env_file
from provision.errors import KitError
from provision.monitoring.targets import parse_targets, prometheus_targets
from provision.render import write_rendered
from provision.runtime.engine import ContainerState
from provision.stack import metrics, start
from provision.stack.status import collect_status, status_lines

pytestmark = pytest.mark.usefixtures("kit_environ")

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "0123456789abcdef" * 4
METRICS_IMAGES = {
    "prometheus": "prom:3",
    "grafana": "graf:12",
    "postgres-exporter": "pge:0",
    "valkey-exporter": "vke:1",
    "project-exporter": "gt:6",
}
METRICS_SPECS = {name: {"image": image} for name, image in METRICS_IMAGES.items()}
ALL_SERVICES = {**STACK_SERVICES, **METRICS_SPECS}
ALL_HASHES = {**HASHES, **{name: f"hash-{name}" for name in METRICS_SPECS}}
ALL_IMAGE_IDS = {**IMAGE_IDS, "prom:3": "sha256:p", "graf:12": "sha256:g", "pge:0": "sha256:e",
                 "vke:1": "sha256:v"}  # fmt: skip


def metrics_container(service: str, **changes) -> ContainerState:
    image = METRICS_IMAGES[service]
    values = {
        "name": f"gtkit-{service}-1",
        "service": service,
        "project": "gtkit",
        "state": "running",
        "health": None if service == "valkey-exporter" else "healthy",
        "exit_code": None,
        "image": image,
        "image_id": GT_ID if image == "gt:6" else ALL_IMAGE_IDS[image],
        "config_hash": ALL_HASHES[service],
    }
    values.update(changes)
    return ContainerState(**values)


def metrics_ctx(tmp_path, containers=(), token=TOKEN, metrics_on="true", compose=None):
    compose = compose or FakeCompose(services=ALL_SERVICES, hashes=ALL_HASHES)
    engine = FakeEngine()
    engine.image_ids = dict(ALL_IMAGE_IDS)
    engine.containers_list = list(containers)
    ctx = make_ctx(tmp_path, compose, engine, metrics=metrics_on)
    if token:
        update_env_file(tmp_path / ".env", {"GLITCHTIP_API_TOKEN": token})
    return ctx, compose, engine


def up_calls(compose: FakeCompose) -> list[tuple[str, ...]]:
    return [call for call in compose.calls if call[0] == "up"]


# --- the metrics step ---


def test_metrics_step_starts_the_five_services_without_touching_glitchtip(tmp_path):
    ctx, compose, _ = metrics_ctx(tmp_path)
    outcome = metrics.metrics(ctx)
    assert outcome.changed is True
    assert up_calls(compose) == [
        ("up", "--detach", "--wait", "--wait-timeout", "300", "--pull", "never", "--no-deps",
         "prometheus", "grafana", "postgres-exporter", "valkey-exporter", "project-exporter")
    ]  # fmt: skip
    assert outcome.detail == (
        "5 metrics services up; Prometheus http://127.0.0.1:9090, Grafana http://127.0.0.1:3000"
    )


def test_metrics_step_changes_nothing_on_current_services(tmp_path):
    current = [metrics_container(name) for name in METRICS_SPECS]
    ctx, compose, _ = metrics_ctx(tmp_path, containers=current)
    outcome = metrics.metrics(ctx)
    assert compose.calls == [] and outcome.changed is False
    assert outcome.detail.startswith("all 5 metrics services already up, healthy and current")


@pytest.mark.parametrize(
    "changed",
    [
        {"config_hash": "hash-old"},  # e.g. a rule file changed: the digest label differs
        {"health": "unhealthy"},
        {"state": "exited", "exit_code": 2},
    ],
)
def test_metrics_step_runs_up_when_a_metrics_service_differs(tmp_path, changed):
    current = [metrics_container(name) for name in METRICS_SPECS if name != "prometheus"]
    current.append(metrics_container("prometheus", **changed))
    ctx, compose, _ = metrics_ctx(tmp_path, containers=current)
    assert metrics.metrics(ctx).changed is True
    assert len(up_calls(compose)) == 1


def test_a_new_token_recreates_the_services_holding_it(tmp_path):
    current = [metrics_container(name) for name in METRICS_SPECS]
    ctx, compose, _ = metrics_ctx(tmp_path, containers=current, token="old-token-" + "x" * 30)
    metrics.remember_token(ctx)  # what the render step does first
    update_env_file(tmp_path / ".env", {"GLITCHTIP_API_TOKEN": TOKEN})  # the admin step minted one
    assert metrics.metrics(ctx).changed is True
    assert up_calls(compose)[-1][-3:] == ("--force-recreate", "prometheus", "project-exporter")


def test_metrics_step_needs_the_token(tmp_path):
    ctx, compose, _ = metrics_ctx(tmp_path, token=None)
    with pytest.raises(KitError) as caught:
        metrics.metrics(ctx)
    assert "has no GLITCHTIP_API_TOKEN for the metrics services" in caught.value.line()
    assert compose.calls == []


def test_metrics_step_failure_names_the_unhealthy_service(tmp_path):
    compose = FakeCompose(
        script={"up": ok("dependency failed", code=1), "logs": ok("permission denied")},
        rows=[{"Service": "grafana", "Name": "gtkit-grafana-1", "State": "running",
               "Health": "unhealthy"}],
        services=ALL_SERVICES,
        hashes=ALL_HASHES,
    )  # fmt: skip
    ctx, _, _ = metrics_ctx(tmp_path, compose=compose)
    with pytest.raises(KitError) as caught:
        metrics.metrics(ctx)
    assert caught.value.line().startswith(
        "the metrics services did not become healthy: grafana unhealthy; its log ends: "
        "permission denied; compose said: dependency failed"
    )


def test_metrics_off_removes_what_an_earlier_run_left(tmp_path, monkeypatch):
    leftover = [running("web"), metrics_container("grafana")]
    ctx, compose, _ = metrics_ctx(tmp_path, containers=leftover, metrics_on="false")
    compose.script["rm"] = ok(" Container gtkit-grafana-1  Removed")
    seen = {}

    def for_settings(self, metrics=None):
        seen["metrics"] = metrics
        return compose

    monkeypatch.setattr(Deployment, "compose", for_settings)
    outcome = metrics.metrics(ctx)
    assert seen == {"metrics": True}  # the metrics file is named, though metrics are off
    assert compose.calls == [("rm", "--stop", "--force", *metrics.METRICS_SERVICES)]
    assert outcome.changed is True
    assert outcome.detail.startswith("removed 1 metrics containers")


def test_metrics_off_and_nothing_left_does_nothing(tmp_path):
    ctx, compose, _ = metrics_ctx(tmp_path, containers=[running("web")], metrics_on="false")
    outcome = metrics.metrics(ctx)
    assert compose.calls == [] and outcome.changed is False


def test_the_start_step_leaves_the_metrics_services_to_their_step(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, _ = metrics_ctx(tmp_path)  # no container at all yet
    start.start(ctx)
    (call,) = up_calls(compose)
    assert set(call) & set(metrics.METRICS_SERVICES) == set()
    assert {"postgres", "valkey", "web", "worker"} <= set(call)


# --- preflight ---


def test_preflight_checks_the_metrics_ports_only_with_metrics_on(tmp_path):
    from provision.stack.preflight import preflight

    checked = []

    def is_free(host, port):
        checked.append(port)
        return port != 3000

    ctx, _, _ = metrics_ctx(tmp_path, metrics_on="false")
    preflight(ctx, compose_version=lambda: (2, 40, 3), disk_free=lambda info: 50 << 30,
              is_free=is_free)  # fmt: skip
    assert checked == [18000]
    checked.clear()
    ctx, _, _ = metrics_ctx(tmp_path, metrics_on="true")
    with pytest.raises(KitError) as caught:
        preflight(ctx, compose_version=lambda: (2, 40, 3), disk_free=lambda info: 50 << 30,
                  is_free=is_free)  # fmt: skip
    assert checked == [18000, 9090, 3000]
    assert "port 127.0.0.1:3000 is in use by another program" in caught.value.line()
    assert "grafana_port in glitchtip.yaml or GLITCHTIP_KIT_GRAFANA_PORT" in caught.value.line()


# --- status ---

TARGETS_ANSWER = {
    "status": "success",
    "data": {
        "activeTargets": [
            {"labels": {"job": "valkey", "instance": "valkey-exporter:9121"}, "health": "up",
             "lastError": "", "scrapePool": "valkey", "scrapeUrl": "http://valkey-exporter:9121/metrics"},
            {"labels": {"job": "glitchtip", "instance": "web:8000"}, "health": "down",
             "lastError": "server returned HTTP status 400 Bad Request", "scrapePool": "glitchtip"},
        ],
        "droppedTargets": [],
    },
}  # fmt: skip


def test_parse_targets_reads_prometheus_answer():
    assert parse_targets(TARGETS_ANSWER) == [
        {"job": "glitchtip", "instance": "web:8000", "health": "down",
         "last_error": "server returned HTTP status 400 Bad Request"},
        {"job": "valkey", "instance": "valkey-exporter:9121", "health": "up", "last_error": ""},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((200, {"status": "error", "error": "x"}), "not a successful Prometheus API answer"),
        ((200, {"status": "success", "data": {}}), "no activeTargets in the answer"),
        ((200, None), "not a successful Prometheus API answer"),
        ((503, None), "HTTP 503"),
    ],
)
def test_prometheus_targets_reports_why_it_cannot_tell(answer, error):
    result = prometheus_targets("http://127.0.0.1:9090", get=lambda url: answer)
    assert result == {
        "url": "http://127.0.0.1:9090/api/v1/targets?state=active",
        "targets": [],
        "error": error,
    }


def test_prometheus_targets_without_an_answer():
    def refuse(url):
        raise OSError("ConnectError")

    assert prometheus_targets("http://127.0.0.1:9", get=refuse)["error"] == (
        "no answer (ConnectError)"
    )


def status_of(tmp_path, answer, metrics_on="true"):
    ctx, _, engine = metrics_ctx(
        tmp_path,
        containers=[running("web"), metrics_container("prometheus")],
        metrics_on=metrics_on,
    )
    asked = []

    def read_targets(url):
        asked.append(url)
        return prometheus_targets(url, get=lambda full: answer)

    status = collect_status(
        ctx.load_settings(),
        engine,
        prober=lambda url: {"url": url, "ok": True, "status": 200, "ms": 1},
        read_targets=read_targets,
    )
    return status, asked


def test_status_shows_target_health_and_is_not_up_while_one_is_down(tmp_path):
    status, asked = status_of(tmp_path, (200, TARGETS_ANSWER))
    assert asked == ["http://127.0.0.1:9090"]
    assert status["up"] is False  # glitchtip's target is down
    assert status["metrics"]["services"] == ["prometheus"]
    assert status["metrics"]["all_targets_up"] is False
    lines = status_lines(status)
    assert any(
        re.fullmatch(r"  target glitchtip +down +web:8000  server returned HTTP status 400.*", line)
        for line in lines
    ), lines


def test_status_is_up_when_every_target_is_up(tmp_path):
    answer = {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": job, "instance": f"{job}:1"}, "health": "up", "lastError": ""}
        for job in ("prometheus", "glitchtip", "project-exporter", "postgres", "valkey")
    ]}}  # fmt: skip
    status, _ = status_of(tmp_path, (200, answer))
    assert status["up"] is True
    assert [t["job"] for t in status["metrics"]["targets"]] == sorted(
        ["prometheus", "glitchtip", "project-exporter", "postgres", "valkey"]
    )


def test_status_without_prometheus_answer_says_so(tmp_path):
    status, _ = status_of(tmp_path, (503, None))
    assert status["up"] is False
    assert "  Prometheus targets: cannot tell (HTTP 503)" in status_lines(status)


def test_status_with_metrics_off_asks_no_prometheus(tmp_path):
    status, asked = status_of(tmp_path, (200, TARGETS_ANSWER), metrics_on="false")
    assert asked == [] and status["metrics"] is None and status["up"] is True


# --- down --only-metrics ---


def rendered_deployment(tmp_path, yaml_text="compose_project_name: gtkit\nmetrics: true\n"):
    from provision.settings import load_settings

    (tmp_path / "glitchtip.yaml").write_text(yaml_text)
    write_rendered(load_settings(tmp_path, environ={}))


def test_down_only_metrics_removes_them_and_records_metrics_off(tmp_path, monkeypatch):
    from provision.runtime import engine as engine_module

    rendered_deployment(tmp_path, "compose_project_name: gtkit\n")
    update_env_file(tmp_path / ".env", {"GLITCHTIP_KIT_METRICS": "true"})  # up --metrics did it
    env = read_env_file(tmp_path / ".env")
    update_env_file(tmp_path / ".env", {"COMPOSE_FILE": "compose.yml:compose.metrics.yml"})
    compose = FakeCompose(script={"rm": ok(" Container gtkit-prometheus-1  Removed")})
    monkeypatch.setattr(Deployment, "compose", lambda self, metrics=None: compose)
    engine = FakeEngine()
    removed_volumes = []
    engine.remove_volume = lambda name: removed_volumes.append(name) or True
    monkeypatch.setattr(engine_module, "Engine", lambda: engine)
    result = run(tmp_path, "down", "--only-metrics")
    assert result.exit_code == 0, result.output
    assert compose.calls == [("rm", "--stop", "--force", *metrics.METRICS_SERVICES)]
    after = read_env_file(tmp_path / ".env")
    assert after["GLITCHTIP_KIT_METRICS"] == "false"
    assert after["COMPOSE_FILE"] == "compose.yml"
    assert after["SECRET_KEY"] == env["SECRET_KEY"]
    assert removed_volumes == []  # kept unless asked
    assert "metrics recorded off" in result.output
    result = run(tmp_path, "down", "--only-metrics", "--volumes", "--yes")
    assert result.exit_code == 0, result.output
    assert removed_volumes == ["gtkit_prometheus-data", "gtkit_grafana-data"]


def test_down_only_metrics_refuses_when_glitchtip_yaml_turns_them_on(tmp_path, monkeypatch):
    rendered_deployment(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    compose = FakeCompose()
    monkeypatch.setattr(Deployment, "compose", lambda self, metrics=None: compose)
    line = one_line_error(run(tmp_path, "down", "--only-metrics"))
    assert line == (
        "error: glitchtip.yaml sets metrics: true, so the next `up` would start the metrics "
        "services again: set metrics: false there (or remove it), then run `make metrics-stop` "
        "again"
    )
    assert compose.calls == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_down_includes_the_metrics_file_when_metrics_are_recorded_on(tmp_path):
    from provision.deployment import load_settings

    rendered_deployment(tmp_path, "compose_project_name: gtkit\n")
    update_env_file(tmp_path / ".env", {"GLITCHTIP_KIT_METRICS": "true"})
    compose = Deployment(load_settings(tmp_path), ["compose"]).compose()
    assert compose.files == ("compose.yml", "compose.metrics.yml")
    update_env_file(tmp_path / ".env", {"GLITCHTIP_KIT_METRICS": "false"})
    compose = Deployment(load_settings(tmp_path), ["compose"]).compose()
    assert compose.files == ("compose.yml",)


# --- the CLI and make ---


def test_up_metrics_flag_sets_the_setting_and_the_resume_command(tmp_path, monkeypatch):
    from provision.stack import up as up_module
    from provision.steps import RunReport

    seen = []

    def fake_run_up(ctx, progress=None):
        seen.append((dict(ctx.overrides), ctx.resume_command))
        return RunReport()

    monkeypatch.setattr(up_module, "run_up", fake_run_up)
    assert run(tmp_path, "up", "--metrics", "--quiet").exit_code == 0
    assert run(tmp_path, "up", "--no-metrics", "--quiet").exit_code == 0
    assert run(tmp_path, "up", "--quiet").exit_code == 0
    assert [overrides.get("metrics") for overrides, _ in seen] == [True, False, None]
    assert seen[0][1].split()[-1] == "--metrics" and seen[1][1].split()[-1] == "--no-metrics"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("metrics-start", "provision up --metrics"),
        ("metrics-stop", "provision down --only-metrics"),
    ],
)
def test_make_metrics_targets_run_the_cli(target, command):
    # --no-print-directory: under `make test` (CI) this make is nested and would otherwise
    # print "Entering directory" around the command.
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f".venv/bin/{command}"


def test_stop_metrics_itself_refuses_a_pinned_setting(tmp_path):
    from provision.deployment import load_settings
    from provision.errors import SettingsError
    from provision.stack.down import stop_metrics

    rendered_deployment(tmp_path)
    compose = FakeCompose()
    with pytest.raises(SettingsError):
        stop_metrics(load_settings(tmp_path, environ={}), FakeEngine(), compose)
    assert compose.calls == []
    settings = load_settings(tmp_path, environ={"GLITCHTIP_KIT_METRICS": "true"})
    with pytest.raises(SettingsError) as caught:
        stop_metrics(settings, FakeEngine(), compose)
    assert caught.value.line().startswith("the environment sets GLITCHTIP_KIT_METRICS=true")


def test_a_second_up_with_metrics_changes_nothing(tmp_path, monkeypatch):
    """The real steps over the fake GlitchTip, Compose and engine faked: `up --metrics` starts
    the metrics services after the project step; a second `up` (the choice read back from .env,
    no flag) runs no compose command at all and reports nothing changed."""
    import json

    from click.testing import CliRunner
    from fakeglitchtip import create_superuser, start_fake

    from provision.cli import cli
    from provision.runtime import engine as engine_module

    glitchtip = start_fake()
    try:
        port = glitchtip.url.rsplit(":", 1)[1]
        (tmp_path / "glitchtip.yaml").write_text(
            f"http_port: {port}\ncompose_project_name: gtkit\n"
        )
        compose = FakeCompose(services=ALL_SERVICES, hashes=ALL_HASHES)
        engine = FakeEngine()
        # Each port held by this deployment's own container: preflight probes no host port.
        owners = {int(port): "web", 9090: "prometheus", 3000: "grafana"}
        engine.port_publishers = lambda number: (
            [metrics_container(owners[number])] if (owners[number] != "web") else [running("web")]
        )
        engine.image_ids = dict(ALL_IMAGE_IDS)
        engine.containers_list = [running(name) for name in STACK_SERVICES]
        monkeypatch.setattr(engine_module, "Engine", lambda: engine)
        monkeypatch.setattr(Deployment, "compose", lambda self, metrics=None: compose)
        runner = CliRunner()
        assert runner.invoke(cli, ["render", "--dir", str(tmp_path)]).exit_code == 0
        password = read_env_file(tmp_path / ".env")["DJANGO_SUPERUSER_PASSWORD"]
        create_superuser(glitchtip.store, "admin@example.com", password)
        first = runner.invoke(cli, ["up", "--metrics", "--json", "--dir", str(tmp_path)])
        assert first.exit_code == 0, first.output
        steps = {s["name"]: s for s in json.loads(first.stdout)["steps"]}
        assert steps["metrics"]["changed"] is True
        assert up_calls(compose) == [
            ("up", "--detach", "--wait", "--wait-timeout", "300", "--pull", "never", "--no-deps",
             *metrics.METRICS_SERVICES)
        ]  # fmt: skip
        assert read_env_file(tmp_path / ".env")["GLITCHTIP_KIT_METRICS"] == "true"
        # What that `up` left running:
        engine.containers_list += [metrics_container(name) for name in METRICS_SPECS]
        compose.calls.clear()
        again = runner.invoke(cli, ["up", "--json", "--dir", str(tmp_path)])
        assert again.exit_code == 0, again.output
        document = json.loads(again.stdout)
    finally:
        glitchtip.stop()
    assert document["changed"] is False
    steps = {s["name"]: s for s in document["steps"]}
    assert steps["metrics"]["detail"].startswith("all 5 metrics services already up")
    assert compose.calls == []
    assert document["result"]["metrics"]["grafana"] == "http://127.0.0.1:3000"
    token = read_env_file(tmp_path / ".env")["GLITCHTIP_API_TOKEN"]
    assert token not in first.output + again.output
