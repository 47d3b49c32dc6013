"""The deployment files a restore writes: planned and checked first, written in one step last.

`plan_files` decides every byte before anything is stopped or replaced, and refuses (exit 2,
nothing changed) what cannot be written: a `.env` member with a bad or duplicated line, a
`.glitchtiprc` that is not an INI file, a `glitchtip.yaml` or `.env` whose settings do not load,
a symbolic link or other non-regular file where the kit would write. `apply_files` writes the
plan as one change (`fileio.write_files_atomic`) and keeps what it replaces aside. Everything
restore does to the deployment's files goes through these two functions (a later change that
derives more files from `.env`, such as secret files for the containers, extends them).

What comes from where:

- `.env` and `.glitchtiprc` belong to the data (the admin's password, the API token and the DSN
  keys live in the restored database), so they come from the archive; the current ones are kept
  as `<name>.before-restore-<UTC time>` (0600).
- This host's own keys win over the archive's, always: `POSTGRES_PASSWORD` (the Postgres
  volume's password, which a dump does not carry) and `GLITCHTIP_KIT_POSTGRES_VOLUME` (which
  volume holds this host's data); on an existing deployment also `GLITCHTIP_KIT_MAJOR` (the
  GlitchTip this host runs: an older backup is migrated up, never the host downgraded).
- Identity: which stack this host is (`IDENTITY_ENV`: Compose project, bind address, port,
  domain, metrics ports, target; in `glitchtip.yaml` also the images) stays this host's: the
  archive's recorded values are dropped (or replaced by the host's) unless the user asks for
  them with `archived_identity` (`restore --archived-identity`). Otherwise the data would go
  into one Compose project and `up` would run another, or a port bound to 127.0.0.1 would
  become public because the archived host had 0.0.0.0.
- `glitchtip.yaml`: an existing one stays (this host's configuration); into a directory without
  one the archive's is used, with its identity lines commented out (same rule).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import UsageError

ENV = ".env"
RC = ".glitchtiprc"
SETTINGS = "glitchtip.yaml"
SECRET_NAMES = (ENV, RC)
# .env keys that always stay this host's (see the module docstring): the password only where
# the host has one (a new host creates its volume with the archive's), the rest emptied too.
HOST_PASSWORD = "POSTGRES_PASSWORD"
HOST_KEYS = ("GLITCHTIP_KIT_POSTGRES_VOLUME",)
# .env keys that say which stack this host is (settings.RECORDED_WHEN_GIVEN's, minus the
# choices that belong to the data: major, profile, replicas).
IDENTITY_ENV = (
    "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME",
    "GLITCHTIP_KIT_BIND_ADDRESS",
    "GLITCHTIP_KIT_HTTP_PORT",
    "GLITCHTIP_DOMAIN",
    "GLITCHTIP_KIT_PROMETHEUS_PORT",
    "GLITCHTIP_KIT_GRAFANA_PORT",
    "GLITCHTIP_KIT_TARGET",
)
# glitchtip.yaml settings that say which stack this host is, and which images it runs.
IDENTITY_SETTINGS = (
    "compose_project_name",
    "bind_address",
    "http_port",
    "glitchtip_domain",
    "prometheus_port",
    "grafana_port",
    "target",
    "glitchtip_image",
    "postgres_image",
    "valkey_image",
    "partman_image",
)
IDENTITY_OPTION = "--archived-identity"


@dataclass
class FilePlan:
    """The files a restore will write (name -> content) and what it decided on the way."""

    directory: Path
    contents: dict[str, str] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # what is there now (kept aside)
    notes: list[str] = field(default_factory=list)

    def mode(self, name: str) -> int:
        return 0o600 if name in SECRET_NAMES else 0o644


def _refuse(what: str, fix: str) -> UsageError:
    return UsageError(f"{what}; nothing was changed", fix)


def _another_archive() -> str:
    return "use another archive (or take a new one with `provision backup`)"


def _check_rc(text: str) -> None:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source="the backup's .glitchtiprc")
    except configparser.Error as exc:
        raise _refuse(
            f"the backup's .glitchtiprc is not an INI file ({exc.__class__.__name__})",
            _another_archive(),
        ) from None


def _env_without_identity(
    archived_text: str, host: dict[str, str], keys: tuple[str, ...]
) -> tuple[str, list[str]]:
    """The archive's `.env` with `keys` set to this host's values, or emptied where the host has
    none (an empty recorded value means "not recorded"); the keys that changed."""
    from provision.envfile import parse_env, set_env_values

    archived = parse_env(archived_text, "the backup's .env")
    wanted = {key: host.get(key, "") for key in keys if key in archived or host.get(key)}
    if host.get(HOST_PASSWORD):  # `export KEY=` lines in the archive too (set_env_values)
        wanted[HOST_PASSWORD] = host[HOST_PASSWORD]
    changed = [key for key, value in wanted.items() if archived.get(key, "") != value]
    return set_env_values(archived_text, wanted), changed


def _yaml_without_identity(text: str) -> tuple[str, list[str]]:
    """The archive's glitchtip.yaml with its identity settings commented out; refused when one
    is written in a form a line cannot hold (a flow mapping, a multi-line value)."""
    import yaml

    lines = text.splitlines()
    dropped = []
    pattern = re.compile(rf"^({'|'.join(IDENTITY_SETTINGS)})\s*:")
    for index, line in enumerate(lines):
        match = pattern.match(line)
        if match:
            lines[index] = f"# {line}  # left out by restore (this host's identity)"
            dropped.append(match.group(1))
    result = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    try:
        data = yaml.safe_load(result)
    except yaml.YAMLError:
        data = None  # the settings loader names the problem with the line
    left = sorted(set(IDENTITY_SETTINGS) & set(data)) if isinstance(data, dict) else []
    if left:
        raise _refuse(
            f"the backup's glitchtip.yaml sets {left[0]} in a form restore cannot leave out",
            f"restore with {IDENTITY_OPTION} to take the archived identity as it is, or put a "
            "glitchtip.yaml of your own in the directory first",
        )
    return result, dropped


def present(directory: Path) -> bool:
    """Whether `directory` already is a deployment (a glitchtip.yaml or .env, even a link)."""
    import os

    return any(os.path.lexists(Path(directory) / name) for name in (SETTINGS, ENV))


def plan_files(
    directory: Path,
    files: dict[str, str],
    *,
    new_host: bool,
    archived_identity: bool = False,
) -> FilePlan:
    """Decide what restore writes (see the module docstring); refuse before anything changes."""
    from provision.envfile import parse_env, read_env_file
    from provision.fileio import check_writable_target, read_text_file

    directory = Path(directory)
    plan = FilePlan(directory)
    for name in (SETTINGS, ENV, RC):  # where restore writes, and where it reads the host's
        check_writable_target(directory / name)
        current = read_text_file(directory / name)
        if current is not None:
            plan.current[name] = current
    host = read_env_file(directory / ENV) if ENV in plan.current else {}
    env_text = files.get(ENV)
    if env_text is not None:
        parse_env(env_text, "the backup's .env")  # a bad or doubled line: one line, exit 2
        keys = HOST_KEYS + (() if new_host else ("GLITCHTIP_KIT_MAJOR",))
        if not archived_identity:
            keys += IDENTITY_ENV
        env_text, changed = _env_without_identity(env_text, host, keys)
        identity = [key for key in changed if key in IDENTITY_ENV]
        if identity:
            plan.notes.append(
                f"kept this host's {', '.join(identity)} (the archive's with {IDENTITY_OPTION})"
            )
        plan.contents[ENV] = env_text
    if RC in files:
        _check_rc(files[RC])
        plan.contents[RC] = files[RC]
    if SETTINGS in files and SETTINGS not in plan.current:
        text = files[SETTINGS]
        if not archived_identity:
            text, dropped = _yaml_without_identity(text)
            if dropped:
                plan.notes.append(
                    f"left out the archive's {', '.join(dropped)} from glitchtip.yaml "
                    f"(this host's defaults; the archive's with {IDENTITY_OPTION})"
                )
        plan.contents[SETTINGS] = text
    return plan


def planned_settings(plan: FilePlan, overrides: Any, environ: Any) -> Any:
    """The settings the deployment will have once `plan` is written, loaded as the kit loads
    them, from a scratch copy outside the deployment (nothing is written there): a backup whose
    glitchtip.yaml or .env does not load, or that would point at an external database, is
    refused now rather than after the data was replaced."""
    import os

    from provision.deployment import load_settings

    scratch = Path(tempfile.mkdtemp(prefix="glitchtip-kit-restore-"))  # 0700, removed after
    try:
        for name in (SETTINGS, ENV):
            text = plan.contents.get(name, plan.current.get(name))
            if text is not None:
                fd = os.open(scratch / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
        return load_settings(scratch, overrides, environ)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def apply_files(plan: FilePlan) -> list[Path]:
    """Write the plan as one change (every file or none) and keep the replaced ones aside
    (0600); return the kept-aside paths. Holds the deployment lock."""
    from provision.fileio import write_files_atomic
    from provision.locking import locked

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = plan.directory
    writes: list[tuple[Path, str, int]] = []
    kept: list[Path] = []
    for name, content in plan.contents.items():
        existing = plan.current.get(name)
        if existing is not None and existing != content:
            aside = directory / f"{name}.before-restore-{stamp}"
            writes.append((aside, existing, 0o600))
            kept.append(aside)
        writes.append((directory / name, content, plan.mode(name)))
    with locked(directory):
        write_files_atomic(writes)
    return kept


def remove_created(directory: Path, before: set[str]) -> None:
    """Undo a restore into an empty directory that stopped before the data moved: remove every
    entry that was not there (`before`: the names at the start). Used only on a directory the
    restore found without glitchtip.yaml and .env, so nothing of the user's is touched."""
    for path in Path(directory).iterdir():
        if path.name in before:
            continue
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
