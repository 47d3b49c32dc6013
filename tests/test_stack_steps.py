"""Each step of `provision up` against fake Compose and engine: no Docker needed."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from provision.envfile import read_env_file
from provision.errors import KitError
from provision.runtime.engine import ContainerState
from provision.runtime.process import ProcessResult
from provision.settings import load_settings
from provision.stack import admin, migrate, partman, preflight, pull, start, status, wrap_up
from provision.stack.context import StackContext

PASSWORD = "Adm1n-pa55word-generated-once"


def ok(text: str = "", code: int = 0) -> ProcessResult:
    return ProcessResult(("compose",), code, text, "")


class FakeCompose:
    """Records compose calls; answers from `script` (subcommand -> result or list of results)."""

    def __init__(self, script=None, rows=None, services=None, hashes=None):
        self.script = dict(script or {})
        self.rows = list(rows or [])
        self.service_map = dict(services or {})
        self.hashes = dict(hashes or {})
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

    def config_hashes(self):
        """`config --hash '*'`: what the current files would label each container with."""
        return dict(self.hashes)

    def ps(self, *services):
        return [r for r in self.rows if not services or r.get("Service") in services]


class FakeEngine:
    def __init__(self, version="20.10.24+dfsg1", cpus=2, memory=8 << 30, present=(), publishers=()):
        self._version = version
        self._info = {"NCPU": cpus, "MemTotal": memory, "DockerRootDir": "/nowhere"}
        self.present = set(present)
        self.publishers = list(publishers)
        self.containers_list: list[ContainerState] = []
        self.image_ids: dict[str, str] = {}
        self.version_calls = 0

    def version(self):
        self.version_calls += 1
        return {"Version": self._version, "ApiVersion": "1.41"}

    def info(self):
        return dict(self._info)

    def image_present(self, reference):
        return reference in self.present or reference in self.image_ids

    def image_id(self, reference):
        return self.image_ids.get(reference)

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


def test_preflight_reads_the_engine_version_from_docker_info(tmp_path):
    engine = FakeEngine()
    engine._info["ServerVersion"] = "27.3.1"
    outcome = run_preflight(make_ctx(tmp_path, engine=engine))
    assert "engine 27.3.1" in outcome.detail
    assert engine.version_calls == 0  # one engine call answers version and resources


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


# --- start: `compose up` only when it would change something ---

GT_ID, GT_NEW_ID, PG_ID, VK_ID = "sha256:gt1", "sha256:gt2", "sha256:pg1", "sha256:vk1"
STACK_SERVICES = {
    "postgres": {"image": "pg:17"},
    "valkey": {"image": "vk:8"},
    "migrate": {"image": "gt:6", "depends_on": {"postgres": {"condition": "service_healthy"}}},
    "web": {"image": "gt:6", "depends_on": {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"}}},
    "worker": {"image": "gt:6", "depends_on": {
        "migrate": {"condition": "service_completed_successfully"}}},
}  # fmt: skip
HASHES = {name: f"hash-{name}" for name in STACK_SERVICES}
IMAGE_IDS = {"pg:17": PG_ID, "vk:8": VK_ID, "gt:6": GT_ID}


def running(service, **changes):
    """The container of `service` exactly as `up` would leave it, with `changes`."""
    image = STACK_SERVICES[service]["image"]
    values = {
        "name": f"gtkit-{service}-1",
        "service": service,
        "project": "gtkit",
        "state": "exited" if service == "migrate" else "running",
        "health": None if service == "migrate" else "healthy",
        "exit_code": 0 if service == "migrate" else None,
        "image": image,
        "image_id": IMAGE_IDS[image],
        "config_hash": HASHES[service],
    }
    values.update(changes)
    return ContainerState(**values)


def current_stack(tmp_path, **changed_containers):
    """A context whose engine shows every service current, but for `changed_containers`."""
    compose = FakeCompose(rows=RUNNING, services=STACK_SERVICES, hashes=HASHES)
    engine = FakeEngine()
    engine.image_ids = dict(IMAGE_IDS)
    engine.containers_list = [
        changed_containers.get(name) or running(name) for name in STACK_SERVICES
    ]
    return make_ctx(tmp_path, compose, engine), compose, engine


def test_start_skips_compose_up_when_the_stack_runs_what_up_would_create(tmp_path, monkeypatch):
    probed = []
    monkeypatch.setattr(start, "wait_http", probed.append)
    ctx, compose, _ = current_stack(tmp_path)
    outcome = start.start(ctx)
    assert compose.calls == []  # no `up`, so no migrate re-run and no restart
    assert outcome.changed is False
    assert "all 5 services already up, healthy and current (compose up skipped)" in outcome.detail
    assert probed == ["http://127.0.0.1:18000/api/settings/"]  # still proven from the host
    assert migrate.check_migrate(ctx).detail == "migrate exited 0 for the current configuration"


@pytest.mark.parametrize(
    ("service", "changes", "reason"),
    [
        ("web", {"config_hash": "hash-old"}, "web: configuration changed"),
        ("worker", {"image_id": GT_NEW_ID}, "worker: image changed"),
        ("migrate", {"image_id": GT_NEW_ID}, "migrate: image changed"),
        ("web", {"health": "unhealthy"}, "web is unhealthy"),
        ("worker", {"health": "starting"}, "worker is starting"),
        ("valkey", {"state": "exited", "exit_code": 137, "health": None}, "valkey is exited"),
        ("migrate", {"exit_code": 1}, "migrate exited 1"),
        ("migrate", {"state": "running", "exit_code": None}, "migrate is running"),
    ],
)
def test_start_runs_compose_up_when_anything_differs(
    tmp_path, monkeypatch, service, changes, reason
):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, _ = current_stack(tmp_path, **{service: running(service, **changes)})
    notes: list[str] = []
    ctx.note = notes.append
    start.start(ctx)
    ups = [call for call in compose.calls if call[0] != "exec"]  # exec: valkey_aof's probe
    assert [call[0] for call in ups] == ["up"]
    assert "--wait" in ups[0]
    assert notes == [f"compose up because {reason}"]
    assert start.CURRENT_KEY not in ctx.results  # the migrate step reads the container itself


def test_a_change_to_web_alone_does_not_run_migrate_again(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, _ = current_stack(tmp_path, web=running("web", config_hash="hash-old"))
    start.start(ctx)
    up = compose.calls[0]
    assert up[up.index("never") + 1 :] == ("--no-deps", "postgres", "valkey", "web", "worker")


@pytest.mark.parametrize(
    "changed",
    [
        {"postgres": running("postgres", config_hash="new-data-path")},  # maybe a new database
        {"migrate": running("migrate", image_id=GT_NEW_ID), "web": running("web", image_id="x")},
        {"migrate": running("migrate", exit_code=1)},
    ],
)
def test_migrate_runs_again_when_it_or_its_database_changed(tmp_path, monkeypatch, changed):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, _ = current_stack(tmp_path, **changed)
    start.start(ctx)
    up = compose.calls[0]
    assert up[-2:] == ("--pull", "never")  # all services with their dependencies: migrate too


def test_start_runs_compose_up_when_the_files_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, _ = current_stack(tmp_path)
    compose.hashes["postgres"] = "hash-after-a-new-password"  # e.g. .env interpolation changed
    start.start(ctx)
    assert [call[0] for call in compose.calls if call[0] != "exec"] == ["up"]


def test_start_runs_compose_up_when_the_image_was_retagged(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, engine = current_stack(tmp_path)
    engine.image_ids["gt:6"] = GT_NEW_ID  # same tag, new image: migrate must run again
    notes: list[str] = []
    ctx.note = notes.append
    start.start(ctx)
    assert [call[0] for call in compose.calls if call[0] != "exec"] == ["up"]
    assert "migrate: image changed" in notes[0] and "web: image changed" in notes[0]


def test_start_runs_compose_up_when_a_container_is_missing_or_doubled(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, engine = current_stack(tmp_path)
    engine.containers_list = [c for c in engine.containers_list if c.service != "worker"]
    engine.containers_list.append(running("web", name="gtkit-web-2"))
    notes: list[str] = []
    ctx.note = notes.append
    start.start(ctx)
    assert [call[0] for call in compose.calls if call[0] != "exec"] == ["up"]
    assert notes == ["compose up because web has 2 containers; worker has no container"]


def test_a_first_start_says_it_creates_the_containers(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, engine = current_stack(tmp_path)
    engine.containers_list = []
    notes: list[str] = []
    ctx.note = notes.append
    start.start(ctx)
    assert notes == ["no container yet: compose up creates them"]
    assert compose.calls[0][-2:] == ("--pull", "never")  # every service, migrate included


def test_start_runs_compose_up_when_the_engine_cannot_tell(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    ctx, compose, engine = current_stack(tmp_path)

    def broken(project=None):
        raise KitError("the Docker engine refused a request (500)", "see its logs")

    engine.containers = broken
    notes: list[str] = []
    ctx.note = notes.append
    start.start(ctx)
    assert [call[0] for call in compose.calls if call[0] != "exec"] == ["up"]
    assert "cannot compare with the running stack" in notes[0]


def test_drift_leaves_run_later_one_shots_to_their_own_step():
    from provision.stack.drift import drift, one_shots

    services = {**STACK_SERVICES, "partman-setup": {"image": "gt:6"}}
    containers = [running(name) for name in STACK_SERVICES]
    assert one_shots(services) == {"migrate"}
    assert drift(services, HASHES, IMAGE_IDS, containers, ignore=start.RUN_LATER) == []
    assert drift(services, HASHES, IMAGE_IDS, containers) == ["partman-setup has no container"]


def test_drift_ignores_containers_of_compose_run():
    from provision.stack.drift import drift

    containers = [running(name) for name in STACK_SERVICES]
    leftover = running("migrate", name="gtkit-migrate-run-1a2b", oneoff=True, exit_code=1)
    assert drift(STACK_SERVICES, HASHES, IMAGE_IDS, [*containers, leftover]) == []
    second = dataclasses.replace(leftover, oneoff=False)  # the same, made by `up`: counted
    assert drift(STACK_SERVICES, HASHES, IMAGE_IDS, [*containers, second]) == [
        "migrate has 2 containers"
    ]


def test_drift_counts_a_missing_image_as_a_change():
    from provision.stack.drift import drift

    containers = [running(name) for name in STACK_SERVICES]
    ids = {**IMAGE_IDS, "pg:17": None}
    assert drift(STACK_SERVICES, HASHES, ids, containers) == ["postgres: image changed"]


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


def test_migrate_step_reads_the_rows_start_took_after_up(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    failed = [{"Service": "migrate", "State": "exited", "ExitCode": 2, "Name": "gtkit-migrate-1"}]
    ctx, compose, engine = current_stack(tmp_path)
    engine.containers_list = []
    compose.rows = failed
    start.start(ctx)  # the fake `up` "succeeds"; the rows after it say migrate exited 2
    compose.rows = RUNNING  # a second `ps` would see exit 0: the step must not need one
    with pytest.raises(KitError, match="migrate exited 2"):
        migrate.check_migrate(ctx)


# --- partman ---


DONE = "NOTICE:  partman-config: done, pg_partman 5.2.4 manages 12 of 12 tables"


def test_partman_judges_the_kit_configuration_by_its_exit_and_its_last_line():
    assert partman.judge(0, "NOTICE:  partman-config: configured x\n" + DONE + "\n") == (
        "partman-config: done, pg_partman 5.2.4 manages 12 of 12 tables"
    )
    # psql stopped at an error (ON_ERROR_STOP): its line is the cause.
    refused = "ERROR:  partman-config: pg_partman 4.7.4 is installed, GlitchTip needs 5\n"
    with pytest.raises(KitError, match=r"exit 3\): ERROR:  partman-config: pg_partman 4\.7\.4"):
        partman.judge(3, refused)
    # Exit 0 without the summary (not the kit's SQL, or cut short) is no success either.
    with pytest.raises(KitError, match="exit 0"):
        partman.judge(0, "Advanced partitions set up\n")
    with pytest.raises(KitError, match="exit 0"):
        partman.judge(0, "An error occurred during pg_partman table configuration\n" + "")


def test_partman_step_applies_only_to_glitchtip_5_with_partitioning(tmp_path):
    assert not partman.applies(make_ctx(tmp_path / "a", engine=FakeEngine()))
    ctx = make_ctx(tmp_path / "b", engine=FakeEngine(), glitchtip_major="5",
                   advanced_partitioning="true")  # fmt: skip
    assert partman.applies(ctx)


PARTMAN_5 = {"glitchtip_major": "5", "advanced_partitioning": "true"}
PARTMAN_SERVICES = {"web": {}, "partman-setup": {}, "partman-config": {}}
V510_SETUP_LOG = (
    "An error occurred during pg_partman table configuration\n"
    "partman-setup: GlitchTip did not configure pg_partman; partman-config will\n"
)


def partman_logs(setup: str, config: str):
    return lambda args: ok(setup if args[-1] == "partman-setup" else config)


def exited(code: int = 0):
    return [
        {"Service": "partman-setup", "State": "exited", "ExitCode": 0},
        {"Service": "partman-config", "State": "exited", "ExitCode": code},
    ]


def test_partman_step_on_v510_lets_the_kit_configure_after_glitchtips_failed_command(tmp_path):
    """v5.1.0's setup_advanced_partitions fails (exit 0): the step does not stop there, runs
    partman-config and succeeds on its summary."""
    compose = FakeCompose(
        rows=[], services=PARTMAN_SERVICES, script={"logs": partman_logs(V510_SETUP_LOG, DONE)}
    )
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    calls = iter([[], exited(), exited()])
    compose.ps = lambda *services: [r for r in next(calls) if r["Service"] in services]
    outcome = partman.check_partman(ctx, sleep=lambda s: None)
    assert outcome.changed and "12 of 12 tables" in outcome.detail
    ups = [call for call in compose.calls if call[0] == "up"]
    assert ups == [
        ("up", "--detach", "--no-deps", "partman-setup"),
        ("up", "--detach", "--no-deps", "partman-config"),
    ]


def test_partman_step_fails_with_the_configuration_error(tmp_path):
    compose = FakeCompose(
        rows=exited(3),
        services=PARTMAN_SERVICES,
        script={
            "logs": partman_logs("ok", "ERROR:  function partman.create_parent does not exist")
        },
    )
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    with pytest.raises(KitError, match=r"exit 3.*create_parent does not exist"):
        partman.check_partman(ctx, sleep=lambda s: None)


def test_partman_step_stops_when_glitchtips_command_crashed(tmp_path):
    rows = [{"Service": "partman-setup", "State": "exited", "ExitCode": 1}]
    compose = FakeCompose(
        rows=rows, services=PARTMAN_SERVICES, script={"logs": ok("Traceback: no database")}
    )
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    with pytest.raises(KitError, match=r"setup_advanced_partitions failed \(exit 1\)"):
        partman.check_partman(ctx, sleep=lambda s: None)
    assert ("up", "--detach", "--no-deps", "partman-config") not in compose.calls


def test_partman_step_does_not_rerun_a_clean_setup(tmp_path):
    compose = FakeCompose(rows=exited(0), services=PARTMAN_SERVICES, script={"logs": ok(DONE)})
    outcome = partman.check_partman(make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5))
    assert outcome.changed is False and "already set up" in outcome.detail
    assert all(call[0] != "up" for call in compose.calls)


def test_partman_step_waits_for_the_setup_bounded(tmp_path):
    rows = [{"Service": "partman-setup", "State": "running"}]
    compose = FakeCompose(rows=rows, services=PARTMAN_SERVICES)
    ctx = make_ctx(tmp_path, compose, FakeEngine(), **PARTMAN_5)
    with pytest.raises(KitError, match="did not finish within"):
        partman.check_partman(ctx, timeout=0, sleep=lambda s: None)


def test_start_leaves_the_partman_one_shot_to_its_own_step(tmp_path, monkeypatch):
    monkeypatch.setattr(start, "wait_http", lambda url: 1)
    services = {"postgres": {}, "migrate": {}, "web": {}, "partman-setup": {}, "partman-config": {}}
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


# --- admin: createsuperuser (a Django boot) only when GlitchTip cannot show the admin exists ---


@pytest.fixture
def glitchtip():
    from fakeglitchtip import start_fake

    handle = start_fake()
    yield handle
    handle.stop()


def admin_ctx(tmp_path, glitchtip, compose, **env):
    write_env(tmp_path, DJANGO_SUPERUSER_PASSWORD=PASSWORD, **env)
    port = str(glitchtip.url.rsplit(":", 1)[1]).strip("/")
    return make_ctx(tmp_path, compose, FakeEngine(), http_port=port)


def test_admin_proven_by_the_stored_token_runs_no_createsuperuser(tmp_path, glitchtip):
    from fakeglitchtip import create_api_token, create_superuser

    create_superuser(glitchtip.store, "admin@example.com", PASSWORD)
    token = create_api_token(glitchtip.store, "admin@example.com", ["org:read"])
    compose = FakeCompose()
    outcome = admin.create_admin(admin_ctx(tmp_path, glitchtip, compose, GLITCHTIP_API_TOKEN=token))
    assert compose.calls == []
    assert glitchtip.count("POST") == 0  # no login either: one GET /api/0/
    assert outcome.changed is False
    assert "the API token in .env answers as admin@example.com" in outcome.detail


def test_admin_proven_by_a_login_keeps_the_minted_token(tmp_path, glitchtip):
    from fakeglitchtip import create_superuser

    create_superuser(glitchtip.store, "admin@example.com", PASSWORD)  # INITIAL_USER in migrate
    compose = FakeCompose()
    outcome = admin.create_admin(admin_ctx(tmp_path, glitchtip, compose))
    assert compose.calls == []
    token = read_env_file(tmp_path / ".env").get("GLITCHTIP_API_TOKEN")
    assert token and token not in outcome.detail
    assert outcome.changed is True and "logged in as admin@example.com" in outcome.detail


def test_admin_unknown_to_glitchtip_is_created(tmp_path, glitchtip):
    compose = FakeCompose(script={"exec": ok("Superuser created successfully.")})
    outcome = admin.create_admin(admin_ctx(tmp_path, glitchtip, compose))
    assert [call[-3:] for call in compose.calls] == [
        ("./manage.py", "createsuperuser", "--noinput")
    ]
    assert outcome.changed is True and "created admin@example.com" in outcome.detail


def test_a_token_of_another_user_proves_nothing(tmp_path, glitchtip):
    from fakeglitchtip import create_api_token, create_superuser

    create_superuser(glitchtip.store, "someone@example.com", "An0ther-passw0rd-here")
    token = create_api_token(glitchtip.store, "someone@example.com", ["org:read"])
    compose = FakeCompose(script={"exec": ok("Superuser created successfully.")})
    ctx = admin_ctx(tmp_path, glitchtip, compose, GLITCHTIP_API_TOKEN=token)
    admin.create_admin(ctx)
    assert [call[-2] for call in compose.calls] == ["createsuperuser"]


def test_a_login_as_an_ordinary_user_proves_nothing(tmp_path, glitchtip):
    """A user who signed up with the admin's e-mail (the open first sign-up) is not the admin:
    the login works, but GlitchTip says it is no superuser, so createsuperuser still runs and
    that user's token is not kept."""
    from fakeglitchtip.model import add_user

    with glitchtip.store.transaction() as state:
        add_user(state, "admin@example.com", PASSWORD, superuser=False)
    compose = FakeCompose(script={"exec": ok("Superuser created successfully.")})
    admin.create_admin(admin_ctx(tmp_path, glitchtip, compose))
    assert [call[-2] for call in compose.calls] == ["createsuperuser"]
    assert "GLITCHTIP_API_TOKEN" not in read_env_file(tmp_path / ".env")


def test_a_rejected_stored_token_falls_back_to_the_login(tmp_path, glitchtip):
    from fakeglitchtip import create_superuser

    create_superuser(glitchtip.store, "admin@example.com", PASSWORD)
    compose = FakeCompose()
    ctx = admin_ctx(tmp_path, glitchtip, compose, GLITCHTIP_API_TOKEN="f" * 64)
    outcome = admin.create_admin(ctx)
    assert compose.calls == [] and "logged in" in outcome.detail
    assert read_env_file(tmp_path / ".env")["GLITCHTIP_API_TOKEN"] != "f" * 64


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


def test_provision_partman_runs_psql_itself_inside_postgres() -> None:
    """`provision partman` execs psql in the postgres container over its socket: psql with the
    user and database first, the SQL last; not the partman-config service's `sh -c` wrapper,
    whose password file that container does not mount."""
    from provision import partman_sql
    from provision.stack.partman import _psql_in_postgres

    argv = _psql_in_postgres()
    assert argv[:5] == ["psql", "-U", "glitchtip", "-d", "glitchtip"]
    assert argv[-1] == partman_sql.config_sql()
    assert "ON_ERROR_STOP=1" in argv and "sh" not in argv
