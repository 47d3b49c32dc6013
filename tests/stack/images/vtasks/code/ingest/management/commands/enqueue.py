import uuid

from django.core.management.base import BaseCommand

from ingest.tasks import ingest_event


class Command(BaseCommand):
    help = "Enqueue N ingest tasks the way GlitchTip's web does (task.enqueue), print N."

    def add_arguments(self, parser):
        parser.add_argument("n", type=int)

    def handle(self, *args, **options):
        for _ in range(options["n"]):
            ingest_event.enqueue({"event_id": uuid.uuid4().hex})
        self.stdout.write(str(options["n"]))
