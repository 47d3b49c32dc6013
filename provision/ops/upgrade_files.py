"""The deployment's files during an upgrade: a byte-exact snapshot, the settings edit, the undo.

An upgrade changes the settings of record (glitchtip.yaml, and `.env` for the Postgres volume)
and renders again; a rollback must put every file back exactly as it was, bytes and mode, and
remove a file the upgrade created. The snapshot is taken under the deployment lock and kept in
memory (these files are a few KiB); it never goes to disk, since `.env` holds the secrets.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Every file `render` or the upgrade may write: these names, and every file under RENDERED_DIRS
# (compose.metrics.yml and monitoring/ name the GlitchTip image and hold per-major scrape
# settings; a rollback that left them new would start the new image beside the old database).
FILES = (
    "glitchtip.yaml",
    ".env",
    "compose.yml",
    "compose.part.yml",
    "compose.metrics.yml",
    "compose.locust.yml",
    ".glitchtiprc",
)
RENDERED_DIRS = ("monitoring", "proxy", "secrets", "python")
SETTINGS_FILE = "glitchtip.yaml"


@dataclass(frozen=True)
class Snapshot:
    """name -> (bytes, mode) of each file that existed; None for one that did not."""

    directory: Path
    files: Mapping[str, tuple[bytes, int] | None]


def _read(path: Path) -> tuple[bytes, int] | None:
    from provision.fileio import check_writable_target

    check_writable_target(path)  # a symlink or FIFO here is refused, never followed
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return Path(path).read_bytes(), stat.S_IMODE(info.st_mode)


def _rendered_names(directory: Path) -> list[str]:
    """FILES, then the regular files under RENDERED_DIRS (links neither followed nor kept)."""
    names = list(FILES)
    for top in RENDERED_DIRS:
        root = directory / top
        if root.is_symlink() or not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if not path.is_symlink() and path.is_file():
                    names.append(str(path.relative_to(directory)))
    return names


def take_snapshot(directory: Path) -> Snapshot:
    """The deployment's files as they are now (under the deployment lock)."""
    from provision.locking import locked

    directory = Path(directory)
    with locked(directory):
        return Snapshot(
            directory, {name: _read(directory / name) for name in _rendered_names(directory)}
        )


def restore_snapshot(snapshot: Snapshot) -> list[str]:
    """Put every file back as the snapshot has it (atomically, same mode); return what changed."""
    from provision.fileio import write_atomic
    from provision.locking import locked

    restored = []
    with locked(snapshot.directory):
        for name, before in snapshot.files.items():
            path = snapshot.directory / name
            if _read(path) == before:
                continue
            if before is None:
                path.unlink()
            else:
                data, mode = before
                write_atomic(path, data.decode("utf-8"), mode=mode)
            restored.append(name)
    return restored


def _scalar(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


def edit_settings_text(text: str, values: Mapping[str, Any], stamp: str) -> str:
    """`text` (a glitchtip.yaml) with each of `values` set: an active `name:` line is replaced in
    place (comments elsewhere kept), a missing one is appended under a comment saying who set it.
    glitchtip.yaml is flat `name: value` lines (the settings loader refuses anything else)."""
    lines = text.splitlines()
    missing = []
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*:")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if hits:
            lines[hits[0]] = f"{name}: {_scalar(value)}"
        else:
            missing.append(f"{name}: {_scalar(value)}")
    if missing:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"# set by `provision upgrade` {stamp}")
        lines.extend(missing)
    return "\n".join(lines) + "\n"


def write_settings(
    directory: Path,
    values: Mapping[str, Any],
    env: Mapping[str, str],
    stamp: str,
    environ: Mapping[str, str] | None = None,
):
    """Write `values` into glitchtip.yaml and `env` into `.env`, after proving that the result
    loads as valid settings; under the deployment lock. Returns the new settings."""
    from provision.envfile import update_env_file
    from provision.fileio import PUBLIC_FILE_MODE, read_text_file, write_atomic
    from provision.locking import locked

    directory = Path(directory)
    path = directory / SETTINGS_FILE
    with locked(directory):
        old = read_text_file(path) or ""
        new = edit_settings_text(old, values, stamp) if values else old
        check_settings_text(directory, new, env, environ)
        if values:
            mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else PUBLIC_FILE_MODE
            write_atomic(path, new, mode=mode)
        if env:
            update_env_file(directory / ".env", dict(env))


def check_plan_settings(
    directory: Path,
    values: Mapping[str, Any],
    env: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
):
    """Refuse (`SettingsError`, nothing written) settings the upgrade would write but the kit
    would not load: checked in preflight, before anything stops."""
    from provision.fileio import read_text_file

    text = read_text_file(Path(directory) / SETTINGS_FILE) or ""
    check_settings_text(
        directory, edit_settings_text(text, values, "check") if values else text, env, environ
    )


def check_settings_text(
    directory: Path, text: str, env: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> None:
    """Load `text` as glitchtip.yaml (with this `.env` plus `env`) in a private scratch
    directory inside the deployment: a `SettingsError` here means nothing was written."""
    import tempfile

    from provision.deployment import load_settings
    from provision.envfile import update_env_file
    from provision.fileio import SECRET_FILE_MODE, read_text_file, write_atomic

    with tempfile.TemporaryDirectory(prefix=".upgrade-check-", dir=directory) as scratch:
        root = Path(scratch)
        os.chmod(root, 0o700)
        write_atomic(root / SETTINGS_FILE, text)
        dotenv = read_text_file(Path(directory) / ".env")
        if dotenv is not None:
            write_atomic(root / ".env", dotenv, mode=SECRET_FILE_MODE)
            if env:
                update_env_file(root / ".env", dict(env))
        load_settings(root, environ=os.environ if environ is None else environ)
