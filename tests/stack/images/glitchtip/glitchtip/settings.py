"""The part of GlitchTip's glitchtip/settings.py a worker settings module builds on.

GlitchTip 6: `TASKS` as its settings set it: django-vtasks' Valkey backend on the django-vcache
cache `default` when VALKEY_URL is not empty, its database backend when it is (the minimal
profile); the kit's GlitchTip 6 worker module replaces the backend class
(standin/workersettings.py `load_tasks_backend`).

GlitchTip 5:

The kit's GlitchTip 5 worker loads `DJANGO_SETTINGS_MODULE=glitchtip_kit_worker_settings`, which
does `from glitchtip.settings import *` and overrides Celery settings. The stand-in imports that
module the same way (standin/workersettings.py) and reads the Celery settings the real worker
would: these names with the real file's values (REDIS_RETRY and REDIS_MAX_CONNECTIONS at their
defaults). GlitchTip's settings set neither `CELERY_TASK_ACKS_LATE` nor a `visibility_timeout`,
so Celery's defaults apply: acknowledged early, 3600 s.
"""

import os

# GlitchTip 5's broker (REDIS_HOST and its parts left out: the kit sets REDIS_URL).
REDIS_URL = os.environ.get("REDIS_URL", "redis://redis:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "fanout_prefix": True,
    "fanout_patterns": True,
    "retry_on_timeout": True,
    "max_connections": 100,
}

# GlitchTip 6: django-vtasks' database backend, or its Valkey backend when VALKEY_URL is set.
TASKS = {"default": {"BACKEND": "django_vtasks.backends.db.DatabaseTaskBackend"}}
if os.environ.get("VALKEY_URL"):
    TASKS = {
        "default": {
            "BACKEND": "django_vtasks.backends.valkey.ValkeyTaskBackend",
            "OPTIONS": {"cache_alias": "default"},
        }
    }
