"""Django's ALLOWED_HOSTS check, as GlitchTip runs it on every request (the fake's API and the
stand-in's health and ingest paths alike)."""

from __future__ import annotations


def host_allowed(host_header: str | None, hosts: list[str]) -> bool:
    """Django's ALLOWED_HOSTS check: exact match, `.example.com` for subdomains, `*`."""
    if "*" in hosts:
        return True
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".")
    for pattern in hosts:
        pattern = pattern.lower()
        if pattern.startswith("."):
            if host == pattern[1:] or host.endswith(pattern):
                return True
        elif host == pattern:
            return True
    return False
