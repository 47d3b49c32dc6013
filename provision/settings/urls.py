"""Passwords inside URLs (userinfo and `password=` query values): found and masked, so a URL
setting can be shown, refused or written into a message without its secret."""

from __future__ import annotations

import re

from provision.masking import MASK
from provision.settings.base import Invalid, shown

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


def refuse_breaking_userinfo(text: str, where: str) -> None:
    """Refuse a user name or password holding '#', '?' or '/': urlsplit (and django-environ)
    would end the server part at it, cut the password and read the rest as a port.
    Percent-encoded, it reaches the server intact; `where` says where to write it so."""
    rest = text.partition("://")[2]
    userinfo = rest[: rest.rfind("@")] if "@" in rest else ""
    breaking = next((char for char in "#?/" if char in userinfo), None)
    if breaking:
        encoded = {"#": "%23", "?": "%3F", "/": "%2F"}[breaking]
        raise Invalid(
            f"{shown(mask_url_password(text))}: the user name or password contains "
            f"{breaking!r}, which ends the server part of a URL",
            f"percent-encode it ({breaking} as {encoded}) in {where}",
        )
