"""GlitchTip 5's ingest batch task in shape (apps/event_ingest/tasks.py: `ingest_event`, a
celery-batches task, FLUSH_EVERY 100, FLUSH_INTERVAL 2, named by its module and function as
shared_task names it), storing a batch in one transaction: each event once, and a count."""

import os
import time

from celery import shared_task
from celery_batches import Batches
from django.db import connection, transaction
from glitchtip.celery import app  # noqa: F401 (GlitchTip's tasks.py imports its app too)

FLUSH_EVERY = 100
FLUSH_INTERVAL = 2
# Seconds a batch takes between its first query and its writes (GlitchTip looks up projects,
# releases and issue hashes, computes, then writes), so that a fault lands inside batches.
BATCH_SECONDS = float(os.environ.get("INGEST_BATCH_SECONDS", "0.5"))


def ingest_event(requests: list):
    ids = [request.args[0]["event_id"] for request in requests]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events WHERE event_id = ANY(%s)", [ids])
        time.sleep(BATCH_SECONDS)
        values = ",".join(["(%s)"] * len(ids))
        # GlitchTip: IssueEvent bulk_create(ignore_conflicts=True) on (id, received).
        cursor.execute(f"INSERT INTO events (event_id) VALUES {values} ON CONFLICT DO NOTHING", ids)
        # GlitchTip: update_statistics adds the batch to the counts, row or no row.
        cursor.execute("UPDATE counted SET n = n + %s", [len(ids)])


ingest_event = shared_task(
    ingest_event, base=Batches, flush_every=FLUSH_EVERY, flush_interval=FLUSH_INTERVAL
)
