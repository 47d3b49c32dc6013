"""Write the DSN where apps and tools look for it, and print it in the forms pipelines need.

`.glitchtiprc` is the kit's own format: INI, `[defaults]` with `org`, `project` and `url` = the
DSN, which the kit's client apps read. sentry-cli and GlitchTip's CLI give `url` another meaning
(the server's address) and read the DSN from `[auth] dsn`, so `.sentryclirc` is written in that
form instead of mixing the two. Both files are written atomically with mode 0600; other sections,
keys and comments already in the file are kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from provision.errors import UsageError
from provision.fileio import SECRET_FILE_MODE, check_writable_target, read_text_file, write_atomic
from provision.locking import locked_for

RC_FORMATS = ("glitchtiprc", "sentryclirc")
PRINT_FORMATS = ("text", "env", "json", "ini")
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]")


def update_ini(text: str, values: dict[str, dict[str, str]]) -> str:
    """`text` with `values[section][key]` set; every other line is kept as it was."""
    lines = text.splitlines()
    pending = {section: dict(keys) for section, keys in values.items()}
    section: str | None = None
    out: list[str] = []

    def flush(name: str | None) -> None:
        # Append keys of the section being left that were not found in it.
        if name in pending:
            while out and not out[-1].strip():
                out.pop()
            out.extend(f"{k} = {v}" for k, v in pending.pop(name).items())
            out.append("")

    for line in lines:
        match = _SECTION.match(line)
        if match:
            flush(section)
            section = match.group(1).strip()
            out.append(line)
            continue
        key = _KEY.match(line)
        if section in pending and key and key.group(1) in pending[section]:
            out.append(f"{key.group(1)} = {pending[section].pop(key.group(1))}")
            continue
        out.append(line)
    flush(section)
    for name, keys in pending.items():
        if out and out[-1].strip():
            out.append("")
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n"


def _read(path: Path) -> str:
    """The text of `path` ("" if absent): never blocks on a FIFO, refuses huge files."""
    return read_text_file(path) or ""


def _parse_check(text: str, path: Path) -> None:
    """Refuse text that an INI reader (`provision dsn`, sentry-cli) cannot read."""
    import configparser

    try:
        configparser.ConfigParser(interpolation=None).read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise UsageError(
            f"{path} is not a valid INI file{where}: {exc.__class__.__name__}",
            f"fix that line or remove {path} (the kit writes a new one), then run again",
        ) from None


def check_rc_file(path: Path) -> None:
    """Refuse, before anything is created in GlitchTip, an rc file the kit could not update:
    a symlink or other non-regular file (never written through), or malformed INI (the update
    would keep the broken lines and `provision dsn` could not read the result)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory", "give --rc the path of a file")
    check_writable_target(path)
    _parse_check(_read(path), path)


def glitchtiprc_values(org: str, project: str, dsn: str) -> dict[str, dict[str, str]]:
    """The keys the kit owns in `.glitchtiprc`."""
    return {"defaults": {"org": org, "project": project, "url": dsn}}


def sentryclirc_values(server_url: str, org: str, project: str, dsn: str):
    """The keys the kit owns in `.sentryclirc`: server address in `url`, DSN under `[auth]`."""
    return {
        "defaults": {"url": server_url.rstrip("/") + "/", "org": org, "project": project},
        "auth": {"dsn": dsn},
    }


def write_rc(
    path: Path, rc_format: str, *, server_url: str, org: str, project: str, dsn: str
) -> bool:
    """Write `.glitchtiprc` or `.sentryclirc` atomically (0600); True if the file changed."""
    path = Path(path)
    if rc_format == "glitchtiprc":
        values = glitchtiprc_values(org, project, dsn)
    elif rc_format == "sentryclirc":
        values = sentryclirc_values(server_url, org, project, dsn)
    else:
        raise UsageError(f"unknown rc format '{rc_format}'", f"use one of {', '.join(RC_FORMATS)}")
    with locked_for(path):  # read + update + write of the rc file, serialized
        check_rc_file(path)
        content = update_ini(_read(path), values)
        _parse_check(content, path)
        return write_atomic(path, content, mode=SECRET_FILE_MODE)


def format_dsn(fmt: str, *, org: str, project: str, dsn: str) -> str:
    """The DSN as text, `.env` lines, JSON or a `.glitchtiprc` INI snippet (no trailing newline)."""
    if fmt == "text":
        return dsn
    if fmt == "env":
        return f"ERROR_TRACKING_DSN={dsn}\nSENTRY_DSN={dsn}"
    if fmt == "json":
        return json.dumps({"org": org, "project": project, "dsn": dsn}, indent=2)
    if fmt == "ini":
        return update_ini("", glitchtiprc_values(org, project, dsn)).rstrip("\n")
    raise UsageError(f"unknown output format '{fmt}'", f"use one of {', '.join(PRINT_FORMATS)}")
