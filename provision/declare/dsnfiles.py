"""Each project's DSN written where its app reads it: `.glitchtiprc`, `.sentryclirc` or `.env`.

`.glitchtiprc` and `.sentryclirc` are written by `provision.rcfile` exactly as `create-project`
writes them. `.sentryclirc` also needs `[auth] token` in the same file as its `url` (sentry-cli
ignores the file's URL when the token comes from elsewhere, issue 22): a token of its own, with
only the scopes sentry-cli needs for releases and source maps, minted from the admin's login
(GlitchTip creates tokens for a session only, NOTES.md 2.4); never the admin's token. A token
already in the file is kept while GlitchTip accepts it. `env` sets ERROR_TRACKING_DSN and
SENTRY_DSN in a dotenv file. All of them are 0600.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision.declare.model import DsnFile
from provision.envfile import read_env_file, update_env_file
from provision.errors import UsageError
from provision.fileio import check_writable_target, read_text_file
from provision.rcfile import check_rc_file, glitchtiprc_values, sentryclirc_values, update_ini

# What sentry-cli needs for `releases new/list/finalize` and `sourcemaps upload` (issue 22).
SENTRY_CLI_SCOPES = ("project:read", "project:write", "project:releases", "org:read")
ENV_KEYS = ("ERROR_TRACKING_DSN", "SENTRY_DSN")


@dataclass(frozen=True)
class DsnTarget:
    """One file to write: where, how, and what goes in it."""

    file: DsnFile
    org: str
    project: str
    dsn: str
    server_url: str


def check_target(dsn_file: DsnFile) -> None:
    """Refuse, before any request, a file the kit would not write (symlink, FIFO, bad INI) or a
    directory that does not exist."""
    parent = dsn_file.path.parent
    if not parent.is_dir():
        raise UsageError(
            f"{parent} does not exist (a dsn_files path)", f"create it first (mkdir -p {parent})"
        )
    if dsn_file.format == "env":
        check_writable_target(dsn_file.path)
        read_env_file(dsn_file.path)
    else:
        check_rc_file(dsn_file.path)


def stored_token(path: Path) -> str | None:
    """`[auth] token` of an existing `.sentryclirc`, or None."""
    text = read_text_file(path) or ""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text, source=str(path))
    return parser.get("auth", "token", fallback=None) or None


def needs_write(target: DsnTarget) -> bool:
    """Whether writing `target` would change its file (plan's view; reads the file only)."""
    path = target.file.path
    if target.file.format == "env":
        values = read_env_file(path)
        return any(values.get(key) != target.dsn for key in ENV_KEYS)
    text = read_text_file(path) or ""
    if target.file.format == "sentryclirc":
        if stored_token(path) is None:
            return True
        values = sentryclirc_values(target.server_url, target.org, target.project, target.dsn)
    else:
        values = glitchtiprc_values(target.org, target.project, target.dsn)
    return update_ini(text, values) != text


def write_target(
    target: DsnTarget, mint: Callable[[DsnTarget], str], accepted: Callable[[str], bool]
) -> bool:
    """Write `target`'s file (0600, other lines kept); True if it changed. `mint` makes a
    sentry-cli token, `accepted` tells whether GlitchTip still takes a stored one."""
    from provision.fileio import SECRET_FILE_MODE, write_atomic
    from provision.locking import locked_for

    path = target.file.path
    if target.file.format == "env":
        return update_env_file(path, dict.fromkeys(ENV_KEYS, target.dsn))
    with locked_for(path):
        check_rc_file(path)
        text = read_text_file(path) or ""
        if target.file.format == "glitchtiprc":
            values = glitchtiprc_values(target.org, target.project, target.dsn)
        else:
            values = sentryclirc_values(target.server_url, target.org, target.project, target.dsn)
            token = stored_token(path)
            if token is None or not accepted(token):
                token = mint(target)
            values["auth"]["token"] = token
        return write_atomic(path, update_ini(text, values), mode=SECRET_FILE_MODE)
