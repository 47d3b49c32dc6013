"""Parsers of the e-mail settings: addresses (internationalized domains in punycode), the
sender with an optional display name, and the e-mail URL GlitchTip sends with."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from provision.masking import mask_url_password
from provision.settings.base import Invalid, shown
from provision.settings.parsers import ascii_host
from provision.settings.urls import refuse_breaking_userinfo

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
        # a Compose file or an e-mail header (surrogates are category Cs, which isprintable()
        # refuses with the other "Other" categories).
        if not name.isprintable():
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


def parse_email_url(raw: object) -> str:
    text = str(raw).strip()
    fix = "use e.g. smtp+tls://user:password@mail.example.com:587 or consolemail://"
    masked = mask_url_password(text)
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in EMAIL_SCHEMES:
        raise Invalid(f"{shown(masked)} is not an e-mail URL", fix)
    if re.search(r"[\s'\\]", text) or "\n" in text:
        raise Invalid(f"{shown(masked)} contains spaces, quotes or backslashes", fix)
    refuse_breaking_userinfo(text, "EMAIL_URL or --set email_url=...")
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
