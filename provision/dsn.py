"""Which DSN an app should use, and whether it is well formed (stdlib only; safe to import).

Order: `ERROR_TRACKING_DSN`, then `SENTRY_DSN`, then `.glitchtiprc` (`[defaults] url`) in the
working directory and then each parent. A malformed DSN is an error naming where it came from and
what is wrong, never echoing the key.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provision.errors import UsageError

ENV_VARS = ("ERROR_TRACKING_DSN", "SENTRY_DSN")
RC_NAME = ".glitchtiprc"
RC_CEILING_ENV = "GLITCHTIP_KIT_RC_CEILING"  # the upward search stops there
_KEY = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
FORM = "expected http(s)://KEY@HOST[:PORT]/PROJECT_ID"


class DsnError(UsageError):
    """A DSN that is missing or malformed."""


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN."""

    scheme: str
    public_key: str
    host: str
    port: int | None
    path: str
    project_id: int

    @property
    def server_url(self) -> str:
        """The GlitchTip server the DSN points at."""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"


@dataclass(frozen=True)
class ResolvedDsn:
    """A valid DSN and where it came from (an env var name or a file path)."""

    dsn: str
    source: str
    parsed: Dsn


def parse_dsn(value: str, source: str = "the DSN") -> Dsn:
    """Parse and validate a DSN; a `DsnError` says what is wrong without echoing the key."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DsnError(f"{source} is not a valid DSN: the port is not a number", FORM) from None
    if parts.scheme not in ("http", "https"):
        raise DsnError(f"{source} is not a valid DSN: the scheme must be http or https", FORM)
    if not parts.username:
        raise DsnError(f"{source} is not a valid DSN: it has no public key before '@'", FORM)
    if not _KEY.match(parts.username):
        raise DsnError(f"{source} is not a valid DSN: the key is not 32 hex characters", FORM)
    if not parts.hostname:
        raise DsnError(f"{source} is not a valid DSN: it has no host", FORM)
    prefix, _, project = parts.path.rstrip("/").rpartition("/")
    # ASCII digits only: "²" and Arabic-Indic digits pass str.isdigit(), and int() refuses
    # 4300+ digits with a traceback; GlitchTip's ids are database integers.
    if not re.fullmatch(r"[0-9]{1,18}", project, flags=re.ASCII):
        raise DsnError(
            f"{source} is not a valid DSN: the project id must be a number of 1-18 digits 0-9",
            FORM,
        )
    if parts.query or parts.fragment:
        raise DsnError(f"{source} is not a valid DSN: it must not have a query or fragment", FORM)
    return Dsn(parts.scheme, parts.username, parts.hostname, port, prefix, int(project))


def find_rc(start: Path, ceiling: Path | None = None) -> Path | None:
    """The nearest `.glitchtiprc` in `start` or one of its parents, up to `ceiling` included.

    `ceiling` (default: `$GLITCHTIP_KIT_RC_CEILING`, like git's GIT_CEILING_DIRECTORIES) keeps
    the search from leaving a tree, so tests and sandboxes never pick up a stray file above them;
    a ceiling that is not an ancestor of `start` does not limit the search.
    """
    start = Path(start).resolve()
    if ceiling is None and os.environ.get(RC_CEILING_ENV):
        ceiling = Path(os.environ[RC_CEILING_ENV])
    stop = Path(ceiling).resolve() if ceiling is not None else None
    for directory in (start, *start.parents):
        candidate = directory / RC_NAME
        if os.path.lexists(candidate):  # a FIFO or a link too: reading it says what it is
            return candidate
        if directory == stop:
            break
    return None


def read_rc_dsn(path: Path) -> str | None:
    """`[defaults] url` of a `.glitchtiprc`, or None if it has none."""
    from provision.fileio import read_text_file

    parser = configparser.ConfigParser(interpolation=None)
    fix = "fix the file or run `provision create-project` to rewrite it"
    try:
        # Without blocking on a FIFO, and capped in size (provision.fileio).
        text = read_text_file(Path(path), error=DsnError) or ""
    except DsnError as error:
        raise DsnError(f"cannot read {path}: {error.message}", fix) from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        where = f", line {line}" if line else ""
        raise DsnError(f"cannot read {path} ({exc.__class__.__name__}{where})", fix) from None
    value = parser.get("defaults", "url", fallback="").strip()
    return value or None


def resolve_dsn(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> ResolvedDsn:
    """The DSN an app should use, validated, and its source; `DsnError` if none is found."""
    environ = os.environ if environ is None else environ
    for name in ENV_VARS:
        value = environ.get(name, "").strip()
        if value:
            return ResolvedDsn(value, name, parse_dsn(value, name))
    start = Path.cwd() if cwd is None else Path(cwd)
    rc = find_rc(start)
    if rc is not None:
        value = read_rc_dsn(rc)
        if value:
            return ResolvedDsn(value, str(rc), parse_dsn(value, f"{rc} [defaults] url"))
        raise DsnError(
            f"no DSN found: ERROR_TRACKING_DSN and SENTRY_DSN are unset and {rc} has no "
            "[defaults] url",
            f"run `provision create-project` in {rc.parent}, or set ERROR_TRACKING_DSN",
        )
    raise DsnError(
        f"no DSN found: ERROR_TRACKING_DSN and SENTRY_DSN are unset and there is no {RC_NAME} "
        f"in {start.resolve()} or a parent directory",
        "run `provision create-project` there, or set ERROR_TRACKING_DSN",
    )
