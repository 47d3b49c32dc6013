"""The fake GlitchTip behind a stdlib `ThreadingHTTPServer`, with fault injection for tests.

Connection handling copies the real web servers (NOTES.md, "The web server of GlitchTip 5 and
HTTP keep-alive"), because clients break on it and a polite fake would hide that:
- `keep_alive=False` (the default) is GlitchTip 5's uWSGI `--http-socket`: exactly one request
  per TCP connection, a `Content-Length`, never a `Connection` header, the connection closed
  right after the response; a second request on the same connection (sequential or pipelined)
  is never answered and never executed: the client reads a clean EOF.
- `keep_alive=True` is granian (GlitchTip 6, and 5's `USE_GRANIAN`): HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import metrics
from .app import FakeConfig, FakeGlitchTip, Request, Response, text_response
from .store import EventQueue, MemoryQueue, MemoryStore, Store
from .worker import Worker

FAULT_BODIES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class LoggedRequest:
    """One request the fake answered (for tests counting calls)."""

    method: str
    path: str
    status: int


@dataclass
class Faults:
    """Statuses to answer the next requests with instead of handling them (e.g. [503, 503]),
    and methods whose next requests are executed but get no response (the connection drops)."""

    pending: list[int] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        with self.lock:
            return self.pending.pop(0) if self.pending else None

    def add(self, statuses: Iterable[int]) -> None:
        with self.lock:
            self.pending.extend(statuses)

    def take_drop(self, method: str) -> bool:
        """True (once per queued drop) when a request with `method` is to lose its response."""
        with self.lock:
            for index, wanted in enumerate(self.drops):
                if wanted in ("*", method):
                    del self.drops[index]
                    return True
            return False


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer
    protocol_version = "HTTP/1.1"
    # Head and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on each answer, a latency no real GlitchTip server has.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        if self.server.keep_alive:
            super().handle()
        else:
            # uWSGI --http-socket: one request, whatever the client's Connection header says;
            # anything else the client sent on this connection stays unread and unexecuted.
            self.handle_one_request()
            self.close_connection = True

    def send_header(self, keyword: str, value: str) -> None:
        if not self.server.keep_alive and keyword.lower() == "connection":
            # uWSGI never says it will close (not even on errors): the client cannot know.
            self.close_connection = True
            return
        super().send_header(keyword, value)

    def _serve(self) -> None:
        if not self.server.keep_alive and self.request_version == "HTTP/1.0":
            self.protocol_version = "HTTP/1.0"  # uWSGI answers a 1.0 request in 1.0
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        started = time.perf_counter()
        if self.server.latency > 0:
            time.sleep(self.server.latency)
        status = self.server.faults.take()
        if status is not None:
            response = text_response(status, FAULT_BODIES.get(status, "Fault"), "text/plain")
        else:
            response = self.server.app.handle(request)
            self._count(request, response, time.perf_counter() - started)
        self.server.log_request_done(LoggedRequest(self.command, self.path, response.status))
        if self.server.faults.take_drop(self.command):
            # Injected fault, not a recorded behaviour: the request was executed, then the
            # connection is lost before any byte of the answer (a worker killed, a proxy
            # timeout). The client cannot tell whether it ran.
            self.close_connection = True
            return
        self._send(response)

    def _count(self, request: Request, response: Response, seconds: float) -> None:
        """Count a request GlitchTip's Django answered (not an injected proxy fault)."""
        app = self.server.app
        route = app.route_name(request.target)
        if not metrics.counted(route, app.config.major):
            return
        content_type = next((v for k, v in response.headers if k.lower() == "content-type"), "")
        app.metrics.observe(
            route=route,
            method=request.method,
            status=response.status,
            seconds=seconds,
            request_bytes=len(request.body),
            response_bytes=len(response.body),
            content_type=content_type,
        )

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    # How long a closed (uWSGI-like) connection keeps swallowing what the client still sends.
    LINGER_SECONDS = 0.5
    # Recorded: uWSGI's FIN follows the last byte of the response after 0.4-0.9 ms.
    FIN_DELAY_SECONDS = 0.0005

    def __init__(
        self,
        address,
        app: FakeGlitchTip,
        verbose: bool,
        *,
        keep_alive: bool = False,
        latency: float = 0.0,
    ) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose
        self.keep_alive = keep_alive
        self.latency = latency
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self._log_lock = threading.Lock()

    def log_request_done(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.requests.append(entry)

    def handle_error(self, request, client_address) -> None:
        """A client hanging up mid-request is normal traffic, not a server error to print."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request) -> None:
        """Close the connection; in uWSGI mode with a FIN the client reads as a clean EOF.

        The FIN goes out just after the response (SHUT_WR); whatever the client still sends
        (a pipelined or reused request) is read and thrown away for a moment before the close,
        because closing a socket with unread input makes the kernel send a RST instead, which
        the real server was not seen to do (NOTES.md: "clean EOF with 0 bytes, no RST").
        """
        if not self.keep_alive:
            time.sleep(self.FIN_DELAY_SECONDS)
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_WR)
                _discard_input(request, self.LINGER_SECONDS)
        super().shutdown_request(request)


def _discard_input(sock: socket.socket, seconds: float) -> None:
    """Read and drop input until the peer closes or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            return


class FakeHandle:
    """A running fake: its base URL, store, queue, request log and fault injection."""

    def __init__(self, server: _FakeServer, thread: threading.Thread, worker: Worker | None):
        self._server = server
        self._thread = thread
        self.worker = worker
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.app = server.app
        self.store: Store = server.app.store
        self.queue: EventQueue = server.app.queue

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request answered so far, in order."""
        with self._server._log_lock:
            return list(self._server.requests)

    def count(self, method: str) -> int:
        """How many requests with this method were answered."""
        return sum(1 for r in self.requests if r.method == method)

    def clear_log(self) -> None:
        """Forget the request log (e.g. between a first and a second run)."""
        with self._server._log_lock:
            self._server.requests.clear()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (e.g. 503, 503), then normally again."""
        self._server.faults.add(statuses)

    def drop_after_executing(self, method: str = "POST", times: int = 1) -> None:
        """Execute the next `times` requests with `method` ("*": any), then drop the connection
        without answering (fault injection; the recordings show no such server behaviour)."""
        with self._server.faults.lock:
            self._server.faults.drops.extend([method.upper()] * times)

    @property
    def keep_alive(self) -> bool:
        """True: HTTP/1.1 keep-alive (granian); False: one request per connection (uWSGI)."""
        return self._server.keep_alive

    def stop(self) -> None:
        """Stop the worker (if any) and the server."""
        if self.worker is not None:
            self.worker.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_fake(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    store: Store | None = None,
    queue: EventQueue | None = None,
    glitchtip_domain: str | None = None,
    allowed_hosts: tuple[str, ...] = ("*",),
    enable_user_registration: bool = True,
    enable_organization_creation: bool = False,
    version: str = "fake",
    fail_next: Iterable[int] = (),
    worker: bool = False,
    worker_interval: float = 0.2,
    verbose: bool = False,
    keep_alive: bool = False,
    latency: float = 0.0,
    session_cookie_secure: bool | None = None,
    csrf_cookie_secure: bool | None = None,
    major: int = 5,
    observability_api: bool = False,
) -> FakeHandle:
    """Start the fake on `host:port` (0: an ephemeral port) in a thread and return its handle.

    `glitchtip_domain` (the DSN's scheme and host) defaults to the server's own URL.
    `keep_alive`: False (default) closes every connection after one response like GlitchTip 5's
    uWSGI; True keeps HTTP/1.1 connections open like granian (GlitchTip 6). `latency`: seconds
    added before each answer. `session_cookie_secure` / `csrf_cookie_secure` (Django's
    SESSION_COOKIE_SECURE / CSRF_COOKIE_SECURE): None means "when the domain is https", what
    the kit renders. `major` (5 or 6) picks the metrics endpoint, `observability_api` is
    ENABLE_OBSERVABILITY_API (metrics.py says what each serves).
    """
    store = store if store is not None else MemoryStore()
    queue = queue if queue is not None else MemoryQueue()
    config = FakeConfig(
        glitchtip_domain="",
        allowed_hosts=tuple(allowed_hosts),
        enable_user_registration=enable_user_registration,
        enable_organization_creation=enable_organization_creation,
        version=version,
        session_cookie_secure=session_cookie_secure,
        csrf_cookie_secure=csrf_cookie_secure,
        major=major,
        observability_api=observability_api,
    )
    app = FakeGlitchTip(store, queue, config)
    server = _FakeServer((host, port), app, verbose, keep_alive=keep_alive, latency=latency)
    bound_host, bound_port = server.server_address[:2]
    config.glitchtip_domain = glitchtip_domain or f"http://{bound_host}:{bound_port}"
    server.faults.add(fail_next)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fakeglitchtip", daemon=True
    )
    thread.start()
    background = Worker(store, queue, worker_interval).start() if worker else None
    return FakeHandle(server, thread, background)
