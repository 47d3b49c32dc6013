"""Each step of `provision up` against fake Compose and engine: no Docker needed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from provision.errors import KitError
from provision.settings import load_settings
from provision.stack import admin, migrate, partman, preflight, pull, start, status, wrap_up
from provision.stack.compose import ComposeResult
from provision.stack.context import StackContext
from provision.stack.engine import ContainerState

PASSWORD = "Adm1n-pa55word-generated-once"


def ok(text: str = "", code: int = 0) -> ComposeResult:
    return ComposeResult(("compose",), code, text, "")


class FakeCompose:
    """Records compose calls; answers from `script` (subcommand -> result or list of results)."""

    def __init__(self, script=None, rows=None, services=None):
        self.script = dict(script or {})
        self.rows = list(rows or [])
        self.service_map = dict(services or {})
        self.calls: list[tuple[str, ...]] = []
        self.envs: list[dict | None] = []

    def run(self, *args, env=None, timeout=None):
        self.calls.append(args)
        self.envs.append(dict(env) if env else None)
        answer = self.script.get(args[0], ok())
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return answer(args) if callable(answer) else answer

    def stream(self, *args, on_line, env=None, timeout=None):
        result = self.run(*args, env=env, timeout=timeout)
        for line in result.output.splitlines():
            on_line(line)
        return result

    def services(self):
        return self.service_map

    def ps(self, *services):
        return [r for r in self.rows if not services or r.get("Service") in services]


class FakeEngine:
    def __init__(self, version="20.10.24+dfsg1", cpus=2, memory=8 << 30, present=(), publishers=()):
        self._version = version
        self._info = {"NCPU": cpus, "MemTotal": memory, "DockerRootDir": "/nowhere"}
        self.present = set(present)
        self.publishers = list(publishers)
        self.containers_list: list[ContainerState] = []

    def version(self):
        return {"Version": self._version, "ApiVersion": "1.41"}

    def info(self):
        return dict(self._info)

    def image_present(self, reference):
        return reference in self.present

    def port_publishers(self, port):
        return list(self.publishers)

    def containers(self, project=None):
        return list(self.containers_list)


def make_ctx(tmp_path: Path, compose=None, engine=None, **overrides) -> StackContext:
    values = {"http_port": "18000", "compose_project_name": "gtkit", **overrides}
    ctx = StackContext(
        tmp_path,
        overrides=values,
        environ={},
        compose_factory=lambda settings: compose,
        engine_factory=lambda: engine,
    )
    ctx.load_settings()
    return ctx


def container(service, project="gtkit", name=None):
    return ContainerState(
        name=name or f"{project}-{service}-1",
        service=service,
        project=project,
        state="running",
        health=None,
        exit_code=None,
        image="img:1",
    )


# --- preflight ---


def run_preflight(ctx, disk=50 << 30, free=True, compose_version=(2, 40, 3)):
    return preflight.preflight(
        ctx,
        compose_version=lambda: compose_version,
        disk_free=lambda info: disk,
        is_free=lambda host, port: free,
    )


def test_preflight_passes_and_changes_nothing(tmp_path):
    ctx = make_ctx(tmp_path, engine=FakeEngine())
    before = sorted(tmp_path.iterdir())
    outcome = run_preflight(ctx)
    assert sorted(tmp_path.iterdir()) == before == []
    assert outcome.changed is False
    assert "engine 20.10.24" in outcome.detail and "compose 2.40.3" in outcome.detail
    assert "port 127.0.0.1:18000 free" in outcome.detail


def test_preflight_reports_every_problem_at_once(tmp_path):
    engine = FakeEngine(version="19.03.5", memory=512 << 20)
    ctx = make_ctx(tmp_path, engine=engine)
    with pytest.raises(KitError) as caught:
        run_preflight(ctx, disk=1 << 30, free=False)
    text = caught.value.line()
    assert "Docker Engine 19.03.5 is older than 20.10" in text
    assert "0.5 GiB RAM (GlitchTip needs at least 1 GiB)" in text
    assert "1.0 GiB free for Docker" in text
    assert "port 127.0.0.1:18000 is in use by another program" in text
    assert "\n" not in text


def test_preflight_accepts_the_port_of_our_own_web_container(tmp_path):
    engine = FakeEngine(publishers=[container("web")])
    ctx = make_ctx(tmp_path, engine=engine)
    outcome = run_preflight(ctx, free=False)
    assert "already ours (gtkit-web-1)" in outcome.detail


def test_preflight_refuses_a_port_published_by_another_container(tmp_path):
    engine = FakeEngine(publishers=[container("web", project="other")])
    ctx = make_ctx(tmp_path, engine=engine)
    with pytest.raises(KitError, match="published by container other-web-1"):
        run_preflight(ctx)


def test_preflight_refuses_an_old_compose(tmp_path):
    def too_old():
        raise KitError("no Compose v2 (>= 2.20) found", "install it")

    ctx = make_ctx(tmp_path, engine=FakeEngine())
    with pytest.raises(KitError, match="no Compose v2"):
        preflight.preflight(
            ctx, compose_version=too_old, disk_free=lambda i: None, is_free=lambda h, p: True
        )


def test_preflight_refuses_invalid_settings(tmp_path):
    ctx = StackContext(tmp_path, overrides={"http_port": "0"}, environ={})
    with pytest.raises(KitError, match="http_port"):
        run_preflight(ctx)


def test_port_probe_sees_a_listening_socket():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert preflight.port_is_free("127.0.0.1", port) is False
    assert preflight.port_is_free("127.0.0.1", port) is True


# --- pull ---

SERVICES = {
    "postgres": {"image": "pg:17"},
    "valkey": {"image": "vk:8"},
    "migrate": {"image": "gt:6.2.6"},
    "web": {"image": "gt:6.2.6"},
}


def test_pull_skips_images_present_locally(tmp_path):
    compose = FakeCompose(services=SERVICES)
    engine = FakeEngine(present={"pg:17", "vk:8", "gt:6.2.6"})
    outcome = pull.pull(make_ctx(tmp_path, compose, engine))
    assert outcome.detail == "all 3 images present locally" and outcome.changed is False
    assert compose.calls == []


def test_pull_fetches_only_missing_images_once_each(tmp_path):
    compose = FakeCompose(services=SERVICES, script={"pull": ok("gt Pulled")})
    engine = FakeEngine(present={"pg:17"})
    notes: list[str] = []
    ctx = make_ctx(tmp_path, compose, engine)
    ctx.note = notes.append
    outcome = pull.pull(ctx)
    assert compose.calls == [("pull", "valkey"), ("pull", "migrate")]
    assert outcome.changed is True
    assert "pulling gt:6.2.6" in notes


def test_pull_failure_names_the_image_and_how_to_supply_it(tmp_path):
    services = {"web": {"image": "glitchtip/glitchtip:6.2.6"}}
    failure = ok("Error response from daemon: Get https://registry-1.docker.io: timeout", 1)
    compose = FakeCompose(services=services, script={"pull": failure})
    ctx = make_ctx(tmp_path, compose, FakeEngine(), glitchtip_image="glitchtip/glitchtip:6.2.6")
    with pytest.raises(KitError) as caught:
        pull.pull(ctx)
    text = caught.value.line()
    assert "cannot pull image glitchtip/glitchtip:6.2.6" in text
    assert "GLITCHTIP_KIT_GLITCHTIP_IMAGE" in text
    assert "docker load -i FILE" in text


def test_pull_never_refuses_a_missing_image_without_the_network(tmp_path):
    compose = FakeCompose(services=SERVICES)
    ctx = make_ctx(tmp_path, compose, FakeEngine(present={"pg:17", "gt:6.2.6"}))
    ctx.pull_policy = "never"
    with pytest.raises(KitError, match="image vk:8 is not present locally"):
        pull.pull(ctx)
    assert compose.calls == []


# --- start ---

RUNNING = [
    {"Name": "gtkit-postgres-1", "Service": "postgres", "State": "running", "Health": "healthy",
     "ID": "a1"},
    {"Name": "gtkit-migrate-1", "Service": "migrate", "State": "exited", "ExitCode": 0,
     "ID": "b2"},
    {"Name": "gtkit-web-1", "Service": "web", "State": "running", "Health": "healthy", "ID": "c3"},
]  # fmt: skip


def test_start_runs_up_wait_without_pulling(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    compose = FakeCompose(rows=RUNNING)
    outcome = start.start(make_ctx(tmp_path, compose, FakeEngine()))
    up = compose.calls[0]
    assert up[:2] == ("up", "--detach")
    assert "--wait" in up and up[up.index("--pull") + 1] == "never"
    assert outcome.changed is False  # same containers before and after
    assert "were already up" in outcome.detail


def test_start_failure_names_the_unhealthy_service_and_its_log(tmp_path):
    rows = [
        {"Service": "migrate", "State": "exited", "ExitCode": 3, "Name": "m"},
        {"Service": "web", "State": "created", "Name": "w"},
    ]
    logs = ok("Running migrations\npsycopg.OperationalError: connection refused")
    compose = FakeCompose(
        rows=rows,
        script={"up": ok('service "migrate" didn\'t complete successfully: exit 3', 1),
                "logs": logs},
    )  # fmt: skip
    with pytest.raises(KitError) as caught:
        start.start(make_ctx(tmp_path, compose, FakeEngine()))
    text = caught.value.line()
    assert "migrate exited 3" in text and "also: web created" in text
    assert "OperationalError: connection refused" in text


def test_wait_http_is_bounded():
    clock = iter([0.0, 1.0, 2.0, 99.0, 100.0])
    with pytest.raises(KitError, match="did not answer 200 within 3 s"):
        start.wait_http(
            "http://127.0.0.1:1/api/settings/",
            timeout=3,
            get=lambda url: 502,
            sleep=lambda s: None,
            clock=lambda: next(clock),
        )


# --- migrate ---


def test_migrate_step_accepts_exit_0_and_reports_a_failure_with_its_log(tmp_path):
    good = FakeCompose(rows=RUNNING)
    assert migrate.check_migrate(make_ctx(tmp_path, good, FakeEngine())).detail == (
        "migrate exited 0"
    )
    bad = FakeCompose(
        rows=[{"Service": "migrate", "State": "exited", "ExitCode": 1}],
        script={"logs": ok("django.db.utils.ProgrammingError: relation missing")},
    )
    with pytest.raises(KitError, match=r"migrate exited 1; its log ends: django\.db\.utils"):
        migrate.check_migrate(make_ctx(tmp_path, bad, FakeEngine()))


# --- partman ---


def test_partman_output_with_an_error_fails_even_on_exit_0():
    output = "Creating partitions\nAn error occurred during table configuration\n"
    with pytest.raises(KitError, match="An error occurred during table configuration"):
        partman.judge(0, output)
    assert partman.judge(0, "Advanced partitions set up\n") == "Advanced partitions set up"
    with pytest.raises(KitError, match="exit 2"):
        partman.judge(2, "")


def test_partman_step_applies_only_to_glitchtip_5_with_partitioning(tmp_path):
    assert not partman.applies(make_ctx(tmp_path / "a", engine=FakeEngine()))
    ctx = make_ctx(tmp_path / "b", engine=FakeEngine(), glitchtip_major="5",
                   advanced_partitioning="true")  # fmt: skip
    assert partman.applies(ctx)


PARTMAN_5 = {"glitchtip_major": "5", "advanced_partitioning": "true"}


def test_partman_step_runs_the_setup_and_judges_its_log(tmp_path):
    rows = [{"Service": "partman-setup", "State": "exited", "ExitCode": 0}]
    compose = FakeCompose(
        rows=rows,
        services={"web": {}, "partman-setup": {}},
        script={"logs": ok("An error occurred during table configuration: create_parent")},
    )
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    with pytest.raises(KitError, match="create_parent"):
        partman.check_partman(ctx, sleep=lambda s: None)
    assert ("up", "--detach", "--no-deps", "partman-setup") in compose.calls


def test_partman_step_does_not_rerun_a_clean_setup(tmp_path):
    rows = [{"Service": "partman-setup", "State": "exited", "ExitCode": 0}]
    compose = FakeCompose(
        rows=rows,
        services={"partman-setup": {}},
        script={"logs": ok("Configured pg_partman for public.x.")},
    )
    outcome = partman.check_partman(make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5))
    assert outcome.changed is False and "already set up" in outcome.detail
    assert all(call[0] != "up" for call in compose.calls)


def test_partman_step_waits_for_the_setup_bounded(tmp_path):
    rows = [{"Service": "partman-setup", "State": "running"}]
    compose = FakeCompose(rows=rows, services={"partman-setup": {}})
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    with pytest.raises(KitError, match="did not finish within 0 s"):
        partman.check_partman(ctx, timeout=0, sleep=lambda s: None)


def test_start_leaves_the_partman_one_shot_to_its_own_step(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    services = {"postgres": {}, "migrate": {}, "web": {}, "partman-setup": {}}
    compose = FakeCompose(rows=RUNNING, services=services)
    start.start(make_ctx(tmp_path, compose, FakeEngine()))
    assert compose.calls[0][-3:] == ("postgres", "migrate", "web")


# --- admin ---


def write_env(directory: Path, **values):
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    (directory / ".env").write_text(text)
    (directory / ".env").chmod(0o600)


def test_admin_is_created_with_the_password_in_the_environment_only(tmp_path):
    write_env(tmp_path, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    compose = FakeCompose(script={"exec": ok("Superuser created successfully.")})
    outcome = admin.create_admin(make_ctx(tmp_path, compose, FakeEngine()))
    args = compose.calls[0]
    assert PASSWORD not in " ".join(args)
    assert "DJANGO_SUPERUSER_PASSWORD" in args and "createsuperuser" in args
    assert compose.envs[0]["DJANGO_SUPERUSER_PASSWORD"] == PASSWORD
    assert outcome.changed is True
    assert (
        PASSWORD not in outcome.detail and ".env, key DJANGO_SUPERUSER_PASSWORD" in outcome.detail
    )
    assert "DJANGO_SUPERUSER_EMAIL=admin@example.com" in (tmp_path / ".env").read_text()


def test_admin_already_taken_means_done(tmp_path):
    write_env(tmp_path, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    taken = ok("CommandError: Error: That email is already taken.", 1)
    compose = FakeCompose(script={"exec": taken})
    outcome = admin.create_admin(make_ctx(tmp_path, compose, FakeEngine()))
    assert outcome.changed is False and "already exists" in outcome.detail


def test_admin_other_failures_are_errors(tmp_path):
    write_env(tmp_path, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    compose = FakeCompose(script={"exec": ok('service "web" is not running', 1)})
    with pytest.raises(KitError, match="createsuperuser exited 1"):
        admin.create_admin(make_ctx(tmp_path, compose, FakeEngine()))


def test_admin_without_a_password_in_env_says_how_to_get_one(tmp_path):
    with pytest.raises(KitError, match="provision render"):
        admin.create_admin(make_ctx(tmp_path, FakeCompose(), FakeEngine()))


# --- wrap-up and status ---


class Result:
    org_slug, team_slug, project_slug = "glitchtip", "glitchtip", "default"
    dsn = "http://0123456789abcdef0123456789abcdef@localhost:18000/1"


def test_wrap_up_shows_where_the_password_is_never_the_password(tmp_path):
    write_env(tmp_path, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    ctx = make_ctx(tmp_path, FakeCompose(), FakeEngine())
    ctx.results["project"] = Result()
    wrap_up.wrap_up(ctx)
    text = "\n".join(wrap_up.summary_lines(ctx.results["summary"]))
    assert PASSWORD not in text
    assert "kept in .env, key DJANGO_SUPERUSER_PASSWORD" in text
    assert Result.dsn in text and "http://localhost:18000" in text
    assert "provision status" in text


def test_status_combines_containers_and_probes(tmp_path):
    engine = FakeEngine()
    engine.containers_list = [container("web"), container("postgres")]
    settings = load_settings(tmp_path, {"http_port": "18000"}, environ={})
    probes = []

    def prober(url):
        probes.append(url)
        return {"url": url, "ok": True, "status": 200, "ms": 3}

    found = status.collect_status(settings, engine, prober)
    assert found["up"] is True
    assert probes == ["http://127.0.0.1:18000/_health/", "http://127.0.0.1:18000/api/settings/"]
    lines = status.status_lines(found)
    assert any("web" in line and "running" in line for line in lines)
    assert lines[-1].endswith("HTTP 200 in 3 ms")


def test_status_of_a_stopped_stack(tmp_path):
    settings = load_settings(tmp_path, {}, environ={})
    found = status.collect_status(settings, FakeEngine(), lambda url: pytest.fail("probed"))
    assert found["up"] is False
    assert "no containers" in status.status_lines(found)[0]


def test_pull_failure_lists_every_other_missing_image(tmp_path):
    failure = ok("Error response from daemon: registry unreachable", 1)
    compose = FakeCompose(services=SERVICES, script={"pull": failure})
    ctx = make_ctx(tmp_path, compose, FakeEngine(present=set()))
    with pytest.raises(KitError) as caught:
        pull.pull(ctx)
    text = caught.value.line()
    first, *rest = list(pull.images_of(SERVICES))
    assert f"cannot pull image {first}" in text
    assert f"also missing locally: {', '.join(rest)}" in text
    assert len(compose.calls) == 1  # stops at the first failure instead of waiting on each
