"""Run an ordered list of named steps with progress, elapsed times and one-line failures.

This is the kit's `install.sh`: a step is a name, a one-line title and a small idempotent
function. The runner times each one, reports progress (human lines, nothing with `--quiet`,
one JSON document with `--json`), and turns any failure into a `StepError` that names the step,
gives the cause in one line and the command to run next. Nothing is rolled back: every step can
run again, so the next command is usually `provision up`, which resumes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provision.errors import KitError, StepError

DEBUG_ENV = "GLITCHTIP_KIT_DEBUG"


class StepContext(Protocol):
    """What the runner needs of a run's context (`stack.context.StackContext` is one): the
    contract lives here so proxy, swarm and ops steps need nothing from `stack/`."""

    resume_command: str
    note: Callable[[str], None]

    @property
    def env_path(self) -> Path: ...


@dataclass(frozen=True)
class StepOutcome:
    """What a step reports: a one-line detail and whether it changed anything."""

    detail: str = ""
    changed: bool | None = None


@dataclass(frozen=True)
class Step:
    """One named step: `action(ctx)` does the work; `applies(ctx)` may skip it."""

    name: str
    title: str
    action: Callable[[Any], StepOutcome | str | None]
    applies: Callable[[Any], bool] | None = None


@dataclass
class StepRecord:
    """How one step went, for the progress lines and the JSON report."""

    name: str
    status: str  # ok | skipped | failed
    elapsed: float = 0.0
    detail: str = ""
    changed: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "elapsed_s": round(self.elapsed, 2),
            "detail": self.detail,
            "changed": self.changed,
        }


@dataclass
class RunReport:
    """The records of every step that ran and the error that stopped the run, if any."""

    records: list[StepRecord] = field(default_factory=list)
    error: StepError | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.records if r.status == "ok")


class Progress:
    """Silent progress (`--quiet`, `--json`); the base of `HumanProgress`."""

    def started(self, index: int, total: int, step: Step) -> None:
        """A step begins."""

    def note(self, text: str) -> None:
        """A line of detail from inside the running step (pull progress, sub-steps)."""

    def skipped(self, index: int, total: int, step: Step, reason: str) -> None:
        """A step does not apply to these settings."""

    def finished(self, record: StepRecord) -> None:
        """A step ended (ok, skipped or failed)."""


class HumanProgress(Progress):
    """Progress for a person: a header per step, its notes, then its result and elapsed time."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def started(self, index: int, total: int, step: Step) -> None:
        self.echo(f"[{index}/{total}] {step.name}: {step.title}")

    def note(self, text: str) -> None:
        self.echo(f"      {text}")

    def skipped(self, index: int, total: int, step: Step, reason: str) -> None:
        self.echo(f"[{index}/{total}] {step.name}: skipped ({reason})")

    def finished(self, record: StepRecord) -> None:
        word = "ok" if record.status == "ok" else "FAILED"
        detail = f" {record.detail}" if record.detail else ""
        self.echo(f"      {word} ({record.elapsed:.1f} s){detail}")


def cause_of(error: BaseException, ctx: StepContext) -> str:
    """One line, secrets scrubbed, for an unexpected exception."""
    from provision.masking import redact

    text = " ".join(str(error).split()) or error.__class__.__name__
    secrets: list[str] = []
    try:
        from provision.deployment import secrets_of

        secrets = secrets_of(ctx.env_path.parent)
    except KitError:
        pass
    return redact(f"{error.__class__.__name__}: {text[:300]}", secrets)


def run_steps(steps: list[Step], ctx: StepContext, progress: Progress | None = None) -> RunReport:
    """Run `steps` in order and stop at the first failure; never raises a `KitError`."""
    progress = progress or Progress()
    ctx.note = progress.note
    report = RunReport()
    started_all = time.monotonic()
    total = len(steps)
    for index, step in enumerate(steps, start=1):
        if step.applies is not None:
            try:
                applies = step.applies(ctx)
            except KitError:
                applies = True  # let the step itself report the problem
            if not applies:
                reason = "not needed for these settings"
                report.records.append(StepRecord(step.name, "skipped", detail=reason))
                progress.skipped(index, total, step, reason)
                continue
        progress.started(index, total, step)
        began = time.monotonic()
        try:
            outcome = step.action(ctx)
        except StepError as error:
            report.error = error
        except KitError as error:
            report.error = StepError(step.name, error.line(), ctx.resume_command)
            report.error.exit_code = error.exit_code
        except KeyboardInterrupt:
            report.error = StepError(step.name, "interrupted", ctx.resume_command)
            report.error.exit_code = 130
        except Exception as error:  # an unexpected failure still gets one line and a next step
            if os.environ.get(DEBUG_ENV):
                raise
            cause = cause_of(error, ctx) + f" (set {DEBUG_ENV}=1 for a traceback)"
            report.error = StepError(step.name, cause, ctx.resume_command)
        elapsed = time.monotonic() - began
        if report.error is not None:
            record = StepRecord(step.name, "failed", elapsed, report.error.cause)
            report.records.append(record)
            progress.finished(record)
            break
        if not isinstance(outcome, StepOutcome):
            outcome = StepOutcome(detail=outcome or "")
        record = StepRecord(step.name, "ok", elapsed, outcome.detail, outcome.changed)
        report.records.append(record)
        progress.finished(record)
    report.elapsed = time.monotonic() - started_all
    return report


def report_document(report: RunReport, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The machine-readable form of a run: steps, timings, the error and the results."""
    document: dict[str, Any] = {
        "ok": report.ok,
        "changed": report.changed,
        "elapsed_s": round(report.elapsed, 2),
        "steps": [record.as_dict() for record in report.records],
    }
    if report.error is not None:
        document["error"] = {
            "step": report.error.step,
            "cause": report.error.cause,
            "next_command": report.error.next_command,
        }
    if extra:
        document.update(extra)
    return document


def report_json(report: RunReport, extra: dict[str, Any] | None = None) -> str:
    """`report_document` as the JSON text `provision up --json` prints."""
    return json.dumps(report_document(report, extra), indent=2)
