"""`provision restore FILE`: bring a backup back, after checking it fits."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import Seconds, dir_option, echo_json, json_option, settings_options


@click.command("restore")
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False))
@dir_option
@settings_options
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a database that holds data (backed up first; the path is printed).",
)
@click.option(
    "--archived-identity",
    is_flag=True,
    help="Take the archive's Compose project name, bind address, ports, domain, target and "
    "images instead of this host's (default: this host keeps its own).",
)
@click.option("--no-verify", is_flag=True, help="Skip `provision verify` at the end.")
@click.option(
    "--event-timeout",
    type=Seconds(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds verify's test event may take.",
)
@json_option("the result")
def restore_command(
    directory, overrides, archive, replace, archived_identity, no_verify, event_timeout, as_json
):
    """Restore a backup written by `provision backup`.

    \b
    Before anything changes: every member of the archive is checked against the manifest's
    sizes and SHA-256 checksums, the files in it (.env lines, .glitchtiprc, glitchtip.yaml)
    and the settings they give, the paths it writes; a backup from a newer GlitchTip major, a
    dump from a newer Postgres than this server, and a database that already holds data
    (without --replace) are refused (exit 2, every file as it was; into an empty directory
    nothing is left behind).
    \b
    Then: web and worker stop, the database is recreated and pg_restore'd (streamed), the
    uploads volume refilled, .env and .glitchtiprc restored (the current ones kept as
    <name>.before-restore-<UTC time>; POSTGRES_PASSWORD and glitchtip.yaml stay this host's,
    and so do its Compose project, address, ports and domain unless --archived-identity),
    the migrations run, the stack starts and `provision verify` runs. A failure after the
    safety backup of --replace names it.

    \b
    Examples:
      provision restore backups/glitchtip-glitchtip-20261126T101500Z-6.tar
      provision restore old.tar --replace      # the current state is backed up first
    """
    import os

    from provision.ops.manifest import as_dict
    from provision.ops.restore import restore_backup
    from provision.ops.verify import check_line
    from provision.stack.context import StackContext

    ctx = StackContext(directory=directory, overrides=overrides, environ=os.environ)
    progress = None if as_json else (lambda line: click.echo(line, err=True))
    result = restore_backup(
        ctx,
        archive,
        replace=replace,
        archived_identity=archived_identity,
        progress=progress,
        verify=not no_verify,
        event_timeout=event_timeout,
    )
    report = result.verify
    if as_json:
        document = {
            "ok": report is None or report.ok,
            "seconds": round(result.seconds, 2),
            "pre_restore_backup": str(result.pre_restore_backup or "") or None,
            "kept_aside": [str(p) for p in result.kept_aside],
            "manifest": as_dict(result.manifest),
            "verify": report.as_dict() if report is not None else None,
        }
        echo_json(document)
    else:
        if report is not None:
            for check in report.checks:
                click.echo(check_line(check))
        click.echo(f"restored {archive} in {result.seconds:.1f} s ({result.manifest.summary()})")
        if result.pre_restore_backup:
            click.echo(f"the state before the restore is in {result.pre_restore_backup}")
    if report is not None and not report.ok:
        raise click.exceptions.Exit(3)
