"""The one result type of a finished child process (a compose or docker call).

The output is already redacted by the adapter that ran the process; nothing here sees a secret.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessResult:
    """What a call returned: argv, exit status, stdout and stderr (redacted)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout then stderr, as one text."""
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()

    def last_lines(self, count: int = 5) -> str:
        """The last `count` non-empty output lines joined by ' | ': for one-line error causes."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return " | ".join(lines[-count:])

    def error_lines(self, count: int = 3) -> str:
        """The last `count` non-empty lines of stderr (else stdout), joined by ' | ': the docker
        CLI prints its errors on stderr and its listings on stdout."""
        text = self.stderr.strip() or self.stdout.strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-count:]) or "no output"
