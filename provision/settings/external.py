"""Parsers of the external services (issue 12): an existing Postgres, Valkey, S3-compatible
uploads. Their URLs may hold passwords: every message shows them masked."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from provision.masking import mask_url_password
from provision.settings.base import Invalid, shown
from provision.settings.urls import refuse_breaking_userinfo

DATABASE_SCHEMES = ("postgres", "postgresql")


# GlitchTip 6 reads VALKEY_URL through django-vcache (redis, rediss, valkey, valkeys); GlitchTip 5
# hands it to redis-py and Celery, which know only redis:// and rediss://. sentinel:// is left
# out: the kit's PING check and the load test's queue probe speak to one server.
VALKEY_SCHEMES = ("redis", "rediss", "valkey", "valkeys")


VALKEY_SCHEMES_5 = ("redis", "rediss")

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _service_url_parts(text: str, what: str, variable: str, example: str):
    """`urlsplit(text)` once the URL is safe to hand to django-environ: ASCII, no spaces or
    quotes, no '#', '?' or '/' inside the user name or password, a valid port and a host.
    Every message shows the URL with its password masked."""
    masked = mask_url_password(text)
    fix = f"use e.g. {example}"
    if re.search(r"[\s'\"\\]", text):
        raise Invalid(f"{shown(masked)} contains spaces, quotes or backslashes", fix)
    if not text.isascii():
        raise Invalid(f"{shown(masked)} has non-ASCII characters", f"{fix} (percent-encode them)")
    refuse_breaking_userinfo(text, variable)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise Invalid(
            f"{shown(masked)} is not a valid {what} URL (bad address or port)", fix
        ) from None
    if not parts.hostname:
        raise Invalid(f"{shown(masked)} names no {what} server", fix)
    if is_loopback_host(parts.hostname):
        raise Invalid(
            f"{shown(masked)}: {parts.hostname} is the container's own loopback, not this host's",
            "use an address GlitchTip's containers can reach (the server's name or IP; for a "
            "server on this host, the address of its docker0 bridge or of the host)",
        )
    return parts


def is_loopback_host(host: str) -> bool:
    """Whether `host` names a machine's own loopback (or 0.0.0.0, which connects there): inside a
    container that is the container itself, never the server the user meant."""
    host = host.strip("[]").lower()
    if host in ("localhost", "0.0.0.0") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def parse_database_url(raw: object) -> str:
    """An existing Postgres as GlitchTip reads it (django-environ `env.db`): scheme, host,
    database name; `sslmode` in the query must be one libpq knows. "" means the bundled one."""
    from urllib.parse import parse_qs

    text = str(raw).strip()
    if text == "":
        return ""
    example = "postgres://glitchtip:password@db.example.com:5432/glitchtip"
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in DATABASE_SCHEMES:
        raise Invalid(
            f"{shown(mask_url_password(text))} is not a Postgres URL", f"use e.g. {example}"
        )
    parts = _service_url_parts(text, "Postgres", "DATABASE_URL", example)
    if parts.path.strip("/") == "" or "/" in parts.path.strip("/"):
        raise Invalid(
            f"{shown(mask_url_password(text))} names no database (the path after the host)",
            f"use e.g. {example}",
        )
    for mode in parse_qs(parts.query).get("sslmode", []):
        if mode not in SSL_MODES:
            raise Invalid(
                f"{shown(mask_url_password(text))}: sslmode={mode!r} is not a libpq mode",
                f"use one of {', '.join(SSL_MODES)}",
            )
    return text


def parse_sslmode(raw: object) -> str:
    """libpq's sslmode for an external database; "" leaves libpq's default (prefer)."""
    text = str(raw).strip().lower()
    if text and text not in SSL_MODES:
        raise Invalid(f"{shown(raw)} is not a TLS mode", f"use one of {', '.join(SSL_MODES)}")
    return text


def parse_valkey_url(raw: object) -> str:
    """An existing Valkey or Redis: scheme, host, optional /<db number>. "" means the bundled."""
    text = str(raw).strip()
    if text == "":
        return ""
    example = "redis://:password@valkey.example.com:6379/0 (rediss:// for TLS)"
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in VALKEY_SCHEMES:
        raise Invalid(
            f"{shown(mask_url_password(text))} is not a Valkey URL", f"use e.g. {example}"
        )
    parts = _service_url_parts(text, "Valkey", "VALKEY_URL", example)
    database = parts.path.strip("/")
    if database and not (database.isdigit() and int(database) < 16):
        raise Invalid(
            f"{shown(mask_url_password(text))}: {database!r} is not a database number",
            "end the URL with /0 .. /15, or nothing",
        )
    return text


def parse_bucket(raw: object) -> str:
    """An S3 bucket name (3-63 lower-case letters, digits, dots, hyphens); "" means local."""
    text = str(raw).strip()
    if text and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text):
        raise Invalid(
            f"{shown(text)} is not an S3 bucket name",
            "use 3 to 63 lower-case letters, digits, dots and hyphens",
        )
    return text


def parse_endpoint_url(raw: object) -> str:
    """The S3-compatible endpoint (MinIO, Ceph, R2 ...): http(s)://host[:port], no password."""
    text = str(raw).strip().rstrip("/")
    if text == "":
        return ""
    example = "https://s3.example.com or http://minio:9000"
    if not text.lower().startswith(("http://", "https://")):
        raise Invalid(f"{shown(mask_url_password(text))} is not an http(s) URL", example)
    parts = _service_url_parts(text, "S3", "AWS_S3_ENDPOINT_URL", example)
    if parts.username or parts.password:
        raise Invalid(
            f"{shown(mask_url_password(text))} holds credentials",
            "remove them; set uploads_access_key_id and uploads_secret_access_key instead",
        )
    return text


def parse_region(raw: object) -> str:
    text = str(raw).strip()
    if text and not re.fullmatch(r"[a-z0-9-]{2,40}", text):
        raise Invalid(f"{shown(text)} is not an S3 region", "use e.g. eu-central-1 or us-east-1")
    return text


def parse_access_key(raw: object) -> str:
    text = str(raw).strip()
    if text and not re.fullmatch(r"[A-Za-z0-9._-]{3,128}", text):
        raise Invalid(
            "the access key id has characters outside letters, digits, '.', '_' and '-'",
            "copy it again from your storage provider",
        )
    return text


def parse_secret_access_key(raw: object) -> str:
    """Never echoed, even when refused."""
    text = str(raw).strip()
    if text and (not text.isascii() or re.search(r"[\s'\"\\$]", text) or len(text) > 256):
        raise Invalid(
            "the secret access key has spaces, quotes, '$', backslashes or non-ASCII characters",
            "copy it again from your storage provider",
        )
    return text
