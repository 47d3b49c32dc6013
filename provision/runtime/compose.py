"""Run Compose with the kit's files and project name, and keep secrets out of what it prints.

Every compose call of the kit goes through `Compose`: it adds the deployment's `-f` files
(`provision.deployment` decides which) and `--project-name NAME`, runs in the settings
directory, captures the output and scrubs every secret value it was given (the deployment's)
from it before anyone sees it. Secrets meant for a container
(the admin password) travel in the child's environment, never on its command line.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from provision.errors import KitError, UsageError
from provision.masking import redact
from provision.runtime import process
from provision.runtime.process import ProcessResult

# A Compose that cannot run: the program and the fix.
COMPOSE_MISSING = ("compose", "install Compose v2")

# .env keys whose values are secrets; anything long enough to be a generated secret is too.
_SECRET_KEY_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY$|DSN|CREDENTIAL", re.IGNORECASE)
_NOT_SECRET = {"DJANGO_SUPERUSER_EMAIL"}


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values of `env` (a parsed `.env`) that must never be shown.

    The kit's own secrets (`provision.secrets`) plus anything whose key names a secret or whose
    value looks generated, so a token or password the operator added is masked as well.
    """
    from provision.secrets import secret_values as kit_secrets

    found = list(kit_secrets(env))
    for key, value in env.items():
        if not value or key in _NOT_SECRET:
            continue
        if _SECRET_KEY_NAME.search(key) or (len(value) >= 20 and " " not in value):
            found.append(value)
    return found


class Compose:
    """Compose bound to one deployment: its directory, files and project name."""

    def __init__(
        self,
        directory: Path,
        project_name: str,
        files: Sequence[str] = ("compose.yml",),
        secrets: Iterable[str] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.project_name = project_name
        self.files = tuple(files)
        self.secrets = [s for s in secrets if s]
        self._command = tuple(command) if command else None

    @property
    def command(self) -> tuple[str, ...]:
        if self._command is None:
            from provision.runtime.compose_binary import compose_command

            self._command = compose_command()
        return self._command

    def require_files(self) -> None:
        """A `KitError` naming the first compose file missing from the directory: that is the
        directory not being a deployment (yet), not a problem of the engine."""
        missing = [name for name in self.files if not (self.directory / name).is_file()]
        if missing:
            raise KitError(
                f"no {missing[0]} in {self.directory}",
                "run `provision up` (or `provision render`) in the deployment's directory, "
                "or --dir",
            )

    def argv(self, *args: str) -> list[str]:
        """The full argv of `compose ARGS` for this deployment."""
        files = [part for name in self.files for part in ("-f", name)]
        return [*self.command, *files, "--project-name", self.project_name, *args]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a compose child: the kit's own, without the variables the
        deployment's `.env` defines, plus `extra`.

        Compose lets the caller's environment win over `.env` when it interpolates the files, so
        a `SECRET_KEY`, `POSTGRES_PASSWORD` or `DATABASE_URL` exported in the operator's shell
        for another app would silently replace the deployment's own. `.env` is the record of
        this deployment (the kit resolves its settings into it): it must win."""
        from provision.envfile import read_env_file

        env = dict(os.environ)
        try:
            for key in read_env_file(self.directory / ".env"):
                env.pop(key, None)
        except (UsageError, OSError):
            pass  # an unreadable .env: compose itself refuses it, with its own message
        env.setdefault("COMPOSE_PROGRESS", "plain")
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 600,
    ) -> ProcessResult:
        """Run `compose ARGS`, capture and redact its output; never raises on a non-zero exit."""
        argv = self.argv(*args)
        code, out, err = process.run(
            argv,
            what=f"compose {' '.join(args[:2])}",
            timeout=timeout,
            missing=COMPOSE_MISSING,
            hang_fix="check the engine with `provision status` and `provision logs`",
            cwd=self.directory,
            env=self.child_env(env),
        )
        return ProcessResult(tuple(argv), code, self.redact(out), self.redact(err))

    def stream(
        self,
        *args: str,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ProcessResult:
        """Run `compose ARGS`, handing each redacted output line to `on_line` as it comes."""
        argv = self.argv(*args)
        lines: list[str] = []
        with compose_child(
            self,
            argv,
            env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        ) as running:
            assert running.stdout is not None
            for raw in running.stdout:
                line = self.redact(raw.rstrip("\n"))
                lines.append(line)
                on_line(line)
            returncode = running.wait(timeout=timeout)
        return ProcessResult(tuple(argv), returncode, "\n".join(lines), "")

    def services(self) -> dict[str, dict]:
        """The services of the rendered files as `compose config` resolves them."""
        import json

        result = self.run("config", "--format", "json", timeout=60)
        if not result.ok:
            raise KitError(
                f"`compose config` rejected the rendered files ({result.last_lines(2)})",
                "run `provision render --check` and fix the reported setting",
            )
        try:
            return json.loads(result.stdout).get("services", {})
        except ValueError:
            raise KitError(
                "`compose config` printed no JSON", "upgrade Compose to v2.20+"
            ) from None

    def config_hashes(self) -> dict[str, str]:
        """service -> the hash Compose would label its container with (`config --hash '*'`).

        Compose recreates a container when this hash differs from the container's
        `com.docker.compose.config-hash` label; comparing them tells what `up` would change.
        """
        result = self.run("config", "--hash", "*", timeout=60)
        if not result.ok:
            raise KitError(
                f"`compose config --hash` failed ({result.last_lines(2)})",
                "run `provision render --check` and fix the reported setting",
            )
        hashes = {}
        for line in result.stdout.splitlines():
            name, _, digest = line.strip().partition(" ")
            if name and digest.strip():
                hashes[name] = digest.strip()
        return hashes

    def ps(self, *services: str) -> list[dict]:
        """`compose ps -a` as a list of dicts (Name, Service, State, Health, ExitCode, ...)."""
        import json

        result = self.run("ps", "-a", "--format", "json", *services, timeout=60)
        if not result.ok:
            self.require_files()
            raise KitError(f"`compose ps` failed ({result.last_lines(2)})", "check the engine")
        text = result.stdout.strip()
        if not text:
            return []
        if text.startswith("["):  # Compose < 2.21 prints one array
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def compose_child(
    compose: Any, argv: Sequence[str], env: Mapping[str, str] | None, **popen: Any
) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """`argv` (a `compose.argv(...)`) as a streaming child in the deployment's directory and
    environment (`runtime.process.child`); `compose` is a `Compose` or a stand-in for one."""
    return process.child(
        argv, missing=COMPOSE_MISSING, cwd=compose.directory, env=compose.child_env(env), **popen
    )
