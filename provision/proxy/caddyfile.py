"""The proxy's Caddyfile, rendered from `templates/Caddyfile.j2`.

Pure: settings in, text out. The listening ports and the upstream default to the container's
(80, 443, the kit's door on 8080, `web:<port>`); tests pass their own to run the same file with
a local Caddy binary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from provision.proxy.names import is_local_host

CADDYFILE = "proxy/Caddyfile"
# Inside the proxy container.
HTTP_PORT = 80
HTTPS_PORT = 443
INTERNAL_PORT = 8080
CONFIG_PATH = "/etc/caddy/Caddyfile"
DATA_PATH = "/data"
# Where Caddy keeps its internal CA's root certificate ($XDG_DATA_HOME/caddy/...).
ROOT_CERT_PATH = f"{DATA_PATH}/caddy/pki/authorities/local/root.crt"


def uses_internal_ca(settings: Any) -> bool:
    """Whether the certificate comes from Caddy's internal CA (a private or local name)."""
    return is_local_host(urlsplit(settings.glitchtip_domain).hostname or "")


def caddyfile_values(
    settings: Any,
    upstream: str | None = None,
    http_port: int = HTTP_PORT,
    https_port: int = HTTPS_PORT,
    internal_port: int = INTERNAL_PORT,
) -> dict[str, Any]:
    """The template's values for `settings`."""
    parts = urlsplit(settings.glitchtip_domain)
    host = parts.hostname or "localhost"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return {
        "host": host,
        "netloc": parts.netloc,
        "internal_ca": uses_internal_ca(settings),
        "acme_email": settings.acme_email,
        "max_body_mb": settings.proxy_max_body_mb,
        "upstream": upstream or f"web:{settings.major.web_port}",
        "http_port": http_port,
        "https_port": https_port,
        "internal_port": internal_port,
    }


def render_caddyfile(
    settings: Any, render: Callable[[str, dict[str, Any]], str], **overrides: Any
) -> str:
    """The Caddyfile text; `render(template, values)` is the kit's Jinja2 environment."""
    return render("Caddyfile.j2", caddyfile_values(settings, **overrides))


def digest(text: str) -> str:
    """A short digest of the Caddyfile, a label on the proxy service: Compose recreates the
    container when it changes (a bind-mounted file's content is invisible to Compose)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
