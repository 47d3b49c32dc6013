"""Read and update the `.env` file that holds the deployment's secrets.

`.env` is the kit's "answers file" for secrets: Compose reads it for `${VAR:?}` interpolation, and
every step that mints a secret (init, the admin bootstrap, the API token) adds its key here. An
update rewrites the file atomically with mode 0600, replaces only the keys it is given and keeps
every other line (comments, keys written by other steps, keys the operator added) byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from provision.errors import SecretsError
from provision.fileio import SECRET_FILE_MODE, write_atomic

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """Parse dotenv text into a dict; a malformed line is a `SecretsError` naming its number."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            raise SecretsError(
                f"{source} line {number} is not KEY=value",
                f"fix or delete that line in {source} (secrets on other lines are kept)",
            )
        values[match.group(1)] = _unquote(match.group(2))
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """The key/value pairs of `path`, or {} if it does not exist yet."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(
            f"cannot read {path} ({exc.__class__.__name__})",
            f"make {path} a readable UTF-8 file owned by you, mode 0600",
        ) from None
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
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        original = header or ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(
            f"cannot read {path} ({exc.__class__.__name__})",
            f"make {path} a readable UTF-8 file owned by you, mode 0600",
        ) from None
    parse_env(original, source=str(path))  # refuse to build on a corrupt file
    pending = dict(values)
    lines = original.splitlines()
    for index, line in enumerate(lines):
        match = _LINE.match(line.strip())
        if match and match.group(1) in pending:
            key = match.group(1)
            lines[index] = f"{key}={format_value(pending.pop(key))}"
    for key, value in pending.items():
        lines.append(f"{key}={format_value(value)}")
    content = "\n".join(lines) + "\n" if lines else ""
    return write_atomic(path, content, mode=SECRET_FILE_MODE)
