"""`up --target swarm` as one run (`run_swarm_up`), against tests/swarm_fake.py's Swarm: the
steps run in order against the run's context, each recorded, and the first failure stops the
run with its step and cause (a migrate job that exits 3 leaves web and worker undeployed and
the admin, project and wrap-up steps not run). The same run through the CLI: a refusal before
any Docker call is the report's one failed step and one `error:` line."""

from __future__ import annotations

import json

import yaml
from cli_run import run
from swarm_fake import FakeSwarm
from test_swarm_engine import context, swarm_dir

from provision.steps import Progress
from provision.swarm import deploy
from provision.swarm.render import STACK_FILE


class Recorded(Progress):
    """The progress calls of a run: which step started, which finished and how."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def started(self, index, total, step) -> None:
        self.events.append(("started", f"{index}/{total} {step.name}"))

    def finished(self, record) -> None:
        self.events.append(("finished", f"{record.name} {record.status}"))


def test_a_swarm_up_runs_the_steps_in_order_and_stops_at_a_failed_migrate_job(tmp_path):
    directory = swarm_dir(tmp_path)
    stack = yaml.safe_load((directory / STACK_FILE).read_text(encoding="utf-8"))
    names = sorted(spec["name"] for spec in stack["secrets"].values())
    swarm = FakeSwarm()
    swarm.job_exit = 3
    ctx = context(directory, swarm)
    progress = Recorded()
    report = deploy.run_swarm_up(ctx, progress)
    assert [(r.name, r.status, r.detail, r.changed) for r in report.records] == [
        ("preflight", "ok", "Swarm manager, ? nodes; stack glitchtip", False),
        ("placement", "ok", "labelled host1 glitchtip-kit.stateful=true", True),
        ("render", "ok", "stack.swarm.yml and .env unchanged", False),
        ("secrets", "ok", f"created 5 of 5: {', '.join(names)}", True),
        (
            "migrate",
            "failed",
            "glitchtip_migrate failed: exit status 3, task: non-zero exit: see `docker service "
            "logs glitchtip_migrate` for the cause",
            None,
        ),
    ]
    assert (report.error.step, report.error.cause, report.error.next_command) == (
        "migrate",
        "glitchtip_migrate failed: exit status 3, task: non-zero exit: see `docker service logs "
        "glitchtip_migrate` for the cause",
        "provision up",
    )
    assert progress.events == [
        ("started", "1/9 preflight"), ("finished", "preflight ok"),
        ("started", "2/9 placement"), ("finished", "placement ok"),
        ("started", "3/9 render"), ("finished", "render ok"),
        ("started", "4/9 secrets"), ("finished", "secrets ok"),
        ("started", "5/9 migrate"), ("finished", "migrate failed"),
    ]  # fmt: skip
    assert sorted(swarm.services) == ["glitchtip_migrate", "glitchtip_postgres", "glitchtip_valkey"]
    # the run's notes went to the progress given (waiting for the job, ...)
    assert ctx.note == progress.note


def test_a_swarm_up_refused_before_any_docker_call_is_one_failed_step(tmp_path):
    result = run(tmp_path, "up", "--target", "swarm", "--metrics", "--json")
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    for step in document["steps"]:
        step.pop("elapsed_s")
    document.pop("elapsed_s")
    cause = (
        "the metrics services (Prometheus, Grafana) are not part of the Swarm stack: "
        "run `provision up --target swarm --no-metrics`"
    )
    assert document == {
        "ok": False,
        "changed": False,
        "steps": [{"name": "preflight", "status": "failed", "detail": cause, "changed": None}],
        "error": {
            "step": "preflight",
            "cause": cause,
            "next_command": f"provision up --dir {tmp_path} --metrics --target swarm",
        },
    }
    assert result.stderr.splitlines() == [
        f"error: step 'preflight' failed: {cause}: then run: provision up --dir {tmp_path} "
        "--metrics --target swarm"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == []
