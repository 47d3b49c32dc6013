"""The step runner: order, timing, skipping, one-line failures, resume, JSON."""

from __future__ import annotations

import json

from provision.errors import KitError, StepError, UsageError
from provision.stack.context import StackContext
from provision.stack.up import STEPS, step_names
from provision.steps import (
    HumanProgress,
    Step,
    StepOutcome,
    report_json,
    run_steps,
)


def test_up_reads_as_a_table_of_contents():
    assert step_names() == [
        "preflight",
        "profile",
        "render",
        "proxy-off",
        "pull",
        "start",
        "migrate",
        "partman",
        "admin",
        "project",
        "alive",
        "metrics",
        "proxy-ca",
        "wrap-up",
    ]
    assert all(step.title for step in STEPS)


def _recording(name, log, outcome=None):
    def action(ctx):
        log.append(name)
        return outcome

    return Step(name, f"the {name} step", action)


def test_steps_run_in_order_and_report_elapsed_time(tmp_path):
    log: list[str] = []
    steps = [_recording(n, log, StepOutcome(f"{n} done", changed=n == "b")) for n in "abc"]
    report = run_steps(steps, StackContext(tmp_path))
    assert log == ["a", "b", "c"]
    assert report.ok and report.changed
    assert [r.status for r in report.records] == ["ok"] * 3
    assert all(r.elapsed >= 0 for r in report.records)
    assert report.records[1].detail == "b done"


def test_a_step_that_does_not_apply_is_skipped(tmp_path):
    log: list[str] = []
    skipped = Step("x", "never here", lambda ctx: log.append("x"), applies=lambda ctx: False)
    report = run_steps(
        [_recording("a", log), skipped, _recording("b", log)], StackContext(tmp_path)
    )
    assert log == ["a", "b"]
    assert [r.status for r in report.records] == ["ok", "skipped", "ok"]


def test_a_failure_names_the_step_the_cause_and_the_next_command(tmp_path):
    log: list[str] = []

    def broken(ctx):
        raise KitError("image x:1 cannot be pulled", "set GLITCHTIP_KIT_GLITCHTIP_IMAGE")

    steps = [_recording("a", log), Step("pull", "images", broken), _recording("c", log)]
    ctx = StackContext(tmp_path, resume_command="provision up --dir /srv/gt")
    report = run_steps(steps, ctx)
    assert log == ["a"]  # stops at the failure, nothing after it runs
    error = report.error
    assert isinstance(error, StepError)
    assert error.step == "pull"
    assert "image x:1 cannot be pulled" in error.cause
    assert error.next_command == "provision up --dir /srv/gt"
    line = error.line()
    assert "\n" not in line
    assert line.startswith("step 'pull' failed: image x:1")
    assert line.endswith("then run: provision up --dir /srv/gt")
    assert report.records[-1].status == "failed"


def test_the_exit_status_of_a_usage_error_is_kept(tmp_path):
    def bad(ctx):
        raise UsageError("http_port: 0 is out of range", "use 1-65535")

    report = run_steps([Step("preflight", "checks", bad)], StackContext(tmp_path))
    assert report.error.exit_code == 2


def test_an_unexpected_exception_becomes_one_line_without_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("GLITCHTIP_KIT_DEBUG", raising=False)
    secret = "S3cr3t-admin-password-value"
    (tmp_path / ".env").write_text(f"DJANGO_SUPERUSER_PASSWORD={secret}\n")

    def leaky(ctx):
        raise RuntimeError(f"login failed for password {secret}\nsecond line")

    report = run_steps([Step("admin", "superuser", leaky)], StackContext(tmp_path))
    cause = report.error.cause
    assert secret not in cause
    assert "RuntimeError" in cause and "\n" not in cause


def test_an_unexpected_exception_hides_the_dsn_key_too(tmp_path, monkeypatch):
    """The deployment's masking rule (`.env` and the DSN's key, which GlitchTip's access log
    shows as `sentry_key=`), not a narrower one of the runner's own."""
    monkeypatch.delenv("GLITCHTIP_KIT_DEBUG", raising=False)
    key = "0123456789abcdef0123456789abcdef"
    (tmp_path / ".env").write_text("GLITCHTIP_KIT_METRICS=false\n")
    (tmp_path / ".glitchtiprc").write_text(f"[defaults]\nurl = http://{key}@localhost:8000/1\n")

    def leaky(ctx):
        raise RuntimeError(f"POST /api/1/envelope/?sentry_key={key} answered 500")

    cause = run_steps([Step("project", "project", leaky)], StackContext(tmp_path)).error.cause
    assert key not in cause and "RuntimeError" in cause


def test_running_again_resumes_after_the_failed_step(tmp_path):
    """Every step is idempotent; a second run re-checks the done ones and goes on."""
    created: list[str] = []
    attempts = {"start": 0}

    def make(name, flaky=False):
        def action(ctx):
            if flaky:
                attempts["start"] += 1
                if attempts["start"] == 1:
                    raise KitError("web unhealthy")
            if name in created:
                return StepOutcome(f"{name} already there", changed=False)
            created.append(name)
            return StepOutcome(f"{name} created", changed=True)

        return Step(name, name, action)

    steps = [make("render"), make("start", flaky=True), make("project")]
    first = run_steps(steps, StackContext(tmp_path))
    assert first.error.step == "start" and created == ["render"]
    second = run_steps(steps, StackContext(tmp_path))
    assert second.ok
    assert created == ["render", "start", "project"]
    assert [r.changed for r in second.records] == [False, True, True]
    third = run_steps(steps, StackContext(tmp_path))
    assert not third.changed


def test_human_progress_shows_each_step_with_its_time(tmp_path):
    lines: list[str] = []

    def noisy(ctx):
        ctx.note("pulling valkey:8")
        return StepOutcome("pulled 1 image")

    run_steps([Step("pull", "images", noisy)], StackContext(tmp_path), HumanProgress(lines.append))
    assert lines[0] == "[1/1] pull: images"
    assert lines[1].strip() == "pulling valkey:8"
    assert lines[2].strip().startswith("ok (") and lines[2].endswith("s) pulled 1 image")


def test_json_report_has_steps_timings_error_and_result(tmp_path):
    def bad(ctx):
        raise KitError("boom")

    report = run_steps(
        [Step("a", "a", lambda ctx: "fine"), Step("b", "b", bad)], StackContext(tmp_path)
    )
    document = json.loads(report_json(report, {"result": {"dsn": None}}))
    assert document["ok"] is False
    assert [s["name"] for s in document["steps"]] == ["a", "b"]
    assert document["steps"][0]["status"] == "ok"
    assert isinstance(document["steps"][0]["elapsed_s"], float)
    assert document["error"] == {"step": "b", "cause": "boom", "next_command": "provision up"}
    assert document["result"] == {"dsn": None}
