import json

import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = (
        "Print stored, counted, missing (accepted ids not stored) and what Valkey holds "
        "(queued, unacked) as JSON."
    )

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM events")
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT n FROM counted")
            counted = cursor.fetchone()[0]
            cursor.execute(
                "SELECT count(*) FROM accepted a"
                " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = a.event_id)"
            )
            missing = cursor.fetchone()[0]
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        out = {
            "stored": stored,
            "counted": counted,
            "missing": missing,
            "queued": client.llen("celery"),
            "unacked": client.hlen("unacked"),
        }
        self.stdout.write(json.dumps(out))
