"""`provision scale web=N worker=M`: change the replicas of a Swarm stack."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options


@click.command("scale")
@click.argument("counts", nargs=-1, metavar="SERVICE=COUNT...")
@dir_option
@settings_options
@click.option(
    "--wait-timeout",
    type=click.IntRange(10, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for the new replicas to run and be healthy.",
)
@json_option("the services afterwards")
def scale_command(counts, directory, overrides, wait_timeout, as_json):
    """Run COUNT web or worker tasks of the Swarm stack (`--target swarm`).

    The counts are recorded in .env and written into stack.swarm.yml, so the next
    `provision up` keeps them. Web tasks join the routing mesh only once healthy.
    A deployment on one Compose host has one web and one worker container: raise
    web_concurrency and worker_concurrency there instead.

    \b
    Examples:
      provision scale web=2 worker=2
      provision scale worker=4 --json
    """
    import os
    from pathlib import Path

    from provision.deployment import load_settings
    from provision.errors import UsageError
    from provision.stack.context import StackContext
    from provision.swarm.deploy import docker_for, swarm_info
    from provision.swarm.render import write_stack
    from provision.swarm.scale import (
        parse_counts,
        record_counts,
        refuse_host_overcommit,
        scale_args,
    )
    from provision.swarm.services import wait_converged

    wanted = parse_counts(counts)
    settings = load_settings(directory, overrides)
    if settings.target != "swarm":
        raise UsageError(
            f"scale needs target swarm (this deployment's target is {settings.target})",
            "deploy with `provision up --target swarm`, or on one host raise web_concurrency",
        )
    ctx = StackContext(directory=Path(directory), overrides=overrides, environ=os.environ)
    docker = docker_for(ctx)
    nodes = swarm_info(docker).get("Nodes", 1)
    refuse_host_overcommit(settings, wanted, nodes)
    record_counts(Path(directory), settings, wanted)
    settings = load_settings(directory, overrides)
    write_stack(settings)
    stack = settings.compose_project_name
    docker.check(
        "service", "scale", "--detach", *scale_args(stack, wanted),
        fix="deploy the stack first with `provision up --target swarm`",
    )  # fmt: skip
    note = (lambda line: None) if as_json else (lambda line: click.echo(f"  {line}"))
    states = wait_converged(docker, stack, tuple(sorted(wanted)), float(wait_timeout), note)
    if as_json:
        echo_json([state.as_dict() for state in states])
        return
    for state in states:
        click.echo(f"{state.service}: {state.running}/{state.desired} running")
