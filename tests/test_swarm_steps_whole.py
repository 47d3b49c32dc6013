"""`up --target swarm`'s engine steps against tests/swarm_fake.py's Swarm, read whole: each
step's detail and whether it changed something, the node label, and every call that reached
`docker` (argv and what went on stdin), for a first deploy, a deploy with nothing changed and
the placement refusals of a Swarm of several nodes."""

from __future__ import annotations

import pytest
import yaml
from swarm_fake import FakeSwarm
from test_swarm_engine import ENGINE_STEPS, context, swarm_dir

from provision.envfile import read_env_file
from provision.errors import KitError
from provision.swarm import deploy
from provision.swarm.render import STACK_FILE

LABEL_FIX = "label one node: `docker node update --label-add glitchtip-kit.stateful=true <node>`"


def _outcomes(directory, swarm):
    ctx = context(directory, swarm)
    found = {}
    for name in ENGINE_STEPS:
        outcome = getattr(deploy, name)(ctx)
        found[name] = (outcome.detail, outcome.changed)
    return found


def test_a_first_deploy_says_what_each_step_did_and_a_second_one_that_nothing_changed(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    stack = yaml.safe_load((directory / STACK_FILE).read_text(encoding="utf-8"))
    names = sorted(spec["name"] for spec in stack["secrets"].values())
    first = _outcomes(directory, swarm)
    assert first == {
        "preflight": ("Swarm manager, ? nodes; stack glitchtip", False),
        "placement": ("labelled host1 glitchtip-kit.stateful=true", True),
        "render": ("stack.swarm.yml and .env unchanged", False),
        "secrets": (f"created 5 of 5: {', '.join(names)}", True),
        "migrate": ("glitchtip_migrate completed", None),
        "deploy": ("postgres 1/1, valkey 1/1, web 1/1, worker 1/1", None),
    }
    assert swarm.calls[:4] == [
        (("info", "--format", "{{json .Swarm}}"), None),
        (("node", "ls", "--format", "{{json .}}"), None),
        (("node", "inspect", "n1"), None),
        (("node", "update", "--label-add", "glitchtip-kit.stateful=true", "n1"), None),
    ]
    env = read_env_file(directory / ".env")
    creations = [(args, stdin) for args, stdin in swarm.calls if args[:2] == ("secret", "create")]
    assert [args[2:6] for args, _stdin in creations] == [
        (
            "--label",
            "com.docker.stack.namespace=glitchtip",
            "--label",
            f"org.glitchtip-kit.secret={n}",
        )
        for n in sorted(stack["secrets"])
    ]
    assert [args[6:] for args, _stdin in creations] == [(name, "-") for name in names]
    assert creations[sorted(stack["secrets"]).index("secret_key")][1] == env["SECRET_KEY"]
    deploys = [args for args, _stdin in swarm.calls if args[:2] == ("stack", "deploy")]
    assert (
        deploys
        == [("stack", "deploy", "--compose-file", "-", "--resolve-image", "changed", "glitchtip")]
        * 2
    )
    second = _outcomes(directory, swarm)
    assert second["placement"] == ("Postgres and Valkey on host1", False)
    assert second["secrets"] == ("all 5 exist", False)
    assert ("service", "rm", "glitchtip_migrate") in [args for args, _stdin in swarm.calls]


def test_the_render_step_names_the_files_it_wrote(tmp_path):
    directory = swarm_dir(tmp_path)
    (directory / STACK_FILE).unlink()
    (directory / "compose.yml").write_text("changed\n", encoding="utf-8")
    ctx = context(directory, FakeSwarm())
    outcome = deploy.render(ctx)
    assert (outcome.detail, outcome.changed) == ("wrote compose.yml, stack.swarm.yml", True)


def test_placement_on_several_nodes_needs_exactly_one_label_and_says_which(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm(nodes=3)
    with pytest.raises(KitError) as refused:
        deploy.placement(context(directory, swarm))
    assert (refused.value.message, refused.value.fix) == (
        "no node carries glitchtip-kit.stateful=true, which pins Postgres and Valkey",
        LABEL_FIX,
    )
    swarm.nodes["n2"]["Labels"]["glitchtip-kit.stateful"] = "true"
    swarm.nodes["n3"]["Labels"]["glitchtip-kit.stateful"] = "false"
    outcome = deploy.placement(context(directory, swarm))
    assert (outcome.detail, outcome.changed) == ("Postgres and Valkey on host2", False)
    swarm.nodes["n3"]["Labels"]["glitchtip-kit.stateful"] = "true"
    with pytest.raises(KitError) as refused:
        deploy.placement(context(directory, swarm))
    assert (refused.value.message, refused.value.fix) == (
        "2 nodes carry glitchtip-kit.stateful=true (host2, host3)",
        LABEL_FIX,
    )
    assert not [args for args, _stdin in swarm.calls if args[:2] == ("node", "update")]


def test_the_admin_step_shows_glitchtips_evidence_or_names_the_job_that_creates_the_admin(
    tmp_path, monkeypatch
):
    """GlitchTip itself is not part of the fast tests: its answer (the evidence, or none) comes
    from `existing_admin`, whose own tests drive a local GlitchTip stand-in."""
    import provision.stack.admin as admin

    directory = swarm_dir(tmp_path)
    ctx = context(directory, FakeSwarm())
    env = read_env_file(directory / ".env")
    asked = []

    def evidence(ctx, email, password):
        asked.append((email, password))
        return ("the API token in .env answers as " + email, False)

    monkeypatch.setattr(admin, "existing_admin", evidence)
    outcome = deploy.admin(ctx)
    email = ctx.load_settings().admin_email
    assert (outcome.detail, outcome.changed) == (
        f"{email} exists (the API token in .env answers as {email})",
        False,
    )
    assert asked == [(email, env["DJANGO_SUPERUSER_PASSWORD"])]
    assert ctx.results["admin_email"] == email
    monkeypatch.setattr(admin, "existing_admin", lambda ctx, email, password: None)
    with pytest.raises(KitError) as refused:
        deploy.admin(ctx)
    assert (refused.value.message, refused.value.fix) == (
        f"GlitchTip does not accept {email} with the password in .env",
        "see `docker service logs glitchtip_migrate` (it creates the first admin)",
    )


def test_scale_records_the_counts_scales_the_services_and_shows_them_converged(
    tmp_path, monkeypatch
):
    from cli_run import run

    import provision.swarm.deploy as swarm_deploy

    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm(nodes=2)
    swarm.nodes["n1"]["Labels"]["glitchtip-kit.stateful"] = "true"
    _outcomes(directory, swarm)
    ctx = context(directory, swarm)
    monkeypatch.setattr(swarm_deploy, "docker_for", lambda _ctx: ctx.results["docker"])
    result = run(directory, "scale", "worker=3", "web=2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "  web 2/2, worker 3/3",
        "web: 2/2 running",
        "worker: 3/3 running",
    ]
    assert [args for args, _stdin in swarm.calls if args[:2] == ("service", "scale")] == [
        ("service", "scale", "--detach", "glitchtip_web=2", "glitchtip_worker=3")
    ]
    env = read_env_file(directory / ".env")
    assert (env["GLITCHTIP_KIT_WEB_REPLICAS"], env["GLITCHTIP_KIT_WORKER_REPLICAS"]) == ("2", "3")
    stack = yaml.safe_load((directory / STACK_FILE).read_text(encoding="utf-8"))
    replicas = {name: stack["services"][name]["deploy"]["replicas"] for name in ("web", "worker")}
    assert replicas == {"web": 2, "worker": 3}


def test_stack_deploy_interpolates_the_kits_tuning_values_and_no_secret(tmp_path):
    """`docker stack deploy` fills `${GLITCHTIP_KIT_...}` from its own environment: the kit
    passes the non-empty GLITCHTIP_KIT_ values of .env, never a secret (those are Swarm
    secrets)."""
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    seen = []

    def recording(argv, stdin, env, timeout):
        if tuple(argv[1:3]) == ("stack", "deploy"):
            seen.append(({k: v for k, v in env.items() if k.startswith("GLITCHTIP_KIT_")}, env))
        return swarm(argv, stdin, env, timeout)

    _outcomes(directory, recording)
    env = read_env_file(directory / ".env")
    tuning = {k: v for k, v in env.items() if k.startswith("GLITCHTIP_KIT_") and v}
    assert tuning and len(seen) == 2
    for kit_values, whole in seen:
        assert {k: kit_values.get(k) for k in tuning} == tuning
        assert env["SECRET_KEY"] not in whole.values()
        assert env["POSTGRES_PASSWORD"] not in whole.values()
