"""The fake GlitchTip behind a stdlib `ThreadingHTTPServer`, with fault injection for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    """Statuses to answer the next requests with instead of handling them (e.g. [503, 503])."""

    pending: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        with self.lock:
            return self.pending.pop(0) if self.pending else None

    def add(self, statuses: Iterable[int]) -> None:
        with self.lock:
            self.pending.extend(statuses)


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        status = self.server.faults.take()
        if status is not None:
            response = text_response(status, FAULT_BODIES.get(status, "Fault"), "text/plain")
        else:
            response = self.server.app.handle(request)
        self.server.log_request_done(LoggedRequest(self.command, self.path, response.status))
        self._send(response)

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

    def __init__(self, address, app: FakeGlitchTip, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self._log_lock = threading.Lock()

    def log_request_done(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.requests.append(entry)


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
) -> FakeHandle:
    """Start the fake on `host:port` (0: an ephemeral port) in a thread and return its handle.

    `glitchtip_domain` (the DSN's scheme and host) defaults to the server's own URL.
    """
    store = store if store is not None else MemoryStore()
    queue = queue if queue is not None else MemoryQueue()
    config = FakeConfig(
        glitchtip_domain="",
        allowed_hosts=tuple(allowed_hosts),
        enable_user_registration=enable_user_registration,
        enable_organization_creation=enable_organization_creation,
        version=version,
    )
    app = FakeGlitchTip(store, queue, config)
    server = _FakeServer((host, port), app, verbose)
    bound_host, bound_port = server.server_address[:2]
    config.glitchtip_domain = glitchtip_domain or f"http://{bound_host}:{bound_port}"
    server.faults.add(fail_next)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fakeglitchtip", daemon=True
    )
    thread.start()
    background = Worker(store, queue, worker_interval).start() if worker else None
    return FakeHandle(server, thread, background)
