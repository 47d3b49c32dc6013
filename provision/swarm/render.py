"""`stack.swarm.yml`: the stack file, from the same settings and partials as compose.yml.

Pure `render_stack` (settings and secret names in, text out) and `write_stack`, which renders
`.env` and the Compose files first (so secrets exist, generated once) and then writes the stack
file atomically. The stack file names versioned external secrets and holds no secret value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

STACK_FILE = "stack.swarm.yml"
STATEFUL_LABEL = "glitchtip-kit.stateful"  # node label pinning Postgres and Valkey


def render_stack(settings, secret_names: Mapping[str, str]) -> str:
    """The stack file for `settings`; `secret_names` maps stack secret names to Swarm names."""
    from provision import durability, secret_files
    from provision.proxy.names import NOBODY
    from provision.render import (
        allowed_hosts,
        template_environment,
        web_probe,
        worker_probe,
        worker_settings_context,
    )

    major = settings.major
    worker_settings = worker_settings_context(settings)
    if worker_settings is not None:
        # A Swarm config cannot change: a new module gets a new name (its digest), which
        # `docker stack deploy` creates and rolls the worker onto.
        worker_settings = {
            **worker_settings,
            "target": f"{durability.WORKER_SETTINGS_DIR}/{durability.WORKER_SETTINGS_MODULE}.py",
            "file": "./" + durability.WORKER_SETTINGS_FILE,
            "config_name": (
                f"{settings.compose_project_name}_worker_settings_{worker_settings['digest'][:12]}"
            ),
        }
    return (
        template_environment()
        .get_template("stack.swarm.yml.j2")
        .render(
            s=settings,
            m=major,
            https=settings.glitchtip_domain.startswith("https://"),
            allowed_hosts=allowed_hosts(settings),
            web_probe=web_probe(settings),
            worker_probe=worker_probe(major),
            partitioning=settings.advanced_partitioning,
            # The same table as compose.yml, limited to the secrets the stack has.
            sf=secret_files.SecretPlan(secret_names),
            # The shared environment partial's service set and proxy values: the stack has the
            # standard services (check_swarm_settings refuses minimal) and no TLS proxy of the
            # kit's, so GlitchTip believes forwarded headers from nobody.
            valkey=True,
            minimal=False,
            trusted_proxies=NOBODY,
            secret_names=dict(secret_names),
            stateful_label=STATEFUL_LABEL,
            durability=durability,
            worker_settings=worker_settings,
        )
    )


def stack_text(settings) -> tuple[str, list]:
    """The stack file's text and the secrets it names, from the current `.env`."""
    from provision.envfile import read_env_file
    from provision.swarm.secrets import stack_secrets

    secrets = stack_secrets(settings, read_env_file(Path(settings.directory) / ".env"))
    names = {secret.name: secret.swarm_name for secret in secrets}
    return render_stack(settings, names), secrets


def write_stack(settings, check: bool = False) -> list[Path]:
    """Render `.env` and the Compose files, then `stack.swarm.yml`; the paths written."""
    from provision.fileio import check_writable_target, write_atomic
    from provision.locking import locked
    from provision.render import write_rendered
    from provision.swarm.secrets import check_swarm_settings

    check_swarm_settings(settings)  # before any file is written
    path = Path(settings.directory) / STACK_FILE
    check_writable_target(path)  # a refused stack file must not leave target=swarm in .env
    written = list(write_rendered(settings, check=check) or [])
    with locked(Path(settings.directory)):
        text, _secrets = stack_text(settings)
        check_writable_target(path)
        if write_atomic(path, text):
            written.append(path)
    return written
