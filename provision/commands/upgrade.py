"""`provision upgrade`: a new GlitchTip image or major, or a new Postgres major, safely."""

from __future__ import annotations

import click

from provision.commands.options import (
    Seconds,
    dir_option,
    echo_json,
    json_option,
    wait_timeout_option,
)


@click.command("upgrade")
@dir_option
@click.option(
    "--to",
    "to",
    metavar="VERSION|IMAGE",
    default=None,
    help="GlitchTip to move to: a tag of the current image's repository (6.2.7; 6.2.6 from a "
    "5 deployment is the 5 -> 6 upgrade) or a whole image (registry/glitchtip:6.2.7). "
    "Default: the kit's pinned image of the current major.",
)
@click.option(
    "--postgres",
    metavar="VERSION|IMAGE",
    default=None,
    help="Also move the database to a newer Postgres major (18, or postgres:18.1): dump, "
    "restore into a new volume in the new image's layout; the old volume is kept.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option(
    "--event-timeout",
    type=Seconds(1, 600),
    default=60.0,
    show_default=True,
    help="Seconds `verify` waits for its test event after the upgrade.",
)
@wait_timeout_option
@json_option("the plan, the steps and the result")
def upgrade_command(directory, to, postgres, dry_run, event_timeout, wait_timeout, as_json):
    """Upgrade GlitchTip (and its major) or Postgres, with a backup and a rollback.

    \b
    Steps (preflight changes nothing; a failure after it rolls everything back):
      preflight  the stack runs; versions; refuses downgrades, pg_partman to 6, unknown images
      pull       the new images, while GlitchTip still serves
      stop       web and worker stop (GlitchTip is down until `start`)
      backup     `provision backup` into backups/ (kept afterwards)
      settings   glitchtip.yaml (and .env) updated, compose.yml rendered
      postgres   --postgres only: new server on a new volume, the backup's dump restored
      start      migrations by the new image, then web and worker (docker compose up --wait)
      verify     `provision verify`, an event through the DSN included
    On a failure: the files go back byte for byte (previous images and volume), the database
    is restored from the backup when the new image's migrations may have touched it, the stack
    is started and verified, and one line says what happened and where the backup is.

    \b
    GlitchTip 5 -> 6 (worker, port, retention variable follow from the major): Postgres and
    Valkey stay as they are (pinned in glitchtip.yaml); move Postgres with --postgres, in the
    same run or later. A pg_partman deployment is refused (GlitchTip 6 has no pg_partman).
    The old Postgres volume is never deleted: the command to remove it is printed.

    \b
    Examples:
      provision upgrade --dry-run                 # what would happen
      provision upgrade --to 6.2.7                # same repository, new tag
      provision upgrade --to 6.2.6                # from GlitchTip 5: the major upgrade
      provision upgrade --to 6.2.6 --postgres 18.1
      provision upgrade --postgres 18.1           # Postgres only
    """
    import os
    from pathlib import Path

    from provision.ops.pg_upgrade import removal_command
    from provision.ops.upgrade import default_ops, failure_error, prepare, run_upgrade
    from provision.stack.context import StackContext
    from provision.steps import HumanProgress, Progress

    ctx = StackContext(
        directory=Path(directory),
        environ=os.environ,
        wait_timeout=float(wait_timeout),
        resume_command="provision upgrade",
    )
    ops = default_ops()
    state = prepare(ctx, to=to, postgres=postgres, ops=ops, event_timeout=event_timeout)
    plan = state.plan
    if as_json and (dry_run or plan.nothing_to_do):
        echo_json({"ok": True, "changed": False, "plan": plan.as_dict()})
        return
    if not as_json:
        current = plan.current
        postgres_part = (
            f"; Postgres {current.postgres_major} -> {plan.postgres_major} "
            f"(volume {plan.new_volume})"
            if plan.postgres_upgrade
            else f"; Postgres {current.postgres_major} ({plan.postgres_image})"
            if plan.postgres_image != current.postgres_image
            else f"; Postgres {current.postgres_major} stays"
        )
        click.echo(
            f"GlitchTip {current.glitchtip_image} (reports {current.server_version or '?'}) -> "
            f"{plan.glitchtip_image}{postgres_part}"
        )
        for name, value in plan.settings.items():
            click.echo(f"  glitchtip.yaml: {name}: {value}")
        for note in plan.notes:
            click.echo(f"  note: {note}")
    if plan.nothing_to_do:
        click.echo("Nothing to do: already on that image and Postgres major.")
        return
    if dry_run:
        click.echo(f"Steps: {', '.join(plan.steps())} (dry run: nothing changed)")
        return
    progress = Progress() if as_json else HumanProgress(click.echo)
    outcome = run_upgrade(ctx, state, ops, progress)
    if as_json:
        echo_json(outcome.as_dict())
    if not outcome.ok:
        raise failure_error(outcome)
    if not as_json:
        click.echo(f"Upgraded to {plan.glitchtip_image} in {outcome.report.elapsed:.1f} s.")
        click.echo(f"Backup taken before the upgrade: {state.backup}")
        if plan.postgres_upgrade:
            old = plan.current.postgres_volume
            click.echo(
                f"The old Postgres {plan.current.postgres_major} volume {old} is kept; once you "
                f"no longer need it: {removal_command(old)}"
            )
