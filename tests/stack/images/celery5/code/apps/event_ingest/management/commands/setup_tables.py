from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Create the events and counted tables (empty)."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS events, counted")
            cursor.execute("CREATE TABLE events (event_id text PRIMARY KEY)")
            cursor.execute("CREATE TABLE counted (n bigint NOT NULL)")
            cursor.execute("INSERT INTO counted VALUES (0)")
