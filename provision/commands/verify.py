"""`provision verify`: does the deployment work end to end? One line per check."""

from __future__ import annotations

import click

from provision.commands.options import (
    FiniteNumber,
    Seconds,
    dir_option,
    echo_json,
    json_option,
    settings_options,
)

CHECK_NAMES = ("url", "health", "settings", "token", "services", "disk", "queue", "event")
FAILED_EXIT = 3  # like `status --check`: 1 and 2 stay "the kit failed" and "bad input"


@click.command("verify")
@dir_option
@settings_options
@click.option(
    "--event-timeout",
    type=Seconds(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds the worker has to process the test event sent through the DSN.",
)
@click.option(
    "--min-free-gib",
    type=FiniteNumber(0, 1e6),
    default=2.0,
    show_default=True,
    help="Fail the disk check below this many GiB free (Docker data root and deployment dir).",
)
@click.option(
    "--skip",
    type=click.Choice(CHECK_NAMES),
    multiple=True,
    help="Leave a check out (repeatable), e.g. --skip event on a host that must not ingest.",
)
@click.option(
    "--url",
    envvar="GLITCHTIP_URL",
    help="GlitchTip's address for the API checks [env GLITCHTIP_URL; default: the published "
    "port, or the public URL with target kubernetes].",
)
@click.option(
    "--token",
    envvar="GLITCHTIP_API_TOKEN",
    help="API token [env GLITCHTIP_API_TOKEN; default: the one in .env].",
)
@json_option("every check")
def verify_command(directory, overrides, event_timeout, min_free_gib, skip, url, token, as_json):
    """Check a running deployment end to end, from the outside in.

    \b
    Checks, in order (a failed one does not stop the others):
      url       the public URL (GLITCHTIP_DOMAIN) answers /_health/; with https the
                certificate is verified and must not expire within 14 days
      health    /_health/ on the published port
      settings  /api/settings/ (reads the database)
      token     the API token (--token, else the one in .env) is accepted (GET /api/0/
                names its user)
      services  every compose service running and healthy (migrate exited 0)
      disk      free space of the Docker data root and the deployment directory
      queue     no event waits longer than it should: none unacknowledged for over a
                minute (a dead worker's), a backlog that drains, no dead-lettered batch,
                Valkey not full (bundled Valkey only)
      event     an event sent to the kit's own project "GlitchTip kit verify" (created
                once, never your project) shows up within --event-timeout; the latency is
                reported and its one issue resolved; the DSN in .glitchtiprc must be a key
                of its project

    Exit status 0 when every check passes, 3 when one fails (1: the kit could not run).

    \b
    Examples:
      provision verify
      provision verify --json --event-timeout 60   # after a deploy, in CI
      provision verify --url https://glitchtip.example.com --skip services --skip disk
      */15 * * * * cd /srv/glitchtip && .venv/bin/provision verify >/dev/null || echo FAIL
    """
    import os

    from provision.ops.verify import check_line, run_verify
    from provision.stack.context import StackContext

    if url:
        from provision.errors import UsageError
        from provision.settings import Invalid, parse_public_url

        try:
            url = parse_public_url(url)
        except Invalid as problem:
            raise UsageError(f"--url: {problem.problem}", problem.fix) from None
    ctx = StackContext(directory=directory, overrides=overrides, environ=os.environ)
    wanted = [name for name in CHECK_NAMES if name not in skip]
    report = run_verify(
        ctx,
        event_timeout=event_timeout,
        min_free_gib=min_free_gib,
        checks=wanted,
        on_check=None if as_json else lambda check: click.echo(check_line(check)),
        url=url,
        token=token,
    )
    if as_json:
        echo_json(report.as_dict())
    else:
        failed = report.failed()
        click.echo(
            "verify: all checks passed"
            if not failed
            else f"verify: {len(failed)} of {len(report.checks)} checks FAILED"
        )
    if not report.ok:
        raise click.exceptions.Exit(FAILED_EXIT)
