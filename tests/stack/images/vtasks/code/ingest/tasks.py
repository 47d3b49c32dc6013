"""The ingest batch task: GlitchTip's `ingest_event(tasks: list)` in shape (a sync batch task on
the `ingest` queue), storing each event once and counting it."""

import os
import time

from django.db import connection
from django_vtasks import task

# Seconds a batch takes between its first query and its writes (GlitchTip's processing: it
# looks up projects, releases and issue hashes, then computes, then writes), so that a kill or
# a database restart lands in the middle of batches holding a connection.
BATCH_SECONDS = float(os.environ.get("INGEST_BATCH_SECONDS", "0.5"))


@task(queue_name="ingest")
def ingest_event(tasks: list):
    ids = [t["args"][0]["event_id"] for t in tasks]
    with connection.cursor() as cursor:
        # GlitchTip: the lookups before it processes the batch (IssueHash, projects...).
        cursor.execute("SELECT count(*) FROM events WHERE event_id = ANY(%s)", [ids])
        time.sleep(BATCH_SECONDS)
        values = ",".join(["(%s)"] * len(ids))
        # GlitchTip: IssueEvent bulk_create(ignore_conflicts=True) on (id, received).
        cursor.execute(f"INSERT INTO events (event_id) VALUES {values} ON CONFLICT DO NOTHING", ids)
        # GlitchTip: update_statistics adds the batch to the counts, row or no row.
        cursor.execute("UPDATE counted SET n = n + %s", [len(ids)])
