"""The migrate and admin steps read whole: the refusals of `check_migrate` as complete lines,
and the `createsuperuser` call as the command it is (the e-mail and password by name only,
their values in the environment), with its bound and the line it reports.

test_up_steps_real.py and test_stack_steps.py match parts of these (issue 20:
`check_migrate` and `create_admin` kept surviving mutants of their texts and arguments)."""

from __future__ import annotations

import pytest
from test_up_steps_real import RecordingCompose, make_ctx, result

from provision.errors import KitError
from provision.stack import admin, migrate

PASSWORD = "Adm1n-pass-from-env"


def refusal(ctx) -> str:
    with pytest.raises(KitError) as caught:
        migrate.check_migrate(ctx)
    return caught.value.line()


def test_each_migrate_refusal_is_one_whole_line(tmp_path):
    none = RecordingCompose(rows=[{"Service": "web", "State": "running"}])
    assert refusal(make_ctx(tmp_path, none)) == (
        "the one-shot migrate container does not exist: check compose.yml has a `migrate` "
        "service (`provision render --check`)"
    )
    failed = RecordingCompose(
        rows=[{"Service": "migrate", "State": "exited", "ExitCode": "3"}],
        logs="line one\nrelation does not exist",
    )
    assert refusal(make_ctx(tmp_path, failed)).startswith("migrate exited 3; its log ends: ")
    quiet = RecordingCompose(rows=[{"Service": "migrate", "State": "exited", "ExitCode": 3}])
    assert refusal(make_ctx(tmp_path, quiet)) == "migrate exited 3"
    assert refusal(make_ctx(tmp_path, RecordingCompose(rows=[{"Service": "migrate"}]))) == (
        "migrate is still not started: see `provision logs migrate`"
    )


def test_createsuperuser_gets_the_credentials_by_name_and_reports_where_the_password_is(
    tmp_path,
):
    (tmp_path / ".env").write_text(f"DJANGO_SUPERUSER_PASSWORD={PASSWORD}\n")

    class Creates(RecordingCompose):
        def run(self, *args, env=None, timeout=None):
            self.calls.append(args)
            self.envs.append(env)
            self.timeouts.append(timeout)
            return result("Superuser created successfully.")

    compose = Creates()
    outcome = admin.create_admin(make_ctx(tmp_path, compose), prove=lambda c, e, p: None)
    assert compose.calls == [
        (
            "exec", "-T", "-e", "DJANGO_SUPERUSER_EMAIL", "-e", "DJANGO_SUPERUSER_PASSWORD",
            "web", "./manage.py", "createsuperuser", "--noinput",
        )
    ]  # fmt: skip
    assert compose.envs == [
        {"DJANGO_SUPERUSER_EMAIL": "admin@example.com", "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    ]
    assert len(compose.timeouts) == 1 and 0 < compose.timeouts[0] <= 600  # bounded (a Django boot)
    assert (outcome.detail, outcome.changed) == (
        "created admin@example.com (password in .env, key DJANGO_SUPERUSER_PASSWORD)",
        True,
    )


def test_an_admin_proven_to_exist_says_how_and_whether_env_changed(tmp_path):
    (tmp_path / ".env").write_text(f"DJANGO_SUPERUSER_PASSWORD={PASSWORD}\n")
    ctx = make_ctx(tmp_path, RecordingCompose())
    outcome = admin.create_admin(ctx, prove=lambda c, e, p: ("logged in", True))
    assert (outcome.detail, outcome.changed) == (
        "admin@example.com already exists (logged in); its API token kept in .env",
        True,
    )
    outcome = admin.create_admin(ctx, prove=lambda c, e, p: ("the token answers", False))
    assert (outcome.detail, outcome.changed) == (
        "admin@example.com already exists (the token answers)",
        False,
    )
