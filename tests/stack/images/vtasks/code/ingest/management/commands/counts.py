import json

from django.core.cache import caches
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Print stored, counted and what Valkey holds (queues, dead letters, processing) as JSON."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM events")
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT n FROM counted")
            counted = cursor.fetchone()[0]
        driver = caches["default"].get_raw_client()
        processing = 0
        for key in driver.scan_all_sync("{vt}:processing:*"):
            processing += driver.llen_sync(key.decode() if isinstance(key, bytes) else key)
        out = {
            "stored": stored,
            "counted": counted,
            "queued": driver.llen_sync("{vt}:q:ingest"),
            "failed": driver.llen_sync("{vt}:q:failed"),
            "processing": processing,
        }
        self.stdout.write(json.dumps(out))
