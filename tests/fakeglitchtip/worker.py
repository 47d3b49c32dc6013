"""What GlitchTip's worker does, for the fake: turn queued events into issues; run uptime checks.

Nothing ingested becomes visible until `process_pending` runs, as with the real server (whose web
process only enqueues). The in-memory fake can run `Worker` in a thread; the stand-in image runs
`python3 -m fakeglitchtip.worker` style loops calling the same functions.
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
import time
import urllib.error
import urllib.request

from . import model, stats
from .store import EventQueue, State, Store


def _title(event: dict) -> tuple[str, dict, list[dict]]:
    values = (event.get("exception") or {}).get("values") or []
    if values:
        last = values[-1]
        kind, value = str(last.get("type") or "Error"), str(last.get("value") or "")
        entries = [
            {
                "type": "exception",
                "data": {
                    "values": [{"type": v.get("type"), "value": v.get("value")} for v in values],
                    "hasSystemFrames": False,
                },
            }
        ]
        return f"{kind}: {value}" if value else kind, {"type": kind, "value": value}, entries
    message = event.get("message")
    if isinstance(message, dict):
        message = message.get("formatted") or message.get("message")
    text = str(message or event.get("logentry", {}).get("message") or "<unlabeled event>")
    return text, {"title": text}, [{"type": "message", "data": {"formatted": text}}]


def _duration_ms(event: dict) -> float:
    try:
        start = _dt.datetime.fromisoformat(str(event["start_timestamp"]).replace("Z", "+00:00"))
        end = _dt.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return max((end - start).total_seconds() * 1000, 0.0)


def _ingest_transaction(state: State, project: dict, item: dict) -> bool:
    """Store a transaction as GlitchTip does: counted in its group (name, op) of the project
    (what `GET .../transaction-groups/` lists, recorded 157), never as an issue."""
    try:
        event = json.loads(item["payload"]) if isinstance(item["payload"], str) else item["payload"]
    except ValueError:
        return False
    name = str(event.get("transaction") or "")
    op = str(((event.get("contexts") or {}).get("trace") or {}).get("op") or "")
    groups = state.setdefault("transaction_groups", {})
    group = next(
        (
            g
            for g in groups.values()
            if g["project_id"] == project["id"] and g["transaction"] == name and g["op"] == op
        ),
        None,
    )
    if group is None:
        group_id = model.next_id(state, "transaction_group")
        group = {"id": group_id, "project_id": project["id"], "transaction": name, "op": op}
        group.update(count=0, duration_ms=0.0)
        groups[str(group_id)] = group
    group["count"] += 1
    group["duration_ms"] += _duration_ms(event)
    return True


def _ingest(state: State, item: dict) -> bool:
    project = state["projects"].get(str(item["project_id"]))
    if project is None or project["deleted"]:
        return False
    if item.get("kind") == "transaction":
        # Transactions are stored apart from issues: in their group (transaction-groups) and in
        # the hourly counts of stats_v2.
        if not _ingest_transaction(state, project, item):
            return False
        received = item.get("received") or model.now_iso()
        stats.count_event(state, "transaction", project["id"], received)
        return True
    if item.get("kind") != "event":
        return False
    try:
        event = json.loads(item["payload"]) if isinstance(item["payload"], str) else item["payload"]
    except ValueError:
        return False
    title, metadata, entries = _title(event)
    culprit = str(event.get("culprit") or event.get("transaction") or "")
    issue = next(
        (
            i
            for i in state["issues"].values()
            if i["project_id"] == project["id"] and i["title"] == title
        ),
        None,
    )
    received = item.get("received") or model.now_iso()
    if issue is None:
        issue_id = model.next_id(state, "issue")
        issue = {
            "id": issue_id,
            "project_id": project["id"],
            "short_id": model.next_id(state, f"short:{project['id']}"),
            "title": title,
            "metadata": metadata,
            "culprit": culprit,
            "level": str(event.get("level") or "error"),
            "count": 0,
            "first_seen": received,
            "last_seen": received,
        }
        state["issues"][str(issue_id)] = issue
    issue["count"] += 1
    issue["last_seen"] = received
    # Counted when stored, by received time: an event still queued is in no bucket yet.
    stats.count_event(state, "error", project["id"], received)
    # GlitchTip's event table is partitioned by `received`, so its primary key is (id,
    # received), and the worker inserts with ON CONFLICT DO NOTHING
    # (apps/event_ingest/process_event.py `process_issue_events`:
    # `IssueEvent.objects.bulk_create(issue_events, ignore_conflicts=True)`). A message
    # delivered twice (kombu's visibility timeout) carries the same id and received time: its
    # row is skipped, the batch goes on, but the issue's count and the hourly statistics were
    # already added to (`update_issues`, `update_statistics` count every event of the batch).
    # The same id sent again in a new request has a new received time: a second row (recorded:
    # NOTES.md, "Duplicate event IDs are not rejected").
    row_key = f"{item['event_id']}|{item.get('received_exact') or received}"
    rows = state.setdefault("event_rows", {})
    if row_key in rows:
        return False
    seq = model.next_id(state, "event")
    rows[row_key] = seq
    state["events"][str(seq)] = {
        "seq": seq,
        "event_id": item["event_id"],
        "project_id": project["id"],
        "issue_id": issue["id"],
        "platform": str(event.get("platform") or project["platform"] or "other"),
        "date_created": str(event.get("timestamp") or received),
        "date_received": received,
        "culprit": culprit,
        "title": title,
        "metadata": metadata,
        "entries": entries,
    }
    if project["first_event"] is None:
        project["first_event"] = received
    return True


def process_pending(store: Store, queue: EventQueue, limit: int | None = None) -> int:
    """Turn queued raw events into issues and events; return how many were stored."""
    done = 0
    while limit is None or done < limit:
        item = queue.pop()
        if item is None:
            break
        try:
            with store.transaction() as state:
                if _ingest(state, item):
                    done += 1
        except Exception:
            # Keep the event when storing it failed (the database restarting, say): it goes
            # back on the queue for the next round instead of being lost.
            queue.push(item)
            raise
    return done


def store_batch(store: Store, items: list[dict]) -> int:
    """Store a batch of queued raw events in one transaction (GlitchTip's worker stores a
    celery-batches / vtasks batch together); return how many became events. A failure stores
    none of them and raises (the caller decides whether they go back on the queue)."""
    if not items:
        return 0
    with store.transaction() as state:
        return sum(1 for item in items if _ingest(state, item))


def _probe(monitor: dict) -> tuple[bool, str | None, int | None]:
    timeout = min(float(monitor.get("timeout") or 10), 5.0)
    method = "POST" if monitor["monitorType"] == "POST" else "GET"
    started = time.monotonic()
    try:
        request = urllib.request.Request(monitor["url"], method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, ""
    except (OSError, ValueError):
        return False, "Network error", None
    elapsed = int((time.monotonic() - started) * 1000)
    expected = monitor.get("expectedStatus")
    if expected and status != expected:
        return False, "Status code", elapsed
    if monitor.get("expectedBody") and monitor["expectedBody"] not in body:
        return False, "Body does not match", elapsed
    return True, None, elapsed


def run_uptime_checks(store: Store, *, force: bool = False) -> int:
    """Check every monitor that is due (all of them with `force`); return the number of checks."""
    with store.transaction() as state:
        monitors = [dict(m) for m in state["monitors"].values()]
        last = {m["id"]: model.monitor_checks(state, m["id"]) for m in monitors}
    now = _dt.datetime.now(_dt.UTC)
    done = 0
    for monitor in monitors:
        checks = last[monitor["id"]]
        if checks and not force:
            previous = _dt.datetime.fromisoformat(checks[0]["startCheck"].replace("Z", "+00:00"))
            if (now - previous).total_seconds() < float(monitor["interval"]):
                continue
        if monitor["monitorType"] == "Heartbeat":
            if checks and not force:
                continue
            result = (False, "No heartbeat", None)
        elif monitor["monitorType"] in ("GET", "POST"):
            result = _probe(monitor)
        else:
            result = (False, "Unsupported in the fake", None)
        with store.transaction() as state:
            current = state["monitors"].get(str(monitor["id"]))
            if current is not None:
                model.add_check(state, current, *result)
                done += 1
    return done


class Worker:
    """A background thread running `process_pending` (and uptime checks) every `interval` s."""

    def __init__(self, store: Store, queue: EventQueue, interval: float = 0.2) -> None:
        self.store, self.queue, self.interval = store, queue, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-worker", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            process_pending(self.store, self.queue)
            run_uptime_checks(self.store)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
