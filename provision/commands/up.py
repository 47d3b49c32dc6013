"""`provision up`: from an empty Docker host to a running GlitchTip and a DSN."""

from __future__ import annotations

import click

from provision.commands.options import (
    dir_option,
    echo_json,
    json_option,
    settings_options,
    target_option,
    wait_timeout_option,
)


@click.command("up")
@dir_option
@settings_options
@click.option(
    "--partman",
    is_flag=True,
    help="GlitchTip 5 only: pg_partman advanced partitioning (advanced_partitioning: true).",
)
@click.option(
    "--metrics/--no-metrics",
    "metrics",
    default=None,
    help="Also run Prometheus, Grafana and the exporters (compose.metrics.yml), or stop "
    "running them; the choice is recorded in .env, so later commands keep it.",
)
@click.option(
    "--pull",
    "pull_policy",
    type=click.Choice(["missing", "always", "never"]),
    default="missing",
    show_default=True,
    help="Pull images missing locally, all of them, or none (offline hosts, `docker load`).",
)
@wait_timeout_option
@target_option
@click.option(
    "--quiet", "-q", is_flag=True, help="Print nothing but the DSN (errors still go to stderr)."
)
@json_option("the steps, their timings and the result")
def up_command(
    directory, overrides, partman, metrics, pull_policy, wait_timeout, target, quiet, as_json
):
    """Start GlitchTip and provision it: admin, organization, project and DSN.

    \b
    Steps, in order (each is safe to run again; `up` after a failure resumes):
      preflight  engine, Compose, CPU/RAM/disk, web port, settings (changes nothing)
      render     compose files, monitoring/, .env (secrets generated once, kept 0600)
      pull       images missing locally (--pull never for offline hosts)
      start      docker compose up --detach --wait (skipped when nothing would change)
      migrate    the one-shot migrate exited 0
      partman    GlitchTip 5 with --partman: pg_partman partitions
      admin      the first superuser, unless it exists (password in .env, DJANGO_SUPERUSER_PASSWORD)
      project    API token, organization, team, project; DSN written to .glitchtiprc
      metrics    with --metrics (or recorded on): Prometheus, Grafana, exporters
      wrap-up    URL, admin, DSN and the next commands

    \b
    Examples:
      provision up
      provision up --pull never --quiet   # offline host with `docker load`ed images
      provision up --major 5 --partman    # GlitchTip 5 with pg_partman (first start only)
      provision up --metrics              # make metrics-start: add Prometheus and Grafana
      provision up --target swarm         # a Docker Swarm stack (see `provision scale`)

    \b
    With --target swarm (or target: swarm recorded): preflight (a Swarm manager), placement
    (the node label pinning Postgres and Valkey), render (stack.swarm.yml), secrets (Swarm
    secrets from .env), migrate (the migrate job completes first), deploy (docker stack
    deploy; web and worker roll start-first), admin, project, wrap-up.
    """
    import os
    from pathlib import Path

    from provision.stack.context import StackContext
    from provision.stack.wrap_up import summary_lines
    from provision.steps import HumanProgress, Progress, report_document

    overrides = dict(overrides or {})
    resume = ["provision", "up"]
    if Path(directory).resolve() != Path.cwd().resolve():
        resume += ["--dir", str(directory)]
    if partman:
        overrides["advanced_partitioning"] = True
        resume.append("--partman")
    if metrics is not None:
        overrides["metrics"] = metrics
        resume.append("--metrics" if metrics else "--no-metrics")
    if target is not None:
        overrides["target"] = target
        resume += ["--target", target]
    ctx = StackContext(
        directory=Path(directory),
        overrides=overrides,
        environ=os.environ,
        pull_policy=pull_policy,
        wait_timeout=float(wait_timeout),
        resume_command=" ".join(resume),
    )
    human = not (quiet or as_json)
    progress = HumanProgress(click.echo) if human else Progress()
    report = _run(ctx, progress)
    summary = ctx.results.get("summary")
    if as_json:
        echo_json(report_document(report, {"result": summary} if summary else None))
    elif human and report.ok:
        for line in summary_lines(summary):
            click.echo(line)
        verb = "changed" if report.changed else "nothing changed"
        click.echo(f"Done in {report.elapsed:.1f} s ({verb}).")
    elif quiet and report.ok and summary:
        click.echo(summary["dsn"])
    if report.error is not None:
        raise report.error


def _run(ctx, progress):
    """The steps for the deployment's target: one Compose host, or a Swarm stack."""
    from provision.deployment import load_settings
    from provision.errors import KitError, UsageError

    try:
        target = load_settings(ctx.directory, ctx.overrides, ctx.environ).target
    except KitError:
        target = "compose"  # the preflight step reports the bad setting with its fix
    if target == "kubernetes":
        raise UsageError(
            "`provision up` does not deploy to Kubernetes",
            "run `provision render --target kubernetes` and the helm commands it prints",
        )
    if target == "swarm":
        from provision.swarm.deploy import run_swarm_up

        return run_swarm_up(ctx, progress)
    from provision.stack.up import run_up

    return run_up(ctx, progress)
