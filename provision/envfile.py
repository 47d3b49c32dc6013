"""Read and update the `.env` file that holds the deployment's secrets.

`.env` is the kit's "answers file" for secrets: Compose reads it for `${VAR:?}` interpolation, and
every step that mints a secret (init, the admin bootstrap, the API token) adds its key here. An
update rewrites the file atomically with mode 0600, replaces only the keys it is given and keeps
every other line (comments, keys written by other steps, keys the operator added) byte for byte.

A key set twice is refused with both line numbers: Compose and dotenv readers take the last one,
so a pasted second `SECRET_KEY=` would silently replace the first (and log everyone out). An
update holds the deployment lock (`provision.locking`) from its read to its write, so concurrent
commands never lose each other's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from provision.errors import SecretsError
from provision.fileio import SECRET_FILE_MODE, read_text_file, write_atomic
from provision.locking import locked_for

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """Parse dotenv text into a dict; a malformed line or a key set twice is a `SecretsError`
    naming the line numbers (never the line's content: it may be a secret)."""
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            raise SecretsError(
                f"{source} line {number} is not KEY=value", _line_fix(source, values)
            )
        key = match.group(1)
        raw = match.group(2).strip()
        if raw[:1] in ("'", '"') and raw.find(raw[0], 1) == -1:
            # Compose refuses it too ("unterminated quoted value"), after the kit wrote files.
            raise SecretsError(
                f"{source} line {number}: the value of {key} opens a quote it does not close",
                f"close the quote or remove it on line {number} of {source}",
            )
        if key in first_line:
            raise SecretsError(
                f"{key} is set twice in {source} (lines {first_line[key]} and {number})",
                f"delete one of the two lines; the value in use is on line {number} (Compose "
                "reads the last one)",
            )
        first_line[key] = number
        values[key] = _unquote(match.group(2))
    return values


def _line_fix(source: str, parsed_so_far: Mapping[str, str]) -> str:
    """The fix for a line that is not KEY=value. When nothing before it parsed either and the
    file is not named like a dotenv file, it is most likely not the kit's `.env` at all (e.g.
    `--env-file /etc/passwd`): say that instead of asking to edit someone else's file."""
    name = Path(source).name
    if not parsed_so_far and not (
        name == ".env" or name.startswith(".env") or name.endswith(".env")
    ):
        return (
            f"{source} does not look like a .env file; point the option at the kit's .env "
            "(e.g. --env-file .env in the deployment directory)"
        )
    return f"fix or delete that line in {source} (secrets on other lines are kept)"


def read_env_file(path: Path) -> dict[str, str]:
    """The key/value pairs of `path`, or {} if it does not exist yet.

    A FIFO, a device, a huge or a non-UTF-8 file is refused without blocking (exit 2)."""
    path = Path(path)
    text = read_text_file(path, error=SecretsError)
    if text is None:
        return {}
    return parse_env(text, source=str(path))


def format_value(value: str) -> str:
    """`value` as a `.env` line's right-hand side that Compose and `parse_env` read back alike:
    bare when safe, else single-quoted; a line break or a single quote is refused."""
    if "\n" in value or "\r" in value:
        raise SecretsError("a value for .env contains a line break", "use a single-line value")
    if re.fullmatch(r"[A-Za-z0-9_./:@+,=-]*", value):
        return value
    if "'" in value:
        raise SecretsError("a value for .env contains a single quote", "choose another value")
    return f"'{value}'"


def update_env_file(path: Path, values: Mapping[str, str], header: str | None = None) -> bool:
    """Set `values` in `path` atomically (mode 0600), keeping every other line as it was.

    Returns True when the file changed. `header` is written only when the file is new.
    """
    path = Path(path)
    with locked_for(path):
        existing = read_text_file(path, error=SecretsError)
        original = (header or "") if existing is None else existing
        parse_env(original, source=str(path))  # refuse to build on a corrupt file
        return write_atomic(path, set_env_values(original, values), mode=SECRET_FILE_MODE)


def set_env_values(text: str, values: Mapping[str, str]) -> str:
    """`.env` text with `values` set: a key's line replaced where it is (`export KEY=` too),
    appended when missing; every other line kept as it was."""
    pending = dict(values)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _LINE.match(line.strip())
        if match and match.group(1) in pending:
            key = match.group(1)
            lines[index] = f"{key}={format_value(pending.pop(key))}"
    for key, value in pending.items():
        lines.append(f"{key}={format_value(value)}")
    return "\n".join(lines) + "\n" if lines else ""
