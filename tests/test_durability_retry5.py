"""GlitchTip 5: the kit's worker module retries an ingest batch the database failed (issue 19).

celery-batches logs and drops a batch that raises; the kit's module wraps the `__call__` of
GlitchTip 5's celery-batches tasks through Celery's task_annotations ("@__call__"). Celery is
not a dependency of the kit, so these tests exercise the wrapper as Celery calls it
(`around(original)(task, *args)`, celery/app/task.py `Task.add_around`);
tests/stack/test_celery5_real_stack.py runs it on the real Celery 5.5.3 and celery-batches 0.10.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from provision import durability
from provision.worker_modules import glitchtip5_retry as retry

# Django's, psycopg's and psycopg_pool's classes by name (none of them is a dependency here).
OperationalError = type("OperationalError", (Exception,), {"__module__": "django.db.utils"})
InterfaceError = type("InterfaceError", (Exception,), {"__module__": "django.db.utils"})
IntegrityError = type("IntegrityError", (Exception,), {"__module__": "django.db.utils"})
PsycopgOperationalError = type("OperationalError", (Exception,), {"__module__": "psycopg"})
AdminShutdown = type("AdminShutdown", (PsycopgOperationalError,), {"__module__": "psycopg.errors"})
PoolTimeout = type("PoolTimeout", (Exception,), {"__module__": "psycopg_pool"})


class Task:
    name = "apps.event_ingest.tasks.ingest_event"


def failing(*errors: BaseException | None):
    """A task `__call__` raising `errors` in turn (None: returns "stored"), counting its calls."""
    calls: list[tuple] = []

    def call(task, *args, **kwargs):
        calls.append(args)
        error = errors[min(len(calls), len(errors)) - 1]
        if error is not None:
            raise error
        return "stored"

    return call, calls


def wrapped(call, sleeps: list[float], monkeypatch) -> object:
    closed: list[bool] = []
    monkeypatch.setattr(retry, "_close_database_connections", lambda: closed.append(True))
    around = retry._retry_when_the_database_goes_away(call, sleep=sleeps.append)
    around.closed = closed  # type: ignore[attr-defined]
    return around


def test_a_batch_the_database_failed_runs_again_after_closing_the_connections(monkeypatch):
    shutdown = OperationalError("terminating connection due to administrator command")
    call, calls = failing(shutdown, InterfaceError("connection already closed"), None)
    sleeps: list[float] = []
    around = wrapped(call, sleeps, monkeypatch)

    assert around(Task(), ["batch"]) == "stored"
    assert calls == [(["batch"],)] * 3
    assert sleeps == [1, 2]
    assert around.closed == [True, True]


@pytest.mark.parametrize(
    "error",
    [
        AdminShutdown("the driver's own error"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
        pytest.param("wrapped", id="django-wrapping-psycopg"),
    ],
)
def test_what_counts_as_the_database_going_away(error, monkeypatch):
    if error == "wrapped":  # Django: raise OperationalError(...) from the driver's error
        try:
            try:
                raise AdminShutdown("terminating connection")
            except AdminShutdown as cause:
                raise RuntimeError("batch failed") from cause
        except RuntimeError as outer:
            error = outer
    call, calls = failing(error, None)
    sleeps: list[float] = []
    assert wrapped(call, sleeps, monkeypatch)(Task(), []) == "stored"
    assert sleeps == [1] and len(calls) == 2


@pytest.mark.parametrize(
    "error",
    [IntegrityError("duplicate key"), ValueError("a bug"), KeyError("event_id")],
)
def test_other_errors_raise_at_once_as_before(error, monkeypatch):
    call, calls = failing(error)
    sleeps: list[float] = []
    with pytest.raises(type(error)):
        wrapped(call, sleeps, monkeypatch)(Task(), [])
    assert len(calls) == 1 and sleeps == []


def test_a_database_that_stays_away_gives_up_after_the_bounded_backoff(monkeypatch):
    error = OperationalError("connection refused")
    call, calls = failing(error)
    sleeps: list[float] = []
    with pytest.raises(OperationalError) as raised:
        wrapped(call, sleeps, monkeypatch)(Task(), [])
    assert raised.value is error  # celery-batches logs it and the batch is lost, as before
    assert sleeps == [1, 2, 4, 8, 15, 30, 30, 30]
    assert len(calls) == len(sleeps) + 1
    assert sum(sleeps) == 120  # about two minutes holding its slot


def test_closing_connections_is_best_effort(monkeypatch):
    """Without Django (or when closing a dead connection raises) the retry still happens."""
    monkeypatch.setitem(sys.modules, "django", None)  # `import django.db` raises ImportError
    retry._close_database_connections()


def _literal(source: str, name: str):
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Call):  # frozenset({...})
                value = value.args[0]
            return ast.literal_eval(value)
    raise AssertionError(f"{name} not found")


def test_the_same_backoff_and_errors_as_the_glitchtip6_backend():
    six = durability.WORKER6_SOURCE.read_text(encoding="utf-8")
    assert _literal(six, "_RETRY_DELAYS") == retry._RETRY_DELAYS
    assert frozenset(_literal(six, "_TRANSIENT_ERRORS")) == retry._TRANSIENT_ERRORS


def _render_and_import(tmp_path: Path, monkeypatch, glitchtip_settings: str):
    (tmp_path / "glitchtip").mkdir()
    (tmp_path / "glitchtip" / "__init__.py").write_text("")
    (tmp_path / "glitchtip" / "settings.py").write_text(glitchtip_settings)
    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
        durability.worker_settings_module(5)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # Import afresh, and leave sys.modules as it was (the stand-in's glitchtip.settings included).
    for name in ("glitchtip", "glitchtip.settings", durability.WORKER_SETTINGS_MODULE):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
        del sys.modules[name]
    return __import__(durability.WORKER_SETTINGS_MODULE)


def test_the_rendered_module_annotates_both_ingest_batch_tasks(tmp_path, monkeypatch):
    module = _render_and_import(
        tmp_path, monkeypatch, "CELERY_BROKER_TRANSPORT_OPTIONS = {'max_connections': 100}\n"
    )
    (kit,) = module.CELERY_TASK_ANNOTATIONS
    assert set(kit) == {
        "apps.event_ingest.tasks.ingest_event",
        "apps.event_ingest.tasks.ingest_transaction",
    }
    for annotation in kit.values():
        assert annotation == {"@__call__": module._retry_when_the_database_goes_away}
    # Celery: `meth = around(orig); meth.__wrapped__ = orig; setattr(cls, "__call__", meth)`.
    around = module._retry_when_the_database_goes_away(lambda task, requests: len(requests))
    around.__wrapped__ = None
    assert around(Task(), [1, 2, 3]) == 3
    assert module.CELERY_TASK_ACKS_LATE is True


def test_glitchtips_own_annotations_are_kept_after_the_kits(tmp_path, monkeypatch):
    module = _render_and_import(
        tmp_path,
        monkeypatch,
        "CELERY_BROKER_TRANSPORT_OPTIONS = {}\n"
        "CELERY_TASK_ANNOTATIONS = {'apps.x.tasks.y': {'rate_limit': '10/s'}}\n",
    )
    kit, theirs = module.CELERY_TASK_ANNOTATIONS
    assert "apps.event_ingest.tasks.ingest_event" in kit
    assert theirs == {"apps.x.tasks.y": {"rate_limit": "10/s"}}


def test_the_module_ends_with_the_retry_source_copied_as_it_is():
    """... and then the transport's source (tests/test_durability_transport5.py)."""
    source = durability.WORKER5_RETRY_SOURCE.read_text(encoding="utf-8")
    transport = durability.WORKER5_TRANSPORT_SOURCE.read_text(encoding="utf-8")
    for embedded in (None, (4, 25)):
        assert durability.worker_settings_module(5, embedded).endswith(source + "\n" + transport)
