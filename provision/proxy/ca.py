"""The internal CA's root certificate, copied out of the proxy for clients and SDKs.

For a private or local name Caddy signs the site's certificate with its own CA, created in the
proxy's data volume on first start. Clients trust it through the exported root:
`certs/glitchtip-ca.crt` (Python SDK `ca_certs=`, `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`,
`curl --cacert`). The root is public (no private key); the file is 0644.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.errors import KitError
from provision.proxy.caddyfile import ROOT_CERT_PATH, uses_internal_ca

CA_FILE = "certs/glitchtip-ca.crt"
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"


def ca_path(settings: Any) -> Path:
    """Where the exported root goes (or is) for this deployment."""
    return Path(settings.directory) / CA_FILE


def exported_ca(settings: Any) -> Path | None:
    """The exported root when this deployment uses the internal CA and it has been exported."""
    if not (settings.proxy_enabled and uses_internal_ca(settings)):
        return None
    path = ca_path(settings)
    return path if path.is_file() else None


def check_pem(text: str) -> str:
    """`text` when it is exactly one PEM certificate Python's ssl module can read."""
    import ssl

    body = text.strip()
    if not (body.startswith(PEM_BEGIN) and body.endswith(PEM_END)) or body.count(PEM_BEGIN) != 1:
        raise ValueError("not one PEM certificate")
    ssl.PEM_cert_to_DER_cert(body)  # raises ValueError on a damaged body
    return body + "\n"


def read_root(compose: Any, attempts: int = 20, pause: float = 0.5, sleep=time.sleep) -> str:
    """The root certificate from the running proxy container (Caddy writes it right after it
    starts: retried for up to `attempts` x `pause` seconds)."""
    last = ""
    for attempt in range(attempts):
        result = compose.run("exec", "-T", "proxy", "cat", ROOT_CERT_PATH, timeout=60)
        if result.ok:
            try:
                return check_pem(result.stdout)
            except ValueError:
                last = "the file is not a PEM certificate"
        else:
            last = result.last_lines(2) or f"exit {result.returncode}"
        if attempt + 1 < attempts:
            sleep(pause)
    raise KitError(
        f"cannot read the proxy's CA root {ROOT_CERT_PATH} ({last})",
        "check that the proxy runs (`provision status`, `provision logs proxy`), then run "
        "`provision proxy-ca` again",
    )


def export_root(settings: Any, compose: Any, read: Callable[[Any], str] = read_root) -> dict:
    """Write the internal CA's root to certs/glitchtip-ca.crt (0644) when it changed.

    Returns {"path", "changed"}, or {"path": None, ...} when this deployment uses no internal CA
    (no proxy, or a public name with an ACME certificate: clients trust it already)."""
    from provision.fileio import PUBLIC_FILE_MODE, check_writable_target, write_atomic

    if not settings.proxy_enabled:
        return {"path": None, "changed": False, "why": "no TLS proxy (proxy: none)"}
    if not uses_internal_ca(settings):
        return {"path": None, "changed": False, "why": "public name: an ACME certificate"}
    pem = read(compose)
    path = ca_path(settings)
    directory = path.parent
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise KitError(
            f"{directory} is a symbolic link or not a directory",
            "the kit writes certs/ only into a directory of its own: move it away",
        )
    directory.mkdir(mode=0o755, exist_ok=True)
    check_writable_target(path)
    changed = write_atomic(path, pem, mode=PUBLIC_FILE_MODE)
    return {"path": str(path), "changed": changed, "why": "internal CA"}


def applies(ctx: Any) -> bool:
    """The `proxy-ca` step of `provision up` runs only with the proxy on an internal CA."""
    settings = ctx.load_settings()
    return settings.proxy_enabled and uses_internal_ca(settings)


def export_step(ctx: Any) -> Any:
    """The `proxy-ca` step: the internal CA root into certs/glitchtip-ca.crt."""
    from provision.steps import StepOutcome

    result = export_root(ctx.load_settings(), ctx.compose())
    return StepOutcome(detail=f"{CA_FILE} (trust it in clients)", changed=result["changed"])


def trust_exported_root(settings: Any) -> Path | None:
    """Add the exported internal CA root to the kit's TLS context, for this process only, so
    `provision verify` checks the public URL and its certificate as a client that trusts the
    root would. Public CAs stay trusted; None when there is no exported root."""
    root = exported_ca(settings)
    if root is not None:
        from provision.api.client import tls_context

        tls_context().load_verify_locations(cafile=str(root))
    return root
