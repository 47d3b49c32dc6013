"""No secret in any container's configuration: `docker inspect` of every container of a
deployment (running or exited, e.g. the one-shot migrate), Swarm's service specs, and `docker
compose config` hold none of the secret values of its `.env` (issue 18).

The values compared are every secret key of `.env` (provision.secrets.SECRET_KEYS: SECRET_KEY,
the passwords, the API token, the URLs and keys of external services) and every file the kit
derived from it in secrets/ (the bundled DATABASE_URL carries the Postgres password). A value is
compared, never printed: a failure names the key and the container, not the value.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

# Shorter values are not secrets the kit generates (an empty EMAIL_URL, consolemail://).
MIN_LENGTH = 8
NOT_SECRET = {"consolemail://"}


def secret_values(directory: Path) -> dict[str, str]:
    """label -> value of every secret of the deployment in `directory`."""
    from provision.envfile import read_env_file
    from provision.secrets import SECRET_KEYS

    env = read_env_file(directory / ".env")
    found = {key: env[key] for key in SECRET_KEYS if env.get(key)}
    secrets_dir = directory / "secrets"
    if secrets_dir.is_dir():
        for path in secrets_dir.iterdir():
            found[f"secrets/{path.name}"] = path.read_text()
    return {
        label: value
        for label, value in found.items()
        if len(value) >= MIN_LENGTH and value not in NOT_SECRET
    }


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def leaks(text: str, values: dict[str, str]) -> list[str]:
    return sorted(label for label, value in values.items() if value in text)


def assert_no_secret_in_containers(
    directory: Path, project: str, expected: set[str], swarm: bool = False
) -> dict[str, str]:
    """Inspect every container of `project` (compose project or Swarm stack) and, for Swarm,
    its services; each must hold no secret value of `directory`'s deployment. `expected`: the
    services that must be among the containers inspected (running or exited). Returns
    service -> container state, for the caller's report."""
    values = secret_values(directory)
    assert len(values) >= 4, sorted(values)  # SECRET_KEY, passwords, URLs: there to be compared
    label = (
        f"com.docker.stack.namespace={project}"
        if swarm
        else (f"com.docker.compose.project={project}")
    )
    ids = _docker("ps", "-a", "-q", "--filter", f"label={label}").split()
    assert ids, f"no container of {project}"
    containers = json.loads(_docker("inspect", *ids))
    states: dict[str, str] = {}
    problems = []
    for container in containers:
        labels = container["Config"]["Labels"] or {}
        service = labels.get("com.docker.swarm.service.name") or labels.get(
            "com.docker.compose.service", container["Name"]
        )
        if swarm:
            service = service.removeprefix(f"{project}_")
        states[service] = container["State"]["Status"]
        found = leaks(json.dumps(container), values)
        if found:
            problems.append((service, found))
    if swarm:
        services = _docker("service", "ls", "-q", "--filter", f"label={label}").split()
        for spec in json.loads(_docker("service", "inspect", *services)):
            found = leaks(json.dumps(spec), values)
            if found:
                problems.append((spec["Spec"]["Name"], found))
    assert problems == [], f"secret values (by key) in the configuration of: {problems}"
    assert expected <= set(states), (expected, states)
    return states


def assert_no_secret_in_compose_config(directory: Path, project: str, files: list[str]) -> None:
    """`docker compose config` with the deployment's `.env`: no secret value either."""
    from provision.runtime.compose_binary import compose_command

    arguments = [a for name in files for a in ("-f", name)]
    done = subprocess.run(
        [*compose_command(), *arguments, "--project-name", project, "config"],
        cwd=directory, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    values = secret_values(directory)
    assert leaks(done.stdout, values) == []
