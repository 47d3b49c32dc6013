"""What the operator asks of a load run, validated before anything starts.

Durations read like Locust's `--run-time` (`30s`, `2m`, `1h30m`, or bare seconds). The target
is refused unless it is the stack itself or this host, because a load test aimed at production
by a typo does real harm: anything else needs `--allow-remote-target`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from provision.errors import UsageError

MAX_DURATION_S = 24 * 3600
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """`30s`, `2m`, `1h30m` or `45` -> seconds (1 s to 24 h); UsageError otherwise."""
    value = str(text).strip().lower()
    example = "e.g. --duration 30s, 2m or 1h30m"
    if value.isdigit():
        seconds = int(value)
    else:
        match = _DURATION.fullmatch(value)
        if not value or match is None:
            raise UsageError(f"--duration {str(text)[:20]!r} is not a duration", example)
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not 1 <= seconds <= MAX_DURATION_S:
        raise UsageError(f"--duration {str(text)[:20]!r} is not between 1 s and 24 h", example)
    return seconds


@dataclass(frozen=True)
class Target:
    """Where Locust sends the load, as seen from the Locust containers."""

    url: str  # Locust's host: scheme://host[:port]
    host_header: str  # sent as Host; "" = the URL's own
    is_stack: bool  # the stack's own web service


def _is_this_host(hostname: str) -> bool:
    """True when every address `hostname` resolves to belongs to this machine (an address is
    ours exactly when a socket can bind to it)."""
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    if not infos:
        return False
    for family, _type, _proto, _name, address in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address[0], 0))
        except OSError:
            return False
    return True


def resolve_target(
    target: str | None,
    *,
    web_service_url: str,
    host_header: str,
    stack_hosts: tuple[str, ...],
    allow_remote: bool,
) -> Target:
    """The load's target: the stack's web service by default; another URL only when it is this
    host or a service of the stack's network, or when `allow_remote` says so."""
    if target is None or not target.strip():
        return Target(web_service_url, host_header, True)
    example = "e.g. --target http://web:8000 (or leave it out to load the stack)"
    try:
        parts = urlsplit(target.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError("--target is not a URL (host or port malformed)", example) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("--target must start with http:// or https:// and name a host", example)
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise UsageError("--target is only scheme://host[:port], no user, path or query", example)
    host = parts.hostname.lower()
    url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        raise UsageError(
            f"--target {host} would be the Locust container itself (the load runs in containers "
            "on the stack's network)",
            "leave --target out to load the stack's web service, or name this host by an "
            "address the containers can reach",
        )
    if host in stack_hosts:
        same_host = host_header if host == "web" else ""
        return Target(url, same_host, True)
    if allow_remote or _is_this_host(host):
        return Target(url, "", False)
    raise UsageError(
        f"--target {host} is neither this host nor a service of the stack",
        "load-testing another machine can take it down: add --allow-remote-target if it is "
        "yours and meant to be loaded",
    )
