"""The settings the worker runs with, read from its Django settings module as GlitchTip does.

GlitchTip 6 (`load_tasks_backend`): django-vtasks takes its backend class from Django's `TASKS`
setting (`TASKS["default"]["BACKEND"]`, imported by path). The kit's worker module names its
subclass of the Valkey backend there; the stand-in reads the name and, for the kit's class,
keeps batches as that class does (standin.kitvtasks). It does not import the class (no
django-vtasks here): tests/stack/test_vtasks_real_stack.py runs it on the real library.

GlitchTip 5 (`load`), the Celery settings:

Celery takes `task_acks_late` and `broker_transport_options` from the Django settings module
(`app.config_from_object("django.conf:settings", namespace="CELERY")`), which is
`DJANGO_SETTINGS_MODULE` when set, else `glitchtip.settings` (set with `setdefault`). The
stand-in imports that module (PYTHONPATH as the container has it) and applies Celery's and
kombu's defaults where it says nothing: acks early, visibility timeout 3600 s.

`broker_transport` (CELERY_BROKER_TRANSPORT) names the kombu transport class as
"module:Class" (kombu/transport/__init__.py `resolve_transport`); the kit's module names its own
(provision/worker_modules/glitchtip5_transport.py), which takes a message and records it in
`unacked` with one Lua script. The stand-in imports the named module and runs that module's
scripts on its Valkey (standin.valkeyqueue `use_kit_transport`); unset, it pops and records in
two steps as kombu's transport does.

`task_annotations` (CELERY_TASK_ANNOTATIONS) is resolved for the ingest batch task as Celery does
(celery/app/annotations.py `prepare` / `resolve_all`, celery/app/task.py `Task.annotate`): a
dict maps a task name (or "*") to attributes; an object has `annotate(task)`; a string names
such an object's class. A key starting with "@" wraps the method of that name: `add_around`
replaces it by `around(original)`, where `original` is unwrapped first (`__wrapped__`), so of
several "@__call__" annotations the last one applies. The stand-in keeps that `__call__` around
(`call_around`) and runs each ingest batch through it (standin.batchworker): the kit's module
retries a batch the database failed that way; GlitchTip's settings have none.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_VISIBILITY_TIMEOUT = 3600.0  # kombu/transport/redis.py Channel.visibility_timeout
RESTORE_EVERY = 10.0  # kombu: maybe_restore_messages every 10 s (after on_poll_init's call) ...
RESTORE_INTERVAL = 10  # ... restore_visible acts on the 1st (at start), 11th, 21st... call
# GlitchTip 5's issue-event batch task (apps/event_ingest/tasks.py, named by shared_task).
INGEST_TASK = "apps.event_ingest.tasks.ingest_event"


@dataclass(frozen=True)
class CelerySettings:
    acks_late: bool
    visibility_timeout: float
    module: str
    # CELERY_WORKER_CONCURRENCY / _PREFETCH_MULTIPLIER of the module, None where it says
    # nothing: only a worker started without a command line (app.py's embedded one) reads them.
    concurrency: int | None = None
    prefetch: int | None = None
    # The "@__call__" task annotation of the ingest batch task, None without one.
    call_around: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    # CELERY_BROKER_TRANSPORT ("module:Class"), None for kombu's Redis transport (the URL's
    # scheme), and the Lua scripts of the module that defines the class (the kit's transport:
    # take-and-record, and the queue binding at maxmemory), None for kombu's own.
    transport: str | None = None
    take_script: str | None = None
    bind_script: str | None = None
    # The kit's transport restores on every look for this long after a channel starts (its
    # `_EAGER_RESTORE_SECONDS`); 0 for kombu's own (every 10th look).
    eager_restore_s: float = 0.0


def load(environ: dict[str, str] | None = None) -> CelerySettings:
    """The worker's Celery settings from its settings module."""
    environ = dict(os.environ) if environ is None else environ
    name = environ.get("DJANGO_SETTINGS_MODULE") or "glitchtip.settings"
    module = importlib.import_module(name)
    options = getattr(module, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    transport = getattr(module, "CELERY_BROKER_TRANSPORT", None) or None
    owner = None
    if isinstance(transport, str) and ":" in transport:
        # kombu's resolve_transport imports the class's module; the stand-in has no kombu, so
        # it takes the scripts the class runs from that module instead of the class itself.
        owner = importlib.import_module(transport.partition(":")[0])
    return CelerySettings(
        transport=transport,
        take_script=getattr(owner, "_TAKE_SCRIPT", None),
        bind_script=getattr(owner, "_BIND_SCRIPT", None),
        eager_restore_s=float(getattr(owner, "_EAGER_RESTORE_SECONDS", 0.0)),
        acks_late=bool(getattr(module, "CELERY_TASK_ACKS_LATE", False)),
        visibility_timeout=float(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT)),
        module=name,
        concurrency=_optional_int(getattr(module, "CELERY_WORKER_CONCURRENCY", None)),
        prefetch=_optional_int(getattr(module, "CELERY_WORKER_PREFETCH_MULTIPLIER", None)),
        call_around=call_around(getattr(module, "CELERY_TASK_ANNOTATIONS", None), INGEST_TASK),
    )


def _expand(annotation: Any) -> Any:
    """Celery's `prepare`: a string is the path of an annotation class, instantiated."""
    if isinstance(annotation, str):
        module, _, name = annotation.rpartition(".")
        return getattr(importlib.import_module(module), name)()
    return annotation


def call_around(annotations: Any, task_name: str) -> Callable[..., Any] | None:
    """The "@__call__" around that Celery's `Task.annotate` applies to `task_name`: every
    matching annotation in order, the last "@__call__" one winning (add_around unwraps)."""
    if annotations is None:
        return None
    if not isinstance(annotations, (list, tuple)):
        annotations = (annotations,)
    found = None

    class _Task:
        name = task_name

    for annotation in map(_expand, annotations):
        if isinstance(annotation, dict):  # MapAnnotation: the task's name, then "*"
            matches = [annotation.get(task_name), annotation.get("*")]
        else:
            matches = [annotation.annotate(_Task())]
            annotate_any = getattr(annotation, "annotate_any", None)
            matches.append(annotate_any() if annotate_any else None)
        for attributes in matches:
            if attributes and "@__call__" in attributes:
                found = attributes["@__call__"]
    return found


# django-vtasks' Valkey backend, as GlitchTip 6's settings name it when VALKEY_URL is set.
VTASKS_VALKEY_BACKEND = "django_vtasks.backends.valkey.ValkeyTaskBackend"
KIT_BACKEND_CLASS = "KitValkeyTaskBackend"


def load_tasks_backend(environ: dict[str, str] | None = None) -> str:
    """The task backend class path GlitchTip 6's worker loads: `TASKS["default"]["BACKEND"]` of
    its settings module (DJANGO_SETTINGS_MODULE, else glitchtip.settings)."""
    environ = dict(os.environ) if environ is None else environ
    name = environ.get("DJANGO_SETTINGS_MODULE") or "glitchtip.settings"
    module = importlib.import_module(name)
    tasks = getattr(module, "TASKS", None) or {}
    return str((tasks.get("default") or {}).get("BACKEND", ""))


def is_kit_backend(path: str) -> bool:
    """Whether `path` names the kit's backend class (in the kit's worker module)."""
    module, _, cls = path.rpartition(".")
    return cls == KIT_BACKEND_CLASS and module.endswith("glitchtip_kit_worker_settings")


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def embedded_worker_environ(settings: CelerySettings) -> dict[str, str]:
    """The options of GlitchTip 5's all-in-one worker as the stand-in's model reads them.

    app.py starts `app.Worker(pool="threads", loglevel="info")` in-process: no command line,
    so click never reads the CELERY_* environment; pool is threads, concurrency and prefetch
    come from the settings module, else Celery's defaults (CPUs, 4)."""
    environ = {"CELERY_WORKER_POOL": "threads"}
    if settings.concurrency is not None:
        environ["CELERY_WORKER_CONCURRENCY"] = str(settings.concurrency)
    if settings.prefetch is not None:
        environ["CELERY_WORKER_PREFETCH_MULTIPLIER"] = str(settings.prefetch)
    return environ
