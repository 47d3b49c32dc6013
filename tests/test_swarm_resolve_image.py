"""`up --target swarm --pull P`: each `docker stack deploy` resolves images as P asks. Swarm
pulls on each node itself; `--resolve-image` is the one registry query the kit's deploy makes,
so an offline host (`--pull never`, images `docker load`ed) must say `never` or every deploy asks
a registry it cannot reach. Before, nothing set it and every deploy said `changed`."""

from __future__ import annotations

import pytest
from swarm_fake import FakeSwarm
from test_swarm_engine import context, swarm_dir

from provision.swarm import deploy


@pytest.mark.parametrize(
    ("pull", "resolve"), [("missing", "changed"), ("always", "always"), ("never", "never")]
)
def test_every_stack_deploy_resolves_images_as_the_pull_policy_asks(tmp_path, pull, resolve):
    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    ctx = context(directory, swarm)
    ctx.pull_policy = pull
    for name in ("preflight", "placement", "render", "secrets", "migrate", "deploy"):
        getattr(deploy, name)(ctx)
    deploys = [args for args, _stdin in swarm.calls if args[:2] == ("stack", "deploy")]
    assert (
        deploys
        == [("stack", "deploy", "--compose-file", "-", "--resolve-image", resolve, "glitchtip")] * 2
    )


@pytest.mark.parametrize("pull", ["missing", "always", "never"])
def test_up_hands_its_pull_option_to_the_swarm_run(tmp_path, monkeypatch, pull):
    """The CLI's `--pull` reaches the context the Swarm steps read (the deploy above maps it)."""
    from cli_run import run

    from provision.steps import RunReport

    seen: list[str] = []

    def swarm_up(ctx, progress=None):
        seen.append(ctx.pull_policy)
        return RunReport(records=[], elapsed=0.0)

    monkeypatch.setattr(deploy, "run_swarm_up", swarm_up)
    swarm_dir(tmp_path)
    result = run(tmp_path, "up", "--target", "swarm", "--pull", pull, "--quiet")
    assert result.exit_code == 0, result.output
    assert seen == [pull]
