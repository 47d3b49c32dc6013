from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Create the events, counted and accepted tables (empty)."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS events, counted, accepted")
            cursor.execute("CREATE TABLE events (event_id text PRIMARY KEY)")
            cursor.execute("CREATE TABLE counted (n bigint NOT NULL)")
            # The ids `produce` was answered for: a stored count alone cannot tell a lost
            # event from an extra one (a queuing that raised after Valkey applied it).
            cursor.execute("CREATE TABLE accepted (event_id text PRIMARY KEY)")
            cursor.execute("INSERT INTO counted VALUES (0)")
