"""GlitchTip 5's Celery app in what matters here: DJANGO_SETTINGS_MODULE only setdefault (so the
kit's module, named in the worker's environment, wins), configuration from the Django settings
with namespace CELERY (CELERY_TASK_ACKS_LATE, CELERY_BROKER_TRANSPORT_OPTIONS,
CELERY_TASK_ANNOTATIONS...), tasks discovered in the installed apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glitchtip.settings")

app = Celery("glitchtip")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
