import secrets
import uuid

from django.core.management.base import BaseCommand

from ingest.tasks import ingest_event


class Command(BaseCommand):
    help = (
        "Enqueue N ingest tasks the way GlitchTip's web does (task.enqueue), print how many were "
        "queued; --until-full stops at the first refused enqueue (Valkey at maxmemory)."
    )

    def add_arguments(self, parser):
        parser.add_argument("n", type=int)
        parser.add_argument("--pad", type=int, default=0, help="random hex characters per task")
        parser.add_argument("--until-full", action="store_true")

    def handle(self, *args, **options):
        queued = 0
        for _ in range(options["n"]):
            event = {"event_id": uuid.uuid4().hex}
            if options["pad"]:
                event["pad"] = secrets.token_hex(options["pad"] // 2)
            try:
                ingest_event.enqueue(event)
            except Exception as exc:
                if not options["until_full"]:
                    raise
                self.stderr.write(f"refused after {queued}: {exc}")
                break
            queued += 1
        self.stdout.write(str(queued))
