"""Render: write compose files, monitoring/ and .env, then let Compose validate them.

Secrets are generated once (by `provision.render` through `provision.secrets`) and kept on every
later render, so running this step again rewrites nothing unless a setting changed.
"""

from __future__ import annotations

from pathlib import Path

from provision.deployment import compose_files
from provision.monitoring.files import MONITORING_DIR
from provision.stack.context import StackContext
from provision.steps import StepOutcome


def written_names(directory: Path, written: list[Path]) -> list[str]:
    """The written files for the step's one line: top-level names, `secrets/ (N files)` for the
    secret files (names only, never values), `python/ (N files)` for the worker's settings
    module, and `monitoring/ (N files)` for the other files in directories (monitoring/,
    proxy/)."""
    from provision.durability import WORKER_SETTINGS_FILE
    from provision.secret_files import SECRETS_DIR

    python_dir = WORKER_SETTINGS_FILE.partition("/")[0]
    names: set[str] = set()
    inside = {MONITORING_DIR: 0, python_dir: 0, SECRETS_DIR: 0}
    for path in written:
        relative = Path(path).relative_to(directory) if Path(path).is_absolute() else Path(path)
        if len(relative.parts) > 1:
            top = relative.parts[0]
            inside[top if top in (SECRETS_DIR, python_dir) else MONITORING_DIR] += 1
        else:
            names.add(relative.name)
    shown = sorted(names)
    for top, count in inside.items():
        if count:
            shown.append(f"{top}/ ({count} file{'s' if count > 1 else ''})")
    return shown


def render(ctx: StackContext) -> StepOutcome:
    """Write the rendered files (only those whose content changed) and validate them."""
    from provision.render import write_rendered
    from provision.runtime.compose_check import check_compose
    from provision.stack.metrics import remember_token

    settings = ctx.load_settings()
    remember_token(ctx)  # the metrics step recreates the token's users if a later step changes it
    written = write_rendered(settings) or []
    directory = Path(settings.directory)
    files = compose_files(settings)
    if written:
        check_compose(directory, files)  # its message names the setting to fix
    else:
        # Unchanged files passed that check when they were written; `compose config` still
        # runs (a hand-edited .env, another Compose), and its answer serves the later steps.
        ctx.services()
    names = written_names(directory, written)
    if names:
        return StepOutcome(f"wrote {', '.join(names)}; {' + '.join(files)} valid", changed=True)
    return StepOutcome(f"rendered files and .env unchanged; {' + '.join(files)} valid", False)
