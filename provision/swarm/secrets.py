"""Swarm secrets from `.env`: which ones, their versioned names, and creating them.

Swarm secrets cannot be changed, so each name carries a version: an HMAC of the value keyed with
SECRET_KEY (12 hex digits). The same value always gets the same name (a second `up` creates
nothing); a rotated value (`provision rotate-secret`) gets a new name, and the stack update
moves the services to it. The HMAC reveals nothing about the value without SECRET_KEY, not even
for a weak SMTP password in EMAIL_URL. Values reach `docker secret create NAME -` on stdin.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from provision.errors import KitError, SettingsError

# The stack's services that read secrets (provision/secret_files.py's table, the one rule for
# Compose and Swarm): GlitchTip's (NAME_FILE), the migrate job (also the admin's), Postgres.
STACK_READERS = ("glitchtip", "migrate", "postgres")
ADMIN_SECRET = "django_superuser_password"
POSTGRES_SECRET = "postgres_password"
STACK_LABEL = "com.docker.stack.namespace"
KIT_LABEL = "org.glitchtip-kit.secret"  # the stack secret's short name, on every kit secret
MAX_NAME = 64  # Swarm refuses longer secret names


@dataclass(frozen=True)
class SwarmSecret:
    """One secret of the stack: its name in the stack file, in Swarm, and its value."""

    name: str
    swarm_name: str
    value: str

    def __repr__(self) -> str:  # never the value, not even in a traceback
        return f"SwarmSecret({self.name!r}, {self.swarm_name!r})"


def refuse_unsupported(settings) -> None:
    """External Valkey and S3 keys would reach the stack through interpolation, i.e. into the
    service spec that `docker service inspect` shows: not supported on Swarm yet."""
    if settings.external_valkey or settings.uploads_access_key_id:
        raise SettingsError(
            "target swarm does not take valkey_url or S3 access keys yet (they would be "
            "written into the service spec)",
            "use the bundled Valkey and S3 credentials from the node's IAM role, or target compose",
        )


def secret_values(settings, env: Mapping[str, str]) -> dict[str, str]:
    """Stack secret name -> value, from `.env` (already rendered, secrets generated)."""
    missing = [key for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")]
    missing = [key for key in missing if not env.get(key)]
    if missing:
        raise KitError(
            f".env has no {', '.join(missing)}",
            "run `provision render --target swarm` (missing secrets are generated, others kept)",
        )
    refuse_unsupported(settings)
    from provision import secret_files

    found = secret_files.values(settings, env)
    wanted = secret_files.SecretPlan(found).defined(*STACK_READERS)
    return {name: found[name] for name in wanted}


def version(value: str, key: str) -> str:
    """12 hex digits naming this value's version, keyed so they reveal nothing of it."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:12]


def check_swarm_settings(settings) -> None:
    """Refuse, before anything is written, settings the stack cannot carry."""
    refuse_unsupported(settings)
    if settings.advanced_partitioning:
        raise SettingsError(
            "target swarm has no pg_partman variant (compose.part.yml is for one host)",
            "set advanced_partitioning: false, or target compose",
        )
    if settings.profile == "minimal":
        raise SettingsError(
            "target swarm runs the standard services (web and worker scale apart), not "
            "profile minimal",
            "set profile: standard, or target compose",
        )
    if settings.proxy_enabled:
        raise SettingsError(
            "target swarm has no TLS proxy of the kit's (it is a service of compose.yml)",
            "set proxy: none and put the swarm's own ingress (Traefik, Caddy, a load "
            "balancer) in front, or target compose",
        )
    stack = settings.compose_project_name
    longest = f"{stack}_{ADMIN_SECRET}_{'0' * 12}"
    if len(longest) > MAX_NAME:
        raise SettingsError(
            f"compose_project_name {stack!r} is too long for Swarm secret names "
            f"({len(longest)} > {MAX_NAME} characters)",
            f"use a compose_project_name of at most {MAX_NAME - len(longest) + len(stack)} "
            "characters",
        )


def stack_secrets(settings, env: Mapping[str, str]) -> list[SwarmSecret]:
    """The stack's secrets with their versioned Swarm names, sorted by name."""
    check_swarm_settings(settings)
    stack = settings.compose_project_name
    values = secret_values(settings, env)
    found = []
    for name, value in sorted(values.items()):
        swarm_name = f"{stack}_{name}_{version(value, env['SECRET_KEY'])}"
        found.append(SwarmSecret(name, swarm_name, value))
    return found


def ensure_secrets(docker, stack: str, secrets: list[SwarmSecret]) -> list[str]:
    """Create the secrets Swarm does not have yet; the names created, in order."""
    existing = {
        row.get("Name")
        for row in docker.json_lines(
            "secret", "ls", "--format", "{{json .}}", fix="make this host a Swarm manager"
        )
    }
    created = []
    for secret in secrets:
        if secret.swarm_name in existing:
            continue
        docker.check(
            "secret", "create",
            "--label", f"{STACK_LABEL}={stack}",
            "--label", f"{KIT_LABEL}={secret.name}",
            secret.swarm_name, "-",
            stdin=secret.value,
            fix="check that this host is a Swarm manager (`docker node ls`)",
        )  # fmt: skip
        created.append(secret.swarm_name)
    return created


def stale_secrets(docker, stack: str, keep: list[SwarmSecret]) -> list[str]:
    """The kit's secrets of `stack` that the current stack file no longer names."""
    rows = docker.json_lines(
        "secret", "ls", "--filter", f"label={KIT_LABEL}", "--filter",
        f"label={STACK_LABEL}={stack}", "--format", "{{json .}}",
        fix="make this host a Swarm manager",
    )  # fmt: skip
    wanted = {secret.swarm_name for secret in keep}
    return sorted(row["Name"] for row in rows if row.get("Name") not in wanted)


def remove_secrets(docker, names: list[str]) -> list[str]:
    """Remove `names`; a secret a service still uses is kept (Swarm refuses), not an error."""
    removed = []
    for name in names:
        if docker.run("secret", "rm", name).ok:
            removed.append(name)
    return removed
