"""Every `docker` call of `up --target swarm` that can fail, failing: the one line the operator
reads (Docker's own complaint and the kit's fix) is compared whole.

The engine is tests/swarm_fake.py's Swarm with state; `Failing` makes the first call matching an
argv prefix fail with the daemon's answer when the node left the Swarm between two calls (the
docker CLI prints "Error response from daemon: This node is not a swarm manager. ..." on stderr
and exits 1 for every Swarm-only command then). Each step before the failing one runs as in a
real deploy, so the failure is met where the step meets it.
"""

from __future__ import annotations

import pytest
from swarm_fake import FakeSwarm
from test_swarm_engine import context, swarm_dir

from provision.errors import KitError
from provision.swarm import deploy
from provision.swarm.down import remove_stack
from provision.swarm.services import stack_health

NOT_A_MANAGER = (
    'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" '
    'or "docker swarm join" to connect this node to swarm and try again.'
)
ENGINE_STEPS = ("preflight", "placement", "render", "secrets", "migrate", "deploy")


class Failing:
    """A runner: `swarm`'s answers, but the call starting with `prefix` fails (the first one
    after `skip` others starting with it)."""

    def __init__(self, swarm: FakeSwarm, prefix: tuple[str, ...], skip: int = 0) -> None:
        self.swarm = swarm
        self.prefix = prefix
        self.skip = skip
        self.failed: tuple[str, ...] | None = None

    def __call__(self, argv, stdin, env, timeout):
        args = tuple(argv[1:])
        if self.failed is None and args[: len(self.prefix)] == self.prefix:
            if self.skip == 0:
                self.failed = args
                return 1, "", NOT_A_MANAGER + "\n"
            self.skip -= 1
        return self.swarm(argv, stdin, env, timeout)


def _failure(directory, swarm, prefix, skip=0) -> tuple[str, str, str]:
    """(step, message, fix) of the step that meets the failing call."""
    runner = Failing(swarm, prefix, skip)
    ctx = context(directory, runner)
    for name in ENGINE_STEPS:
        try:
            getattr(deploy, name)(ctx)
        except KitError as refused:
            assert runner.failed is not None, refused  # the injected failure, not another
            return name, refused.message, refused.fix
    raise AssertionError(f"no step failed: {prefix} was never called")


MANAGER_FIX = deploy.MANAGER_FIX
DEPLOY_FIX = (
    "check stack.swarm.yml (`provision render --target swarm`) and `docker stack ps glitchtip`"
)
SERVICE_FIX = "make this host a Swarm manager (`docker swarm init`) or run the command on one"


@pytest.mark.parametrize(
    ("prefix", "skip", "step", "message", "fix"),
    [
        (("info",), 0, "preflight", f"`docker info --format` failed: {NOT_A_MANAGER}", MANAGER_FIX),
        (("node", "ls"), 0, "placement", f"`docker node ls` failed: {NOT_A_MANAGER}", MANAGER_FIX),
        (
            ("node", "inspect"),
            0,
            "placement",
            f"`docker node inspect` failed: {NOT_A_MANAGER}",
            MANAGER_FIX,
        ),
        (
            ("node", "update"),
            0,
            "placement",
            f"`docker node update` failed: {NOT_A_MANAGER}",
            "label one node: `docker node update --label-add glitchtip-kit.stateful=true <node>`",
        ),
        (
            ("secret", "ls"),
            0,
            "secrets",
            f"`docker secret ls` failed: {NOT_A_MANAGER}",
            "make this host a Swarm manager",
        ),
        (
            ("secret", "create"),
            0,
            "secrets",
            f"`docker secret create` failed: {NOT_A_MANAGER}",
            "check that this host is a Swarm manager (`docker node ls`)",
        ),
        (
            ("stack", "deploy"),
            0,
            "migrate",
            f"`docker stack deploy` failed: {NOT_A_MANAGER}",
            DEPLOY_FIX,
        ),
        (
            ("service", "ls"),
            0,
            "migrate",
            f"`docker service ls` failed: {NOT_A_MANAGER}",
            SERVICE_FIX,
        ),
        (
            ("service", "inspect"),  # the first is the job's `--format {{.ID}}` probe
            1,
            "migrate",
            f"`docker service inspect` failed: {NOT_A_MANAGER}",
            SERVICE_FIX,
        ),
        (
            ("service", "ps"),
            0,
            "migrate",
            f"`docker service ps` failed: {NOT_A_MANAGER}",
            "see `docker service ps --no-trunc glitchtip_migrate` and "
            "`docker service logs glitchtip_migrate`",
        ),
        (
            ("inspect",),
            0,
            "migrate",
            f"`docker inspect task-glitchtip_migrate-1` failed: {NOT_A_MANAGER}",
            "see `docker service ps --no-trunc glitchtip_migrate` and "
            "`docker service logs glitchtip_migrate`",
        ),
    ],
)
def test_a_failing_docker_call_of_a_first_deploy_is_one_whole_line(
    tmp_path, prefix, skip, step, message, fix
):
    directory = swarm_dir(tmp_path)
    assert _failure(directory, FakeSwarm(), prefix, skip) == (step, message, fix)


def test_a_failing_job_removal_and_secret_listing_of_a_second_deploy_are_whole_lines(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    ctx = context(directory, swarm)
    for name in ENGINE_STEPS:
        getattr(deploy, name)(ctx)
    assert _failure(directory, swarm, ("service", "rm")) == (
        "migrate",
        f"`docker service rm` failed: {NOT_A_MANAGER}",
        "see `docker service ps glitchtip_migrate`",
    )
    # the job is gone now; the next deploy lists the kit's secrets after the rollout
    runner = Failing(swarm, ("secret", "ls", "--filter"))
    ctx = context(directory, runner)
    for name in ENGINE_STEPS[:-1]:
        getattr(deploy, name)(ctx)
    with pytest.raises(KitError) as refused:
        deploy.deploy(ctx)
    assert (refused.value.message, refused.value.fix) == (
        f"`docker secret ls` failed: {NOT_A_MANAGER}",
        "make this host a Swarm manager",
    )


def test_status_and_down_name_the_failing_call_and_its_fix(tmp_path):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    ctx = context(directory, swarm)
    for name in ENGINE_STEPS:
        getattr(deploy, name)(ctx)
    settings = ctx.load_settings()
    docker = context(directory, Failing(swarm, ("service", "inspect"))).results["docker"]
    with pytest.raises(KitError) as refused:
        stack_health(settings, docker)
    assert (refused.value.message, refused.value.fix) == (
        f"`docker service inspect` failed: {NOT_A_MANAGER}",
        SERVICE_FIX,
    )
    docker = context(directory, Failing(swarm, ("secret", "ls"))).results["docker"]
    with pytest.raises(KitError) as refused:
        remove_stack(docker, "glitchtip", sleep=lambda _s: None)
    assert (refused.value.message, refused.value.fix) == (
        f"`docker secret ls` failed: {NOT_A_MANAGER}",
        "make this host a Swarm manager",
    )
