"""Issue 20, part n: the bound verify gives each API request (`HTTP_TIMEOUT`), read against a
local GlitchTip stand-in that answers too late: the request gives up and the check says so,
rather than verify waiting as long as the server takes (a hung GlitchTip would hang verify)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from test_verify_lines import deployment

from provision.ops import verify
from provision.ops.verify import Verifier

LATE = 2.0  # seconds the stand-in waits before it answers


class Late(http.server.BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(LATE)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def late_url():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Late)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_an_api_answer_later_than_the_bound_is_a_reported_timeout(late_url, tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "HTTP_TIMEOUT", 0.3)
    verifier = Verifier(deployment(tmp_path, late_url), 1.0, 0)
    began = time.monotonic()
    said = verifier._resolve("12")
    assert time.monotonic() - began < 2 * LATE  # two attempts of 0.3 s, not two of LATE
    assert said == (
        f"issue not resolved (GlitchTip at {late_url} did not answer PUT /api/0/issues/12/ "
        "(ReadTimeout, 2 attempts))"
    )
