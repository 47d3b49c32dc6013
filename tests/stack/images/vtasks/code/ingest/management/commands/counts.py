import json

from django.conf import settings
from django.core.cache import caches
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = (
        "Print stored, counted and what the queue holds (queued, dead letters, processing) as JSON."
    )

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM events")
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT n FROM counted")
            counted = cursor.fetchone()[0]
        if "django_vtasks.db" in settings.INSTALLED_APPS:
            out = {"stored": stored, "counted": counted, **self._database_queue()}
        else:
            out = {"stored": stored, "counted": counted, **self._valkey_queue()}
        self.stdout.write(json.dumps(out))

    def _valkey_queue(self) -> dict:
        driver = caches["default"].get_raw_client()
        processing = 0
        for key in driver.scan_all_sync("{vt}:processing:*"):
            processing += driver.llen_sync(key.decode() if isinstance(key, bytes) else key)
        return {
            "queued": driver.llen_sync("{vt}:q:ingest"),
            "failed": driver.llen_sync("{vt}:q:failed"),
            "processing": processing,
        }

    def _database_queue(self) -> dict:
        """The database backend's rows (django_vtasks.db QueuedTask) by status."""
        from django_vtasks.db.models import QueuedTask, TaskStatus

        def count(status) -> int:
            return QueuedTask.objects.filter(status=status).count()

        return {
            "queued": count(TaskStatus.QUEUED),
            "failed": count(TaskStatus.FAILED),
            "processing": count(TaskStatus.PROCESSING),
        }
