"""The stand-in's web server: the fake GlitchTip's API on PostgresStore + the ingest queue.

`fakeglitchtip.start_fake` does the HTTP; this module hands it the Postgres store, the Valkey
queue and GlitchTip's settings from the environment, and wraps the app's `handle` so that
  - the connection handling is that of the web server `bin/start.sh` would start
    (`config.web_server()`): uWSGI's one request per connection, or keep-alive;
  - with granian WSGI (GlitchTip 5, `USE_GRANIAN=true` without `USE_ASYNC_SERVER=true`) an
    uncompressed request body reaches the app cut to its first line, as recorded (NOTES.md):
    an envelope is then answered 200 with an id and nothing is stored;
  - compressed bodies (gzip, deflate, br) are decoded, as
    GlitchTip's decompression middleware does: sentry-sdk sends gzip;
  - `/_health/` is static (no database access, like GlitchTip's async view) but still obeys
    ALLOWED_HOSTS (Django's rules: exact host, `.domain` for subdomains, `*`);
  - a database/Valkey failure inside a request answers 500 (logged) instead of dropping the
    connection;
  - ingest (`POST /api/<id>/envelope/` and `/store/`) checks the DSN key against project keys
    cached for a few seconds (re-read at once for an unknown key) and only queues the event, as
    GlitchTip's ingest view does: it does not take the row lock of the stand-in's state, so the
    web's speed does not fall as stored events pile up and the worker holds the lock;
  - ingest takes as long as on the real web server (`IngestGate`, config.INGEST_SECONDS), with
    as many requests at a time as the server has processes.
  - the metrics endpoint is that of the major (fakeglitchtip/metrics.py), with the django_http_*
    families only when ENABLE_OBSERVABILITY_API is true, counting the requests served.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
import traceback

from . import config


def cut_to_first_line(body: bytes) -> bytes:
    """What granian 2.6's WSGI input gives the app of an uncompressed body: its first line."""
    line, newline, _rest = body.partition(b"\n")
    return line + newline


def decode_body(body: bytes, encoding: str) -> bytes | None:
    """`body` decoded from its Content-Encoding; None when it cannot be decoded."""
    import zlib

    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return body
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
        if encoding == "br":
            import brotli  # python3-brotli: sentry-sdk sends br when it has brotli

            return brotli.decompress(body)
    except Exception:  # zlib.error, a brotli error, no brotli module: a 400
        return None
    return None


def prepare_body(request, server: config.WebServer):
    """Apply the web server's body handling, then decompress; None for an undecodable body."""
    encoding = request.headers.get("content-encoding", "")
    body = request.body
    if server.truncates_plain_bodies and encoding.strip().lower() in ("", "identity"):
        body = cut_to_first_line(body)
    decoded = decode_body(body, encoding)
    if decoded is None:
        return None
    request.body = decoded
    request.headers.pop("content-encoding", None)
    return request


INGEST_PATH = re.compile(r"^/api/(?P<pid>\d+)/(?P<kind>envelope|store)/$")


class KeyCache:
    """The project keys of the state, re-read after `ttl` seconds, or at once (at most every
    `min_reload` s) when a request names a key the cache does not know."""

    def __init__(self, store, ttl: float = 5.0, min_reload: float = 0.5) -> None:
        self._store = store
        self._ttl = ttl
        self._min_reload = min_reload
        self._lock = threading.Lock()
        self._keys: dict = {}
        self._loaded = float("-inf")

    def _reload(self) -> None:
        with self._store.transaction() as state:
            keys = dict(state["keys"])
        self._keys, self._loaded = keys, time.monotonic()

    def state(self, *, refresh: bool = False) -> dict:
        """A minimal state for the ingest handlers: {"keys": ...}. `refresh`: after a miss."""
        with self._lock:
            age = time.monotonic() - self._loaded
            if age > self._ttl or (refresh and age > self._min_reload):
                self._reload()
            return {"keys": self._keys}


class IngestGate:
    """The web server's capacity for ingest: `processes` requests at a time, each taking at least
    `seconds` (config.INGEST_SECONDS, the recorded speed of GlitchTip's web servers), so the
    stand-in accepts events about as fast as the real server, not as fast as this fake."""

    def __init__(self, processes: int, seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(max(1, processes))
        self._seconds = seconds
        self._started = threading.local()

    def __enter__(self) -> None:
        self._slots.acquire()
        self._started.at = time.monotonic()

    def __exit__(self, *exc) -> None:
        try:
            left = self._seconds - (time.monotonic() - self._started.at)
            if left > 0:
                time.sleep(left)
        finally:
            self._slots.release()


def ingest(app, keys: KeyCache, request, pid: str, kind: str):
    """Queue an ingested event without the state's row lock; None when not handled here."""
    from fakeglitchtip.app import HttpError

    handler = getattr(app, f"h_{kind}")
    for refresh in (False, True):
        try:
            return handler(keys.state(refresh=refresh), request, pid)
        except HttpError as error:
            if refresh or error.response.status not in (401, 403):
                return error.response
    return None


def serve(settings: config.Settings, store, queue) -> int:
    from fakeglitchtip import start_fake
    from fakeglitchtip.app import text_response

    registration = config.env_bool("ENABLE_USER_REGISTRATION", True)
    org_creation = config.env_bool("ENABLE_ORGANIZATION_CREATION", False)
    if config.env("ENABLE_OPEN_USER_REGISTRATION") not in (None, ""):
        org_creation = config.env_bool("ENABLE_OPEN_USER_REGISTRATION")
    verbose = config.env_bool("STANDIN_ACCESS_LOG", True)

    handle = start_fake(
        host="0.0.0.0",
        port=settings.port,
        store=store,
        queue=queue,
        glitchtip_domain=settings.domain,
        allowed_hosts=tuple(settings.allowed_hosts),
        enable_user_registration=registration,
        enable_organization_creation=org_creation,
        version=settings.version,
        worker=False,  # events are processed only by the worker container
        verbose=verbose,
        keep_alive=settings.server.keep_alive,
        # 5: /api/0/observability/django/ for staff; 6: /metrics only with the variable set.
        major=settings.major,
        observability_api=config.env_bool("ENABLE_OBSERVABILITY_API", False),
    )
    app = handle.app
    fake_handle = app.handle
    keys = KeyCache(store)
    gate = IngestGate(settings.server.processes, settings.server.ingest_seconds)

    def handle_request(request):
        if request.path.split("?", 1)[0] == "/_health/" and request.method in ("GET", "HEAD"):
            if not config.host_allowed(request.headers.get("host"), settings.allowed_hosts):
                return text_response(400, "<h1>Bad Request (400)</h1>")
            return text_response(200, "ok", "text/plain")
        if request.body and prepare_body(request, settings.server) is None:
            return text_response(400, "<h1>Bad Request (400)</h1>")
        try:
            match = INGEST_PATH.match(request.path.split("?", 1)[0])
            if match and request.method == "POST":
                if not config.host_allowed(request.headers.get("host"), settings.allowed_hosts):
                    return text_response(400, "<h1>Bad Request (400)</h1>")
                with gate:
                    return ingest(app, keys, request, match["pid"], match["kind"])
            return fake_handle(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return text_response(500, "<h1>Server Error (500)</h1>")

    app.handle = handle_request  # the server calls server.app.handle(request)

    print(
        f"stand-in GlitchTip {settings.major} ({settings.version}) listening on "
        f"0.0.0.0:{settings.port} as {settings.server.name}, DSN host {settings.domain}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    handle.stop()
    return 0
