"""A stand-in for GlitchTip 6's glitchtip/settings.py, reduced to what the task queue reads.

The parts that matter are GlitchTip's (read in its glitchtip/settings.py): the database with
Django's connection pool (DATABASE_POOL_* defaults 2/20/30 s, CONN_HEALTH_CHECKS from
DATABASE_CONN_HEALTH_CHECKS, which the kit sets to true), TASKS naming django-vtasks' database
backend, or, when VALKEY_URL is set, django-vcache as the default cache on it and
ValkeyTaskBackend on that cache, VTASKS_QUEUES and the ingest batch queue (100 tasks, 2 s).
GlitchTip's database engine is django_async_backend's postgresql, a subclass of Django's;
Django's own is used here.
"""

import os

SECRET_KEY = "vtasks-test-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django_vtasks", "ingest"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DATABASE_HOST", "postgres"),
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": os.environ.get("DATABASE_CONN_HEALTH_CHECKS", "") == "true",
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 20, "timeout": 30}},
    }
}

# GlitchTip: the database backend unless VALKEY_URL is set (VALKEY_URL="": the minimal profile's
# all-in-one, whose tasks, cache and sessions live in Postgres).
VALKEY_URL = os.environ.get("VALKEY_URL", "redis://valkey:6379/0")
TASKS = {"default": {"BACKEND": "django_vtasks.backends.db.DatabaseTaskBackend"}}
if VALKEY_URL:
    CACHES = {"default": {"BACKEND": "django_vcache.backend.ValkeyCache", "LOCATION": VALKEY_URL}}
    TASKS = {
        "default": {
            "BACKEND": "django_vtasks.backends.valkey.ValkeyTaskBackend",
            "OPTIONS": {"cache_alias": "default"},
        }
    }
else:
    INSTALLED_APPS.append("django_vtasks.db")
VTASKS_QUEUES = ["default", "ingest"]
VTASKS_BATCH_QUEUES = {"ingest": {"count": 100, "timeout": 2.0}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
