"""`provision up` as a table of contents: the ordered, named steps.

Preflight changes nothing; every step after it changes something and can run again, so a failed
`up` is resumed by running `up` again.
"""

from __future__ import annotations

from provision.proxy import ca, switch
from provision.stack import (
    admin,
    liveness,
    metrics,
    migrate,
    partman,
    preflight,
    profile_switch,
    project,
    pull,
    render_step,
    start,
)
from provision.stack import wrap_up as wrap
from provision.stack.context import StackContext
from provision.steps import Progress, RunReport, Step, run_steps

STEPS: list[Step] = [
    Step("preflight", "engine, Compose, resources, web port, settings", preflight.preflight),
    Step(
        "profile",
        "containers of the other profile retired, no queued event lost",
        profile_switch.retire_step,
    ),
    Step("render", "compose files, monitoring/ and .env (secrets kept)", render_step.render),
    Step(
        "proxy-off",
        "a TLS proxy switched off: its container removed",
        switch.retire_step,
        switch.applies,
    ),
    Step("pull", "images missing locally", pull.pull),
    Step("start", "docker compose up --detach --wait, unless already current", start.start),
    Step("migrate", "the one-shot migrate exited 0", migrate.check_migrate),
    Step("partman", "pg_partman advanced partitions", partman.check_partman, partman.applies),
    Step("admin", "the first superuser, unless GlitchTip shows it exists", admin.create_admin),
    Step("project", "API token, organization, team, project, DSN", project.create_project),
    Step(
        "alive",
        "worker and its scheduler still running (no crash, no dead beat) after start",
        liveness.check_alive,
        liveness.applies,
    ),
    Step("metrics", "Prometheus, Grafana and the exporters, when on", metrics.metrics),
    Step("proxy-ca", "the TLS proxy's internal CA root, exported", ca.export_step, ca.applies),
    Step("wrap-up", "URL, admin, DSN, next commands", wrap.wrap_up),
]


def step_names() -> list[str]:
    """The names of the steps, in order."""
    return [step.name for step in STEPS]


def run_up(ctx: StackContext, progress: Progress | None = None) -> RunReport:
    """Run every step of `up` against `ctx`."""
    return run_steps(STEPS, ctx, progress)
