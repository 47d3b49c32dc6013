"""The `docker` CLI for Swarm commands, with secrets scrubbed from everything it prints.

`docker stack deploy` reads the stack file (or stdin) and interpolates `${VAR}` from its own
environment, which the kit fills from the non-secret values of `.env`; secret values travel only
on stdin (`docker secret create NAME -`), never on a command line. The runner is swappable so the
fast tests drive the same code with a scripted fake.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from provision.errors import KitError
from provision.masking import redact
from provision.runtime import process
from provision.runtime.process import ProcessResult

# argv, stdin text, environment, timeout -> (exit status, stdout, stderr)
Runner = Callable[[Sequence[str], "str | None", Mapping[str, str], float], tuple[int, str, str]]


def subprocess_runner(
    argv: Sequence[str], stdin: str | None, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run `argv` for real; raise a `KitError` when docker is missing or hangs."""
    return process.run(
        argv,
        what=" ".join(argv[:3]),
        timeout=timeout,
        missing=("docker", "install the Docker CLI"),
        hang_fix="check the engine with `docker info` and `docker service ls`",
        env=env,
        stdin=stdin if stdin is not None else "",
    )


class DockerCLI:
    """`docker` with the deployment's secrets redacted from its output."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        runner: Runner | None = None,
        command: Sequence[str] = ("docker",),
    ) -> None:
        self.secrets = [value for value in secrets if value]
        self.runner = runner or subprocess_runner
        self.command = tuple(command)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> ProcessResult:
        """`docker ARGS`; never raises on a non-zero exit (the caller decides)."""
        argv = (*self.command, *args)
        environment = dict(os.environ)
        environment.update(env or {})
        code, out, err = self.runner(argv, stdin, environment, timeout)
        return ProcessResult(argv, code, redact(out, self.secrets), redact(err, self.secrets))

    def check(self, *args: str, fix: str, **kwargs: Any) -> ProcessResult:
        """`docker ARGS`, raising a one-line `KitError` with `fix` when it fails."""
        result = self.run(*args, **kwargs)
        if not result.ok:
            raise KitError(f"`docker {' '.join(args[:2])}` failed: {result.error_lines()}", fix)
        return result

    def json_lines(self, *args: str, fix: str) -> list[dict[str, Any]]:
        """The objects of a `--format '{{json .}}'` listing, one per line."""
        result = self.check(*args, fix=fix)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def inspect(self, *args: str, fix: str) -> list[dict[str, Any]]:
        """The JSON array an `inspect` prints."""
        result = self.check(*args, fix=fix)
        data = json.loads(result.stdout or "[]")
        return data if isinstance(data, list) else [data]
