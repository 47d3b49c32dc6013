"""Validate rendered compose files with a real Compose v2 (`docker compose config`).

Compose is run in the deployment directory so that it reads that directory's `.env` for
interpolation exactly as `docker compose up` would. Its error output is redacted of every secret
in `.env` before it reaches a message.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from provision.errors import KitError
from provision.masking import redact
from provision.runtime.compose_binary import compose_command

TIMEOUT_SECONDS = 60


class ComposeRejected(KitError):
    """Compose ran and refused the files (as opposed to Compose itself failing to run)."""


def _secrets_of(directory: Path) -> list[str]:
    from provision.envfile import read_env_file
    from provision.secrets import secret_values

    try:
        return secret_values(read_env_file(directory / ".env"))
    except KitError:
        return []


def _run(directory: Path, files: list[str], extra: list[str]) -> subprocess.CompletedProcess:
    argv = [*compose_command()]
    for name in files:
        argv += ["-f", name]
    argv += ["config", *extra]
    try:
        return subprocess.run(
            argv,
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KitError(
            f"docker compose config did not finish within {TIMEOUT_SECONDS} s",
            "check that the Compose binary works: `docker compose version`",
        ) from None
    except OSError as exc:
        raise KitError(
            f"cannot run Compose ({exc.__class__.__name__})",
            "install the docker compose plugin or the kit's dependencies (`make init`)",
        ) from None


def _failure(
    directory: Path, files: list[str], done: subprocess.CompletedProcess
) -> ComposeRejected:
    lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines()]
    first = next((line for line in lines if line), f"exit status {done.returncode}")
    first = redact(first, _secrets_of(directory))
    if len(first) > 300:
        first = first[:300] + "..."
    return ComposeRejected(
        f"docker compose config rejected {' + '.join(files)}: {first}",
        "fix the setting it names (`provision config` shows them) and run `provision render "
        "--check` again",
    )


def check_compose(directory: Path, files: list[str]) -> None:
    """Run `compose -f F... config --quiet` in `directory`; KitError with compose's first error
    line (secrets redacted) when it refuses."""
    directory = Path(directory)
    done = _run(directory, files, ["--quiet"])
    if done.returncode != 0:
        raise _failure(directory, files, done)


def compose_model(directory: Path, files: list[str], interpolate: bool = False) -> dict[str, Any]:
    """The normalised model Compose builds from `files`, as a dict.

    Without interpolation (the default) `${VAR}` references stay as written, so the result holds
    no secret and can be inspected or shown.
    """
    directory = Path(directory)
    extra = ["--format", "json"]
    if not interpolate:
        extra.append("--no-interpolate")
    done = _run(directory, files, extra)
    if done.returncode != 0:
        raise _failure(directory, files, done)
    model = json.loads(done.stdout)
    for service in model.get("services", {}).values():
        # Without interpolation Compose may keep a merged environment as a KEY=VALUE list.
        environment = service.get("environment")
        if isinstance(environment, list):
            service["environment"] = dict(item.partition("=")[::2] for item in environment)
    return model
