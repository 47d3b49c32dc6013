"""Keep secrets out of everything the kit prints.

`mask()` turns a secret into a fixed-shape stand-in for display; `redact()` scrubs known secret
values from free text (a subprocess's output, an HTTP error body) before it is shown or logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"


def mask(value: str | None) -> str:
    """A display form of a secret that reveals nothing but whether it is set."""
    return MASK if value else "(unset)"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by the mask."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


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
