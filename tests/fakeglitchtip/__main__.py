"""`python3 -m fakeglitchtip --host 0.0.0.0 --port 8000`: serve the fake until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading

from .server import start_fake


def _flag(name: str, default: bool) -> bool:
    value = _optional_flag(name)
    return default if value is None else value


def _optional_flag(name: str) -> bool | None:
    """A boolean environment variable, None when unset (the fake then derives the value)."""
    value = os.environ.get(name)
    return None if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _major(version: str) -> int:
    """The major of a GLITCHTIP_VERSION such as `6.2.6` (5 when it names none)."""
    head = version.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else 5


def main(argv: list[str] | None = None) -> None:
    """Parse options (with GlitchTip's env var names as defaults) and serve."""
    parser = argparse.ArgumentParser(prog="fakeglitchtip", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--domain",
        default=os.environ.get("GLITCHTIP_DOMAIN"),
        help="GLITCHTIP_DOMAIN: scheme and host of DSNs (default: this server's address)",
    )
    parser.add_argument("--worker", action="store_true", help="also process events in-process")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        default=_flag("FAKE_KEEP_ALIVE", False),
        help="HTTP/1.1 keep-alive like granian (GlitchTip 6); default: one request per "
        "connection like GlitchTip 5's uWSGI [env FAKE_KEEP_ALIVE]",
    )
    parser.add_argument(
        "--major",
        type=int,
        default=_major(os.environ.get("GLITCHTIP_VERSION", "")),
        help="GlitchTip major whose metrics endpoint to serve (default: GLITCHTIP_VERSION's, "
        "else 5)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    allowed = tuple(h.strip() for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h)
    handle = start_fake(
        host=args.host,
        port=args.port,
        glitchtip_domain=args.domain,
        allowed_hosts=allowed or ("*",),
        enable_user_registration=_flag("ENABLE_USER_REGISTRATION", True),
        enable_organization_creation=_flag("ENABLE_ORGANIZATION_CREATION", False),
        version=os.environ.get("GLITCHTIP_VERSION", "fake"),
        worker=args.worker,
        verbose=args.verbose,
        keep_alive=args.keep_alive,
        session_cookie_secure=_optional_flag("SESSION_COOKIE_SECURE"),
        csrf_cookie_secure=_optional_flag("CSRF_COOKIE_SECURE"),
        major=args.major,
        observability_api=_flag("ENABLE_OBSERVABILITY_API", False),
    )
    print(f"fake GlitchTip listening on {handle.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    handle.stop()


if __name__ == "__main__":
    main()
