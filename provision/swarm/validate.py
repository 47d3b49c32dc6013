"""Validate stack.swarm.yml the way `docker stack deploy` reads it, without deploying.

`docker stack config` (docker CLI 20.10+) loads the file with the stack loader: its schema
(version 3.x), interpolation and merges. It runs client-side and needs no Swarm. A CLI without it
falls back to Compose's `config --quiet` (the Compose spec, looser about Swarm-only rules).
"""

from __future__ import annotations

from pathlib import Path

from provision.errors import KitError
from provision.swarm.render import STACK_FILE


def interpolation_env(directory: Path) -> dict[str, str]:
    """The non-secret values the stack file interpolates (the kit's tuning keys in .env)."""
    from provision.envfile import read_env_file

    env = read_env_file(Path(directory) / ".env")
    return {key: value for key, value in env.items() if key.startswith("GLITCHTIP_KIT_") and value}


def validate_stack(settings, docker=None) -> str:
    """'valid (...)' when the stack loader accepts the file; a `KitError` with its complaint."""
    from provision.deployment import Deployment
    from provision.runtime.docker import DockerCLI

    deployment = Deployment(settings)
    directory = deployment.directory
    secrets = deployment.secrets()
    docker = docker or deployment.docker()
    path = str(directory / STACK_FILE)
    env = interpolation_env(directory)
    result = docker.run("stack", "config", "--compose-file", path, env=env, timeout=60)
    how = "docker stack config"
    if not result.ok and "unknown command" in result.error_lines().lower():
        from provision.runtime.compose_binary import compose_command

        how = "compose config"
        argv = [*compose_command(), "-f", path, "config", "--quiet"]
        result = DockerCLI(secrets, command=argv[:1]).run(*argv[1:], env=env, timeout=60)
    if not result.ok:
        raise KitError(
            f"{STACK_FILE} is not a valid stack file ({how}): {result.error_lines(2)}",
            "a setting produced a value the stack loader refuses: check `provision config`",
        )
    carried = _stack_secret_values(settings, deployment.env())
    if any(value in _stack_text(directory) for value in carried):
        raise KitError(f"{STACK_FILE} holds a secret value", "report this bug; do not deploy")
    return f"valid ({how})"


def _stack_text(directory: Path) -> str:
    """The stack file as written. The loader's output cannot tell: the docker CLI masks every
    secret in what it prints."""
    from provision.fileio import read_text_file

    return read_text_file(Path(directory) / STACK_FILE) or ""


def _stack_secret_values(settings, env: dict[str, str]) -> list[str]:
    """The values the stack carries as Swarm secrets (referenced by name only, never written
    out). Not every value the kit masks in output: those include the public URL, the bucket and
    the project's name (long values are masked as if generated), which the stack file names."""
    from provision.swarm.secrets import secret_values

    values = secret_values(settings, env)
    return [value for value in values.values() if len(value) >= 4]
