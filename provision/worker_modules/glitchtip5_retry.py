# -- GlitchTip 5: an ingest batch the database failed is retried, not dropped -------------------
# (provision/worker_modules/glitchtip5_retry.py, appended to the module by `provision render`.)
#
# celery-batches runs a batch as `task(*args)` (celery_batches/trace.py `apply_batches_task`);
# when it raises, it logs the error and returns, and `Batches.flush`'s `on_return` then
# acknowledges every message of the batch, acks_late or not: a batch whose transaction a Postgres
# restart aborted is gone. Celery's `task_annotations` setting (CELERY_TASK_ANNOTATIONS here:
# GlitchTip's Celery app reads the Django settings with namespace CELERY) can wrap a task's
# method: a key starting with "@" makes `Task.annotate` call `Task.add_around(name, around)`,
# which replaces the method on the task's class with `around(original)` (celery/app/task.py),
# in every process of the worker (the annotation is applied when the task class is bound, before
# a prefork pool forks). Wrapping `__call__` of GlitchTip 5's two celery-batches tasks (both
# store accepted data: apps/event_ingest/tasks.py `ingest_event`, issue events, and
# `ingest_transaction`, transactions) makes a batch that failed because the database went away
# close this thread's connections, wait and run again: 1, 2, 4, 8, 15, 30, 30, 30 s (about two
# minutes, as the kit's GlitchTip 6 backend does); after the eighth retry, or at once for any
# other error, it raises as before: celery-batches logs it and the batch is lost, as without the
# kit. While it waits the batch holds its pool slot and stays unacknowledged (acks_late).
#
# "The database went away" is the same rule as the kit's GlitchTip 6 backend: a class named
# OperationalError or InterfaceError (PEP 249's errors for a lost or refused connection, which
# Django's database layer re-raises under the same names with the driver's error as the cause)
# or PoolTimeout (psycopg_pool: no connection within the pool's 30 s), anywhere in the error's
# class hierarchy or chain (cause, context). kombu's OperationalError (the broker connection lost
# while the batch publishes) matches too: also an outage, not a bug. Not retried: IntegrityError,
# DataError, ProgrammingError and every other error (a bug or bad data fails the same way again).
#
# What a retry costs: the batch runs again from its start. GlitchTip's batch is not one
# transaction; the event rows are inserted with bulk_create(ignore_conflicts=True) on (event id,
# received), so a row written before the failure is not written twice, but counts a failed run
# had already added (the count, hourly and tag statistics) are added again. A batch still
# waiting when kombu looks for messages older than the visibility timeout (10 s; kombu looks when
# a worker starts and every 100 s after) is also handed to another slot: stored once, counted
# twice.
import logging as _logging
import time as _time
from collections.abc import Callable as _Callable
from typing import Any as _Any

_RETRY_LOGGER = _logging.getLogger("glitchtip_kit_worker_settings")
# Seconds to wait before each retry of a batch the database failed (as the kit's GlitchTip 6
# backend: a Postgres restart takes seconds, a failover up to a minute or two).
_RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 30, 30)
# GlitchTip 5's celery-batches tasks that store accepted data (apps/event_ingest/tasks.py).
_BATCH_TASKS = (
    "apps.event_ingest.tasks.ingest_event",
    "apps.event_ingest.tasks.ingest_transaction",
)
# Error class names (anywhere in an exception's chain) that mean the database went away.
_TRANSIENT_ERRORS = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})


def _database_went_away(error: BaseException) -> bool:
    """Whether `error`, or an error in its chain (cause, context), is of a class (or subclass of
    a class) named in _TRANSIENT_ERRORS."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _TRANSIENT_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _close_database_connections() -> None:
    """Close this thread's Django connections (a dead one goes back to the pool, which drops
    it), so that the retry starts on a new one. Best effort: closing a dead connection may raise
    too."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception as error:  # the retry opens new connections anyway
        _RETRY_LOGGER.debug("closing the database connections failed: %r", error)


def _retry_when_the_database_goes_away(
    call: _Callable[..., _Any], sleep: _Callable[[float], _Any] = _time.sleep
) -> _Callable[..., _Any]:
    """`around` for Celery's task_annotations ("@__call__"): `call(task, *args)` again after
    _RETRY_DELAYS[n] seconds while it fails because the database went away."""

    def around(task: _Any, *args: _Any, **kwargs: _Any) -> _Any:
        for delay in (*_RETRY_DELAYS, None):
            try:
                return call(task, *args, **kwargs)
            except Exception as error:
                if delay is None or not _database_went_away(error):
                    raise
                _RETRY_LOGGER.warning(
                    "%s: a batch failed because the database went away (%s); retrying in %s s",
                    getattr(task, "name", "task"),
                    type(error).__name__,
                    delay,
                )
                _close_database_connections()
                sleep(delay)
        raise AssertionError("unreachable")  # the last try returns or raises

    around.__name__ = getattr(call, "__name__", "around")
    return around


def _annotations(theirs: _Any) -> tuple[_Any, ...]:
    """The kit's annotations first, then GlitchTip's own if it ever sets any (Celery applies
    every matching annotation in order)."""
    kit = {name: {"@__call__": _retry_when_the_database_goes_away} for name in _BATCH_TASKS}
    if theirs is None:
        return (kit,)
    if isinstance(theirs, (list, tuple)):
        return (kit, *theirs)
    return (kit, theirs)


CELERY_TASK_ANNOTATIONS = _annotations(globals().get("CELERY_TASK_ANNOTATIONS"))
