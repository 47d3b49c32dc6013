"""`provision upgrade` as the operator reads it: every step's header, result and the rollback's
notes, line by line, and the one failure line, for a success and for each kind of rollback.

test_ops_upgrade.py checks what the upgrade does (files, events, order); its assertions on the
text are substrings. These compare the whole transcript (elapsed times masked), so a step
title, a rollback note or a failure line reworded, truncated or lost fails here (issue 20:
`steps_for` and `rollback` were the upgrade's functions with the most surviving mutants)."""

from __future__ import annotations

import re
from pathlib import Path

from test_ops_upgrade import FakeCompose, FakeOps, context, deployment

from provision.errors import KitError
from provision.ops import upgrade
from provision.steps import HumanProgress

BACKUP = "TMP/backups/glitchtip-glitchtip-20261126T000000Z-5.tar"
HEAD_5_TO_6 = [
    "[1/6] pull: target images, while GlitchTip serves",
    "      ok (T s) 1 image(s) present: glitchtip/glitchtip:6.2.6",
    "[2/6] stop: web and worker stop (no writes after the backup)",
    "      ok (T s) web and worker stopped: GlitchTip is down from here to `start`",
    "[3/6] backup: database, uploads, files",
    f"      ok (T s) backup: {BACKUP}",
    "[4/6] settings: glitchtip.yaml and .env, then render",
    "SETTINGS",
    "[5/6] start: migrations by the new image, then web and worker",
]
HEAD_POSTGRES = [
    "[1/7] pull: target images, while GlitchTip serves",
    "      ok (T s) 1 image(s) present: postgres:18.1",
    "[2/7] stop: web and worker stop (no writes after the backup)",
    "      ok (T s) web and worker stopped: GlitchTip is down from here to `start`",
    "[3/7] backup: database, uploads, files",
    f"      ok (T s) backup: {BACKUP}",
    "[4/7] settings: glitchtip.yaml and .env, then render",
    "SETTINGS",
    "[5/7] postgres: new server, new volume, dump restored",
    "      FAILED (T s) injected failure in restore",
    "      upgrade failed at 'postgres': rolling back",
    "      rollback: files restored (glitchtip.yaml, .env, compose.yml, compose.part.yml)",
    "      rollback: stack up on glitchtip/glitchtip:6.2.6",
]
FILES_RESTORED = (
    "      rollback: files restored (glitchtip.yaml, .env, compose.yml, compose.part.yml, "
    "compose.metrics.yml, monitoring/prometheus/prometheus.yml, "
    "python/glitchtip_kit_worker_settings.py)"
)


def transcript(tmp_path: Path, fake: FakeOps, directory: Path, **how):
    """The upgrade's lines (elapsed times as T, the directory as TMP, the settings step's
    result, which lists the rendered files, as SETTINGS), and the failure line if any."""
    lines: list[str] = []
    ctx = context(directory, FakeCompose())
    state = upgrade.prepare(ctx, ops=fake.ops(), **how)
    outcome = upgrade.run_upgrade(ctx, state, fake.ops(), HumanProgress(lines.append))
    shown = [
        re.sub(r"\(\d+\.\d s\)", "(T s)", line).replace(str(tmp_path), "TMP") for line in lines
    ]
    settings = next(i for i, line in enumerate(shown) if line.startswith("[4/"))
    shown[settings + 1] = "SETTINGS"
    failure = None if outcome.ok else upgrade.failure_error(outcome).line()
    return shown, lines[settings + 1], (failure or "").replace(str(tmp_path), "TMP"), outcome


def test_a_major_upgrade_reads_step_by_step(tmp_path):
    directory = deployment(tmp_path)
    lines, settings, failure, outcome = transcript(
        tmp_path, FakeOps(tmp_path), directory, to="6.2.6", postgres=None
    )
    assert outcome.ok and failure == ""
    assert lines == [
        *HEAD_5_TO_6,
        "      ok (T s) up",
        "[6/6] verify: provision verify (an event through the DSN)",
        "      ok (T s) 7 checks passed",
    ]
    assert re.sub(r"\(\d+\.\d s\)", "(T s)", settings).startswith(
        "      ok (T s) glitchtip.yaml: glitchtip_image: glitchtip/glitchtip:6.2.6, "
        "glitchtip_major: 6, postgres_image: postgres:17.7, valkey_image: valkey/valkey:8.1; "
        "wrote .env, "
    )


def test_a_failed_start_rolls_back_files_database_and_stack_and_says_each(tmp_path):
    directory = deployment(tmp_path)
    lines, _settings, failure, _outcome = transcript(
        tmp_path, FakeOps(tmp_path, fail="start"), directory, to="6.2.6", postgres=None
    )
    assert lines == [
        *HEAD_5_TO_6,
        "      FAILED (T s) the stack did not become healthy: migrate exited 1",
        "      upgrade failed at 'start': rolling back",
        FILES_RESTORED,
        f"      restoring the database from {BACKUP}",
        "      rollback: database restored from the backup",
        "      rollback: stack up on glitchtip/glitchtip:v5.1.0",
        "      rollback: verify passed",
    ]
    assert failure == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'start' (the stack did not become "
        "healthy: migrate exited 1); rolled back to glitchtip/glitchtip:v5.1.0: files restored, "
        f"database restored from the backup, stack up, verify passed: backup: {BACKUP} (kept); "
        "fix the cause, then run `provision upgrade` again"
    )


def test_a_failed_postgres_step_removes_the_new_volume_and_says_so(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, fail="restore", version="6.2.6")
    lines, _settings, failure, _outcome = transcript(
        tmp_path, fake, directory, to=None, postgres="18.1"
    )
    assert lines == [
        *HEAD_POSTGRES,
        "      rollback: new volume gtkit_postgres-18 removed",
        "      rollback: verify passed",
    ]
    assert failure == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'postgres' (injected failure in "
        "restore); rolled back to glitchtip/glitchtip:6.2.6: files restored, stack up, new "
        f"volume gtkit_postgres-18 removed, verify passed: backup: {BACKUP} (kept); fix the "
        "cause, then run `provision upgrade` again"
    )


def test_a_new_volume_that_cannot_be_removed_is_named_with_the_command(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, fail="restore", version="6.2.6")

    def in_use(ctx, name):
        raise KitError("volume is in use")

    fake.remove_volume = in_use
    lines, _settings, _failure, outcome = transcript(
        tmp_path, fake, directory, to=None, postgres="18.1"
    )
    left = (
        "new volume gtkit_postgres-18 left behind (volume is in use): "
        "`docker volume rm gtkit_postgres-18`"
    )
    assert lines == [*HEAD_POSTGRES, f"      rollback: {left}", "      rollback: verify passed"]
    assert outcome.rollback.ok
    assert outcome.rollback.done == ["files restored", "stack up", left, "verify passed"]


def test_a_rollback_whose_verify_fails_is_a_failed_rollback_with_the_restore_command(tmp_path):
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path, fail="start")
    fake.verify = lambda ctx, timeout: (False, "event: not processed")
    lines, _settings, failure, outcome = transcript(
        tmp_path, fake, directory, to="6.2.6", postgres=None
    )
    assert lines[-2:] == [
        "      rollback: database restored from the backup",
        "      rollback: stack up on glitchtip/glitchtip:v5.1.0",
    ]
    assert (outcome.rollback.ok, outcome.rollback.problem) == (
        False,
        "verify after the rollback failed: event: not processed",
    )
    assert failure == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'start' (the stack did not become "
        "healthy: migrate exited 1); ROLLBACK FAILED (verify after the rollback failed: event: "
        f"not processed): backup: {BACKUP}; restore it with `provision restore {BACKUP} "
        "--replace`"
    )
    assert upgrade.failure_error(outcome).exit_code == 1


def test_a_rollback_whose_verify_cannot_run_names_the_verify_step_in_its_problem(tmp_path):
    """A verify that raises (no answer from GlitchTip) is a failed rollback whose problem names
    the step it failed in (`verify: ...`), after every step that did run."""
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path, fail="start")

    def unreachable(ctx, timeout):
        raise KitError("GlitchTip did not answer", "see `provision logs web`")

    fake.verify = unreachable
    _lines, _settings, failure, outcome = transcript(
        tmp_path, fake, directory, to="6.2.6", postgres=None
    )
    assert (outcome.rollback.ok, outcome.rollback.done, outcome.rollback.problem) == (
        False,
        ["files restored", "database restored from the backup", "stack up"],
        "verify: GlitchTip did not answer: see `provision logs web`",
    )
    assert failure == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'start' (the stack did not become "
        "healthy: migrate exited 1); ROLLBACK FAILED (verify: GlitchTip did not answer: see "
        f"`provision logs web`): backup: {BACKUP}; restore it with `provision restore {BACKUP} "
        "--replace`"
    )


def test_a_failed_pull_changes_nothing_and_says_which_image_still_serves(tmp_path):
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path, fail="pull")
    lines: list[str] = []
    ctx = context(directory, FakeCompose())
    state = upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=fake.ops())
    outcome = upgrade.run_upgrade(ctx, state, fake.ops(), HumanProgress(lines.append))
    assert [re.sub(r"\(\d+\.\d s\)", "(T s)", line) for line in lines] == [
        "[1/6] pull: target images, while GlitchTip serves",
        "      FAILED (T s) injected failure in pull",
        "      upgrade failed at 'pull': rolling back",
    ]
    assert outcome.rollback.done == ["nothing had changed"]
    assert upgrade.failure_error(outcome).line() == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'pull' (injected failure in pull); "
        "nothing was changed: glitchtip/glitchtip:v5.1.0 still serves: fix the cause, then run "
        "`provision upgrade` again"
    )


def _json(outcome, tmp_path):
    import json

    document = outcome.as_dict()
    assert isinstance(document.pop("elapsed_s"), float)
    for step in document["steps"]:
        assert isinstance(step.pop("elapsed_s"), float)
    return json.loads(json.dumps(document).replace(str(tmp_path), "TMP"))


def test_the_json_of_a_postgres_upgrade_says_where_the_data_went_and_how_to_drop_the_old(
    tmp_path,
):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, version="6.2.6")
    ctx = context(directory, FakeCompose())
    state = upgrade.prepare(ctx, to=None, postgres="18.1", ops=fake.ops())
    document = _json(upgrade.run_upgrade(ctx, state, fake.ops()), tmp_path)
    image = "glitchtip/glitchtip:6.2.6"
    step = lambda name, detail: {  # noqa: E731
        "name": name, "status": "ok", "detail": detail, "changed": None,
    }  # fmt: skip
    assert document == {
        "ok": True,
        "plan": {
            "from": {
                "glitchtip_image": image, "glitchtip_major": 6, "server_version": "6.2.6",
                "postgres_image": "postgres:17.7", "postgres_major": 17,
                "postgres_volume": "gtkit_postgres-data",
            },
            "to": {
                "glitchtip_image": image, "glitchtip_major": 6, "postgres_image": "postgres:18.1",
                "postgres_major": 18, "postgres_volume": "gtkit_postgres-18",
            },
            "settings": {"postgres_image": "postgres:18.1"},
            "steps": [
                "preflight", "pull", "stop", "backup", "settings", "postgres", "start", "verify",
            ],
            "notes": [],
        },
        "backup": BACKUP,
        "steps": [
            step("pull", "1 image(s) present: postgres:18.1"),
            step("stop", "web and worker stopped: GlitchTip is down from here to `start`"),
            step("backup", f"backup: {BACKUP}"),
            step(
                "settings",
                "glitchtip.yaml: postgres_image: postgres:18.1; wrote compose.part.yml, "
                "compose.yml; compose.yml valid",
            ),
            step(
                "postgres",
                "Postgres 17 -> 18: dump restored into volume gtkit_postgres-18; "
                "gtkit_postgres-data kept as it was",
            ),
            step("start", "up"),
            step("verify", "7 checks passed"),
        ],
        "old_volume": "gtkit_postgres-data",
        "remove_old_volume": "docker volume rm gtkit_postgres-data",
    }  # fmt: skip


def test_the_json_of_a_failed_upgrade_holds_the_error_and_the_rollback(tmp_path):
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path, fail="verify")
    ctx = context(directory, FakeCompose())
    state = upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=fake.ops())
    document = _json(upgrade.run_upgrade(ctx, state, fake.ops()), tmp_path)
    assert document["ok"] is False and "old_volume" not in document
    assert document["error"] == {
        "step": "verify",
        "cause": "verify failed: event: not processed within 60 s",
    }
    assert document["rollback"] == {
        "ok": True,
        "done": [
            "files restored", "database restored from the backup", "stack up", "verify passed",
        ],
        "problem": "",
    }  # fmt: skip
    assert document["steps"][-1] == {
        "name": "verify",
        "status": "failed",
        "detail": "verify failed: event: not processed within 60 s",
        "changed": None,
    }


def test_a_new_postgres_of_another_major_fails_the_step_and_rolls_back(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, version="6.2.6")
    fake.start_postgres = lambda ctx: fake.events.append("start postgres") or 17
    lines, _settings, failure, outcome = transcript(
        tmp_path, fake, directory, to=None, postgres="18.1"
    )
    assert lines[9] == (
        "      FAILED (T s) the new postgres server reports Postgres 17, not 18: check "
        "postgres_image"
    )
    assert outcome.report.error.cause == (
        "the new postgres server reports Postgres 17, not 18: check postgres_image"
    )
    assert not any(event.startswith("restore") for event in fake.events)
    assert outcome.rollback.ok and failure.startswith(
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'postgres' (the new postgres server "
        "reports Postgres 17, not 18: check postgres_image); rolled back"
    )


def test_web_and_worker_that_do_not_stop_fail_the_step_with_composes_words(tmp_path):
    from provision.runtime.process import ProcessResult

    class Stuck(FakeCompose):
        def run(self, *args, env=None, timeout=None):
            self.calls.append(args)
            if args[:1] == ("stop",):
                return ProcessResult(("compose",), 1, "", "a\nb\ncontainer web is paused")
            return ProcessResult(("compose", *args), 0, "", "")

    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path)
    ctx = context(directory, Stuck())
    state = upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=fake.ops())
    outcome = upgrade.run_upgrade(ctx, state, fake.ops())
    assert (outcome.report.error.step, outcome.report.error.cause) == (
        "stop",
        "cannot stop web and worker (b | container web is paused)",
    )
