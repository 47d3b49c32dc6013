"""The certificate the proxy serves, read from this host for `provision status`.

The TLS handshake goes to the proxy's published HTTPS port (bind_address, 127.0.0.1 when it
binds every interface) with the public name as SNI, so no DNS is needed. It is verified with the
kit's TLS context (public CAs) or, for the internal CA, the exported root only: a certificate
that does not verify is reported as such, with the reason.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from provision.proxy.ca import exported_ca
from provision.proxy.caddyfile import uses_internal_ca

WARN_DAYS = 14  # as `provision verify`: an ACME certificate expiring sooner is not healthy
# Caddy's internal CA issues 12-hour certificates and renews them itself at two thirds of their
# life: only an expired one is a problem.
INTERNAL_WARN_DAYS = 0.0


def _context(settings: Any) -> ssl.SSLContext | None:
    """The context to verify with; None when the internal CA's root is not exported yet."""
    if uses_internal_ca(settings):
        root = exported_ca(settings)
        return ssl.create_default_context(cafile=str(root)) if root else None
    from provision.api.client import tls_context

    return tls_context()


def _address(settings: Any) -> str:
    address = settings.bind_address
    return "127.0.0.1" if ipaddress.ip_address(address).is_unspecified else address


def certificate_status(settings: Any, now: float | None = None, timeout: float = 5.0) -> dict:
    """{"host", "port", "issuer", "not_after", "days_left", "ok", "error"} of the served
    certificate. `ok` is False when it does not verify or expires within WARN_DAYS."""
    host = urlsplit(settings.glitchtip_domain).hostname or ""
    port = settings.proxy_https_port
    found: dict[str, Any] = {"host": host, "port": port, "issuer": None, "not_after": None,
                             "days_left": None, "ok": False, "error": None}  # fmt: skip
    context = _context(settings)
    if context is None:
        found["error"] = "the internal CA's root is not exported yet (run `provision proxy-ca`)"
        return found
    try:
        with (
            socket.create_connection((_address(settings), port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        found["error"] = f"does not verify: {exc.verify_message or exc.reason}"
        return found
    except (OSError, ssl.SSLError) as exc:
        found["error"] = f"no TLS answer on {_address(settings)}:{port} ({exc.__class__.__name__})"
        return found
    expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    days = (expires - (time.time() if now is None else now)) / 86400
    warn = INTERNAL_WARN_DAYS if uses_internal_ca(settings) else WARN_DAYS
    issuer = dict(pair[0] for pair in cert.get("issuer", ()) if pair)
    found.update(
        issuer=issuer.get("commonName") or issuer.get("organizationName"),
        not_after=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
        days_left=round(days, 1),
        ok=days > warn,
    )
    if not found["ok"]:
        found["error"] = "expired" if days <= 0 else f"expires in {days:.1f} days: renew it"
    return found


def certificate_line(found: dict) -> str:
    """`certificate_status` for a person."""
    where = f"{found['host']} on port {found['port']}"
    if found["not_after"] is None:
        return f"  certificate of {where}: cannot tell ({found['error']})"
    line = (
        f"  certificate of {where}: expires {found['not_after']} "
        f"({found['days_left']:.1f} days), issued by {found['issuer']}"
    )
    return line + (f"  {found['error']}" if found["error"] else "")
