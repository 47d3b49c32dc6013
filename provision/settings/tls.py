"""Parsers of the TLS front door's settings: the ACME account e-mail and the proxy's subnet."""

from __future__ import annotations

import ipaddress

from provision.settings.base import Invalid, shown
from provision.settings.mail import parse_email


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
