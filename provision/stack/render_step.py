"""Render: write compose.yml, compose.part.yml and .env, then let Compose validate them.

Secrets are generated once (by `provision.render` through `provision.secrets`) and kept on every
later render, so running this step again rewrites nothing unless a setting changed.
"""

from __future__ import annotations

from pathlib import Path

from provision.stack.compose import COMPOSE_FILE, PARTMAN_FILE, uses_partman
from provision.stack.context import StackContext
from provision.stack.runner import StepOutcome


def compose_files(settings) -> list[str]:
    """The compose files this deployment runs with, in `-f` order."""
    files = [COMPOSE_FILE]
    if uses_partman(settings):
        files.append(PARTMAN_FILE)
    return files


def render(ctx: StackContext) -> StepOutcome:
    """Write the rendered files (only those whose content changed) and validate them."""
    from provision.compose_check import check_compose
    from provision.render import write_rendered

    settings = ctx.load_settings()
    written = write_rendered(settings) or []
    directory = Path(settings.directory)
    files = compose_files(settings)
    if written:
        check_compose(directory, files)  # its message names the setting to fix
    else:
        # Unchanged files passed that check when they were written; `compose config` still
        # runs (a hand-edited .env, another Compose), and its answer serves the later steps.
        ctx.services()
    names = sorted({Path(path).name for path in written})
    if names:
        return StepOutcome(f"wrote {', '.join(names)}; {' + '.join(files)} valid", changed=True)
    return StepOutcome(f"rendered files and .env unchanged; {' + '.join(files)} valid", False)
