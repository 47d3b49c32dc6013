"""A stand-in for GlitchTip 5's glitchtip/settings.py, reduced to what the worker reads.

The parts that matter are GlitchTip's (read in its glitchtip/settings.py of the 5.x line): the
database with Django's connection pool (CONN_MAX_AGE 0, pool min 2 / max 10, psycopg_pool's 30 s
timeout; CONN_HEALTH_CHECKS from DATABASE_CONN_HEALTH_CHECKS, which the kit sets to true), the
Celery broker on REDIS_URL with GlitchTip's CELERY_BROKER_TRANSPORT_OPTIONS, no result backend, no
CELERY_TASK_ACKS_LATE, no visibility timeout, no task annotations. GlitchTip's database engine is
psql_partition's backend, a subclass of Django's postgresql; Django's own is used here.
"""

import os

SECRET_KEY = "celery5-test-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["apps.event_ingest"]
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
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 10}},
    }
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://valkey:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "fanout_prefix": True,
    "fanout_patterns": True,
    "retry_on_timeout": True,
    "max_connections": 100,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
