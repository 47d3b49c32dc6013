import uuid

from django.core.management.base import BaseCommand

from apps.event_ingest.tasks import ingest_event


class Command(BaseCommand):
    help = "Queue N ingest tasks the way GlitchTip 5's web does (ingest_event.delay); print N."

    def add_arguments(self, parser):
        parser.add_argument("n", type=int)

    def handle(self, *args, **options):
        for _ in range(options["n"]):
            ingest_event.delay({"event_id": uuid.uuid4().hex})
        self.stdout.write(str(options["n"]))
