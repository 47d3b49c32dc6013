"""The general value parsers: raw value (str from options/environment, YAML scalar from the
file) -> value, or `Invalid` with the fix. Parsers of one capability live beside it (mail,
external, tls, metrics)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from provision import majors
from provision.masking import mask_url_password
from provision.settings.base import Invalid, shown
from provision.slugs import slugify

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


def parse_name(raw: object) -> str:
    text = str(raw).strip()
    if not 1 <= len(text) <= 64 or not text.isprintable() or re.search(r"[$'\"\\]", text):
        raise Invalid(
            f"{shown(text)} is not a usable name", "use 1-64 printable characters, no quotes"
        )
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
