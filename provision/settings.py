"""The kit's settings: one table of specs, precedence, validation.

Non-secret settings live in `glitchtip.yaml`, a file the operator may commit. Each setting is
resolved in this order and `sources` records which one won:

    option ("--set name=value" or a named option) > environment variable > glitchtip.yaml > default

Defaults marked "derived" are computed from other settings or from the host (images from the
GlitchTip major, concurrency from CPUs and memory, the Postgres layout from its image tag).
`email_url` may hold an SMTP password, so glitchtip.yaml must not contain one; it is kept in
`.env` after the first render and read back from there (source ".env") when no higher source
sets it. `advanced_partitioning` is read back the same way from the choice the first render
recorded, so a deployment started with `--set advanced_partitioning=true` keeps it.

Everything is validated before anything is written; a bad value is a `SettingsError` naming the
setting, where it came from and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from provision import limits, majors
from provision.errors import SettingsError
from provision.masking import MASK
from provision.proxy.names import PROXY_CHOICES, default_subnet, proxy_enabled

SETTINGS_FILE = "glitchtip.yaml"
ENV_FILE = ".env"

SOURCE_OPTION = "option"
SOURCE_ENVIRONMENT = "environment"
SOURCE_FILE = "file"
SOURCE_ENV_FILE = ".env"
SOURCE_DEFAULT = "default"
SOURCE_DERIVED = "derived"


class Invalid(ValueError):
    """A parser's complaint: what is wrong, and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


MAX_SHOWN = 60


def shown(value: object) -> str:
    """`value` quoted for a message, cut to MAX_SHOWN characters: an error line stays one line
    of reasonable length even for a 10 MB value."""
    text = repr(str(value)) if not isinstance(value, str) else repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[: MAX_SHOWN - 5]}...' ({len(str(value))} characters)"


# --- parsers: raw value (str from options/environment, YAML scalar from the file) -> value ---

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"{shown(raw)} is not a yes/no value", "use true or false")


def int_between(low: int, high: int, what: str = "number") -> Callable[[object], int]:
    def parse(raw: object) -> int:
        if isinstance(raw, bool):
            raise Invalid(
                f"{shown(raw)} is not a {what}", f"use a whole number from {low} to {high}"
            )
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            # ASCII digits only ("²" and Arabic-Indic digits pass str.isdigit and int());
            # a long one is out of range without converting it (int() refuses 4300+ digits).
            if not re.fullmatch(r"[0-9]+", text, flags=re.ASCII):
                raise Invalid(
                    f"{shown(raw)} is not a {what}", f"use a whole number from {low} to {high}"
                )
            if len(text.lstrip("0")) > 12:
                raise Invalid(
                    f"{shown(text)} is out of range", f"use a whole number from {low} to {high}"
                )
            value = int(text)
        if not low <= value <= high:
            raise Invalid(f"{value} is out of range", f"use a whole number from {low} to {high}")
        return value

    return parse


def parse_choice(choices: tuple[str, ...], what: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        text = str(raw).strip().lower()
        if text not in choices:
            raise Invalid(f"{shown(raw)} is not a {what}", "use " + ", ".join(choices))
        return text

    return parse


def parse_major(raw: object) -> int:
    value = int_between(0, 99, "GlitchTip major")(raw)
    if value not in majors.MAJORS:
        known = " or ".join(str(number) for number in sorted(majors.MAJORS))
        raise Invalid(f"GlitchTip {value} is not supported", f"use {known}")
    return value


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def ascii_host(host: str) -> str:
    """`host` as it travels in DNS and HTTP: an internationalized name in punycode (IDNA,
    "bücher.example" -> "xn--bcher-kva.example"); Django's ALLOWED_HOSTS, Compose files and
    browsers' Host and Origin headers all use that form. Invalid names raise `Invalid`."""
    fix = "use a host name of letters, digits, '-' and '.', e.g. glitchtip.example.com"
    name = host.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            import idna

            name = idna.encode(name, uts46=True).decode("ascii")
        except ImportError:  # pragma: no cover - idna comes with httpx
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                raise Invalid(f"{shown(host)} is not a valid host name", fix) from None
        except (idna.IDNAError, UnicodeError, ValueError):
            raise Invalid(
                f"{shown(host)} is not a valid internationalized host name "
                "(emoji and symbols cannot be encoded)",
                fix,
            ) from None
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise Invalid(f"{shown(host)} is not a valid host name", fix)
    return name


def parse_public_url(raw: object) -> str:
    text = str(raw).strip()
    fix = "use the URL users open, e.g. https://glitchtip.example.com"
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        raise Invalid(f"{shown(mask_url_password(text))} is not a valid URL", fix) from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"{shown(mask_url_password(text))} is not an http(s) URL", fix)
    if not parts.hostname or parts.username or parts.password:
        raise Invalid(f"{shown(mask_url_password(text))} has no valid host", fix)
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise Invalid(f"{shown(text)} has a path, query or fragment", fix + " (no path)")
    if re.search(r"[\s$'\"\\]", text):
        raise Invalid(f"{shown(text)} contains spaces, quotes or '$'", fix)
    try:
        port = parts.port
    except ValueError:
        raise Invalid(f"{shown(text)} has an invalid port", fix) from None
    if port == 0:
        raise Invalid(f"{shown(text)} has port 0, which no server listens on", fix)
    if parts.netloc.startswith("["):  # IPv6 literal: validated by urlsplit
        netloc = parts.netloc.lower()
    else:
        try:
            host = ascii_host(parts.hostname)
        except Invalid as problem:
            raise Invalid(f"{shown(text)}: {problem.problem}", fix) from None
        netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def parse_ip(raw: object) -> str:
    text = str(raw).strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(
            f"{shown(raw)} is not an IP address",
            "use 127.0.0.1 (this host only, behind a reverse proxy) or 0.0.0.0 (all interfaces)",
        ) from None


_IMAGE = re.compile(
    r"(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)


def parse_image(raw: object) -> str:
    text = str(raw).strip()
    match = _IMAGE.fullmatch(text)
    if match is None:
        raise Invalid(
            f"{shown(text)} is not an image reference",
            "use name:tag, e.g. registry.local/postgres:17.7",
        )
    if not match.group("tag") and not match.group("digest"):
        raise Invalid(f"{shown(text)} has no tag", "pin a version tag (name:tag) or a digest")
    if match.group("tag") == "latest" and not match.group("digest"):
        raise Invalid(f"{shown(text)} is not pinned", "use a version tag instead of latest")
    return text


def image_tag_major(image: str) -> int | None:
    """The leading number of an image's tag (`postgres:17.7` -> 17, `glitchtip:v5.1.0` -> 5)."""
    match = _IMAGE.fullmatch(image)
    tag = match.group("tag") if match else None
    if not tag:
        return None
    number = re.match(r"v?([0-9]+)(?:$|[.-])", tag)
    return int(number.group(1)) if number else None


_EMAIL = re.compile(
    r"[A-Za-z0-9.!#%&*+/=?^_`{|}~-]+@(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def _ascii_address(address: str) -> str:
    """An e-mail address with an internationalized domain in punycode; the local part must be
    ASCII (SMTPUTF8 is not something every relay speaks)."""
    local, at, domain = address.rpartition("@")
    if at and domain and not domain.isascii() and local.isascii():
        try:
            return f"{local}@{ascii_host(domain)}"
        except Invalid:
            return address
    return address


def parse_email(raw: object) -> str:
    text = _ascii_address(str(raw).strip())
    if not _EMAIL.fullmatch(text):
        raise Invalid(f"{shown(text)} is not an e-mail address", "use name@example.com")
    return text


def parse_from_email(raw: object) -> str:
    text = str(raw).strip()
    named = re.fullmatch(r"([^<>\"$\\]+) <(.+)>", text)
    address = _ascii_address(named.group(2) if named else text)
    fix = "use glitchtip@example.com or 'GlitchTip <glitchtip@example.com>'"
    if not _EMAIL.fullmatch(address):
        raise Invalid(f"{shown(text)} is not an e-mail address", fix)
    if named:
        name = named.group(1)
        # Printable text only: a control character or a lone surrogate cannot be written into
        # a Compose file or an e-mail header.
        if not name.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            raise Invalid(f"{shown(text)} has unprintable characters in its name", fix)
        return f"{name} <{address}>"
    return address


EMAIL_SCHEMES = {
    "smtp",
    "smtps",
    "smtp+tls",
    "smtp+ssl",
    "consolemail",
    "filemail",
    "memorymail",
    "dummymail",
}
_NEEDS_HOST = {"smtp", "smtps", "smtp+tls", "smtp+ssl"}


# Query parameters a client reads a password from: libpq (`postgres://u@host/db?password=`) and
# redis-py (`redis://host/0?password=`) both honour `password`, so it is a password like userinfo's.
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", flags=re.IGNORECASE)


def url_passwords(url: str) -> list[str]:
    """Every password `url` carries: its userinfo's and any `password=` query value (as
    written, not decoded); [] for none. Works on malformed URLs too, like `mask_url_password`."""
    found = [value for _key, value in _QUERY_PASSWORD.findall(url) if value]
    _scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url
    at = rest.rfind("@")
    if at >= 0:
        _user, colon, password = rest[:at].partition(":")
        if colon and password:
            found.insert(0, password)
    return found


def mask_url_password(url: str) -> str:
    """`url` with the password of its userinfo part, and any `password=` query value, replaced
    by the mask.

    Also for a malformed URL (it is shown in the message refusing it): the password is taken as
    everything between the first ':' after "scheme://" and the last '@', so a password holding
    '#', '/' or '?' (which end a URL's address part) is masked whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}@{rest[at + 1 :]}"
    masked = f"{scheme}{sep}{rest}"
    return _QUERY_PASSWORD.sub(lambda m: m.group(1) + (MASK if m.group(2) else ""), masked)


def parse_email_url(raw: object) -> str:
    text = str(raw).strip()
    fix = "use e.g. smtp+tls://user:password@mail.example.com:587 or consolemail://"
    masked = mask_url_password(text)
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in EMAIL_SCHEMES:
        raise Invalid(f"{shown(masked)} is not an e-mail URL", fix)
    if re.search(r"[\s'\\]", text) or "\n" in text:
        raise Invalid(f"{shown(masked)} contains spaces, quotes or backslashes", fix)
    rest = text.partition("://")[2]
    userinfo = rest[: rest.rfind("@")] if "@" in rest else ""
    breaking = next((char for char in "#?/" if char in userinfo), None)
    if breaking:
        # urlsplit (and django-environ) would end the server part at it: the password would be
        # cut and the rest read as a port. Percent-encoded, it reaches the server intact.
        encoded = {"#": "%23", "?": "%3F", "/": "%2F"}[breaking]
        raise Invalid(
            f"{shown(masked)}: the user name or password contains {breaking!r}, which ends the "
            "server part of a URL",
            f"percent-encode it ({breaking} as {encoded}) in EMAIL_URL or --set email_url=...",
        )
    if not text.isascii():
        raise Invalid(f"{shown(masked)} has non-ASCII characters", f"{fix} (percent-encode them)")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        raise Invalid(f"{shown(masked)} is not a valid URL", fix) from None
    if scheme in _NEEDS_HOST:
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise Invalid(f"{shown(masked)} has an invalid port", fix) from None
        if not parts.hostname:
            raise Invalid(f"{shown(masked)} names no mail server", fix)
    return text


# --- external services (issue 12): an existing Postgres, Valkey, S3-compatible uploads ---

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
    rest = text.partition("://")[2]
    userinfo = rest[: rest.rfind("@")] if "@" in rest else ""
    breaking = next((char for char in "#?/" if char in userinfo), None)
    if breaking:
        encoded = {"#": "%23", "?": "%3F", "/": "%2F"}[breaking]
        raise Invalid(
            f"{shown(masked)}: the user name or password contains {breaking!r}, which ends the "
            "server part of a URL",
            f"percent-encode it ({breaking} as {encoded}) in {variable}",
        )
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


def parse_name(raw: object) -> str:
    text = str(raw).strip()
    if not 1 <= len(text) <= 64 or not text.isprintable() or re.search(r"[$'\"\\]", text):
        raise Invalid(
            f"{shown(text)} is not a usable name", "use 1-64 printable characters, no quotes"
        )
    from provision.provisioning import slugify

    if not slugify(text):
        raise Invalid(
            f"{shown(text)} has no letter or digit GlitchTip can make a slug (its URL name) from",
            "use a name with ASCII letters or digits, e.g. Acme or web-app",
        )
    return text


def parse_slug(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", text):
        raise Invalid(
            f"{shown(text)} is not a valid name", "use lowercase letters, digits, - and _"
        )
    return text


def parse_platform(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", text):
        raise Invalid(f"{shown(text)} is not a platform", "use e.g. python, javascript, node")
    return text


def parse_abs_path(raw: object) -> str:
    text = str(raw).strip()
    if not text.startswith("/") or re.search(r"[\s:$'\"\\]", text):
        raise Invalid(
            f"{shown(text)} is not an absolute container path", "use e.g. /var/lib/postgresql"
        )
    return text.rstrip("/") or "/"


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PROMETHEUS_DURATION = re.compile(r"(?:[0-9]{1,6}(?:ms|s|m|h|d|w|y))+", flags=re.ASCII)


def parse_retention(raw: object) -> str:
    """How long Prometheus keeps samples, in Prometheus's duration syntax (`15d`, `2w`, `1d12h`);
    at least 2 hours (one TSDB block) and at most 10 years."""
    text = str(raw).strip()
    fix = "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d"
    if not _PROMETHEUS_DURATION.fullmatch(text):
        raise Invalid(f"{shown(raw)} is not a duration", fix)
    seconds = sum(
        int(number) * _DURATION_UNITS[unit]
        for number, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text)
    )
    if not 2 * 3600 <= seconds <= 10 * 31536000:
        raise Invalid(f"{shown(text)} is out of range", fix)
    return text


def parse_optional_email(raw: object) -> str:
    """An e-mail address, or empty for none (the ACME account e-mail is optional).

    It goes into the Caddyfile as a bare token, where `#` starts a comment and braces open or
    close a block: addresses holding them, valid as they are, are refused here."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return ""
    address = parse_email(text)
    if any(char in address for char in "#{}"):
        raise Invalid(
            f"{shown(address)} holds '#', '{{' or '}}', which Caddy's configuration reads as "
            "syntax",
            "use an address without them",
        )
    return address


def parse_proxy_subnet(raw: object) -> str:
    """The IPv4 subnet of the proxy's network: private, /29 or larger (gateway, proxy, web)."""
    text = str(raw).strip()
    fix = "use a private IPv4 subnet of /29 or larger no other network uses, e.g. 10.203.7.0/29"
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise Invalid(
            f"{shown(raw)} is not a subnet (address/prefix, host bits zero)", fix
        ) from None
    if network.version != 4 or not network.is_private or network.prefixlen > 29:
        raise Invalid(f"{shown(text)} is not a private IPv4 subnet of /29 or larger", fix)
    for taken, what in _RESERVED_SUBNETS:
        if network.overlaps(taken):
            raise Invalid(f"{shown(text)} overlaps {taken} ({what})", fix)
    return str(network)


# Subnets a Docker network cannot take: loopback is each container's own, and Docker's default
# bridge (docker0) holds 172.17.0.0/16 on every engine that was not told otherwise.
_RESERVED_SUBNETS = (
    (ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    (ipaddress.ip_network("172.17.0.0/16"), "Docker's default bridge, docker0"),
)


# Error budgets are counted from GlitchTip's hourly buckets (stats_v2), so a window is a whole
# number of hours. GlitchTip's stats API refuses a window of more than 1000 hourly buckets
# (recording 177, "Too many intervals"; 41 d 23 h still passes), so 41 days is the longest.
_WINDOW = re.compile(r"([0-9]{1,4})([hdw])", flags=re.ASCII)
_WINDOW_SECONDS = {"h": 3600, "d": 86400, "w": 604800}
MAX_BUDGET_WINDOW = 41 * 86400
MAX_BUDGET_ERRORS = 1_000_000_000
BUDGET_KEYS = ("max_errors", "per")
DEFAULT_BUDGET: dict[str, Any] = {"max_errors": 200, "per": "1d"}


def budget_window_seconds(per: str) -> int:
    """`per` of an error budget (`1h`, `6h`, `1d`, `7d`, `2w`) in seconds."""
    match = _WINDOW.fullmatch(per)
    if match is None:
        raise Invalid(f"{shown(per)} is not a window", "use hours, days or weeks: 1h, 6h, 1d, 7d")
    return int(match.group(1)) * _WINDOW_SECONDS[match.group(2)]


def _parse_window(raw: object, where: str) -> str:
    fix = "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, 1d, 7d or 30d"
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise Invalid(f"{where}.per: {shown(raw)} is not a window", fix)
    if not 3600 <= budget_window_seconds(text) <= MAX_BUDGET_WINDOW:
        raise Invalid(f"{where}.per: {text} is out of range", fix)
    return text


def _parse_max_errors(raw: object, where: str) -> int:
    fix = f"use a whole number of errors from 1 to {MAX_BUDGET_ERRORS}, e.g. max_errors: 200"
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise Invalid(f"{where}.max_errors: {shown(raw)} is not a number of errors", fix)
    try:
        return int_between(1, MAX_BUDGET_ERRORS, "number of errors")(raw)
    except Invalid as problem:
        raise Invalid(f"{where}.max_errors: {problem.problem}", fix) from None


def _budget_slug(key: object) -> str:
    """A key of `error_budgets`: `default` or a project slug exactly as GlitchTip makes it."""
    fix = (
        "use `default` or a project's slug as GlitchTip shows it in URLs "
        "(lowercase ASCII letters, digits, '-' and '_')"
    )
    if isinstance(key, bool) or key is None or not isinstance(key, (str, int)):
        raise Invalid(f"error_budgets: the key {shown(key)} is not a project slug", fix)
    text = str(key)
    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,49}", text, flags=re.ASCII):
        return text
    from provision.provisioning import slugify

    slug = slugify(text)[:50]
    if slug and slug != text:
        fix = f"GlitchTip's slug of {shown(text)} is {slug!r}: write that ({fix})"
    raise Invalid(f"error_budgets: {shown(text)} is not a project slug", fix)


def parse_error_budgets(raw: object) -> dict[str, dict[str, Any]]:
    """`error_budgets` from glitchtip.yaml: `{slug|default: {max_errors: N, per: 1d}}`.

    Every mistake is refused with the path to it (`error_budgets.web.per`); `default` applies
    to every project not listed and is the kit's 200 errors per day when not given."""
    if raw is None or raw == {}:
        return {"default": dict(DEFAULT_BUDGET)}
    if not isinstance(raw, Mapping):
        raise Invalid(
            f"{shown(raw)} is not a mapping of projects",
            "write it in glitchtip.yaml as `error_budgets:` then `  default: {max_errors: 200, "
            "per: 1d}` (one line per project slug)",
        )
    budgets: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        slug = _budget_slug(key)
        where = f"error_budgets.{slug}"
        if not isinstance(value, Mapping):
            raise Invalid(
                f"{where}: {shown(value)} is not a budget",
                f"write `{slug}: {{max_errors: 200, per: 1d}}`",
            )
        for field_name in value:
            if field_name not in BUDGET_KEYS:
                close = difflib.get_close_matches(str(field_name), BUDGET_KEYS, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise Invalid(
                    f"{where}: unknown key {shown(field_name)}",
                    f"{hint}a budget has max_errors and per only",
                )
        missing = [name for name in BUDGET_KEYS if name not in value]
        if missing:
            raise Invalid(
                f"{where}: {' and '.join(missing)} missing",
                f"write `{slug}: {{max_errors: 200, per: 1d}}`",
            )
        budgets[slug] = {
            "max_errors": _parse_max_errors(value["max_errors"], where),
            "per": _parse_window(value["per"], where),
        }
    if "default" not in budgets:
        budgets = {"default": dict(DEFAULT_BUDGET), **budgets}
    return budgets


# --- host-derived defaults ---


def host_resources() -> tuple[int, int]:
    """(usable CPUs, memory in MiB) of this host."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        memory = 2048
    return max(cpus, 1), max(memory, 256)


def derive_concurrency(cpus: int, memory_mib: int, web_per_cpu: int = 1) -> tuple[int, int]:
    """(web, worker) concurrency for a host: `web_per_cpu` web processes per CPU (the major's
    `web_processes_per_cpu`), two worker slots per CPU, both capped by memory after keeping
    1 GiB for Postgres, Valkey and the OS (a web process needs about 300 MiB, a worker process
    about 200 MiB). The worker figure is for a worker that forks a process per slot (Celery
    prefork); see `derive_worker_concurrency`."""
    budget = max(memory_mib - 1024, 256)
    web = max(1, min(cpus * web_per_cpu, budget // 300, 8))
    worker = max(1, min(cpus * 2, budget // 200, 16))
    return web, worker


WORKER_POOLS = ("threads", "prefork", "solo")


def derive_worker_pool(cpus: int, memory_mib: int) -> str:
    """GlitchTip 5's Celery pool: prefork (Celery's and GlitchTip's image default) where the
    host has two or more CPUs and memory for two or more forked slots, else threads. Storing a
    batch is mostly Python work, so one threaded process stores on one CPU at a time (the
    interpreter lock): on 2 CPUs it stored ~90-150 events/s (stand-in; a real GlitchTip 5 with
    4 threads was recorded at 108-150/s) while the kit's web accepts ~180/s, so a 30 s burst
    took 17-30 s to drain; forked slots use every CPU (docs/durability.md, "Draining a
    burst"). Threads keep one process's memory on a one-CPU or small host."""
    if cpus >= 2 and derive_concurrency(cpus, memory_mib)[1] >= 2:
        return "prefork"
    return "threads"


# standard: web, worker, Postgres, Valkey; minimal: GlitchTip's all-in-one (see majors.Major).
PROFILES = ("standard", "minimal")
# Where the deployment runs (`target`): one Compose project, a Swarm stack, Helm values.
TARGETS = ("compose", "swarm", "kubernetes")
# Threads of a threaded Celery worker: they share one process (and its memory), so memory does
# not cap them; the interpreter lock makes more than 2 per CPU useless for storing batches.
MAX_WORKER_THREADS = 16
# Connections kept free of the pools: migrate and `manage.py` one-offs, psql, and Postgres's
# superuser_reserved_connections (3).
RESERVED_CONNECTIONS = 10
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100


def derive_worker_concurrency(major: majors.Major, pool: str, cpus: int, memory_mib: int) -> int:
    """Worker slots: GlitchTip's own default where it has one that does not depend on the host
    (6: django-vtasks' 20 async slots in one process, the figure its batch queue and thread
    lanes are built around; the kit used to give it 2 per CPU, far fewer); for Celery (5) two
    per CPU, capped by memory only when each slot is a forked process."""
    if major.upstream_worker_concurrency is not None:
        return major.upstream_worker_concurrency
    if pool == "threads":
        return max(2, min(cpus * 2, MAX_WORKER_THREADS))
    if pool == "solo":
        return 1
    return derive_concurrency(cpus, memory_mib)[1]


def worker_prefetch_default(major: majors.Major) -> int:
    """Celery's prefetch multiplier: the worker may hold concurrency x this unacknowledged
    messages, and celery-batches only stores a full batch (`ingest_batch_size`, 100) when that
    window holds one. Celery's default, 4, gives a window of 8 on 2 CPUs: a batch of 8 every
    2 s, ~4 events/s (recorded on a real GlitchTip 5). A multiplier of one batch lets every
    thread hold a full batch (recorded ~150 events/s with 4 threads on 2 CPUs)."""
    return major.ingest_batch_size


def worker_processes(major: majors.Major, pool: str, concurrency: int) -> int:
    """Processes the worker container runs that each open their own database pool."""
    if major.worker_pool_env is not None and pool == "prefork":
        return concurrency
    return 1


def worker_db_slots(major: majors.Major, pool: str, concurrency: int) -> int:
    """Connections one worker process may want at once: one per thread or async slot."""
    if major.worker_pool_env is not None and pool in ("prefork", "solo"):
        return 1
    return concurrency


def derive_db_pool_max_size(major: majors.Major, pool: str, concurrency: int) -> int:
    """DATABASE_POOL_MAX_SIZE: GlitchTip's default (5: 10, 6: 20 per process), raised to the
    worker's slots so no thread or task waits for a connection (GlitchTip's pool times out
    after 30 s and the task fails)."""
    return max(major.db_pool_default, worker_db_slots(major, pool, concurrency))


def connections_needed(
    major: majors.Major, pool: str, worker_concurrency: int, web_concurrency: int, pool_max: int
) -> int:
    """The most connections the stack can open: every web and worker process's full pool, plus
    the reserve."""
    processes = web_concurrency + worker_processes(major, pool, worker_concurrency)
    return processes * pool_max + RESERVED_CONNECTIONS


def derive_postgres_memory(memory_mib: int) -> tuple[int, int, int]:
    """(shared_buffers, effective_cache_size, maintenance_work_mem) in MiB for a host running
    Postgres next to GlitchTip: an eighth of memory for shared buffers (a quarter is the usual
    advice for a host of its own; GlitchTip's processes need the rest), half as the planner's
    cache estimate, a 32nd for vacuum and index builds; Postgres's own defaults as the floor."""
    shared = max(128, min(memory_mib // 8, 8192))
    cache = max(512, memory_mib // 2)
    maintenance = max(64, min(memory_mib // 32, 1024))
    return shared, cache, maintenance


# --- the table of settings ---


@dataclass(frozen=True)
class Spec:
    """One setting: its name (in glitchtip.yaml and as attribute), variable, parser, default."""

    name: str
    env: str
    parse: Callable[[object], Any]
    default: Callable[[dict[str, Any]], Any]
    help: str
    derived: bool = False
    default_text: str = ""  # how the README shows the default
    # Only glitchtip.yaml may set it (a mapping has no sensible one-line form as an option).
    file_only: bool = False


def _const(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda resolved: value


def _major_row(resolved: dict[str, Any]) -> majors.Major:
    return majors.MAJORS[resolved["glitchtip_major"]]


def _default_postgres_version(resolved: dict[str, Any]) -> int:
    found = image_tag_major(resolved["postgres_image"])
    if found is not None:
        return found
    # An unparseable tag (a digest, "stable"): assume the layout of the major's default image.
    fallback = image_tag_major(_major_row(resolved).postgres_image)
    assert fallback is not None
    return fallback


SPECS: tuple[Spec, ...] = (
    Spec(
        "glitchtip_major", "GLITCHTIP_KIT_MAJOR", parse_major, _const(majors.DEFAULT_MAJOR),
        "GlitchTip major version to deploy: 6 (current) or 5.", default_text="6",
    ),
    Spec(
        "bind_address", "GLITCHTIP_KIT_BIND_ADDRESS", parse_ip, _const("127.0.0.1"),
        "Host address the web service publishes on; 127.0.0.1 keeps it behind a reverse proxy.",
        default_text="127.0.0.1",
    ),
    Spec(
        "http_port", "GLITCHTIP_KIT_HTTP_PORT", int_between(1, 65535, "port number"),
        _const(8000), "Host port the web service publishes on.", default_text="8000",
    ),
    Spec(
        "glitchtip_domain", "GLITCHTIP_DOMAIN", parse_public_url,
        lambda r: f"http://localhost:{r['http_port']}",
        "Public URL of GlitchTip (http or https, no path); used in DSNs and e-mail links.",
        default_text="http://localhost:<http_port>",
    ),
    Spec(
        "glitchtip_image", "GLITCHTIP_KIT_GLITCHTIP_IMAGE", parse_image,
        lambda r: _major_row(r).glitchtip_image,
        "GlitchTip image (pinned tag; point it at a mirror for air-gapped hosts).",
        derived=True,
        default_text="6: `glitchtip/glitchtip:6.2.6`, 5: `glitchtip/glitchtip:v5.1.0`",
    ),
    Spec(
        "postgres_image", "GLITCHTIP_KIT_POSTGRES_IMAGE", parse_image,
        lambda r: _major_row(r).postgres_image, "Postgres image (14 or newer).",
        derived=True, default_text="6: `postgres:18.1`, 5: `postgres:17.7`",
    ),
    Spec(
        "valkey_image", "GLITCHTIP_KIT_VALKEY_IMAGE", parse_image,
        lambda r: _major_row(r).valkey_image, "Valkey image.",
        derived=True, default_text="6: `valkey/valkey:9.0`, 5: `valkey/valkey:8.1`",
    ),
    Spec(
        "postgres_version", "GLITCHTIP_KIT_POSTGRES_VERSION",
        int_between(1, 99, "Postgres major"), _default_postgres_version,
        "Postgres major of `postgres_image`; read from its tag, set it when the tag has no number.",
        derived=True, default_text="from the image tag",
    ),
    Spec(
        "postgres_data_path", "GLITCHTIP_KIT_POSTGRES_DATA_PATH", parse_abs_path,
        lambda r: majors.postgres_data_path(r["postgres_version"]),
        "Where the Postgres volume is mounted: /var/lib/postgresql from 18 on, .../data before.",
        derived=True, default_text="from `postgres_version`",
    ),
    Spec(
        "partman_image", "GLITCHTIP_KIT_PARTMAN_IMAGE", parse_image,
        lambda r: majors.partman_image_for(r["postgres_version"]),
        "Postgres image with pg_partman 5 used by compose.part.yml (same Postgres major; the "
        "tag's `-5` pins pg_partman's major).",
        derived=True, default_text="`ghcr.io/dbsystel/postgresql-partman:<postgres_version>-5`",
    ),
    Spec(
        "default_from_email", "DEFAULT_FROM_EMAIL", parse_from_email,
        _const("glitchtip@localhost"), "Sender address of GlitchTip's e-mails.",
        default_text="glitchtip@localhost",
    ),
    Spec(
        "email_url", "EMAIL_URL", parse_email_url, _const("consolemail://"),
        "How GlitchTip sends e-mail (django-environ URL). Kept in .env, never in glitchtip.yaml "
        "when it holds a password; consolemail:// writes e-mails to the web log.",
        default_text="consolemail://",
    ),
    Spec(
        "database_url", "GLITCHTIP_KIT_DATABASE_URL", parse_database_url, _const(""),
        "An existing Postgres (14+) instead of the bundled one, e.g. "
        "postgres://user:password@db.example.com:5432/glitchtip. Kept in .env, never in "
        "glitchtip.yaml when it holds a password; empty: the bundled postgres service.",
        default_text="empty (bundled)",
    ),
    Spec(
        "database_sslmode", "GLITCHTIP_KIT_DATABASE_SSLMODE", parse_sslmode, _const(""),
        "The libpq sslmode for an external database_url (disable, allow, prefer, require, "
        "verify-ca, verify-full); empty: libpq's default (prefer).",
        default_text="empty",
    ),
    Spec(
        "valkey_url", "GLITCHTIP_KIT_VALKEY_URL", parse_valkey_url, _const(""),
        "An existing Valkey or Redis instead of the bundled one, e.g. "
        "redis://:password@cache.example.com:6379/0 (rediss:// for TLS). Kept in .env like "
        "database_url; empty: the bundled valkey service.",
        default_text="empty (bundled)",
    ),
    Spec(
        "uploads_bucket", "GLITCHTIP_KIT_UPLOADS_BUCKET", parse_bucket, _const(""),
        "Keep uploads (source maps, debug files, attachments) in this S3 bucket instead of "
        "the uploads volume (django-storages S3Boto3Storage); empty: the volume.",
        default_text="empty (uploads volume)",
    ),
    Spec(
        "uploads_endpoint_url", "GLITCHTIP_KIT_UPLOADS_ENDPOINT_URL", parse_endpoint_url,
        _const(""),
        "Endpoint of S3-compatible storage (MinIO, Ceph, R2 ...); empty: AWS S3.",
        default_text="empty (AWS)",
    ),
    Spec(
        "uploads_region", "GLITCHTIP_KIT_UPLOADS_REGION", parse_region, _const(""),
        "Region of the bucket (boto3 reads AWS_DEFAULT_REGION); empty: the provider's default.",
        default_text="empty",
    ),
    Spec(
        "uploads_access_key_id", "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID", parse_access_key,
        _const(""),
        "Access key id for the bucket. Kept in .env, never in glitchtip.yaml; empty: boto3's "
        "own lookup (instance role).",
        default_text="empty",
    ),
    Spec(
        "uploads_secret_access_key", "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY",
        parse_secret_access_key, _const(""),
        "Secret access key for the bucket. Kept in .env (0600), never in glitchtip.yaml; give "
        "it as GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY in the environment once.",
        default_text="empty",
    ),
    Spec(
        "enable_user_registration", "ENABLE_USER_REGISTRATION", parse_bool, _const(False),
        "Let anyone with the URL sign up (off for a private instance).", default_text="false",
    ),
    Spec(
        "enable_organization_creation", "ENABLE_ORGANIZATION_CREATION", parse_bool,
        _const(False), "Let non-admin users create organizations.", default_text="false",
    ),
    Spec(
        "retention_days", "GLITCHTIP_MAX_EVENT_LIFE_DAYS", int_between(1, 3650, "number of days"),
        _const(90), "Days events are kept (GlitchTip 6 reads it as GLITCHTIP_RETENTION_DAYS).",
        default_text="90",
    ),
    Spec(
        "worker_pool", "GLITCHTIP_KIT_WORKER_POOL", parse_choice(WORKER_POOLS, "worker pool"),
        lambda r: derive_worker_pool(*host_resources()),
        "GlitchTip 5 only: Celery worker pool (CELERY_WORKER_POOL); threads share one process.",
        derived=True, default_text="prefork with 2+ CPUs, else threads",
    ),
    Spec(
        "worker_concurrency", "GLITCHTIP_KIT_WORKER_CONCURRENCY",
        int_between(1, 64, "concurrency"),
        lambda r: derive_worker_concurrency(
            _major_row(r), r["worker_pool"], *host_resources()
        ),
        "Worker concurrency: VTASKS_CONCURRENCY on 6 (async slots in one process), "
        "CELERY_WORKER_CONCURRENCY on 5.",
        derived=True, default_text="6: 20; 5: 2 per CPU, prefork: <= 1 per 200 MiB over 1 GiB",
    ),
    Spec(
        "worker_prefetch", "GLITCHTIP_KIT_WORKER_PREFETCH", int_between(0, 1000, "multiplier"),
        lambda r: worker_prefetch_default(_major_row(r)),
        "GlitchTip 5 only: Celery prefetch multiplier (CELERY_WORKER_PREFETCH_MULTIPLIER); "
        "concurrency x this must hold a batch of 100 events.",
        derived=True, default_text="100",
    ),
    Spec(
        "web_concurrency", "GLITCHTIP_KIT_WEB_CONCURRENCY", int_between(1, 64, "concurrency"),
        lambda r: derive_concurrency(
            *host_resources(), _major_row(r).web_processes_per_cpu
        )[0],
        "Web server processes.",
        derived=True, default_text="6: 1 per CPU, 5: 2 per CPU; capped by memory",
    ),
    Spec(
        "db_pool_max_size", "GLITCHTIP_KIT_DB_POOL_MAX_SIZE", int_between(1, 500, "pool size"),
        lambda r: derive_db_pool_max_size(
            _major_row(r), r["worker_pool"], r["worker_concurrency"]
        ),
        "Database connections each GlitchTip process may open (DATABASE_POOL_MAX_SIZE).",
        derived=True, default_text="6: 20, 5: 10, at least the worker's slots",
    ),
    Spec(
        "postgres_max_connections", "GLITCHTIP_KIT_POSTGRES_MAX_CONNECTIONS",
        int_between(20, 10000, "number of connections"),
        lambda r: max(
            POSTGRES_DEFAULT_MAX_CONNECTIONS,
            connections_needed(
                _major_row(r), r["worker_pool"], r["worker_concurrency"],
                r["web_concurrency"], r["db_pool_max_size"],
            ),
        ),
        "Postgres max_connections: every process's full pool fits, plus a reserve.",
        derived=True, default_text="100, or what the pools need",
    ),
    Spec(
        "postgres_shared_buffers_mb", "GLITCHTIP_KIT_POSTGRES_SHARED_BUFFERS_MB",
        int_between(16, 1048576, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[0],
        "Postgres shared_buffers in MiB.",
        derived=True, default_text="1/8 of memory, 128 to 8192",
    ),
    Spec(
        "postgres_effective_cache_size_mb", "GLITCHTIP_KIT_POSTGRES_EFFECTIVE_CACHE_SIZE_MB",
        int_between(16, 4194304, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[1],
        "Postgres effective_cache_size in MiB (a planner estimate; allocates nothing).",
        derived=True, default_text="1/2 of memory",
    ),
    Spec(
        "postgres_maintenance_work_mem_mb", "GLITCHTIP_KIT_POSTGRES_MAINTENANCE_WORK_MEM_MB",
        int_between(1, 65536, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[2],
        "Postgres maintenance_work_mem in MiB (vacuum, index builds).",
        derived=True, default_text="1/32 of memory, 64 to 1024",
    ),
    Spec(
        "web_memory_limit_mb", "GLITCHTIP_KIT_WEB_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.web_memory_mb(r["web_concurrency"], host_resources()[1]),
        "Memory limit of the web container in MiB (mem_limit).",
        derived=True, default_text="256 + 384 per web process, at most the host's memory",
    ),
    Spec(
        "worker_memory_limit_mb", "GLITCHTIP_KIT_WORKER_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.worker_memory_mb(
            _major_row(r), r["worker_pool"], r["worker_concurrency"], host_resources()[1]
        ),
        "Memory limit of the worker and migrate containers in MiB (mem_limit).",
        derived=True, default_text="1024 (prefork: 384 + 256 per process)",
    ),
    Spec(
        "postgres_memory_limit_mb", "GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.postgres_memory_mb(
            r["postgres_shared_buffers_mb"], r["postgres_maintenance_work_mem_mb"],
            r["postgres_max_connections"], host_resources()[1],
        ),
        "Memory limit of the Postgres container in MiB (mem_limit).",
        derived=True,
        default_text="shared buffers + 2 x maintenance + 8 per connection + 256",
    ),
    Spec(
        "valkey_memory_limit_mb", "GLITCHTIP_KIT_VALKEY_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.valkey_memory_mb(host_resources()[1]),
        "Memory limit of the Valkey container in MiB (mem_limit); it holds the task queue.",
        derived=True, default_text="1/4 of memory, 256 to 4096",
    ),
    Spec(
        "advanced_partitioning", "GLITCHTIP_ADVANCED_PARTITIONING", parse_bool, _const(False),
        "GlitchTip 5 only: pg_partman partitioning via compose.part.yml. Fixed at the first "
        "render; cannot be switched on an existing database.",
        default_text="false",
    ),
    Spec(
        "admin_email", "GLITCHTIP_KIT_ADMIN_EMAIL", parse_email, _const("admin@example.com"),
        "E-mail of the first admin (superuser) the kit creates.",
        default_text="admin@example.com",
    ),
    Spec(
        "organization", "GLITCHTIP_KIT_ORGANIZATION", parse_name, _const("GlitchTip"),
        "Organization the kit creates for the first project.", default_text="GlitchTip",
    ),
    Spec(
        "project", "GLITCHTIP_KIT_PROJECT", parse_name, _const("default"),
        "Project the kit creates and writes the DSN of.", default_text="default",
    ),
    Spec(
        "platform", "GLITCHTIP_KIT_PLATFORM", parse_platform, _const("python"),
        "Platform of that project.", default_text="python",
    ),
    Spec(
        "compose_project_name", "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME", parse_slug,
        _const("glitchtip"), "Compose project name (prefix of containers and volumes).",
        default_text="glitchtip",
    ),
    Spec(
        "profile", "GLITCHTIP_KIT_PROFILE", parse_choice(PROFILES, "profile"),
        _const("standard"),
        "Which services run: standard (web, worker, Postgres, Valkey) or minimal (one "
        "all-in-one GlitchTip container and Postgres, no Valkey on 6) for a small host.",
        default_text="standard",
    ),
    Spec(
        "target", "GLITCHTIP_KIT_TARGET", parse_choice(TARGETS, "deployment target"),
        _const("compose"),
        "Where GlitchTip runs: compose (one Docker host), swarm (`docker stack deploy`) or "
        "kubernetes (Helm values); recorded in .env, so later commands address the same one.",
        default_text="compose",
    ),
    Spec(
        "swarm_publish_mode", "GLITCHTIP_KIT_SWARM_PUBLISH_MODE",
        parse_choice(("ingress", "host"), "publish mode"), _const("ingress"),
        "Swarm: how web's port is published: ingress (routing mesh, any node, needs the "
        "kernel's IPVS) or host (one web task per node, behind your own load balancer).",
        default_text="ingress",
    ),
    Spec(
        "web_replicas", "GLITCHTIP_KIT_WEB_REPLICAS", int_between(1, 100, "number of replicas"),
        _const(1), "Web tasks (Swarm) or pods (Kubernetes); `provision scale web=N` records it.",
        default_text="1",
    ),
    Spec(
        "worker_replicas", "GLITCHTIP_KIT_WORKER_REPLICAS",
        int_between(1, 100, "number of replicas"), _const(1),
        "Worker tasks (Swarm) or pods (Kubernetes); `provision scale worker=N` records it.",
        default_text="1",
    ),
    Spec(
        "locust_image", "GLITCHTIP_KIT_LOCUST_IMAGE", parse_image,
        _const("locustio/locust:2.47.0"),
        "Locust image of the load test (compose.locust.yml, `provision load`).",
        default_text="`locustio/locust:2.47.0`",
    ),
    Spec(
        "locust_port", "GLITCHTIP_KIT_LOCUST_PORT", int_between(1, 65535, "port number"),
        _const(8089), "Host port of the Locust web UI (`make locust-start`), on `bind_address`.",
        default_text="8089",
    ),
    Spec(
        "load_project", "GLITCHTIP_KIT_LOAD_PROJECT", parse_name, _const("loadtest"),
        "Project the load test sends its events to (created if missing; never `project`).",
        default_text="loadtest",
    ),
    Spec(
        "proxy", "GLITCHTIP_KIT_PROXY", parse_choice(PROXY_CHOICES, "proxy choice"),
        _const("auto"),
        "TLS front door: caddy (Caddy on ports 80/443), none (your own proxy), or auto: caddy "
        "when glitchtip_domain is https:// with a public name.",
        default_text="auto",
    ),
    Spec(
        "caddy_image", "GLITCHTIP_KIT_CADDY_IMAGE", parse_image, _const(majors.CADDY_IMAGE),
        "Caddy image of the TLS proxy.", default_text=f"`{majors.CADDY_IMAGE}`",
    ),
    Spec(
        "acme_email", "GLITCHTIP_KIT_ACME_EMAIL", parse_optional_email, _const(""),
        "E-mail of the ACME account (certificate expiry notices); empty: none.",
        default_text="empty",
    ),
    Spec(
        "proxy_http_port", "GLITCHTIP_KIT_PROXY_HTTP_PORT", int_between(1, 65535, "port number"),
        _const(80), "Host port of the proxy's plain HTTP (redirects to https), on bind_address.",
        default_text="80",
    ),
    Spec(
        "proxy_https_port", "GLITCHTIP_KIT_PROXY_HTTPS_PORT",
        int_between(1, 65535, "port number"), _const(443),
        "Host port of the proxy's HTTPS, on bind_address (not 443: put it in glitchtip_domain).",
        default_text="443",
    ),
    Spec(
        "proxy_max_body_mb", "GLITCHTIP_KIT_PROXY_MAX_BODY_MB",
        int_between(1, 1024, "size in MiB"), _const(40),
        "Largest request body the proxy passes on, in MiB (413 above it); fits GlitchTip's "
        "largest envelopes and the 32 MiB chunks it asks sentry-cli to upload.",
        default_text="40",
    ),
    Spec(
        "proxy_subnet", "GLITCHTIP_KIT_PROXY_SUBNET", parse_proxy_subnet,
        lambda r: default_subnet(r["compose_project_name"]),
        "Subnet of the network between the proxy and web; the proxy's pinned address in it is "
        "the only one GlitchTip trusts X-Forwarded-* from.",
        derived=True, default_text="a /29 of 10.203.0.0/16 chosen by compose_project_name",
    ),
    Spec(
        "metrics", "GLITCHTIP_KIT_METRICS", parse_bool, _const(False),
        "Prometheus, Grafana and the exporters (compose.metrics.yml). Recorded in .env by "
        "`up --metrics`, so later commands keep them; `make metrics-stop` turns them off.",
        default_text="false",
    ),
    Spec(
        "prometheus_image", "GLITCHTIP_KIT_PROMETHEUS_IMAGE", parse_image,
        _const(majors.PROMETHEUS_IMAGE), "Prometheus image.",
        default_text=f"`{majors.PROMETHEUS_IMAGE}`",
    ),
    Spec(
        "grafana_image", "GLITCHTIP_KIT_GRAFANA_IMAGE", parse_image,
        _const(majors.GRAFANA_IMAGE), "Grafana image (OSS).",
        default_text=f"`{majors.GRAFANA_IMAGE}`",
    ),
    Spec(
        "postgres_exporter_image", "GLITCHTIP_KIT_POSTGRES_EXPORTER_IMAGE", parse_image,
        _const(majors.POSTGRES_EXPORTER_IMAGE), "Prometheus exporter of Postgres.",
        default_text=f"`{majors.POSTGRES_EXPORTER_IMAGE}`",
    ),
    Spec(
        "valkey_exporter_image", "GLITCHTIP_KIT_VALKEY_EXPORTER_IMAGE", parse_image,
        _const(majors.VALKEY_EXPORTER_IMAGE), "Prometheus exporter of Valkey (redis_exporter).",
        default_text=f"`{majors.VALKEY_EXPORTER_IMAGE}`",
    ),
    Spec(
        "prometheus_port", "GLITCHTIP_KIT_PROMETHEUS_PORT", int_between(1, 65535, "port number"),
        _const(9090), "Host port Prometheus publishes on (on bind_address).",
        default_text="9090",
    ),
    Spec(
        "grafana_port", "GLITCHTIP_KIT_GRAFANA_PORT", int_between(1, 65535, "port number"),
        _const(3000), "Host port Grafana publishes on (on bind_address).", default_text="3000",
    ),
    Spec(
        "prometheus_retention", "GLITCHTIP_KIT_PROMETHEUS_RETENTION", parse_retention,
        _const("15d"), "How long Prometheus keeps samples (a Prometheus duration, 2h or more).",
        default_text="15d",
    ),
    Spec(
        "error_budgets", "GLITCHTIP_KIT_ERROR_BUDGETS", parse_error_budgets,
        lambda r: {"default": dict(DEFAULT_BUDGET)},
        "Errors each project may report per window, by project slug or `default`; only in "
        "glitchtip.yaml, e.g. `default: {max_errors: 200, per: 1d}`.",
        default_text="`default: {max_errors: 200, per: 1d}`", file_only=True,
    ),
)  # fmt: skip

SPEC_BY_NAME: dict[str, Spec] = {spec.name: spec for spec in SPECS}

# Settings whose URL may hold a password: masked when shown, refused in glitchtip.yaml with one.
URL_WITH_PASSWORD = ("email_url", "database_url", "valkey_url")
# Settings that are secrets themselves: never shown, never accepted from glitchtip.yaml.
SECRET_SETTINGS = ("uploads_secret_access_key", "uploads_access_key_id")


@dataclass(frozen=True)
class Settings:
    """The resolved, validated settings of one deployment directory."""

    directory: Path
    glitchtip_major: int
    glitchtip_domain: str
    bind_address: str
    http_port: int
    glitchtip_image: str
    postgres_image: str
    valkey_image: str
    postgres_version: int
    postgres_data_path: str
    partman_image: str
    default_from_email: str
    email_url: str
    enable_user_registration: bool
    enable_organization_creation: bool
    retention_days: int
    worker_pool: str
    worker_concurrency: int
    worker_prefetch: int
    web_concurrency: int
    db_pool_max_size: int
    postgres_max_connections: int
    postgres_shared_buffers_mb: int
    postgres_effective_cache_size_mb: int
    postgres_maintenance_work_mem_mb: int
    advanced_partitioning: bool
    admin_email: str
    organization: str
    project: str
    platform: str
    compose_project_name: str
    locust_image: str
    locust_port: int
    load_project: str
    profile: str = "standard"
    metrics: bool = False
    prometheus_image: str = majors.PROMETHEUS_IMAGE
    grafana_image: str = majors.GRAFANA_IMAGE
    postgres_exporter_image: str = majors.POSTGRES_EXPORTER_IMAGE
    valkey_exporter_image: str = majors.VALKEY_EXPORTER_IMAGE
    prometheus_port: int = 9090
    grafana_port: int = 3000
    prometheus_retention: str = "15d"
    proxy: str = "auto"
    caddy_image: str = majors.CADDY_IMAGE
    acme_email: str = ""
    proxy_http_port: int = 80
    proxy_https_port: int = 443
    proxy_max_body_mb: int = 40
    proxy_subnet: str = "10.203.0.0/29"
    error_budgets: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {"default": dict(DEFAULT_BUDGET)}
    )
    # Container memory limits (provision/limits.py); defaults only for hand-built Settings.
    web_memory_limit_mb: int = 1024
    worker_memory_limit_mb: int = 1024
    postgres_memory_limit_mb: int = 1024
    valkey_memory_limit_mb: int = 256
    target: str = "compose"
    swarm_publish_mode: str = "ingress"
    web_replicas: int = 1
    worker_replicas: int = 1
    database_url: str = ""
    database_sslmode: str = ""
    valkey_url: str = ""
    uploads_bucket: str = ""
    uploads_endpoint_url: str = ""
    uploads_region: str = ""
    uploads_access_key_id: str = ""
    uploads_secret_access_key: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def major(self) -> majors.Major:
        """The `majors.MAJORS` row of the chosen GlitchTip major."""
        return majors.MAJORS[self.glitchtip_major]

    @property
    def proxy_enabled(self) -> bool:
        """Whether the Caddy front door runs (`proxy`, and for `auto` the public URL)."""
        host = urlsplit(self.glitchtip_domain).hostname or ""
        return proxy_enabled(self.proxy, self.glitchtip_domain, host)

    @property
    def internal_url(self) -> str:
        """Where the kit reaches GlitchTip from this host: the published web port, or with the
        proxy its plain-HTTP door for this host only (127.0.0.1:http_port)."""
        if self.proxy_enabled:
            return f"http://127.0.0.1:{self.http_port}"
        address = self.bind_address
        if ipaddress.ip_address(address).is_unspecified:
            address = "127.0.0.1"
        elif ":" in address:
            address = f"[{address}]"
        return f"http://{address}:{self.http_port}"

    @property
    def settings_path(self) -> Path:
        return self.directory / SETTINGS_FILE

    @property
    def env_path(self) -> Path:
        return self.directory / ENV_FILE

    def value(self, name: str) -> Any:
        """The value of setting `name`."""
        return getattr(self, name)

    def display_value(self, name: str) -> Any:
        """The value as shown to the operator (passwords in URLs masked, secrets masked)."""
        value = getattr(self, name)
        if name in SECRET_SETTINGS:
            return MASK if value else ""
        return mask_url_password(value) if name in URL_WITH_PASSWORD else value

    @property
    def external_database(self) -> bool:
        """Postgres is an existing server (`database_url`), not the bundled service."""
        return bool(self.database_url)

    @property
    def external_valkey(self) -> bool:
        """Valkey is an existing server (`valkey_url`), not the bundled service."""
        return bool(self.valkey_url)

    @property
    def s3_uploads(self) -> bool:
        """Uploads go to an S3 bucket, not the uploads volume."""
        return bool(self.uploads_bucket)

    @property
    def database_url_suffix(self) -> str:
        """What compose.yml appends to `${DATABASE_URL}`: `database_sslmode` as libpq's query
        parameter (not a secret, so it may be written into the rendered file)."""
        if not self.database_url or not self.database_sslmode:
            return ""
        joiner = "&" if urlsplit(self.database_url).query else "?"
        return f"{joiner}sslmode={self.database_sslmode}"

    @property
    def effective_database_url(self) -> str:
        """The URL GlitchTip receives: `database_url` plus `database_url_suffix`."""
        return self.database_url + self.database_url_suffix

    def external_services(self) -> dict[str, str]:
        """service -> where it is: "bundled" or the masked address of the external one."""
        return {
            "postgres": mask_url_password(self.database_url) if self.database_url else "bundled",
            "valkey": mask_url_password(self.valkey_url) if self.valkey_url else "bundled",
            "uploads": (
                f"s3://{self.uploads_bucket}"
                + (f" at {self.uploads_endpoint_url}" if self.uploads_endpoint_url else "")
                if self.uploads_bucket
                else "volume"
            ),
        }


# --- loading ---


def _key_text(key: object) -> str:
    """A setting name as written in a message: bare when it is short and printable."""
    text = str(key)
    return text if len(text) <= MAX_SHOWN and text.isprintable() else shown(text)


def _suggest(key: str) -> str:
    for spec in SPECS:
        if key.upper() == spec.env:
            return f"did you mean {spec.name}? (glitchtip.yaml uses setting names)"
    close = difflib.get_close_matches(key, list(SPEC_BY_NAME), n=1)
    if close:
        return f"did you mean {close[0]}?"
    return "see the settings reference in README.md or `provision config`"


MAX_SETTINGS_BYTES = 256 * 1024


# Settings whose value in glitchtip.yaml is a mapping, and how deep it may nest below the
# setting (error_budgets: project -> {max_errors, per}).
MAPPING_DEPTH: dict[str, int] = {"error_budgets": 2}


def _check_yaml_shape(text: str, path: Path) -> None:
    """Refuse, from the YAML event stream (no objects built, no recursion), what a file of
    settings never needs and a hostile one uses: anchors and aliases (an "alias bomb" expands a
    few lines into gigabytes), lists anywhere, mappings except under the settings of
    `MAPPING_DEPTH` and no deeper than it says (deep nesting exhausts the stack), more than one
    document, and a key written twice in one mapping (YAML keeps the last one silently)."""
    import yaml

    name = path.name
    documents = 0
    # One frame per open mapping: [expecting a key?, last key, {key: line}, setting, depth].
    stack: list[list[Any]] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise SettingsError(
                f"{name}: line {line} uses a YAML anchor or alias (& or *)",
                "write each setting's value out in full",
            )
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SettingsError(
                    f"{name}: line {line} starts a second YAML document",
                    f"keep one 'setting: value' per line in {path}, without '---'",
                )
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if not stack:
                if isinstance(event, yaml.SequenceStartEvent):
                    raise SettingsError(
                        f"{name}: is not a mapping of settings",
                        "write one 'setting: value' per line",
                    )
                stack.append([True, "", {}, "", 0])
                continue
            frame = stack[-1]
            setting = frame[3] or frame[1]
            allowed = MAPPING_DEPTH.get(setting, 0)
            if frame[0] or isinstance(event, yaml.SequenceStartEvent) or frame[4] >= allowed:
                what = f"{frame[1]}: its value" if not frame[0] else "a key"
                fix = "give each setting a single value ('setting: value')"
                if setting in MAPPING_DEPTH:
                    fix = (
                        "write budgets as `error_budgets:` then "
                        "`  <project>: {max_errors: 200, per: 1d}`"
                    )
                raise SettingsError(f"{name}: line {line}: {what} is a list or mapping", fix)
            frame[0] = True  # the nested mapping is this key's value
            stack.append([True, "", {}, setting, frame[4] + 1])
        elif isinstance(event, yaml.MappingEndEvent):
            stack.pop()
        elif isinstance(event, yaml.ScalarEvent) and stack:
            frame = stack[-1]
            if frame[0]:
                key = event.value
                if key in frame[2]:
                    inside = f"{frame[3]}: " if frame[3] else ""
                    raise SettingsError(
                        f"{name}: {inside}{shown(key)} is set twice "
                        f"(lines {frame[2][key]} and {line})",
                        "delete one of the two lines (YAML would silently keep the last)",
                    )
                frame[2][key] = line
                frame[1] = key
            frame[0] = not frame[0]


def read_settings_file(path: Path) -> dict[str, object]:
    """The mapping in glitchtip.yaml ({} if absent); unknown keys are refused.

    The file is read without blocking (a FIFO is refused, not waited on) and capped in size;
    its shape is checked before PyYAML builds anything (see `_check_yaml_shape`)."""
    import yaml

    from provision.fileio import read_text_file

    text = read_text_file(path, max_bytes=MAX_SETTINGS_BYTES, error=SettingsError)
    if text is None:
        return {}
    try:
        _check_yaml_shape(text, path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(
            f"{path.name}: not valid YAML{where}",
            f"fix the syntax of {path} (one 'setting: value' per line)",
        ) from None
    except (ValueError, RecursionError, OverflowError):
        # e.g. an integer of thousands of digits (int() refuses), or a pathological scalar
        raise SettingsError(
            f"{path.name}: a value cannot be read as a setting",
            f"check the values in {path}: whole numbers of a few digits, true/false, or text",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path.name}: is not a mapping of settings", "write one 'setting: value' per line"
        )
    for key in data:
        if not isinstance(key, str) or key not in SPEC_BY_NAME:
            raise SettingsError(
                f"{_key_text(key)}: unknown setting in {path.name}", _suggest(str(key)[:100])
            )
    return data


def load_settings(
    directory: Path,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve and validate every setting of the deployment in `directory`.

    `overrides` are command-line values keyed by setting name (None values are ignored);
    `environ` defaults to `os.environ`. Raises `SettingsError` on the first bad value.
    """
    directory = Path(directory)
    environ = os.environ if environ is None else environ
    options = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key in options:
        if key not in SPEC_BY_NAME:
            raise SettingsError(
                f"{_key_text(key)}: unknown setting given as an option", _suggest(key[:100])
            )
    file_values = read_settings_file(directory / SETTINGS_FILE)

    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        candidates: list[tuple[str, str, object]] = []
        if spec.name in options:
            candidates.append((SOURCE_OPTION, f"option {spec.name}", options[spec.name]))
        if environ.get(spec.env, "") != "":
            candidates.append(
                (SOURCE_ENVIRONMENT, f"environment variable {spec.env}", environ[spec.env])
            )
        if file_values.get(spec.name) is not None:
            candidates.append((SOURCE_FILE, SETTINGS_FILE, file_values[spec.name]))
        if spec.file_only and candidates and candidates[0][0] != SOURCE_FILE:
            raise SettingsError(
                f"{spec.name} (from {candidates[0][1]}): can only be set in {SETTINGS_FILE}",
                f"write it in {directory / SETTINGS_FILE} (see README.md, Metrics)",
            )
        if candidates:
            source, where, raw = candidates[0]
            try:
                value = spec.parse(raw)
            except Invalid as problem:
                raise SettingsError(
                    f"{spec.name} (from {where}): {problem.problem}", problem.fix
                ) from None
            if source == SOURCE_FILE and (
                (spec.name in SECRET_SETTINGS and value)
                or (spec.name in URL_WITH_PASSWORD and url_passwords(value))
            ):
                what = "is a secret" if spec.name in SECRET_SETTINGS else "holds a password"
                raise SettingsError(
                    f"{spec.name} (from {SETTINGS_FILE}): {what} in a file meant to be committed",
                    f"remove it from glitchtip.yaml and set {spec.env} in the environment or "
                    f"pass --set {spec.name}=...; the kit keeps it in .env (0600)",
                )
        elif spec.name in ENV_FILE_FALLBACK and (
            (stored := _from_env_file(directory, spec)) is not None
        ):
            # Kept in .env by an earlier render; the default stays labelled as the default.
            value = stored
            source = SOURCE_DEFAULT if stored == spec.default(resolved) else SOURCE_ENV_FILE
        else:
            source = SOURCE_DERIVED if spec.derived else SOURCE_DEFAULT
            value = spec.default(resolved)
        resolved[spec.name] = value
        sources[spec.name] = source

    settings = Settings(directory=directory, sources=sources, **resolved)
    check_combinations(settings)
    return settings


# Settings that an earlier render keeps in `.env` and that are read back from there when no
# option, variable or glitchtip.yaml sets them: the e-mail URL (it may hold a password) and the
# advanced-partitioning choice recorded at the first render (it cannot change afterwards).
ENV_FILE_FALLBACK: dict[str, str] = {
    "email_url": "EMAIL_URL",
    # External services: their URLs and keys may hold secrets, so .env is their home.
    "database_url": "DATABASE_URL",
    "database_sslmode": "GLITCHTIP_KIT_DATABASE_SSLMODE",
    "valkey_url": "VALKEY_URL",
    "uploads_bucket": "AWS_STORAGE_BUCKET_NAME",
    "uploads_endpoint_url": "AWS_S3_ENDPOINT_URL",
    "uploads_region": "AWS_DEFAULT_REGION",
    "uploads_access_key_id": "AWS_ACCESS_KEY_ID",
    "uploads_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "advanced_partitioning": "GLITCHTIP_KIT_ADVANCED_PARTITIONING",
    # `up --metrics` / `down --only-metrics` record the choice; every render writes it back.
    "metrics": "GLITCHTIP_KIT_METRICS",
}

# The settings that identify a running deployment. When one was given only for one run (an
# option or an environment variable), render records it in `.env` so that later commands without
# it (`down`, `status`, the next `up`) still address the same stack instead of silently falling
# back to the default: another Compose project, another port, or another GlitchTip major (an
# unintended upgrade). glitchtip.yaml stays the source of truth: values it sets are not recorded.
RECORDED_WHEN_GIVEN: dict[str, str] = {
    "glitchtip_major": "GLITCHTIP_KIT_MAJOR",
    "compose_project_name": "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME",
    "bind_address": "GLITCHTIP_KIT_BIND_ADDRESS",
    "http_port": "GLITCHTIP_KIT_HTTP_PORT",
    "glitchtip_domain": "GLITCHTIP_DOMAIN",
    "prometheus_port": "GLITCHTIP_KIT_PROMETHEUS_PORT",
    "grafana_port": "GLITCHTIP_KIT_GRAFANA_PORT",
    # Which services exist: `down`, `status` and the next `up` must see the same set.
    "profile": "GLITCHTIP_KIT_PROFILE",
    "target": "GLITCHTIP_KIT_TARGET",
    "web_replicas": "GLITCHTIP_KIT_WEB_REPLICAS",
    "worker_replicas": "GLITCHTIP_KIT_WORKER_REPLICAS",
}
ENV_FILE_FALLBACK.update(RECORDED_WHEN_GIVEN)


def recorded_values(settings: Settings) -> dict[str, str]:
    """The `.env` keys of `RECORDED_WHEN_GIVEN`: the value when it was given for this run or
    read back from `.env`, else empty (a default or glitchtip.yaml value needs no record)."""
    values = {}
    for name, key in RECORDED_WHEN_GIVEN.items():
        source = settings.sources.get(name)
        given = source in (SOURCE_OPTION, SOURCE_ENVIRONMENT, SOURCE_ENV_FILE)
        values[key] = str(getattr(settings, name)) if given else ""
    return values


def _from_env_file(directory: Path, spec: Spec) -> Any:
    from provision.envfile import read_env_file

    key = ENV_FILE_FALLBACK[spec.name]
    stored = read_env_file(directory / ENV_FILE).get(key)
    if not stored:
        return None
    try:
        return spec.parse(stored)
    except Invalid as problem:
        raise SettingsError(
            f"{spec.name} (from .env {key}): {problem.problem}", problem.fix
        ) from None


def _where(settings: Settings, name: str) -> str:
    source = settings.sources.get(name, SOURCE_DEFAULT)
    spec = SPEC_BY_NAME[name]
    return {
        SOURCE_OPTION: f"option {name}",
        SOURCE_ENVIRONMENT: f"environment variable {spec.env}",
        SOURCE_FILE: SETTINGS_FILE,
        SOURCE_ENV_FILE: ".env",
    }.get(source, source)


def check_combinations(settings: Settings) -> None:
    """Refuse combinations of valid values that cannot work together, with the reason."""
    major = settings.major
    if settings.advanced_partitioning and not major.supports_partman:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): "
            f"GlitchTip {major.number} has no pg_partman support (it manages partitions itself)",
            "set advanced_partitioning: false, or glitchtip_major: 5",
        )
    check_profile(settings)
    check_tuning(settings)
    limits.check_limits(settings)
    check_external(settings)
    tagged = image_tag_major(settings.glitchtip_image)
    if tagged is not None and tagged in majors.MAJORS and tagged != major.number:
        raise SettingsError(
            f"glitchtip_image (from {_where(settings, 'glitchtip_image')}): tag "
            f"{settings.glitchtip_image!r} is GlitchTip {tagged}, but glitchtip_major is "
            f"{major.number}",
            f"set glitchtip_major: {tagged}, or use a GlitchTip {major.number} image",
        )
    version = settings.postgres_version
    if version < majors.MINIMUM_POSTGRES:
        raise SettingsError(
            f"postgres_image (from {_where(settings, 'postgres_image')}): Postgres {version} is "
            f"older than {majors.MINIMUM_POSTGRES}, which GlitchTip requires",
            f"use Postgres {majors.MINIMUM_POSTGRES} or newer",
        )
    path = settings.postgres_data_path
    if version >= majors.POSTGRES_NEW_LAYOUT and path == "/var/lib/postgresql/data":
        raise SettingsError(
            f"postgres_data_path (from {_where(settings, 'postgres_data_path')}): Postgres "
            f"{version} keeps its data under /var/lib/postgresql/<version>; a volume at "
            "/var/lib/postgresql/data is refused by the image",
            "mount it at /var/lib/postgresql (remove postgres_data_path to get the default)",
        )
    if version < majors.POSTGRES_NEW_LAYOUT and path == "/var/lib/postgresql":
        raise SettingsError(
            f"postgres_data_path (from {_where(settings, 'postgres_data_path')}): Postgres "
            f"{version} writes to /var/lib/postgresql/data, an anonymous volume would hide the "
            "data from the named volume",
            "mount it at /var/lib/postgresql/data (remove postgres_data_path to get the default)",
        )
    check_proxy(settings)
    if settings.metrics:
        ports = {"http_port": settings.http_port}
        for name in ("prometheus_port", "grafana_port"):
            port = getattr(settings, name)
            clash = next((other for other, used in ports.items() if used == port), None)
            if clash:
                raise SettingsError(
                    f"{name} (from {_where(settings, name)}): port {port} is also {clash}",
                    f"give {name} a port of its own on {settings.bind_address}",
                )
            ports[name] = port
    partman_version = image_tag_major(settings.partman_image)
    if partman_version is not None and partman_version != version:
        raise SettingsError(
            f"partman_image (from {_where(settings, 'partman_image')}): Postgres "
            f"{partman_version} differs from postgres_image's {version}; the override could not "
            "read the data volume",
            f"use a pg_partman image of Postgres {version}",
        )


def check_profile(settings: Settings) -> None:
    """Refuse what the all-in-one profile cannot run: the metrics stack (its Valkey exporter
    and worker panels assume the standard services, and Prometheus with Grafana would use more
    memory than minimal saves) and pg_partman (its override configures the worker service)."""
    if settings.profile != "minimal":
        return
    where = _where(settings, "profile")
    if settings.metrics:
        raise SettingsError(
            f"metrics (from {_where(settings, 'metrics')}): profile minimal (from {where}) runs "
            "without the metrics stack (its exporters expect the standard services, and "
            "Prometheus and Grafana need more memory than minimal saves)",
            "stop the metrics first (`provision down --only-metrics`), or use profile: standard",
        )
    if settings.advanced_partitioning:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): profile "
            f"minimal (from {where}) has no separate worker for pg_partman's override",
            "use profile: standard with advanced partitioning",
        )


def check_proxy(settings: Settings) -> None:
    """Refuse a TLS proxy for an http:// URL, and proxy ports that clash with the kit's door."""
    if settings.proxy == "caddy" and not settings.glitchtip_domain.startswith("https://"):
        raise SettingsError(
            f"proxy (from {_where(settings, 'proxy')}): caddy serves HTTPS, but "
            f"glitchtip_domain is {settings.glitchtip_domain}",
            "set glitchtip_domain to the https:// URL users open, or proxy: none",
        )
    if not settings.proxy_enabled:
        return
    ports = {"http_port": settings.http_port}
    for name in ("proxy_http_port", "proxy_https_port"):
        port = getattr(settings, name)
        clash = next((other for other, used in ports.items() if used == port), None)
        if clash:
            raise SettingsError(
                f"{name} (from {_where(settings, name)}): port {port} is also {clash}",
                f"give {name} a port of its own",
            )
        ports[name] = port


def check_external(settings: Settings) -> None:
    """Refuse external-service settings that cannot work together (see README, External
    services): pg_partman on a server the kit does not run, a TLS mode twice or without a
    server, a Valkey scheme GlitchTip 5 cannot read, half an S3 configuration."""
    from urllib.parse import parse_qs

    if settings.external_database and settings.advanced_partitioning:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): needs "
            "the bundled Postgres (compose.part.yml swaps in a pg_partman image)",
            "set advanced_partitioning: false, or leave database_url empty",
        )
    if settings.database_sslmode and not settings.external_database:
        raise SettingsError(
            f"database_sslmode (from {_where(settings, 'database_sslmode')}): applies to an "
            "external database only (the bundled one is reached on the stack's own network)",
            "set database_url, or remove database_sslmode",
        )
    query = urlsplit(settings.database_url).query if settings.external_database else ""
    if settings.database_sslmode and "sslmode" in parse_qs(query):
        raise SettingsError(
            f"database_sslmode (from {_where(settings, 'database_sslmode')}): database_url "
            "already sets sslmode",
            "keep one of them",
        )
    scheme = settings.valkey_url.partition("://")[0].lower()
    if (
        settings.external_valkey
        and settings.glitchtip_major == 5
        and scheme not in VALKEY_SCHEMES_5
    ):
        raise SettingsError(
            f"valkey_url (from {_where(settings, 'valkey_url')}): GlitchTip 5 (Celery, "
            f"redis-py) does not read {scheme}:// URLs",
            "use redis:// (or rediss:// for TLS)",
        )
    s3_only = (
        "uploads_endpoint_url",
        "uploads_region",
        "uploads_access_key_id",
        "uploads_secret_access_key",
    )
    if not settings.s3_uploads:
        for name in s3_only:
            if getattr(settings, name):
                raise SettingsError(
                    f"{name} (from {_where(settings, name)}): no uploads_bucket is set",
                    "set uploads_bucket, or remove it",
                )
    key_id, secret = settings.uploads_access_key_id, settings.uploads_secret_access_key
    if bool(key_id) != bool(secret):
        missing = "uploads_secret_access_key" if key_id else "uploads_access_key_id"
        raise SettingsError(
            f"{missing}: the bucket's access key id and secret access key go together",
            "set both (uploads_access_key_id and uploads_secret_access_key), or neither to use "
            "the instance's role",
        )


def check_tuning(settings: Settings) -> None:
    """Refuse worker and database sizes that cannot work together: tasks waiting for a pooled
    connection fail after 30 s, and pools that do not fit in max_connections fail under load."""
    major = settings.major
    slots = worker_db_slots(major, settings.worker_pool, settings.worker_concurrency)
    if slots > settings.db_pool_max_size:
        raise SettingsError(
            f"db_pool_max_size (from {_where(settings, 'db_pool_max_size')}): "
            f"{settings.db_pool_max_size} connections per process, but the worker runs {slots} "
            "slots that each need one",
            f"set db_pool_max_size to at least {slots}, or lower worker_concurrency",
        )
    needed = connections_needed(
        major,
        settings.worker_pool,
        settings.worker_concurrency,
        settings.web_concurrency,
        settings.db_pool_max_size,
    )
    if needed > settings.postgres_max_connections:
        raise SettingsError(
            f"postgres_max_connections (from {_where(settings, 'postgres_max_connections')}): "
            f"{settings.postgres_max_connections}, but the web and worker pools may open "
            f"{needed} (including {RESERVED_CONNECTIONS} reserved)",
            f"set postgres_max_connections to at least {needed}, or lower db_pool_max_size, "
            "web_concurrency or worker_concurrency",
        )
    if major.worker_prefetch_env is not None and settings.worker_pool != "solo":
        window = settings.worker_concurrency * settings.worker_prefetch
        if settings.worker_prefetch != 0 and window < major.ingest_batch_size:
            raise SettingsError(
                f"worker_prefetch (from {_where(settings, 'worker_prefetch')}): a window of "
                f"{settings.worker_concurrency} x {settings.worker_prefetch} = {window} "
                f"messages never fills a batch of {major.ingest_batch_size}: the worker would "
                f"store {window} events per 2 s",
                f"set worker_prefetch to at least "
                f"{-(-major.ingest_batch_size // settings.worker_concurrency)} (or 0: unlimited)",
            )


# --- glitchtip.yaml for `provision init`, and the report for `provision config` ---

_ALWAYS_WRITTEN = ("glitchtip_major",)


def _yaml_scalar(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def initial_settings_text(settings: Settings) -> str:
    """A commented glitchtip.yaml: the settings given as options (and the major and public URL)
    active, every other setting shown commented out with its default."""
    lines = [
        "# Settings of this GlitchTip deployment (safe to commit: no secrets here).",
        "# Precedence: command-line option > environment variable > this file > default.",
        "# `provision config` shows the effective values; `provision render --check` applies them.",
        "",
    ]
    for spec in SPECS:
        value = settings.value(spec.name)
        lines.append(f"# {spec.help} [{spec.env}]")
        active = spec.name in _ALWAYS_WRITTEN or settings.sources[spec.name] == SOURCE_OPTION
        if spec.name in URL_WITH_PASSWORD and url_passwords(value):
            active = False
            value = mask_url_password(value)
        if spec.name in SECRET_SETTINGS:
            active = False
            value = ""
        if active:
            lines.append(f"{spec.name}: {_yaml_scalar(value)}")
        elif spec.derived:
            lines.append(f"# {spec.name}: {_yaml_scalar(value)}  # derived: {spec.default_text}")
        else:
            lines.append(f"# {spec.name}: {_yaml_scalar(value)}")
        lines.append("")
    return "\n".join(lines)


def write_initial_settings(settings: Settings) -> bool:
    """Write glitchtip.yaml unless it exists; True when it was created."""
    from provision.fileio import write_atomic

    if settings.settings_path.exists():
        return False
    write_atomic(settings.settings_path, initial_settings_text(settings))
    return True


def describe(settings: Settings) -> dict[str, Any]:
    """Every setting with its value, source and variable, plus which secrets are set (masked)."""
    from provision.masking import mask
    from provision.secrets import SECRET_KEYS, URL_SECRET_KEYS, read_secrets

    env = read_secrets(settings.env_path)
    return {
        "directory": str(settings.directory),
        "settings": {
            spec.name: {
                "value": settings.display_value(spec.name),
                "source": settings.sources[spec.name],
                "env": spec.env,
            }
            for spec in SPECS
        },
        "secrets": {key: mask(env.get(key)) for key in SECRET_KEYS if key not in URL_SECRET_KEYS},
        "services": settings.external_services(),
    }
