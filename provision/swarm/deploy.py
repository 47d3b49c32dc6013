"""`provision up --target swarm` as named steps, on the same runner as the Compose `up`.

preflight (a Swarm manager), placement (the node label pinning Postgres and Valkey), render
(stack.swarm.yml and .env), secrets (created from .env), migrate (Postgres, Valkey and the
migrate job deployed first; the job must complete), deploy (the whole stack: web and worker
roll, start-first), then the kit's own admin and project steps against the published URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provision.errors import KitError, UsageError
from provision.stack.context import StackContext
from provision.steps import Progress, RunReport, Step, StepOutcome, run_steps
from provision.swarm.render import STACK_FILE, STATEFUL_LABEL

FIRST_PHASE = ("postgres", "valkey", "migrate")


def bundled(settings, names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` without the bundled Postgres when the database is external."""
    return tuple(name for name in names if not (settings.external_database and name == "postgres"))


MANAGER_FIX = (
    "run it on a Swarm manager; for one host: `docker swarm init --advertise-addr <this host's IP>`"
)


def docker_for(ctx: StackContext) -> Any:
    """The `DockerCLI` of this run (a fake from `ctx.results['docker']` in tests)."""
    docker = ctx.results.get("docker")
    if docker is None:
        docker = ctx.deployment().docker()
        ctx.results["docker"] = docker
    return docker


def swarm_info(docker) -> dict[str, Any]:
    """`docker info`'s Swarm part; a `KitError` unless this node is an active manager."""
    import json

    result = docker.check("info", "--format", "{{json .Swarm}}", fix=MANAGER_FIX)
    info = json.loads(result.stdout or "{}")
    if info.get("LocalNodeState") != "active":
        raise KitError(
            f"this Docker engine is not in a Swarm ({info.get('LocalNodeState')})", MANAGER_FIX
        )
    if not info.get("ControlAvailable"):
        raise KitError("this Docker engine is a Swarm worker, not a manager", MANAGER_FIX)
    return info


def preflight(ctx: StackContext) -> StepOutcome:
    """A Swarm manager, and settings that load (changes nothing)."""
    settings = ctx.load_settings()
    from provision.swarm.secrets import refuse_unsupported

    refuse_unsupported(settings)
    if settings.metrics:
        raise UsageError(
            "the metrics services (Prometheus, Grafana) are not part of the Swarm stack",
            "run `provision up --target swarm --no-metrics`",
        )
    info = swarm_info(docker_for(ctx))
    nodes = info.get("Nodes", "?")
    return StepOutcome(
        f"Swarm manager, {nodes} node{'s' if nodes != 1 else ''}; "
        f"stack {settings.compose_project_name}",
        changed=False,
    )


def placement(ctx: StackContext) -> StepOutcome:
    """The node holding Postgres and Valkey (their volumes live there): the one labelled
    `glitchtip-kit.stateful=true`. A single-node Swarm gets the label; with more nodes the
    operator chooses."""
    docker = docker_for(ctx)
    nodes = docker.json_lines("node", "ls", "--format", "{{json .}}", fix=MANAGER_FIX)
    fix = f"label one node: `docker node update --label-add {STATEFUL_LABEL}=true <node>`"
    labelled = []
    for node in nodes:
        spec = docker.inspect("node", "inspect", node["ID"], fix=MANAGER_FIX)[0].get("Spec", {})
        if (spec.get("Labels") or {}).get(STATEFUL_LABEL) == "true":
            labelled.append(node.get("Hostname", node["ID"]))
    if len(labelled) == 1:
        return StepOutcome(f"Postgres and Valkey on {labelled[0]}", changed=False)
    if len(labelled) > 1:
        raise KitError(
            f"{len(labelled)} nodes carry {STATEFUL_LABEL}=true ({', '.join(labelled)})", fix
        )
    if len(nodes) != 1:
        raise KitError(
            f"no node carries {STATEFUL_LABEL}=true, which pins Postgres and Valkey", fix
        )
    node = nodes[0]
    docker.check("node", "update", "--label-add", f"{STATEFUL_LABEL}=true", node["ID"], fix=fix)
    return StepOutcome(
        f"labelled {node.get('Hostname', node['ID'])} {STATEFUL_LABEL}=true", changed=True
    )


def render(ctx: StackContext) -> StepOutcome:
    """stack.swarm.yml, the Compose files and .env (secrets generated once, kept)."""
    from provision.swarm.render import write_stack

    written = write_stack(ctx.load_settings())
    names = sorted(
        {Path(path).name for path in written if Path(path).parent == Path(ctx.directory)}
    )
    if names:
        return StepOutcome(f"wrote {', '.join(names)}", changed=True)
    return StepOutcome(f"{STACK_FILE} and .env unchanged", changed=False)


def secrets(ctx: StackContext) -> StepOutcome:
    """The Swarm secrets the stack file names, created from .env when missing."""
    from provision.envfile import read_env_file
    from provision.swarm.secrets import ensure_secrets, stack_secrets

    settings = ctx.load_settings()
    wanted = stack_secrets(settings, read_env_file(ctx.env_path))
    ctx.results["swarm_secrets"] = wanted
    created = ensure_secrets(docker_for(ctx), settings.compose_project_name, wanted)
    if created:
        return StepOutcome(f"created {len(created)} of {len(wanted)}: {', '.join(created)}", True)
    return StepOutcome(f"all {len(wanted)} exist", changed=False)


def deploy_env(ctx: StackContext) -> dict[str, str]:
    """What `docker stack deploy` interpolates: the kit's non-secret tuning values from .env
    (secrets are Swarm secrets; none is passed)."""
    from provision.envfile import read_env_file

    env = read_env_file(ctx.env_path)
    return {key: value for key, value in env.items() if key.startswith("GLITCHTIP_KIT_") and value}


def first_phase(stack_text: str) -> str:
    """The stack file with only Postgres, Valkey and the migrate job: deployed first, it leaves
    the running web and worker untouched (no --prune) until the migrations are done."""
    document = yaml.safe_load(stack_text)
    document["services"] = {
        name: spec for name, spec in document["services"].items() if name in FIRST_PHASE
    }
    document = {key: value for key, value in document.items() if not key.startswith("x-")}
    return yaml.safe_dump(document, sort_keys=False)


# `up --pull` for a stack: Swarm pulls on each node itself, and `--resolve-image` is what asks
# the registry. `never` keeps an offline host (images `docker load`ed) from querying a registry
# it cannot reach; `always` re-resolves every tag; `missing` is Docker's default, `changed`.
RESOLVE_IMAGE = {"missing": "changed", "always": "always", "never": "never"}


def stack_deploy(ctx: StackContext, text: str) -> None:
    """`docker stack deploy` of `text` (on stdin), resolving images as `up --pull` asks."""
    settings = ctx.load_settings()
    stack = settings.compose_project_name
    resolve = RESOLVE_IMAGE[ctx.pull_policy]
    docker_for(ctx).check(
        "stack", "deploy", "--compose-file", "-", "--resolve-image", resolve, stack,
        stdin=text,
        env=deploy_env(ctx),
        timeout=300,
        fix=f"check {STACK_FILE} (`provision render --target swarm`) and `docker stack ps {stack}`",
    )  # fmt: skip


def migrate(ctx: StackContext) -> StepOutcome:
    """Postgres, Valkey and the migrate job first; the job must complete (exit 0)."""
    from provision.swarm.services import wait_converged, wait_for_job

    settings = ctx.load_settings()
    stack = settings.compose_project_name
    text = (Path(ctx.directory) / STACK_FILE).read_text(encoding="utf-8")
    docker = docker_for(ctx)
    # Swarm never runs a finished restart-none task again, not even for a changed spec: the
    # job is removed and created anew, so each `up` runs the migrations (they are idempotent).
    job = f"{stack}_migrate"
    if docker.run("service", "inspect", "--format", "{{.ID}}", job).ok:
        docker.check("service", "rm", job, fix=f"see `docker service ps {job}`")
    stack_deploy(ctx, first_phase(text))
    stateful = bundled(settings, ("postgres", "valkey"))
    wait_converged(docker, stack, stateful, ctx.wait_timeout, ctx.note)
    wait_for_job(docker, job, ctx.wait_timeout, ctx.note)
    return StepOutcome(f"{stack}_migrate completed", changed=None)


def deploy(ctx: StackContext) -> StepOutcome:
    """The whole stack; web and worker roll one task at a time, the new one started and
    healthy before the old one stops; a new task that never gets healthy rolls back."""
    from provision.profiles import core_services
    from provision.swarm.secrets import remove_secrets, stale_secrets
    from provision.swarm.services import wait_converged

    settings = ctx.load_settings()
    stack = settings.compose_project_name
    stack_deploy(ctx, (Path(ctx.directory) / STACK_FILE).read_text(encoding="utf-8"))
    docker = docker_for(ctx)
    services = core_services(settings)
    states = wait_converged(docker, stack, services, ctx.wait_timeout, ctx.note)
    wanted = ctx.results.get("swarm_secrets") or []
    removed = remove_secrets(docker, stale_secrets(docker, stack, wanted)) if wanted else []
    replicas = ", ".join(f"{state.service} {state.running}/{state.desired}" for state in states)
    extra = f"; removed {len(removed)} old secret version(s)" if removed else ""
    return StepOutcome(f"{replicas}{extra}", changed=None)


def admin(ctx: StackContext) -> StepOutcome:
    """The first admin, created by the migrate job; proven by a login on the published URL."""
    from provision.stack.admin import admin_credentials, existing_admin

    email, password = admin_credentials(ctx)
    ctx.results["admin_email"] = email
    evidence = existing_admin(ctx, email, password)
    if evidence is None:
        raise KitError(
            f"GlitchTip does not accept {email} with the password in .env",
            f"see `docker service logs {ctx.load_settings().compose_project_name}_migrate` "
            "(it creates the first admin)",
        )
    detail, stored = evidence
    return StepOutcome(f"{email} exists ({detail})", changed=stored)


def steps() -> list[Step]:
    """The steps of `up --target swarm`, in order."""
    from provision.stack import project
    from provision.stack import wrap_up as wrap

    return [
        Step("preflight", "a Swarm manager, the settings", preflight),
        Step("placement", "the node for Postgres and Valkey", placement),
        Step("render", f"{STACK_FILE} and .env (secrets kept)", render),
        Step("secrets", "Swarm secrets from .env (versioned names)", secrets),
        Step("migrate", "Postgres, Valkey, then the migrate job to completion", migrate),
        Step("deploy", "docker stack deploy; web and worker converge", deploy),
        Step("admin", "the first superuser (created by the migrate job)", admin),
        Step("project", "API token, organization, team, project, DSN", project.create_project),
        Step("wrap-up", "URL, admin, DSN, next commands", wrap.wrap_up),
    ]


def run_swarm_up(ctx: StackContext, progress: Progress | None = None) -> RunReport:
    """Run every step of `up --target swarm` against `ctx`."""
    return run_steps(steps(), ctx, progress)
