"""`provision load`: a headless load test with real SDK traffic, and the Locust web UI."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options
from provision.errors import UsageError


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from provision.load.options import parse_duration

    try:
        return parse_duration(value)
    except UsageError as error:
        raise click.BadParameter(error.fix or error.message, ctx, param) from None


def _mix(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from provision.load.payloads import parse_mix

    try:
        return parse_mix(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


@click.command("load")
@dir_option
@settings_options
@click.option("--users", type=int, default=20, show_default=True, help="Simulated apps (SDKs).")
@click.option(
    "--spawn-rate",
    type=float,
    default=10.0,
    show_default=True,
    help="Users started per second.",
)
@click.option(
    "--duration",
    default="30s",
    show_default=True,
    callback=_duration,
    help="How long the load lasts: 30s, 2m, 1h30m (Locust's --run-time).",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Locust worker containers (0: the master generates the load itself).",
)
@click.option(
    "--target",
    metavar="URL",
    help="Where to send the load [default: the stack's web service, http://web:8000, with "
    "the public Host header], seen from the Locust containers; another address of this "
    "deployment (its TLS proxy, say): what was stored is always counted on this deployment.",
)
@click.option(
    "--allow-remote-target",
    is_flag=True,
    help="Allow a --target that is neither this host nor a service of the stack.",
)
@click.option(
    "--project",
    metavar="NAME",
    help="Project that receives the events, created if missing [default: load_project, "
    "loadtest]; never the production project.",
)
@click.option(
    "--issues",
    "distinct_issues",
    type=int,
    default=50,
    show_default=True,
    help="Distinct error signatures per platform (grouping is exercised, issues stay bounded).",
)
@click.option(
    "--mix",
    callback=_mix,
    metavar="KIND=W,...",
    help="Weights of error_gzip (python SDK, gzip envelope), error_plain (browser SDK, plain "
    "envelope), message, transaction, store (legacy /store/) "
    "[default: error_gzip=50,error_plain=15,message=10,transaction=20,store=5].",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Requests per second per user; 0 sends as fast as GlitchTip answers.",
)
@click.option(
    "--drain-timeout",
    type=click.IntRange(5, 3600),
    default=120,
    show_default=True,
    help="Seconds to wait after the load for the worker to empty its queue.",
)
@click.option("--ui", is_flag=True, help="Start the Locust web UI instead (make locust-start).")
@click.option("--stop", is_flag=True, help="Stop the web UI and every Locust container.")
@json_option("the result")
def load_command(
    directory,
    overrides,
    users,
    spawn_rate,
    duration,
    workers,
    target,
    allow_remote_target,
    project,
    distinct_issues,
    mix,
    rate,
    drain_timeout,
    ui,
    stop,
    as_json,
):
    """Load the running GlitchTip with SDK traffic and report what it stored.

    Sends what real SDKs send (gzip envelopes from the python SDK, plain envelopes from the
    browser SDK, messages, transactions with spans, a few legacy /store/ events) through the DSN
    of a dedicated project, then measures beyond HTTP 200: events the worker stored per second
    and how long its queue took to drain. Locust's CSV and HTML report go to
    reports/<UTC timestamp>/.

    \b
    Examples:
      provision load                          # 30 s, 20 users, against the local stack
      provision load --duration 2m --users 50 --workers 2 --json
      provision load --mix error_gzip=1,transaction=1 --issues 10
      provision load --ui                     # the web UI on 127.0.0.1:8089 (make locust-start)
      provision load --stop                   # make locust-stop
    """
    import os

    from provision.load.run import run_load, start_ui, stop_ui

    if ui and stop:
        raise UsageError("--ui and --stop do opposite things", "give one of them")
    if stop:
        stopped = stop_ui(directory, overrides, os.environ)
        if as_json:
            echo_json({"stopped": stopped})
        else:
            click.echo("Locust stopped." if stopped else "Locust was not running.")
        return
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    if ui:
        started = start_ui(
            directory,
            workers=workers,
            project=project,
            distinct_issues=distinct_issues,
            mix=mix,
            rate=rate,
            overrides=overrides,
            environ=os.environ,
            progress=say,
        )
        if as_json:
            echo_json(started)
        else:
            click.echo(
                f"Locust's web UI: {started['url']} (project {started['project']}, "
                f"{started['workers']} worker(s), target {started['target']}); "
                "stop it with make locust-stop"
            )
        return
    result = run_load(
        directory,
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration,
        workers=workers,
        target=target,
        allow_remote_target=allow_remote_target,
        project=project,
        distinct_issues=distinct_issues,
        mix=mix,
        rate=rate,
        drain_timeout_s=float(drain_timeout),
        overrides=overrides,
        environ=os.environ,
        progress=say,
    )
    if as_json:
        echo_json(result)
        return
    from provision.load.summary import summary_lines

    for line in summary_lines(result):
        click.echo(line)
