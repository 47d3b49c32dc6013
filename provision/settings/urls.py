"""URL settings whose user name or password would break the URL are refused here; finding and
masking the passwords inside URLs lives in `provision.masking` (the secrets need it too, and
settings import the secrets' names: one leaf module keeps that without a circle)."""

from __future__ import annotations

from provision.masking import mask_url_password
from provision.settings.base import Invalid, shown


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
