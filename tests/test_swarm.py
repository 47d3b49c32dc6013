"""Docker Swarm without an engine: the stack file, the secrets, `up`'s steps and `scale`.

The `docker` CLI is replaced by `FakeDocker`, a scripted runner that answers like Docker 20.10
(JSON lines from `--format '{{json .}}'`, arrays from `inspect`, the task states Swarm reports)
and records every call, so a test can check what reached a command line and what went on stdin.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from cli_run import one_line_error, run

from provision.envfile import read_env_file
from provision.errors import KitError, UsageError
from provision.runtime.docker import DockerCLI
from provision.settings import load_settings
from provision.stack.context import StackContext
from provision.swarm import deploy
from provision.swarm.render import STACK_FILE
from provision.swarm.scale import parse_counts
from provision.swarm.services import wait_converged, wait_for_job

SECRET_KEYS = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")


def render_swarm(directory: Path, *extra: str):
    result = run(directory, "render", "--target", "swarm", *extra)
    assert result.exit_code == 0, result.output
    return yaml.safe_load((directory / STACK_FILE).read_text())


class FakeDocker:
    """A scripted `docker`: `answers` maps an argv prefix (after "docker") to (rc, out, err)
    or a function of the call; every call is kept in `calls` as (argv, stdin)."""

    def __init__(self, answers: dict[tuple[str, ...], object]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def __call__(self, argv, stdin, env, timeout):
        args = tuple(argv[1:])
        self.calls.append((args, stdin))
        for prefix in sorted(self.answers, key=len, reverse=True):
            if args[: len(prefix)] == prefix:
                answer = self.answers[prefix]
                return answer(args, stdin) if callable(answer) else answer
        raise AssertionError(f"unexpected docker call: {args}")

    def cli(self, secrets=()) -> DockerCLI:
        return DockerCLI(secrets, runner=self)


# --- the stack file ---


def test_stack_file_holds_no_secret_and_names_versioned_secrets(tmp_path):
    stack = render_swarm(tmp_path)
    env = read_env_file(tmp_path / ".env")
    text = (tmp_path / STACK_FILE).read_text()
    for key in SECRET_KEYS:
        assert env[key] and env[key] not in text
    assert env["GLITCHTIP_KIT_TARGET"] == "swarm"  # later commands address the stack
    names = {name: spec["name"] for name, spec in stack["secrets"].items()}
    assert set(names) == {
        "secret_key",
        "database_url",
        "email_url",
        "postgres_password",
        "django_superuser_password",
    }
    assert all(spec["external"] is True for spec in stack["secrets"].values())
    web = stack["services"]["web"]
    assert web["environment"]["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert web["environment"]["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert "SECRET_KEY" not in web["environment"] and "DATABASE_URL" not in web["environment"]
    assert "django_superuser_password" not in {s["source"] for s in web["secrets"]}
    update = web["deploy"]["update_config"]
    assert update["order"] == "start-first" and update["failure_action"] == "rollback"
    assert web["healthcheck"]["test"][0] == "CMD"
    assert stack["services"]["migrate"]["deploy"]["restart_policy"]["condition"] == "none"
    for name in ("postgres", "valkey"):
        placement = stack["services"][name]["deploy"]["placement"]["constraints"]
        assert placement == ["node.labels.glitchtip-kit.stateful == true"]
    assert stack["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]


def test_a_rotated_secret_gets_a_new_name_and_the_others_keep_theirs(tmp_path):
    before = render_swarm(tmp_path)["secrets"]
    env_path = tmp_path / ".env"
    text = env_path.read_text()
    old = read_env_file(env_path)["POSTGRES_PASSWORD"]
    env_path.write_text(text.replace(old, "N3w-" + old[4:]))
    after = render_swarm(tmp_path)["secrets"]
    assert after["postgres_password"]["name"] != before["postgres_password"]["name"]
    assert after["database_url"]["name"] != before["database_url"]["name"]  # holds the password
    assert after["secret_key"]["name"] == before["secret_key"]["name"]


def test_replicas_and_host_publishing_come_from_the_settings(tmp_path):
    stack = render_swarm(tmp_path, "--set", "web_replicas=3", "--set", "swarm_publish_mode=host")
    web = stack["services"]["web"]
    assert web["deploy"]["replicas"] == 3
    assert web["ports"][0]["mode"] == "host"
    # A host port is held by one task per node: the new task can only start after the old one.
    assert web["deploy"]["update_config"]["order"] == "stop-first"
    assert web["deploy"]["placement"]["max_replicas_per_node"] == 1


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_stack_config_accepts_the_file_and_refuses_a_broken_one(tmp_path):
    from provision.swarm.validate import validate_stack

    render_swarm(tmp_path)
    settings = load_settings(tmp_path, {})
    result = validate_stack(settings)
    if "compose config" in result:
        pytest.skip("this docker CLI has no `stack config`")
    assert result == "valid (docker stack config)"
    path = tmp_path / STACK_FILE
    path.write_text(path.read_text().replace("order: start-first", "order: sideways-first", 1))
    with pytest.raises(KitError, match="not a valid stack file"):
        validate_stack(settings)


# --- secrets and the steps of `up --target swarm` ---


def swarm_ctx(tmp_path: Path, fake: FakeDocker) -> StackContext:
    render_swarm(tmp_path)
    ctx = StackContext(directory=tmp_path, overrides={}, environ={}, wait_timeout=30)
    env = read_env_file(tmp_path / ".env")
    ctx.results["docker"] = fake.cli([env[key] for key in SECRET_KEYS])
    return ctx


def test_secrets_go_to_docker_on_stdin_only_and_existing_ones_are_kept(tmp_path):
    existing = []
    fake = FakeDocker(
        {
            ("secret", "ls"): lambda args, stdin: (
                0,
                "".join(json.dumps({"Name": name}) + "\n" for name in existing),
                "",
            ),
            ("secret", "create"): lambda args, stdin: (existing.append(args[-2]), (0, "id", ""))[1],
        }
    )
    ctx = swarm_ctx(tmp_path, fake)
    env = read_env_file(tmp_path / ".env")
    outcome = deploy.secrets(ctx)
    assert outcome.changed is True and "created 5 of 5" in outcome.detail
    creates = [(args, stdin) for args, stdin in fake.calls if args[:2] == ("secret", "create")]
    assert len(creates) == 5 and all(args[-1] == "-" for args, _ in creates)
    for key in SECRET_KEYS:
        assert all(env[key] not in " ".join(args) for args, _ in fake.calls)
    assert env["SECRET_KEY"] in {stdin for _, stdin in creates}
    again = deploy.secrets(ctx)
    assert again.changed is False and len(fake.calls) == 5 + 2


def test_migrate_recreates_the_job_deploys_only_the_first_phase_and_waits(tmp_path, monkeypatch):
    deployed = []
    states = iter(["running", "complete"])

    def task(args, stdin):
        return 0, json.dumps([{"CreatedAt": "2026-01-01T00:00:00.5Z", "Status": {
            "State": next(states), "ContainerStatus": {"ExitCode": 0}}}]), ""  # fmt: skip

    fake = FakeDocker(
        {
            ("service", "inspect", "--format"): (0, "abc\n", ""),
            ("service", "rm"): (0, "", ""),
            ("stack", "deploy"): lambda args, stdin: (deployed.append(stdin), (0, "", ""))[1],
            ("service", "ls"): (0, "", ""),
            ("service", "ps"): (0, "t1\n", ""),
            ("inspect", "t1"): task,
        }
    )
    ctx = swarm_ctx(tmp_path, fake)
    # Postgres and Valkey converge at once here; their wait has its own tests below.
    monkeypatch.setattr("provision.swarm.services.wait_converged", lambda *a, **k: [])
    outcome = deploy.migrate(ctx)
    assert "completed" in outcome.detail
    calls = [args for args, _ in fake.calls]
    assert calls.index(("service", "rm", "glitchtip_migrate")) < next(
        i for i, args in enumerate(calls) if args[:2] == ("stack", "deploy")
    )
    first = yaml.safe_load(deployed[0])
    assert set(first["services"]) == {"postgres", "valkey", "migrate"}
    assert not any(key.startswith("x-") for key in first)


def test_a_failed_migrate_job_is_one_line_with_its_exit_status():
    fake = FakeDocker(
        {
            ("service", "ps"): (0, "t1\n", ""),
            ("inspect", "t1"): (
                0,
                json.dumps(
                    [
                        {
                            "CreatedAt": "2026-01-01T00:00:01Z",
                            "Status": {
                                "State": "failed",
                                "Err": "task: non-zero exit (1)",
                                "ContainerStatus": {"ExitCode": 1},
                            },
                        }
                    ]
                ),
                "",
            ),
        }
    )
    with pytest.raises(KitError) as error:
        wait_for_job(fake.cli(), "gt_migrate", 5, lambda line: None, sleep=lambda s: None)
    assert "gt_migrate failed: exit status 1" in error.value.line()
    assert "docker service logs gt_migrate" in error.value.line()


def service_rows(replicas: str, update: str | None, message: str = ""):
    ls = json.dumps({"ID": "w1", "Name": "gt_web", "Replicas": replicas, "Image": "g:6"})
    spec = {"Spec": {"Name": "gt_web", "TaskTemplate": {"ContainerSpec": {"Image": "g:6"}}}}
    if update:
        spec["UpdateStatus"] = {"State": update, "Message": message}
    return {
        ("service", "ls"): (0, ls + "\n", ""),
        ("service", "inspect"): (0, json.dumps([spec]), ""),
    }


def test_wait_converged_fails_on_a_rollback_during_the_update():
    sequence = iter(
        [service_rows("2/2", "updating"), service_rows("2/2", "rollback_completed", "unhealthy")]
    )
    answers = {}

    def answer(args, stdin):
        if args[:2] == ("service", "ls"):
            answers.update(next(sequence))
        return answers[args[:2]]

    fake = FakeDocker({("service", "ls"): answer, ("service", "inspect"): answer})
    with pytest.raises(KitError, match=r"update of gt_web failed.*rollback_completed.*unhealthy"):
        wait_converged(fake.cli(), "gt", ("web",), 30, lambda line: None, sleep=lambda s: None)


def test_an_old_rollback_is_history_and_a_timeout_names_the_service():
    fake = FakeDocker(service_rows("2/2", "rollback_completed"))
    states = wait_converged(fake.cli(), "gt", ("web",), 30, lambda line: None, sleep=lambda s: None)
    assert states[0].running == 2
    clock = iter(range(0, 1000, 10))
    slow = FakeDocker(service_rows("1/2", "completed"))
    with pytest.raises(KitError, match="web did not converge within 30 s"):
        wait_converged(
            slow.cli(), "gt", ("web",), 30, lambda line: None,
            sleep=lambda s: None, clock=lambda: next(clock),
        )  # fmt: skip


def test_preflight_refuses_an_engine_outside_a_swarm(tmp_path):
    fake = FakeDocker({("info",): (0, json.dumps({"LocalNodeState": "inactive"}), "")})
    ctx = swarm_ctx(tmp_path, fake)
    with pytest.raises(KitError, match="not in a Swarm") as error:
        deploy.preflight(ctx)
    assert "docker swarm init" in error.value.line()


# --- scale ---


def test_scale_parses_only_web_and_worker_counts():
    assert parse_counts(["web=2", "worker=3"]) == {"web": 2, "worker": 3}
    for bad in (["db=2"], ["web=0"], ["web=two"], ["web"], [], ["web=101"], ["web=²"]):
        with pytest.raises(UsageError):
            parse_counts(bad)


def test_scale_refuses_a_compose_deployment(tmp_path):
    assert run(tmp_path, "render").exit_code == 0
    line = one_line_error(run(tmp_path, "scale", "web=2"))
    assert "scale needs target swarm" in line


def test_scale_records_the_counts_and_a_count_in_glitchtip_yaml_wins(tmp_path):
    from provision.swarm.scale import record_counts

    render_swarm(tmp_path)
    settings = load_settings(tmp_path, {})
    record_counts(tmp_path, settings, {"web": 2, "worker": 4})
    assert render_swarm(tmp_path)["services"]["worker"]["deploy"]["replicas"] == 4
    assert load_settings(tmp_path, {}).web_replicas == 2
    (tmp_path / "glitchtip.yaml").write_text("web_replicas: 3\n")
    with pytest.raises(UsageError, match=r"web_replicas is set to 3 in glitchtip\.yaml"):
        record_counts(tmp_path, load_settings(tmp_path, {}), {"web": 5})


def test_up_refuses_kubernetes(tmp_path):
    line = one_line_error(run(tmp_path, "up", "--set", "target=kubernetes"))
    assert "does not deploy to Kubernetes" in line and "helm" in line


def test_render_refuses_what_swarm_cannot_carry_and_writes_nothing(tmp_path):
    long_name = "a" * 40
    line = one_line_error(run(tmp_path, "render", "--target", "swarm", "--set",
                              f"compose_project_name={long_name}"))  # fmt: skip
    assert "too long for Swarm secret names" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (["profile=minimal"], "not profile minimal"),
        (["glitchtip_domain=https://errors.example.com"], "no TLS proxy of the kit's"),
    ],
)
def test_swarm_refuses_the_minimal_profile_and_the_compose_proxy(tmp_path, settings, words):
    """Both are services of compose.yml the stack file does not carry."""
    sets = [part for value in settings for part in ("--set", value)]
    line = one_line_error(run(tmp_path, "render", "--target", "swarm", *sets))
    assert words in line
    assert list(tmp_path.iterdir()) == []


def test_down_waits_for_the_stack_to_go_and_removes_this_nodes_volumes():
    from provision.swarm.down import remove_stack

    left = iter(["c1\n", ""])
    fake = FakeDocker(
        {
            ("stack", "rm"): (0, "Removing service gt_web\n", ""),
            ("ps",): lambda args, stdin: (0, next(left), ""),
            ("network", "ls"): (0, "", ""),
            ("secret", "ls"): (0, json.dumps({"Name": "gt_secret_key_0123"}) + "\n", ""),
            ("secret", "rm"): (0, "", ""),
            ("volume", "ls"): (0, "gt_postgres-data\ngt_uploads\n", ""),
            ("volume", "rm"): (0, "", ""),
        }
    )
    lines = remove_stack(fake.cli(), "gt", volumes=True, sleep=lambda s: None)
    assert lines[0] == "stack gt removed"
    assert "2 volume(s) removed on this node: gt_postgres-data, gt_uploads" in lines[-1]
    calls = [args for args, _ in fake.calls]
    assert (
        calls.count(("ps", "--all", "--quiet", "--filter", "label=com.docker.stack.namespace=gt"))
        == 2
    )
    assert ("secret", "rm", "gt_secret_key_0123") in calls


@pytest.mark.parametrize("external_database", [False, True])
def test_status_is_up_with_the_services_this_stack_really_has(monkeypatch, external_database):
    """With an external database the stack has no postgres service: status must still be up
    (and down when a service it needs is missing)."""
    import types

    from provision.swarm import services as swarm_services
    from provision.swarm.status import collect_swarm_status

    present = ["valkey", "web", "worker", "migrate"] + ([] if external_database else ["postgres"])

    def state(service: str):
        return swarm_services.ServiceState(f"gt_{service}", service, 1, 1, "img", "", "", "")

    monkeypatch.setattr(swarm_services, "job_state", lambda docker, name: ("complete", ""))
    settings = types.SimpleNamespace(
        compose_project_name="gt",
        internal_url="http://127.0.0.1:8000",
        glitchtip_domain="http://localhost:8000",
        external_database=external_database,
    )
    ok = {"ok": True}
    monkeypatch.setattr(
        swarm_services, "stack_services", lambda docker, stack: [state(s) for s in present]
    )
    probed: list[str] = []
    found = collect_swarm_status(settings, None, prober=lambda url: probed.append(url) or ok)
    assert found["up"] is True
    # What `provision status --json` prints besides the rows, whole.
    assert {key: found[key] for key in ("target", "stack", "url", "up", "checks")} == {
        "target": "swarm",
        "stack": "gt",
        "url": "http://localhost:8000",
        "up": True,
        "checks": [ok, ok],
    }
    # GlitchTip is asked on the kit's own address, the published port on this host
    assert probed == ["http://127.0.0.1:8000/_health/", "http://127.0.0.1:8000/api/settings/"]
    monkeypatch.setattr(
        swarm_services,
        "stack_services",
        lambda docker, stack: [state(s) for s in present if s != "worker"],
    )
    assert collect_swarm_status(settings, None, prober=lambda url: ok)["up"] is False


@pytest.mark.parametrize("command", ["status", "down"])
def test_status_and_down_refuse_a_kubernetes_deployment(tmp_path, command):
    """They used to fall through to the compose path of a deployment that has none."""
    assert run(tmp_path, "render", "--target", "kubernetes").exit_code == 0
    line = one_line_error(run(tmp_path, command))
    assert f"`provision {command}` does not act on Kubernetes" in line


class LabelFilteringSecrets:
    """`docker secret ls --filter label=K[=V] ... --format '{{json .}}'` as the engine answers
    it: every label filter must match (Docker ANDs label filters); the rows carry Name and
    Labels. Only the listing: stale_secrets asks nothing else."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets

    def json_lines(self, *args: str, fix: str) -> list[dict]:
        assert args[:2] == ("secret", "ls") and "--format" in args
        wanted = [args[i + 1] for i, arg in enumerate(args) if arg == "--filter"]
        assert all(w.startswith("label=") for w in wanted), wanted

        def matches(labels: dict[str, str], spec: str) -> bool:
            key, has_value, value = spec.removeprefix("label=").partition("=")
            return key in labels and (not has_value or labels[key] == value)

        return [
            {"Name": name, "Labels": labels}
            for name, labels in sorted(self.secrets.items())
            if all(matches(labels, spec) for spec in wanted)
        ]


def test_stale_secrets_are_only_the_kits_own_of_this_stack():
    """Deploy removes what stale_secrets returns: a secret the kit did not create, or one of
    another stack, must never be in it, even when its name looks like the kit's."""
    from provision.swarm.secrets import KIT_LABEL, STACK_LABEL, stale_secrets

    docker = LabelFilteringSecrets(
        {
            "gt_secret_key_old": {KIT_LABEL: "secret_key", STACK_LABEL: "glitchtip"},
            "gt_secret_key_new": {KIT_LABEL: "secret_key", STACK_LABEL: "glitchtip"},
            "operators_own_tls_key": {STACK_LABEL: "glitchtip"},
            "gt_secret_key_other": {KIT_LABEL: "secret_key", STACK_LABEL: "staging"},
            "unlabelled": {},
        }
    )

    class Keep:
        swarm_name = "gt_secret_key_new"

    assert stale_secrets(docker, "glitchtip", [Keep()]) == ["gt_secret_key_old"]
    assert stale_secrets(docker, "staging", []) == ["gt_secret_key_other"]


def test_the_compose_fallback_of_validation_hides_the_secrets_it_prints(tmp_path, monkeypatch):
    """A docker CLI without `stack config` makes validate_stack fall back to `compose config`;
    a loader that echoes a value of .env in its complaint (as a failed interpolation can) must
    not put the secret in the one line the operator reads."""
    import sys

    import provision.runtime.compose_binary
    from provision.swarm.validate import validate_stack

    render_swarm(tmp_path)
    secret = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    loader = tmp_path / "fake-compose.py"
    loader.write_text(
        f"import sys\nsys.stderr.write('invalid interpolation near {secret}\\n')\nsys.exit(15)\n"
    )
    monkeypatch.setattr(
        provision.runtime.compose_binary, "compose_command", lambda: [sys.executable, str(loader)]
    )
    docker = FakeDocker({("stack", "config"): (1, "", 'unknown command "config" for "stack"')})
    settings = load_settings(tmp_path)
    with pytest.raises(KitError) as refused:
        validate_stack(settings, docker=docker.cli())
    assert "(compose config): invalid interpolation near" in str(refused.value)
    assert secret not in str(refused.value)


def test_a_rejected_job_says_swarms_reason() -> None:
    """A task Swarm rejected never ran (no exit code): its `Status.Err` is the only reason the
    operator gets, so it must be in the one line (not "no error given")."""
    task = {"CreatedAt": "2026-01-01T00:00:00.5Z", "Status": {
        "State": "rejected", "Err": "No such image: glitchtip:missing"}}  # fmt: skip
    fake = FakeDocker(
        {
            ("service", "ps"): (0, "task1\n", ""),
            ("inspect",): (0, json.dumps([task]), ""),
        }
    )
    with pytest.raises(KitError) as refused:
        wait_for_job(fake.cli(), "glitchtip_migrate", 10, note=lambda line: None)
    assert refused.value.message == "glitchtip_migrate rejected: No such image: glitchtip:missing"


def test_nothing_to_scale_is_refused_with_an_example() -> None:
    with pytest.raises(UsageError) as refused:
        parse_counts([])
    assert refused.value.message == "nothing to scale"
    assert refused.value.fix == "use e.g. `provision scale web=2 worker=3`"


def test_a_docker_call_that_hangs_is_stopped_at_its_timeout() -> None:
    """The real runner: a `docker` that never answers (here `sleep`) is ended at the timeout
    with one line naming the call and what to check; a missing binary names the fix."""
    import time

    from provision.runtime.docker import subprocess_runner

    began = time.monotonic()
    with pytest.raises(KitError) as refused:
        subprocess_runner(["sleep", "30"], None, {"PATH": "/usr/bin:/bin"}, 1)
    assert time.monotonic() - began < 10
    assert refused.value.message == "`sleep 30` did not finish within 1 s"
    assert refused.value.fix == "check the engine with `docker info` and `docker service ls`"
    with pytest.raises(KitError) as refused:
        subprocess_runner(["/nonexistent/docker", "info"], None, {}, 5)
    assert refused.value.message == "cannot run docker (No such file or directory)"
    assert refused.value.fix == "install the Docker CLI"


def test_the_first_phase_waits_for_the_bundled_data_services_only(tmp_path):
    """Postgres and Valkey converge before the migrate job; an external database has no
    bundled Postgres to wait for (waiting for it would time out every deploy)."""
    settings = load_settings(tmp_path, {})
    assert deploy.bundled(settings, ("postgres", "valkey")) == ("postgres", "valkey")
    external = load_settings(
        tmp_path, {}, environ={"GLITCHTIP_KIT_DATABASE_URL": "postgres://u:p@db.example.com/gt"}
    )
    assert deploy.bundled(external, ("postgres", "valkey")) == ("valkey",)


def test_an_inspect_that_prints_nothing_is_no_object():
    fake = FakeDocker({("node", "inspect"): (0, "", "")})
    assert fake.cli().inspect("node", "inspect", "n1", fix="x") == []
    fake = FakeDocker({("node", "inspect"): (0, '{"ID": "n1"}', "")})
    assert fake.cli().inspect("node", "inspect", "n1", fix="x") == [{"ID": "n1"}]


_SCALE_EXAMPLE = "use e.g. `provision scale web=2 worker=3`"
_COUNT_FIX = "use e.g. web=2 (to stop GlitchTip, use `provision down`)"


@pytest.mark.parametrize(
    ("items", "message", "fix"),
    [
        (["db=2"], "'db=2' is not SERVICE=COUNT for web or worker", _SCALE_EXAMPLE),
        (["web"], "'web' is not SERVICE=COUNT for web or worker", _SCALE_EXAMPLE),
        (["=2"], "'=2' is not SERVICE=COUNT for web or worker", _SCALE_EXAMPLE),
        (["web=0"], "'web=0': the count must be a whole number from 1 to 100", _COUNT_FIX),
        (["web=two"], "'web=two': the count must be a whole number from 1 to 100", _COUNT_FIX),
        (["web=101"], "'web=101': the count must be a whole number from 1 to 100", _COUNT_FIX),
        (["web=²"], "'web=²': the count must be a whole number from 1 to 100", _COUNT_FIX),
        # The first '=' ends the service: "web=2=3" is web with a count that is no number.
        (["web=2=3"], "'web=2=3': the count must be a whole number from 1 to 100", _COUNT_FIX),
        (
            ["worker=0"], "'worker=0': the count must be a whole number from 1 to 100",
            "use e.g. worker=2 (to stop GlitchTip, use `provision down`)",
        ),
    ],
)  # fmt: skip
def test_scale_refuses_each_bad_count_in_one_whole_line(items, message, fix) -> None:
    with pytest.raises(UsageError) as refused:
        parse_counts(items)
    assert (refused.value.message, refused.value.fix) == (message, fix)


def test_scale_reads_counts_with_spaces_around_them() -> None:
    assert parse_counts([" worker = 4 ", "web=1", "web=100"]) == {"worker": 4, "web": 100}


@pytest.mark.parametrize(
    ("settings", "output"),
    [
        (
            ["profile=minimal"],
            "error: target swarm runs the standard services (web and worker scale apart), not "
            "profile minimal: set profile: standard, or target compose\n",
        ),
        (
            ["glitchtip_domain=https://errors.example.com"],
            "error: target swarm has no TLS proxy of the kit's (it is a service of compose.yml): "
            "set proxy: none and put the swarm's own ingress (Traefik, Caddy, a load balancer) "
            "in front, or target compose\n",
        ),
        (
            ["glitchtip_major=5", "advanced_partitioning=true"],
            "error: target swarm has no pg_partman variant (compose.part.yml is for one host): "
            "set advanced_partitioning: false, or target compose\n",
        ),
        (
            ["compose_project_name=" + "a" * 40],
            "error: compose_project_name '" + "a" * 40 + "' is too long for Swarm secret names "
            "(79 > 64 characters): use a compose_project_name of at most 25 characters\n",
        ),
        (
            ["compose_project_name=" + "a" * 26],
            "error: compose_project_name '" + "a" * 26 + "' is too long for Swarm secret names "
            "(65 > 64 characters): use a compose_project_name of at most 25 characters\n",
        ),
    ],
)
def test_what_swarm_cannot_carry_is_refused_in_one_whole_line(tmp_path, settings, output):
    sets = [part for value in settings for part in ("--set", value)]
    result = run(tmp_path, "render", "--target", "swarm", *sets)
    assert (result.exit_code, result.output) == (2, output)
    assert list(tmp_path.iterdir()) == []


def test_a_project_name_of_25_characters_fits_swarms_secret_names(tmp_path):
    result = run(
        tmp_path, "render", "--target", "swarm", "--set", "compose_project_name=" + "a" * 25
    )
    assert result.exit_code == 0, result.output


def _down_docker(stack_rm, left_rounds, volume_rm_ok=True):
    """A scripted docker for `remove_stack`: `left_rounds` answers of `docker ps` in turn (the
    last one repeated)."""
    answers = list(left_rounds)

    def ps(args, stdin):
        return (0, answers.pop(0) if len(answers) > 1 else answers[0], "")

    return FakeDocker(
        {
            ("stack", "rm"): stack_rm,
            ("ps",): ps,
            ("network", "ls"): (0, "", ""),
            ("secret", "ls"): (0, "", ""),
            ("volume", "ls"): (0, "gt_postgres-data\ngt_uploads\n", ""),
            ("volume", "rm"): (0, "", "") if volume_rm_ok else (1, "", "volume is in use\n"),
        }
    )


def test_down_without_volumes_says_each_thing_it_did_and_kept():
    from provision.swarm.down import remove_stack

    fake = _down_docker((0, "Removing service gt_web\n", ""), [""])
    assert remove_stack(fake.cli(), "gt", sleep=lambda s: None) == [
        "stack gt removed",
        "its Swarm secrets removed (the next `up` creates them again from .env)",
        "volumes kept (`provision down --volumes` deletes them)",
    ]
    assert not [args for args, _ in fake.calls if args[:1] == ("volume",)]


def test_down_of_a_stack_already_gone_goes_on_and_names_volumes_it_could_not_remove():
    """`docker stack rm` of no stack answers "Nothing found in stack" (exit 1): already down."""
    from provision.swarm.down import remove_stack

    fake = _down_docker((1, "", "Nothing found in stack: gt\n"), [""], volume_rm_ok=False)
    assert remove_stack(fake.cli(), "gt", volumes=True, sleep=lambda s: None) == [
        "stack gt removed",
        "its Swarm secrets removed (the next `up` creates them again from .env)",
        "0 volume(s) removed on this node: none",
    ]


def test_a_failed_stack_rm_is_one_line_with_dockers_reason():
    from provision.swarm.down import remove_stack

    fake = _down_docker((1, "", "Error response from daemon: This node is not a manager\n"), [""])
    with pytest.raises(KitError) as failed:
        remove_stack(fake.cli(), "gt", sleep=lambda s: None)
    assert (failed.value.message, failed.value.fix) == (
        "`docker stack rm gt` failed: Error response from daemon: This node is not a manager",
        "see `docker info`",
    )


def test_containers_left_after_the_wait_are_counted_and_named_with_the_fix():
    from provision.swarm.down import WAIT_GONE, remove_stack

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    fake = _down_docker((0, "", ""), ["c1\nc2\n"])
    with pytest.raises(KitError) as failed:
        remove_stack(fake.cli(), "gt", sleep=sleep, clock=lambda: now[0])
    assert (failed.value.message, failed.value.fix) == (
        "2 container(s) of stack gt still there after 120 s",
        "see `docker ps --all --filter label=com.docker.stack.namespace=gt`, then run "
        "`provision down` again",
    )
    assert slept == [1.0] * int(WAIT_GONE)


def _sequenced(*rounds):
    """A FakeDocker answering `service ls`/`inspect` with each round in turn (the last kept)."""
    queue = list(rounds)
    answers: dict = {}

    def answer(args, stdin):
        if args[:2] == ("service", "ls"):
            answers.update(queue.pop(0) if len(queue) > 1 else queue[0])
        return answers[args[:2]]

    return FakeDocker({("service", "ls"): answer, ("service", "inspect"): answer})


def test_wait_converged_notes_each_new_picture_once_and_returns_the_states():
    fake = _sequenced(
        service_rows("0/2", None),
        service_rows("0/2", None),
        service_rows("1/2", "updating"),
        service_rows("2/2", "completed"),
    )
    notes: list[str] = []
    slept: list[float] = []
    states = wait_converged(fake.cli(), "gt", ("web",), 30, notes.append, sleep=slept.append)
    assert notes == ["web 0/2", "web 1/2 (updating)", "web 2/2"]
    assert slept == [2.0, 2.0, 2.0]
    assert [state.as_dict() for state in states] == [
        {"name": "gt_web", "service": "web", "running": 2, "desired": 2, "image": "g:6",
         "update": "completed", "ports": ""},
    ]  # fmt: skip


def test_wait_converged_failures_are_whole_lines_with_the_service_to_look_at():
    rolled = _sequenced(
        service_rows("2/2", "updating"), service_rows("2/2", "rollback_completed", "unhealthy")
    )
    with pytest.raises(KitError) as rollback:
        wait_converged(rolled.cli(), "gt", ("web",), 30, lambda line: None, sleep=lambda s: None)
    paused = _sequenced(service_rows("1/2", None), service_rows("2/2", "paused"))
    with pytest.raises(KitError) as silent:
        wait_converged(paused.cli(), "gt", ("web",), 30, lambda line: None, sleep=lambda s: None)
    clock = iter(range(0, 1000, 10))
    slow = FakeDocker(service_rows("1/2", "completed"))
    with pytest.raises(KitError) as late:
        wait_converged(
            slow.cli(), "gt", ("web", "worker"), 30, lambda line: None,
            sleep=lambda s: None, clock=lambda: next(clock),
        )  # fmt: skip
    gone = FakeDocker({("service", "ls"): (0, "", "")})
    clock2 = iter(range(0, 1000, 10))
    with pytest.raises(KitError) as nothing:
        wait_converged(
            gone.cli(), "gt", ("web",), 20, lambda line: None,
            sleep=lambda s: None, clock=lambda: next(clock2),
        )  # fmt: skip
    fix = "see `docker service ps --no-trunc {0}` and `docker service logs {0}`"
    assert [(e.value.message, e.value.fix) for e in (rollback, silent, late, nothing)] == [
        ("the update of gt_web failed (rollback_completed): unhealthy", fix.format("gt_web")),
        ("the update of gt_web failed (paused): no message", fix.format("gt_web")),
        ("worker, web did not converge within 30 s (web 1/2)", fix.format("gt_worker")),
        ("web did not converge within 20 s (no services)", fix.format("gt_web")),
    ]


def test_a_stack_file_holding_a_secret_value_is_refused_before_deploy(tmp_path):
    """The last guard before `docker stack deploy`: a secret of .env written into the stack
    file (a template bug) is refused. The docker CLI masks every secret in what it prints, so
    the guard must read the file itself, not the loader's (masked) output."""
    from provision.swarm.validate import validate_stack

    render_swarm(tmp_path)
    settings = load_settings(tmp_path, {})
    secret = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    path = tmp_path / STACK_FILE
    path.write_text(path.read_text() + f"# {secret}\n")
    echo = FakeDocker({("stack", "config"): lambda args, stdin: (0, path.read_text(), "")})
    with pytest.raises(KitError) as refused:
        validate_stack(settings, docker=echo.cli([secret]))
    assert (refused.value.message, refused.value.fix) == (
        f"{STACK_FILE} holds a secret value",
        "report this bug; do not deploy",
    )


@pytest.mark.parametrize(("password", "refused"), [("Zq9#", True), ("Zq9", False)])
def test_the_guard_reads_secrets_from_four_characters_as_redact_does(tmp_path, password, refused):
    """The guard looks for every stack secret of at least 4 characters, the bound `redact`
    masks from: a shorter value would match ordinary text of the file. An admin password of
    4 characters written into the stack file is refused; one of 3 is not looked for."""
    from provision.envfile import set_env_values
    from provision.swarm.validate import validate_stack

    render_swarm(tmp_path)
    env = tmp_path / ".env"
    env.write_text(set_env_values(env.read_text(), {"DJANGO_SUPERUSER_PASSWORD": password}))
    settings = load_settings(tmp_path, {})
    path = tmp_path / STACK_FILE
    path.write_text(path.read_text() + f"# {password}\n")
    echo = FakeDocker({("stack", "config"): lambda args, stdin: (0, path.read_text(), "")})
    if refused:
        with pytest.raises(KitError) as caught:
            validate_stack(settings, docker=echo.cli([password]))
        assert caught.value.message == f"{STACK_FILE} holds a secret value"
    else:
        valid = validate_stack(settings, docker=echo.cli([password]))
        assert valid == "valid (docker stack config)"


def test_validation_passes_the_non_secret_tuning_values_and_names_the_loaders_complaint(tmp_path):
    from provision.swarm.validate import validate_stack

    render_swarm(tmp_path)
    settings = load_settings(tmp_path, {})
    seen: list[dict] = []

    class Recording(FakeDocker):
        def __call__(self, argv, stdin, env, timeout):
            seen.append({key: env[key] for key in env if key.startswith("GLITCHTIP_KIT_")})
            return super().__call__(argv, stdin, env, timeout)

    complaint = "line 1\nservices.web.deploy.update_config.order must be one of ...\nlast\n"
    broken = Recording({("stack", "config"): (1, "", complaint)})
    with pytest.raises(KitError) as refused:
        validate_stack(settings, docker=broken.cli())
    assert (refused.value.message, refused.value.fix) == (
        f"{STACK_FILE} is not a valid stack file (docker stack config): services.web.deploy."
        "update_config.order must be one of ... | last",
        "a setting produced a value the stack loader refuses: check `provision config`",
    )
    env = read_env_file(tmp_path / ".env")
    wanted = {k: v for k, v in env.items() if k.startswith("GLITCHTIP_KIT_") and v}
    assert wanted and all(seen[0].get(key) == value for key, value in wanted.items())
    assert broken.calls[0][0] == ("stack", "config", "--compose-file", str(tmp_path / STACK_FILE))
    ok = FakeDocker({("stack", "config"): (0, "services: {}\n", "")})
    assert validate_stack(settings, docker=ok.cli()) == "valid (docker stack config)"


def _tasks_docker(*rounds):
    """`service ps` and `inspect` answering each round's tasks in turn (the last kept); a
    round of [] is a job Swarm has not created a task for yet."""
    queue = list(rounds)
    current: list = []

    def ps(args, stdin):
        current[:] = queue.pop(0) if len(queue) > 1 else queue[0]
        return 0, "".join(f"t{index}\n" for index in range(len(current))), ""

    def inspect(args, stdin):
        return 0, json.dumps(current), ""

    return FakeDocker({("service", "ps"): ps, ("inspect",): inspect})


def _task(created: str, state: str, code=None, err: str = "") -> dict:
    status: dict = {"State": state, "Err": err}
    if code is not None:
        status["ContainerStatus"] = {"ExitCode": code}
    return {"CreatedAt": created, "Status": status}


def test_wait_for_job_notes_each_state_once_and_judges_the_newest_task():
    notes: list[str] = []
    slept: list[float] = []
    fake = _tasks_docker(
        [],
        [_task("2026-01-01T00:00:01.000000001Z", "running")],
        [_task("2026-01-01T00:00:01Z", "running")],
        # an older failed task (an earlier run) and the newest, completed one
        [
            _task("2026-01-01T00:00:00Z", "failed", 1),
            _task("2026-01-01T00:00:02.5Z", "complete", 0),
        ],
    )
    assert wait_for_job(fake.cli(), "gt_migrate", 30, notes.append, sleep=slept.append) == (
        "complete"
    )
    assert notes == ["gt_migrate: pending", "gt_migrate: running", "gt_migrate: complete"]
    assert slept == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (_task("2026-01-01T00:00:01Z", "failed", 3, "task: non-zero exit (3)"),
         "gt_migrate failed: exit status 3, task: non-zero exit (3)"),
        (_task("2026-01-01T00:00:01Z", "failed", 137), "gt_migrate failed: exit status 137"),
        (_task("2026-01-01T00:00:01Z", "shutdown", 0), "gt_migrate shutdown: no error given"),
        (_task("2026-01-01T00:00:01Z", "orphaned"), "gt_migrate orphaned: no error given"),
        (_task("2026-01-01T00:00:01Z", "remove"), "gt_migrate remove: no error given"),
    ],
)  # fmt: skip
def test_a_job_that_ends_badly_is_one_whole_line(task, message):
    fake = _tasks_docker([task])
    with pytest.raises(KitError) as failed:
        wait_for_job(fake.cli(), "gt_migrate", 30, lambda line: None, sleep=lambda s: None)
    assert (failed.value.message, failed.value.fix) == (
        message,
        "see `docker service logs gt_migrate` for the cause",
    )


def test_a_job_still_running_at_the_deadline_names_its_last_state():
    clock = iter(range(0, 1000, 10))
    fake = _tasks_docker([_task("2026-01-01T00:00:01Z", "running")])
    with pytest.raises(KitError) as late:
        wait_for_job(
            fake.cli(), "gt_migrate", 30, lambda line: None,
            sleep=lambda s: None, clock=lambda: next(clock),
        )  # fmt: skip
    assert (late.value.message, late.value.fix) == (
        "gt_migrate did not complete within 30 s (last state: running)",
        "see `docker service logs gt_migrate`",
    )


_MANAGER_FIX = (
    "run it on a Swarm manager; for one host: `docker swarm init --advertise-addr <this host's IP>`"
)


@pytest.mark.parametrize(
    ("info", "detail"),
    [
        ({"LocalNodeState": "active", "ControlAvailable": True, "Nodes": 1},
         "Swarm manager, 1 node; stack glitchtip"),
        ({"LocalNodeState": "active", "ControlAvailable": True, "Nodes": 3},
         "Swarm manager, 3 nodes; stack glitchtip"),
    ],
)  # fmt: skip
def test_preflight_names_the_manager_its_nodes_and_the_stack(tmp_path, info, detail):
    from provision.steps import StepOutcome

    fake = FakeDocker({("info",): (0, json.dumps(info), "")})
    ctx = swarm_ctx(tmp_path, fake)
    assert deploy.preflight(ctx) == StepOutcome(detail, changed=False)
    assert [args for args, _ in fake.calls] == [("info", "--format", "{{json .Swarm}}")]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((0, json.dumps({"LocalNodeState": "inactive"}), ""),
         "this Docker engine is not in a Swarm (inactive)"),
        ((0, "", ""), "this Docker engine is not in a Swarm (None)"),
        ((0, json.dumps({"LocalNodeState": "active", "ControlAvailable": False}), ""),
         "this Docker engine is a Swarm worker, not a manager"),
        ((1, "", "Cannot connect to the Docker daemon\n"),
         "`docker info --format` failed: Cannot connect to the Docker daemon"),
    ],
)  # fmt: skip
def test_preflight_refuses_anything_but_a_manager_in_one_whole_line(tmp_path, answer, message):
    fake = FakeDocker({("info",): answer})
    ctx = swarm_ctx(tmp_path, fake)
    with pytest.raises(KitError) as refused:
        deploy.preflight(ctx)
    assert (refused.value.message, refused.value.fix) == (message, _MANAGER_FIX)


def test_preflight_refuses_the_metrics_services(tmp_path):
    fake = FakeDocker({})
    render_swarm(tmp_path)
    ctx = StackContext(
        directory=tmp_path, overrides={"metrics": "true"}, environ={}, wait_timeout=30
    )
    ctx.results["docker"] = fake.cli()
    with pytest.raises(UsageError) as refused:
        deploy.preflight(ctx)
    assert (refused.value.message, refused.value.fix) == (
        "the metrics services (Prometheus, Grafana) are not part of the Swarm stack",
        "run `provision up --target swarm --no-metrics`",
    )
    assert fake.calls == []


def test_a_job_swarm_does_not_know_fails_in_one_line_naming_it():
    from provision.swarm.services import job_state

    fake = FakeDocker({("service", "ps"): (1, "", "no such service: gt_migrate\n")})
    with pytest.raises(KitError) as failed:
        job_state(fake.cli(), "gt_migrate")
    assert (failed.value.message, failed.value.fix) == (
        "`docker service ps` failed: no such service: gt_migrate",
        "see `docker service ps --no-trunc gt_migrate` and `docker service logs gt_migrate`",
    )


def test_down_waits_for_the_stacks_networks_too():
    """`docker stack rm` removes the networks after the containers: down waits for both,
    each listed by the stack's label."""
    from provision.swarm.down import remove_stack

    networks = iter(["n1\n", ""])
    fake = FakeDocker(
        {
            ("stack", "rm"): (0, "", ""),
            ("ps",): (0, "", ""),
            ("network", "ls"): lambda args, stdin: (0, next(networks), ""),
            ("secret", "ls"): (0, "", ""),
        }
    )
    slept: list[float] = []
    remove_stack(fake.cli(), "gt", sleep=slept.append)
    label = ("--filter", "label=com.docker.stack.namespace=gt")
    assert [args for args, _ in fake.calls if args[:2] == ("network", "ls")] == [
        ("network", "ls", "--quiet", *label),
        ("network", "ls", "--quiet", *label),
    ]
    assert slept == [1.0]


def test_the_docker_of_a_run_is_the_deployments_with_its_secrets_masked(tmp_path):
    """Without a docker given (tests give one), the steps use the deployment's docker CLI,
    which masks the deployment's secrets, and keep it for the run's other steps."""
    from provision.runtime.docker import DockerCLI

    render_swarm(tmp_path)
    ctx = StackContext(directory=tmp_path, overrides={}, environ={}, wait_timeout=30)
    docker = deploy.docker_for(ctx)
    assert isinstance(docker, DockerCLI) and deploy.docker_for(ctx) is docker
    assert ctx.results["docker"] is docker
    secret = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    assert secret in docker.secrets


def test_host_publishing_refuses_more_web_tasks_than_nodes_whole():
    """With swarm_publish_mode host each node publishes the port once: web=3 on two nodes
    would leave a task waiting forever. Ingress (the routing mesh) takes any count."""
    from types import SimpleNamespace

    from provision.swarm.scale import refuse_host_overcommit

    host = SimpleNamespace(swarm_publish_mode="host")
    with pytest.raises(UsageError) as refused:
        refuse_host_overcommit(host, {"web": 3, "worker": 5}, nodes=2)
    assert (refused.value.message, refused.value.fix) == (
        "web=3 needs 3 nodes with swarm_publish_mode host (one web task per node; this Swarm "
        "has 2)",
        "add nodes, or use swarm_publish_mode: ingress (the routing mesh)",
    )
    refuse_host_overcommit(host, {"web": 2}, nodes=2)
    refuse_host_overcommit(host, {"worker": 9}, nodes=1)
    refuse_host_overcommit(SimpleNamespace(swarm_publish_mode="ingress"), {"web": 9}, nodes=1)


def test_a_service_image_pinned_by_swarm_is_shown_without_its_digest():
    """`docker stack deploy --resolve-image` pins each service's spec to a digest
    (`image:tag@sha256:...`); status shows the image as the stack file names it."""
    from provision.swarm.services import stack_services

    digest = "sha256:" + "a" * 64
    ls = json.dumps({"ID": "w1", "Name": "gt_web", "Replicas": "1/1", "Image": "other:1"})
    spec = {"Spec": {"Name": "gt_web", "TaskTemplate": {"ContainerSpec": {
        "Image": f"glitchtip/glitchtip:6.2.6@{digest}"}}}}  # fmt: skip
    fake = FakeDocker(
        {("service", "ls"): (0, ls + "\n", ""), ("service", "inspect"): (0, json.dumps([spec]), "")}
    )
    [web] = stack_services(fake.cli(), "gt")
    assert web.image == "glitchtip/glitchtip:6.2.6"
