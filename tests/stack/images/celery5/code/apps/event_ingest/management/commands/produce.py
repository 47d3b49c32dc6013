import json
import time
import uuid

from django.core.management.base import BaseCommand
from django.db import connection

from apps.event_ingest.tasks import ingest_event


class Command(BaseCommand):
    help = (
        "Queue ingest tasks for SECONDS as GlitchTip 5's web does (ingest_event.delay; what an "
        "SDK is answered 200 for), RATE per second, each padded with PAD bytes; with "
        "--until-full stop at the first refusal (Valkey at maxmemory); record the accepted "
        "events' ids (table accepted) and print accepted and refused as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("seconds", type=float)
        parser.add_argument("--rate", type=float, default=100.0)
        parser.add_argument("--pad", type=int, default=0)
        parser.add_argument("--until-full", action="store_true")

    def handle(self, *args, **options):
        accepted = refused = 0
        accepted_ids = []
        pad = "x" * options["pad"]
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < options["seconds"]:
            try:
                event_id = uuid.uuid4().hex
                ingest_event.delay({"event_id": event_id, "pad": pad})
                accepted += 1
                accepted_ids.append(event_id)
            except Exception:  # the web answers 500: the SDK's event is refused, not accepted
                refused += 1
                if options["until_full"]:
                    break
            ahead = (accepted + refused) / options["rate"] - elapsed
            if ahead > 0:
                time.sleep(ahead)
        with connection.cursor() as cursor:  # once, after: not in the queuing's way
            cursor.execute(
                "INSERT INTO accepted SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                [accepted_ids],
            )
        self.stdout.write(json.dumps({"accepted": accepted, "refused": refused}))
