"""How the CLI tests run the real `provision` and read its refusals: one place for both.

Every refusal the kit makes must be one line on stderr starting with `error: `, exit status 2,
raised as `SystemExit` (not an exception escaping as a traceback); `one_line_error` asserts all
of that and returns the line for the test to check its words.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from provision.cli import cli


def run(directory: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`provision ARGS --dir DIRECTORY` through Click's runner, with extra environment `env`."""
    return CliRunner().invoke(cli, [*args, "--dir", str(directory)], env=env)


def one_line_error(result: Result, exit_code: int = 2) -> str:
    """The single `error: ...` line of a refused command (asserting the exit code and shape)."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
