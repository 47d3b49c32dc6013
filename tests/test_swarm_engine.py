"""`up --target swarm`'s engine steps, `status` and `down` against a Swarm with state
(tests/swarm_fake.py), which refuses what Swarm refuses: above all `docker secret rm` of a secret
a service still uses. A deploy after a rotated secret removes the old version only."""

from __future__ import annotations

import pytest
import yaml
from cli_run import run
from swarm_fake import FakeSwarm

from provision.envfile import read_env_file, set_env_values
from provision.errors import KitError
from provision.runtime.compose import secret_values
from provision.runtime.docker import DockerCLI
from provision.stack.context import StackContext
from provision.swarm import deploy
from provision.swarm.down import remove_stack
from provision.swarm.render import STACK_FILE
from provision.swarm.status import collect_swarm_status, swarm_status_lines

ENGINE_STEPS = ("preflight", "placement", "render", "secrets", "migrate", "deploy")
OK = {"ok": True, "status": 200, "url": "x", "ms": 1}


def swarm_dir(tmp_path):
    result = run(tmp_path, "render", "--target", "swarm")
    assert result.exit_code == 0, result.output
    return tmp_path


def context(directory, swarm) -> StackContext:
    ctx = StackContext(directory=directory, overrides={}, environ={}, wait_timeout=30)
    secrets = secret_values(read_env_file(directory / ".env"))  # masked in any message
    ctx.results["docker"] = DockerCLI(secrets, runner=swarm)
    return ctx


def up_engine(directory, swarm) -> dict[str, object]:
    """The steps of `up --target swarm` that talk to the engine, in `steps()` order."""
    ctx = context(directory, swarm)
    by_name = {step.name: step for step in deploy.steps()}
    assert [name for name in by_name if name in ENGINE_STEPS] == list(ENGINE_STEPS)
    return {name: by_name[name].action(ctx) for name in ENGINE_STEPS}


def refused_removals(swarm) -> list[tuple[str, ...]]:
    return [args for args in swarm.refused if args[:2] == ("secret", "rm")]


def stack_secret_names(directory) -> set[str]:
    document = yaml.safe_load((directory / STACK_FILE).read_text())
    return {spec["name"] for spec in document["secrets"].values()}


def test_a_first_deploy_creates_the_secrets_runs_the_job_and_removes_nothing(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    outcomes = up_engine(directory, swarm)
    assert "created 5 of 5" in outcomes["secrets"].detail
    assert outcomes["placement"].changed is True  # the single node got the stateful label
    assert swarm.nodes["n1"]["Labels"] == {"glitchtip-kit.stateful": "true"}
    assert outcomes["migrate"].detail == "glitchtip_migrate completed"
    assert outcomes["deploy"].detail == "postgres 1/1, valkey 1/1, web 1/1, worker 1/1"
    assert set(swarm.secrets) == stack_secret_names(directory)
    assert refused_removals(swarm) == []
    env = read_env_file(directory / ".env")
    assert env["SECRET_KEY"] in swarm.values.values()
    assert all(env["SECRET_KEY"] not in " ".join(args) for args, _ in swarm.calls)


def test_a_rotated_secret_replaces_its_old_version_and_nothing_in_use_is_removed(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    first = set(swarm.secrets)
    env_path = directory / ".env"
    env_path.write_text(
        set_env_values(env_path.read_text(), {"DJANGO_SUPERUSER_PASSWORD": "a-new-Passw0rd-456"})
    )
    swarm_dir(directory)  # the stack file names the new version
    outcomes = up_engine(directory, swarm)
    wanted = stack_secret_names(directory)
    assert "created 1 of 5" in outcomes["secrets"].detail
    assert outcomes["deploy"].detail.endswith("; removed 1 old secret version(s)")
    assert set(swarm.secrets) == wanted and len(first - wanted) == 1
    asked = [args[2] for args, _ in swarm.calls if args[:2] == ("secret", "rm")]
    assert asked == sorted(first - wanted)  # never a secret the stack uses (Swarm refuses)
    assert refused_removals(swarm) == []


def test_a_deploy_again_with_nothing_changed_removes_nothing(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    outcomes = up_engine(directory, swarm)
    assert outcomes["secrets"].detail == "all 5 exist" and outcomes["secrets"].changed is False
    assert "removed" not in outcomes["deploy"].detail
    assert not [args for args, _ in swarm.calls if args[:2] == ("secret", "rm")]


def test_a_failed_migrate_job_stops_the_deploy_of_web_and_worker(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    swarm.job_exit = 3
    ctx = context(directory, swarm)
    for name in ENGINE_STEPS[:4]:
        getattr(deploy, name)(ctx)
    with pytest.raises(KitError, match="glitchtip_migrate failed: exit status 3"):
        deploy.migrate(ctx)
    assert "glitchtip_web" not in swarm.services  # the first phase only


def test_preflight_refuses_a_worker_node_and_an_engine_outside_a_swarm(tmp_path):
    directory = swarm_dir(tmp_path)
    with pytest.raises(KitError) as refused:
        deploy.preflight(context(directory, FakeSwarm(manager=False)))
    assert refused.value.message == "this Docker engine is a Swarm worker, not a manager"
    assert refused.value.fix == deploy.MANAGER_FIX
    with pytest.raises(KitError) as refused:
        deploy.preflight(context(directory, FakeSwarm(manager=None)))
    assert refused.value.message == "this Docker engine is not in a Swarm (inactive)"
    assert refused.value.fix == deploy.MANAGER_FIX


def test_placement_needs_one_labelled_node_when_there_are_several(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm(nodes=3)
    with pytest.raises(KitError, match=r"no node carries glitchtip-kit\.stateful=true"):
        deploy.placement(context(directory, swarm))
    swarm.nodes["n2"]["Labels"]["glitchtip-kit.stateful"] = "true"
    outcome = deploy.placement(context(directory, swarm))
    assert outcome.detail == "Postgres and Valkey on host2" and outcome.changed is False
    swarm.nodes["n3"]["Labels"]["glitchtip-kit.stateful"] = "true"
    with pytest.raises(KitError, match=r"2 nodes carry glitchtip-kit\.stateful=true"):
        deploy.placement(context(directory, swarm))


def test_status_up_after_the_deploy_and_not_up_once_a_service_is_gone(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    ctx = context(directory, swarm)
    settings = ctx.load_settings()
    docker = ctx.results["docker"]
    status = collect_swarm_status(settings, docker, prober=lambda url: dict(OK, url=url))
    assert status["up"] is True
    rows = {row["service"]: row for row in status["services"]}
    assert rows["migrate"]["job"] == "complete" and rows["web"]["running"] == 1
    lines = swarm_status_lines(status)
    assert lines[0].startswith("Stack glitchtip (") and lines[0].endswith(": up")
    assert any(line.split()[:2] == ["migrate", "job"] for line in lines)

    failing = collect_swarm_status(
        settings, docker, prober=lambda url: {"ok": False, "url": url, "error": "refused"}
    )
    assert failing["up"] is False
    assert any("refused" in line for line in swarm_status_lines(failing))
    del swarm.services["glitchtip_worker"]
    gone = collect_swarm_status(settings, docker, prober=lambda url: dict(OK, url=url))
    assert gone["up"] is False
    swarm.job_exit = 1
    swarm.services.clear()
    empty = collect_swarm_status(settings, docker, prober=lambda url: dict(OK, url=url))
    assert empty["up"] is False and empty["checks"] == []
    assert "no services: run `provision up --target swarm`" in swarm_status_lines(empty)[1]


def test_down_removes_the_stack_and_its_secrets_and_volumes_only_when_asked(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    swarm.volumes["glitchtip_postgres-data"] = {"com.docker.stack.namespace": "glitchtip"}
    swarm.volumes["other_data"] = {"com.docker.stack.namespace": "other"}
    docker = context(directory, swarm).results["docker"]
    lines = remove_stack(docker, "glitchtip", volumes=False, sleep=lambda s: None)
    assert lines[0] == "stack glitchtip removed" and "volumes kept" in lines[-1]
    assert swarm.services == {} and swarm.secrets == {}
    stack_volumes = set(swarm.volumes) - {"other_data"}
    assert "glitchtip_postgres-data" in stack_volumes
    up_engine(directory, swarm)
    lines = remove_stack(docker, "glitchtip", volumes=True, sleep=lambda s: None)
    assert lines[-1] == (
        f"{len(stack_volumes)} volume(s) removed on this node: {', '.join(sorted(stack_volumes))}"
    )
    assert set(swarm.volumes) == {"other_data"}
    assert not [args for args in swarm.refused if args[:2] == ("volume", "rm")]  # names only
    again = remove_stack(docker, "glitchtip", sleep=lambda s: None)  # nothing left: not an error
    assert again[0] == "stack glitchtip removed"


def test_verify_and_status_judge_the_stack_by_one_rule(tmp_path, monkeypatch):
    """A stack without a service the deployment runs (the worker removed) is not healthy for
    `verify` either: both read `swarm.services.stack_health` (verify once accepted it)."""
    from provision.deployment import Deployment
    from provision.ops import verify

    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    ctx = context(directory, swarm)
    settings = ctx.load_settings()
    docker = ctx.results["docker"]
    monkeypatch.setattr(Deployment, "docker", lambda self: docker)
    assert verify._swarm_services(settings) == "4 services of stack glitchtip converged (4 tasks)"
    # `provision verify` itself takes the stack's road, never the compose containers'
    report = verify.run_verify(ctx, checks=["services"])
    assert [(c.name, c.ok, c.detail) for c in report.checks] == [
        ("services", True, "4 services of stack glitchtip converged (4 tasks)")
    ]
    del swarm.services["glitchtip_worker"]
    with pytest.raises(verify._Failed, match=r"not converged: worker missing"):
        verify._swarm_services(settings)
    status = collect_swarm_status(settings, docker, prober=lambda url: dict(OK, url=url))
    assert status["up"] is False


def test_verify_reads_the_swarm_stacks_services_and_names_what_is_not_converged(
    tmp_path, monkeypatch
):
    """`provision verify --target swarm`'s services check against the stateful fake: every
    service converged and the job complete passes with the counts; a job that failed is
    named; no stack at all says how to deploy it."""
    import functools

    import provision.runtime.docker
    from provision.ops.verify import _Failed, _swarm_services
    from provision.settings import load_settings

    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    monkeypatch.setattr(
        provision.runtime.docker, "DockerCLI", functools.partial(DockerCLI, runner=swarm)
    )
    settings = load_settings(directory)
    with pytest.raises(_Failed, match="no services in stack glitchtip: run `provision up"):
        _swarm_services(settings)
    up_engine(directory, swarm)
    services = [name for name in swarm.services if not name.endswith("_migrate")]
    tasks = sum(swarm.services[name].replicas for name in services)
    assert _swarm_services(settings) == (
        f"{len(services)} services of stack glitchtip converged ({tasks} tasks)"
    )
    swarm.job_exit = 3  # the job's task now reads failed (exit status 3)
    with pytest.raises(_Failed) as failed:
        _swarm_services(settings)
    assert str(failed.value) == (
        "not converged: migrate failed (see `docker service ps glitchtip_web`)"
    )


def test_up_names_its_nine_steps_in_order_with_what_each_does():
    """The header `provision up --target swarm` prints before each step, whole: the step's name
    (what `--json` reports and a failure names) and what it does."""
    from provision.steps import HumanProgress

    lines: list[str] = []
    progress = HumanProgress(lines.append)
    steps = deploy.steps()
    for index, step in enumerate(steps, 1):
        progress.started(index, len(steps), step)
    assert lines == [
        "[1/9] preflight: a Swarm manager, the settings",
        "[2/9] placement: the node for Postgres and Valkey",
        "[3/9] render: stack.swarm.yml and .env (secrets kept)",
        "[4/9] secrets: Swarm secrets from .env (versioned names)",
        "[5/9] migrate: Postgres, Valkey, then the migrate job to completion",
        "[6/9] deploy: docker stack deploy; web and worker converge",
        "[7/9] admin: the first superuser (created by the migrate job)",
        "[8/9] project: API token, organization, team, project, DSN",
        "[9/9] wrap-up: URL, admin, DSN, next commands",
    ]


def test_render_says_what_it_wrote_and_that_it_changed_something(tmp_path):
    """A changed setting rewrites the stack file: the step names it and reports a change
    (`--json`'s "changed"); rendered again, nothing is written and nothing changed."""
    from provision.steps import StepOutcome

    directory = swarm_dir(tmp_path)
    (directory / "glitchtip.yaml").write_text("web_replicas: 3\n")
    swarm = FakeSwarm()
    first = up_engine(directory, swarm)["render"]
    again = up_engine(directory, swarm)["render"]
    assert first == StepOutcome(f"wrote {STACK_FILE}", changed=True)
    assert again == StepOutcome(f"{STACK_FILE} and .env unchanged", changed=False)


def test_status_lines_are_whole_for_each_kind_of_row():
    """`provision status` of a Swarm stack, line by line: a job, a service mid-update, a
    published port, a row without ports (no trailing spaces), a check that answered and one
    that failed."""
    status = {
        "stack": "glitchtip",
        "url": "https://gt.example.com",
        "up": False,
        "services": [
            {"service": "migrate", "job": "complete", "image": "glitchtip/glitchtip:6.2.6",
             "ports": ""},
            {"service": "web", "running": 1, "desired": 2, "update": "updating",
             "image": "glitchtip/glitchtip:6.2.6", "ports": "*:8000->8000/tcp"},
            {"service": "worker", "running": 1, "desired": 1, "update": "completed",
             "image": "glitchtip/glitchtip:6.2.6", "ports": None},
            {"service": "valkey", "running": 0, "desired": 1, "update": None,
             "image": "valkey/valkey:9.0", "ports": ""},
        ],
        "checks": [
            {"url": "http://127.0.0.1:8000/_health/", "status": 200, "ms": 12},
            {"url": "http://127.0.0.1:8000/api/settings/", "error": "connection refused"},
        ],
    }  # fmt: skip
    assert swarm_status_lines(status) == [
        "Stack glitchtip (https://gt.example.com): NOT up",
        "  migrate    job complete                 glitchtip/glitchtip:6.2.6",
        "  web        1/2 running, update updating glitchtip/glitchtip:6.2.6  *:8000->8000/tcp",
        "  worker     1/1 running                  glitchtip/glitchtip:6.2.6",
        "  valkey     0/1 running                  valkey/valkey:9.0",
        "  GET http://127.0.0.1:8000/_health/: 200 in 12 ms",
        "  GET http://127.0.0.1:8000/api/settings/: connection refused",
    ]
    empty = {**status, "services": [], "checks": []}
    assert swarm_status_lines(empty) == [
        "Stack glitchtip (https://gt.example.com): NOT up",
        "  no services: run `provision up --target swarm`",
    ]


def test_a_secret_another_run_created_meanwhile_fails_in_one_line_without_its_value():
    """`docker secret ls` listed the secrets before another `provision up` created one (two
    runs at once): Swarm refuses the create ("already exists"); the step fails in one line with
    the fix, never the value."""
    from provision.swarm.secrets import SwarmSecret, ensure_secrets

    class ListedBefore(FakeSwarm):
        def _secret_ls(self, args, stdin):
            return 0, "", ""  # the listing taken before the other run's create

    swarm = ListedBefore()
    swarm.secrets["glitchtip_secret_key_0123456789ab"] = {}
    docker = DockerCLI(["a-secret-value-never-shown"], runner=swarm)
    secret = SwarmSecret(
        "secret_key", "glitchtip_secret_key_0123456789ab", "a-secret-value-never-shown"
    )
    with pytest.raises(KitError) as failed:
        ensure_secrets(docker, "glitchtip", [secret])
    assert (failed.value.message, failed.value.fix) == (
        "`docker secret create` failed: Error response from daemon: secret "
        "glitchtip_secret_key_0123456789ab already exists",
        "check that this host is a Swarm manager (`docker node ls`)",
    )


def test_placement_says_which_node_holds_the_data_or_how_to_choose_one(tmp_path):
    """Whole outcomes and refusals of the placement step: the single node labelled (a change),
    the labelled one of several (none), none or two labelled among several (the fix)."""
    from provision.steps import StepOutcome

    directory = swarm_dir(tmp_path)
    fix = "label one node: `docker node update --label-add glitchtip-kit.stateful=true <node>`"
    single = FakeSwarm()
    assert deploy.placement(context(directory, single)) == StepOutcome(
        "labelled host1 glitchtip-kit.stateful=true", changed=True
    )
    assert single.nodes["n1"]["Labels"] == {"glitchtip-kit.stateful": "true"}
    assert deploy.placement(context(directory, single)) == StepOutcome(
        "Postgres and Valkey on host1", changed=False
    )
    several = FakeSwarm(nodes=3)
    with pytest.raises(KitError) as none:
        deploy.placement(context(directory, several))
    several.nodes["n1"]["Labels"]["glitchtip-kit.stateful"] = "true"
    several.nodes["n3"]["Labels"]["glitchtip-kit.stateful"] = "true"
    with pytest.raises(KitError) as two:
        deploy.placement(context(directory, several))
    several.nodes["n3"]["Labels"]["glitchtip-kit.stateful"] = "false"
    assert deploy.placement(context(directory, several)) == StepOutcome(
        "Postgres and Valkey on host1", changed=False
    )
    assert [(none.value.message, none.value.fix), (two.value.message, two.value.fix)] == [
        ("no node carries glitchtip-kit.stateful=true, which pins Postgres and Valkey", fix),
        ("2 nodes carry glitchtip-kit.stateful=true (host1, host3)", fix),
    ]
    assert not [args for args, _ in several.calls if args[:2] == ("node", "update")]
