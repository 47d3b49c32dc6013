import json
import time
import uuid

from django.core.management.base import BaseCommand

from apps.event_ingest.tasks import ingest_event


class Command(BaseCommand):
    help = (
        "Queue ingest tasks for SECONDS as GlitchTip 5's web does (ingest_event.delay; what an "
        "SDK is answered 200 for), RATE per second, each padded with PAD bytes; with "
        "--until-full stop at the first refusal (Valkey at maxmemory); print accepted and "
        "refused as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("seconds", type=float)
        parser.add_argument("--rate", type=float, default=100.0)
        parser.add_argument("--pad", type=int, default=0)
        parser.add_argument("--until-full", action="store_true")

    def handle(self, *args, **options):
        accepted = refused = 0
        pad = "x" * options["pad"]
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < options["seconds"]:
            try:
                ingest_event.delay({"event_id": uuid.uuid4().hex, "pad": pad})
                accepted += 1
            except Exception:  # the web answers 500: the SDK's event is refused, not accepted
                refused += 1
                if options["until_full"]:
                    break
            ahead = (accepted + refused) / options["rate"] - elapsed
            if ahead > 0:
                time.sleep(ahead)
        self.stdout.write(json.dumps({"accepted": accepted, "refused": refused}))
