"""`provision backup`: one archive with the database, the uploads and the deployment's files."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options


@click.command("backup")
@dir_option
@settings_options
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=True),
    default=None,
    help="Archive file to write (never overwritten), or a directory to put it in. "
    "Default: backups/glitchtip-<UTC time>-<major>.tar in the deployment directory.",
)
@click.option(
    "--keep",
    type=click.IntRange(1, 100000),
    default=None,
    help="After a successful backup, delete all but the N newest kit archives in the "
    "archive's directory (only files named glitchtip-<time>-<major>.tar; never links).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress; print only the archive's path.")
@json_option("the result (path, manifest)")
def backup_command(directory, overrides, output, keep, quiet, as_json):
    """Back up the deployment while GlitchTip runs: database, uploads, files.

    \b
    The archive (an uncompressed tar, mode 0600) holds:
      database.dump   pg_dump -Fc, taken inside the postgres container (one snapshot)
      uploads.tar     the uploads volume, read-only
      files/          glitchtip.yaml, .env (secrets!), .glitchtiprc
      manifest.json   kit version, GlitchTip and Postgres majors and images, sizes, SHA-256
    It is streamed (a database larger than memory is fine) into a temporary file beside the
    target and renamed only when complete: a failure leaves no partial archive. Progress
    (bytes so far) goes to stderr. The stack must be running (`provision up`).
    Keep archives somewhere else too: they hold every event and the secrets in .env.

    \b
    Examples:
      provision backup
      provision backup --keep 7                        # daily from cron, a week kept
      provision backup -o /mnt/backup/ --keep 30 -q
    """
    import os

    from provision.ops.backup import create_backup
    from provision.ops.manifest import as_dict, human_size
    from provision.stack.context import StackContext

    ctx = StackContext(directory=directory, overrides=overrides, environ=os.environ)
    progress = None if (quiet or as_json) else (lambda line: click.echo(line, err=True))
    result = create_backup(ctx, output=output, keep=keep, progress=progress)
    size = result.path.stat().st_size
    if as_json:
        document = {
            "path": str(result.path),
            "bytes": size,
            "seconds": round(result.seconds, 2),
            "pruned": [str(p) for p in result.pruned],
            "manifest": as_dict(result.manifest),
        }
        echo_json(document)
    elif quiet:
        click.echo(str(result.path))
    else:
        click.echo(
            f"backup written: {result.path} ({human_size(size)}, {result.seconds:.1f} s; "
            f"{result.manifest.summary()})"
        )
        for path in result.pruned:
            click.echo(f"pruned: {path}")
