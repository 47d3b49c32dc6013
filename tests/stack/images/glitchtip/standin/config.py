"""The stand-in's settings, read from the environment like GlitchTip's settings.py does.

Every setting also accepts `<NAME>_FILE` (a file holding the value), as GlitchTip's FileAwareEnv.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass

from fakeglitchtip.hosts import host_allowed  # noqa: F401  (web.py and the tests use it here)

_UNSET = object()


def env(name: str, default: str | None = None) -> str | None:
    """The content of the file `NAME_FILE` names, else `NAME`, else `default`: django-environ's
    FileAwareMapping, where the file wins over the variable and its bytes are the value as they
    are (no newline stripped), and a named file that cannot be read is an error."""
    path = os.environ.get(name + "_FILE")
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    if name in os.environ:
        return os.environ[name]
    return default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on", "y", "t"}


def die(message: str, code: int = 1) -> None:
    """The stand-in's loud failure: one line on stderr, then exit."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (never print a secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def major() -> int:
    return int(os.environ.get("GLITCHTIP_STANDIN_MAJOR", "6"))


# GlitchTip 5 comes as two codes (contract NOTES.md, "GlitchTip v5.1.0 ... differs from the
# snapshot"): the released image v5.1.0 and the later 5.x code most of NOTES.md was recorded on.
RELEASE_V510 = "v5.1.0"
RELEASE_SNAPSHOT = "snapshot"


def release() -> str:
    """Which GlitchTip 5 the stand-in copies: GLITCHTIP_STANDIN_RELEASE (an environment variable
    of the image, `glitchtip:5-snapshot` sets it), default v5.1.0, the released image. With
    v5.1.0: REDIS_* only (VALKEY_* unknown), no granian (USE_ASYNC_SERVER -> uvicorn), the
    setup_advanced_partitions call no pg_partman accepts, the all-in-one's beat schedule in the
    working directory. Meaningless for 6."""
    value = (os.environ.get("GLITCHTIP_STANDIN_RELEASE") or RELEASE_V510).strip()
    if value not in (RELEASE_V510, RELEASE_SNAPSHOT):
        die(
            f"GLITCHTIP_STANDIN_RELEASE must be {RELEASE_V510} or {RELEASE_SNAPSHOT}, got {value!r}"
        )
    return value


def is_v510() -> bool:
    """GlitchTip 5 as released (v5.1.0)."""
    return major() == 5 and release() == RELEASE_V510


def database_dsn() -> dict:
    """psycopg2 connect() keywords from DATABASE_URL, else DATABASE_HOST & co (GlitchTip's)."""
    url = env("DATABASE_URL")
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql", "pgsql", "postgis"}:
            die(f"DATABASE_URL must be a postgres:// URL, got {redact_url(url)}")
        return {
            "host": urllib.parse.unquote(parts.hostname or "localhost"),
            "port": parts.port or 5432,
            "user": urllib.parse.unquote(parts.username or "postgres"),
            "password": urllib.parse.unquote(parts.password or ""),
            "dbname": urllib.parse.unquote(parts.path.lstrip("/") or "postgres"),
        }
    if env("DATABASE_HOST"):
        return {
            "host": env("DATABASE_HOST"),
            "port": int(env("DATABASE_PORT", "5432") or 5432),
            "user": env("DATABASE_USER", "postgres"),
            "password": env("DATABASE_PASSWORD", ""),
            "dbname": env("DATABASE_NAME", "postgres"),
        }
    # GlitchTip's default.
    return {
        "host": "postgres",
        "port": 5432,
        "user": "postgres",
        "password": "postgres",
        "dbname": "postgres",
    }


def describe_dsn(dsn: dict) -> str:
    return f"postgres://{dsn['user']}:***@{dsn['host']}:{dsn['port']}/{dsn['dbname']}"


def valkey_url() -> str | None:
    """The broker/cache/session URL as the version reads it; None when set to "" (no Valkey).

    6 and later 5.x: VALKEY_URL, falling back to REDIS_URL, else VALKEY_HOST/REDIS_HOST & co.
    v5.1.0 (contract NOTES.md): REDIS_URL, else REDIS_HOST, REDIS_PORT, REDIS_DATABASE,
    REDIS_PASSWORD; it knows no VALKEY_* name. Default redis://redis:6379/0 either way.
    GlitchTip 6 documents VALKEY_URL="" as "run without Valkey"; the stand-in then queues
    ingested events in Postgres.
    """
    prefixes = ("REDIS",) if is_v510() else ("VALKEY", "REDIS")
    for prefix in prefixes:
        value = env(f"{prefix}_URL")
        if value is not None:
            return value or None

    def first(suffix: str) -> str | None:
        return next((env(f"{p}_{suffix}") for p in prefixes if env(f"{p}_{suffix}")), None)

    host = first("HOST")
    if host:
        password = first("PASSWORD") or ""
        auth = f":{urllib.parse.quote(password)}@" if password else ""
        port = first("PORT") or "6379"
        db = first("DATABASE") or "0"
        return f"redis://{auth}{host}:{port}/{db}"
    return "redis://redis:6379/0"


def glitchtip_domain() -> str:
    domain = (
        env("GLITCHTIP_URL") or env("APP_URL") or env("GLITCHTIP_DOMAIN") or "http://localhost:8000"
    )
    if not domain.startswith(("http://", "https://")):
        die(
            "ImproperlyConfigured: GLITCHTIP_DOMAIN must start with http:// or https://,"
            f" got {domain!r}"
        )
    return domain.rstrip("/")


def allowed_hosts() -> list[str]:
    raw = env("ALLOWED_HOSTS", "*") or "*"
    hosts = [h.strip() for h in raw.split(",") if h.strip()]
    pod_ip = env("POD_IP")
    if pod_ip:
        hosts.append(pod_ip)
    return hosts


@dataclass(frozen=True)
class WebServer:
    """The web server the image's `bin/start.sh` would start, and what clients see of it."""

    name: str  # uwsgi | granian-wsgi | granian-asgi | uvicorn
    port: int
    # uWSGI --http-socket answers one request per connection (NOTES.md); the others keep alive.
    keep_alive: bool
    # granian's WSGI body bug (NOTES.md, ingest capacity): an uncompressed request body reaches
    # the app cut to its first line.
    truncates_plain_bodies: bool
    # Processes answering requests (uWSGI: UWSGI_WORKERS; granian: GRANIAN_WORKERS, else
    # WEB_CONCURRENCY; default 1), each taking `ingest_seconds` per ingest request.
    processes: int = 1
    ingest_seconds: float = 0.0


# Seconds one web process spends on one ingest request, from the recorded runs of a real
# GlitchTip 5 on a 2-core host (NOTES.md, ingest capacity): uWSGI, 1 process, up to 185
# envelopes/s (32 clients); granian ASGI, 2 workers, 113/s; granian WSGI, 2 workers, 485/s (it
# drops uncompressed bodies). uvicorn was not recorded: taken as granian ASGI. GlitchTip 6's
# granian ASGI ingest was not recorded either: taken as 5's (an assumption).
INGEST_SECONDS = {
    "uwsgi": 1 / 185,
    "granian-asgi": 2 / 113,
    "granian-wsgi": 2 / 485,
    "uvicorn": 2 / 113,
}


def _processes(*names: str) -> int:
    for name in names:
        raw = env(name)
        if raw and raw.strip().isdigit() and int(raw) > 0:
            return int(raw)
    return 1


# Set by `standin all-in-one`: GlitchTip 5's app.py serves with uvicorn on 0.0.0.0:8000 (its own
# fixed port), not what bin/start.sh would pick.
ALL_IN_ONE = False


def web_server() -> WebServer:
    """What GlitchTip's `bin/start.sh` -> `bin/run-web.sh` runs for this environment.

    5 (run-web.sh): `USE_GRANIAN = "true"` -> run-granian.sh, on `GRANIAN_PORT` (8000), ASGI
    when `USE_ASYNC_SERVER = "true"` else WSGI (later 5.x only: v5.1.0 has no granian and
    ignores USE_GRANIAN); else `USE_ASYNC_SERVER = "true"` -> run-uvicorn.sh on `UVICORN_PORT`
    (8000, `--workers $WEB_CONCURRENCY`); else run-uwsgi.sh on `$PORT` (8080). The scripts
    compare with the exact string "true" (`[ "$X" = "true" ]`), so "True" or "1" do not count.
    6: granian ASGI on 8000 whatever is set.
    """
    granian = _processes("GRANIAN_WORKERS", "WEB_CONCURRENCY")
    if ALL_IN_ONE and major() < 6:
        return _server("uvicorn", 8000, True, False, _processes("WEB_CONCURRENCY"))
    if major() >= 6:
        port = int(env("GRANIAN_PORT") or 8000)
        return _server("granian-asgi", port, True, False, granian)
    if env("USE_GRANIAN") == "true" and not is_v510():
        port = int(env("GRANIAN_PORT") or 8000)
        if env("USE_ASYNC_SERVER") == "true":
            return _server("granian-asgi", port, True, False, granian)
        return _server("granian-wsgi", port, True, True, granian)
    if env("USE_ASYNC_SERVER") == "true":
        uvicorn = _processes("WEB_CONCURRENCY")
        return _server("uvicorn", int(env("UVICORN_PORT") or 8000), True, False, uvicorn)
    return _server("uwsgi", int(env("PORT") or 8080), False, False, _processes("UWSGI_WORKERS"))


def _server(name: str, port: int, keep_alive: bool, truncates: bool, processes: int):
    return WebServer(name, port, keep_alive, truncates, processes, INGEST_SECONDS[name])


def web_port() -> int:
    """The port of `web_server()`: 6 on 8000; 5 on $PORT (8080) or 8000 (granian/uvicorn)."""
    return web_server().port


@dataclass(frozen=True)
class Settings:
    major: int
    domain: str
    allowed_hosts: list[str]
    version: str
    port: int
    server: WebServer


def settings() -> Settings:
    return Settings(
        major=major(),
        domain=glitchtip_domain(),
        allowed_hosts=allowed_hosts(),
        version=env("GLITCHTIP_VERSION", "0.0.0-unknown") or "0.0.0-unknown",
        port=web_port(),
        server=web_server(),
    )
