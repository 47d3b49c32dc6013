"""What GlitchTip did with the load: events stored, and how long its backlog took to drain.

HTTP 200 only says the web service queued an event. What an operator needs is what the worker
stored and how fast, so after the load:
  - stored events are counted through GlitchTip's API on the load-test project: the sum of its
    issues' event counts plus the transaction count of its transaction groups (recorded 110, 157);
    the count before the run is subtracted;
  - the backlog is the length of the worker's task queues in Valkey (`LLEN` of each key of
    `Major.task_queue_keys`, through `compose exec valkey valkey-cli`). GlitchTip 6's worker pops
    a batch before storing it, so an empty queue alone does not prove the events are stored:
    the drain ends when the stored count reached what was accepted (or, with the queue empty,
    stopped growing for `settle` samples: some accepted events were lost).
Every loop is bounded by a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from provision.errors import KitError


@dataclass(frozen=True)
class Stored:
    """Events GlitchTip stored for one project: error/message events and transactions."""

    events: int
    transactions: int

    @property
    def total(self) -> int:
        return self.events + self.transactions

    def minus(self, before: Stored) -> Stored:
        return Stored(self.events - before.events, self.transactions - before.transactions)


def stored_counts(client: Any, org: str, project_slug: str, project_id: str) -> Stored:
    """Count what GlitchTip stored for the project through its API (token: event:read)."""
    from provision.api.client import q

    issues = client.paginate(
        f"/api/0/projects/{q(org)}/{q(project_slug)}/issues/?limit=100",
        action="list the load-test project's issues",
    )
    events = sum(int(issue.get("count") or 0) for issue in issues)
    groups = client.paginate(
        f"/api/0/organizations/{q(org)}/transaction-groups/?limit=100",
        action="list the transaction groups",
    )
    transactions = sum(
        int(group.get("transactionCount") or 0)
        for group in groups
        if str(group.get("project")) == str(project_id)
    )
    return Stored(events, transactions)


def queue_lengths(compose: Any, keys: Sequence[str]) -> dict[str, int]:
    """`LLEN` of each key in the stack's Valkey (one `compose exec`); KitError if unreadable."""
    if not keys:
        return {}
    script = 'for key in "$@"; do valkey-cli LLEN "$key" || exit 1; done'
    result = compose.run("exec", "-T", "valkey", "sh", "-c", script, "sh", *keys, timeout=60)
    values = result.stdout.split()
    if not result.ok or len(values) != len(keys) or not all(v.isdigit() for v in values):
        raise KitError(
            f"cannot read the task queue's length from Valkey ({result.last_lines(2)})",
            "check that the stack runs: provision status",
        )
    return dict(zip(keys, map(int, values), strict=True))


def external_queue_lengths(engine: Any, settings: Any, keys: Sequence[str]) -> dict[str, int]:
    """`LLEN` of each key in an external Valkey (`valkey_url`), from a throw-away container of
    the Valkey image (the URL in its environment, never on a command line)."""
    from provision.stack.external import VALKEY_CLI, engine_runner, valkey_environment

    if not keys:
        return {}
    quoted = " ".join(f"'{key}'" for key in keys)  # the major's fixed key names, no quotes
    script = f'for key in {quoted}; do {VALKEY_CLI} LLEN "$key" || exit 1; done'
    result = engine_runner(engine)(
        settings.valkey_image, script, valkey_environment(settings.valkey_url)
    )
    values = result.output.split()
    if result.exit_code != 0 or len(values) != len(keys) or not all(v.isdigit() for v in values):
        raise KitError(
            "cannot read the task queue's length from the external Valkey",
            "check valkey_url and that this host may connect to it (`provision up` preflight)",
        )
    return dict(zip(keys, map(int, values), strict=True))


class Sampler:
    """Samples the backlog and the stored count every `interval_s` in a thread while Locust
    runs (`with`): the queue's peak during the load tells an operator the worker fell behind,
    and the samples of the quiet tail after the load show when everything was stored (the
    drain can end before Locust's containers are gone). A failed sample is skipped; the drain
    measure after the load reports errors."""

    def __init__(
        self,
        backlog: Callable[[], int],
        count: Callable[[], Stored] | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import threading

        self.backlog, self.count, self.clock = backlog, count, clock
        self.interval_s = interval_s
        self.peak = 0
        self.samples: list[tuple[float, int, Stored | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                now = self.clock()
                queued = self.backlog()
                stored = self.count() if self.count is not None else None
            except KitError:
                continue
            self.peak = max(self.peak, queued)
            self.samples.append((now, queued, stored))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=65)

    def drained_at(self, load_end: float, accepted: int, before: Stored) -> float | None:
        """When, after `load_end`, the samples first showed every accepted event stored."""
        for when, _queued, stored in self.samples:
            if when >= load_end and stored is not None and stored.minus(before).total >= accepted:
                return when
        return None


@dataclass
class Drain:
    """How the backlog after the load went."""

    drain_s: float | None  # None: not drained within the bound
    stored: Stored  # stored during the run (after minus before)
    queue_peak: int
    samples: int


def measure_drain(
    *,
    accepted: int,
    before: Stored,
    count: Callable[[], Stored],
    backlog: Callable[[], int],
    load_end: float,
    timeout_s: float,
    interval_s: float = 1.0,
    settle: int = 5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda line: None,
) -> Drain:
    """Sample the backlog and the stored count until drained or `timeout_s` after `load_end`.

    Drained: every accepted event is stored (whatever other projects still have queued), or the
    queue is empty and the stored count has not moved for `settle` samples (the rest was lost:
    the summary shows processed < sent). `drain_s` runs from `load_end` to the first sample of
    that state.
    """
    deadline = load_end + timeout_s
    peak, samples, last_total, still, first_still = 0, 0, None, 0, None
    stored = Stored(0, 0)
    last_note = float("-inf")
    while True:
        now = clock()
        queued = backlog()
        stored = count().minus(before)
        samples += 1
        peak = max(peak, queued)
        if stored.total >= accepted:  # all of ours stored; what is queued is other traffic
            return Drain(max(now - load_end, 0.0), stored, peak, samples)
        if queued == 0 and stored.total == last_total:
            still += 1
            first_still = first_still if first_still is not None else now
            if still >= settle:
                return Drain(max(first_still - load_end, 0.0), stored, peak, samples)
        else:
            still, first_still = 0, None
        last_total = stored.total
        if now - last_note >= 5:
            progress(f"draining: {queued} queued, {stored.total} of {accepted} stored")
            last_note = now
        if now >= deadline:
            return Drain(None, stored, peak, samples)
        sleep(min(interval_s, max(deadline - clock(), 0.0)))


def settled_count(
    *,
    count: Callable[[], Stored],
    backlog: Callable[[], int],
    timeout_s: float,
    interval_s: float = 1.0,
    settle: int = 5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda line: None,
) -> Stored:
    """The project's stored count once it stopped moving: unchanged over two samples with the
    queue empty, or over `settle` samples while other projects' traffic keeps the queue busy.
    Without this, the tail of an earlier load still being stored would be counted as this
    run's. KitError when it does not settle within `timeout_s`."""
    deadline = clock() + timeout_s
    previous: Stored | None = None
    same = 0
    noted = False
    while True:
        queued = backlog()
        current = count()
        same = same + 1 if current == previous else 0
        if (queued == 0 and same >= 1) or same >= settle - 1:
            return current
        if queued and not noted:
            progress(f"waiting for GlitchTip to store {queued} queued events first")
            noted = True
        previous = current
        if clock() >= deadline:
            raise KitError(
                f"GlitchTip is still storing earlier events ({queued} queued, the count still "
                "moving), so this run's events could not be told apart",
                "wait until `provision load` can start on an idle GlitchTip, or give a larger "
                "--drain-timeout",
            )
        sleep(interval_s)
