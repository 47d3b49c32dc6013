"""The stand-in's web server: the fake GlitchTip's API on PostgresStore + the ingest queue.

`fakeglitchtip.start_fake` does the HTTP; this module hands it the Postgres store, the Valkey
queue and GlitchTip's settings from the environment, and wraps the app's `handle` so that
  - `/_health/` is static (no database access, like GlitchTip's async view) but still obeys
    ALLOWED_HOSTS (Django's rules: exact host, `.domain` for subdomains, `*`);
  - a database/Valkey failure inside a request answers 500 (logged) instead of dropping the
    connection.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback

from . import config


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
    )
    app = handle.app
    fake_handle = app.handle

    def handle_request(request):
        if request.path.split("?", 1)[0] == "/_health/" and request.method in ("GET", "HEAD"):
            if not config.host_allowed(request.headers.get("host"), settings.allowed_hosts):
                return text_response(400, "<h1>Bad Request (400)</h1>")
            return text_response(200, "ok", "text/plain")
        try:
            return fake_handle(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return text_response(500, "<h1>Server Error (500)</h1>")

    app.handle = handle_request  # the server calls server.app.handle(request)

    print(
        f"stand-in GlitchTip {settings.major} ({settings.version}) listening on "
        f"0.0.0.0:{settings.port}, DSN host {settings.domain}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    handle.stop()
    return 0
