from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Create the events and counted tables (empty), and the database backend's tables."

    def handle(self, *args, **options):
        if "django_vtasks.db" in settings.INSTALLED_APPS:
            call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS events, counted")
            cursor.execute("CREATE TABLE events (event_id text PRIMARY KEY)")
            cursor.execute("CREATE TABLE counted (n bigint NOT NULL)")
            cursor.execute("INSERT INTO counted VALUES (0)")
