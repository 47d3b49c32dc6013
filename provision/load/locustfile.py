"""The kit's Locust file: SDK traffic to GlitchTip's ingest endpoints (locust + stdlib only).

It runs in the Locust containers of `compose.locust.yml`, beside `payloads.py` (the kit copies
both into the deployment's `locust/` directory). Everything comes from the environment, so the
web UI (`make locust-start`) and `provision load` use the same file:

  GLITCHTIP_LOAD_DSN          DSN of the load-test project (required; never printed)
  GLITCHTIP_LOAD_HOST_HEADER  Host header to send (GlitchTip's ALLOWED_HOSTS); empty: the URL's
  GLITCHTIP_LOAD_ISSUES       distinct error signatures (default 50)
  GLITCHTIP_LOAD_MIX          weights, e.g. error_gzip=50,error_plain=15,message=10,...
  GLITCHTIP_LOAD_RATE         requests per second per user; 0 (default) = as fast as answered
  GLITCHTIP_LOAD_SEND_FOR     seconds to send from the start of the test; then users go quiet
                              until Locust's --run-time ends (set by provision load: run-time =
                              this + a grace period, so no request is cut off in flight and
                              every stored event was also counted; unset in the web UI)

The target is Locust's host (`LOCUST_HOST`). A request counts as a failure unless GlitchTip
answers 200 with the event id it was sent (`{"id": ...}` for envelopes, `{"event_id": ...}` for
/store/), so a server that answers 200 without taking the event does not pass unnoticed.
Each request is named after its kind in Locust's statistics.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from locust import FastHttpUser, constant, constant_throughput, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import payloads  # beside this file in the container (sys.path above)

_DSN_TEXT = os.environ.get("GLITCHTIP_LOAD_DSN", "")
_HOST_HEADER = os.environ.get("GLITCHTIP_LOAD_HOST_HEADER", "")
_ISSUES = int(os.environ.get("GLITCHTIP_LOAD_ISSUES") or 50)
_MIX = payloads.parse_mix(os.environ.get("GLITCHTIP_LOAD_MIX") or payloads.format_mix(payloads.MIX))
_RATE = float(os.environ.get("GLITCHTIP_LOAD_RATE") or 0)
_SEND_FOR = float(os.environ.get("GLITCHTIP_LOAD_SEND_FOR") or 0)
_STARTED: list[float] = []  # monotonic time of this process's test start
_KINDS = [kind for kind in payloads.KINDS if _MIX[kind] > 0]
_WEIGHTS = [_MIX[kind] for kind in _KINDS]


@events.init.add_listener
def _check(environment, **_kwargs) -> None:
    """Refuse to start without a valid DSN (the message never shows the DSN itself)."""
    try:
        payloads.Dsn.parse(_DSN_TEXT)
    except ValueError as error:
        raise SystemExit(f"GLITCHTIP_LOAD_DSN is missing or malformed: {error}") from None


@events.test_start.add_listener
def _started(environment, **_kwargs) -> None:
    _STARTED[:] = [time.monotonic()]


def _sending_over() -> bool:
    return bool(_SEND_FOR and _STARTED and time.monotonic() - _STARTED[0] >= _SEND_FOR)


class SdkUser(FastHttpUser):
    """An application with an SDK: sends events, messages and transactions, one per request."""

    # SDKs keep their connection alive (FastHttpUser does too); no think time unless a rate is
    # asked for.
    wait_time = constant_throughput(_RATE) if _RATE > 0 else constant(0)

    def on_start(self) -> None:
        self.dsn = payloads.Dsn.parse(_DSN_TEXT)
        self.rng = random.Random()

    @task
    def send(self) -> None:
        if _sending_over():
            time.sleep(0.5)  # quiet until --run-time ends; nothing in flight when it does
            return
        kind = self.rng.choices(_KINDS, weights=_WEIGHTS)[0]
        request = payloads.build_request(kind, self.dsn, self.rng, _ISSUES)
        headers = dict(request.headers)
        if _HOST_HEADER:
            headers["Host"] = _HOST_HEADER
        with self.client.post(
            request.path, data=request.body, headers=headers, name=kind, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            try:
                answer = response.json()
            except ValueError:
                response.failure("answer is not JSON")
                return
            got = answer.get("id") if kind != "store" else answer.get("event_id")
            if str(got or "").replace("-", "") != request.event_id:
                response.failure("answer does not name the event sent")
