"""Child processes for the runtime adapters: one way to run one, one result type.

`run` (captured output) and `child` (a streaming child, killed when the caller fails) turn a
missing program or a hang into a one-line `KitError`. The adapters redact what a child printed
before it leaves them (`ProcessResult` holds redacted text); nothing here sees a secret.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from provision.errors import KitError


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float | None,
    missing: tuple[str, str],
    hang_fix: str,
    cwd: object = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> tuple[int, str, str]:
    """Run `argv` to its end and capture its output: (exit status, stdout, stderr).

    `what` names the call in a timeout's message, `hang_fix` is its fix; `missing` is
    (program, fix) for a program that cannot run. Without `stdin` the child reads from /dev/null."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise KitError(f"`{what}` did not finish within {timeout:.0f} s", hang_fix) from None
    except OSError as exc:
        program, fix = missing
        raise KitError(f"cannot run {program} ({exc.strerror})", fix) from None
    return done.returncode, done.stdout, done.stderr


@contextlib.contextmanager
def child(
    argv: Sequence[str],
    *,
    missing: tuple[str, str],
    cwd: object = None,
    env: Mapping[str, str] | None = None,
    **popen: object,
) -> Iterator[subprocess.Popen]:
    """`argv` as a running child (pipes as `popen` says); killed and reaped when the body
    fails or is interrupted, so no child outlives a failed step."""
    try:
        process = subprocess.Popen(list(argv), cwd=cwd, env=env, **popen)  # type: ignore[call-overload]
    except OSError as exc:
        program, fix = missing
        raise KitError(f"cannot run {program} ({exc.strerror})", fix) from None
    try:
        yield process
    except BaseException:
        process.kill()
        process.wait()
        raise


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
