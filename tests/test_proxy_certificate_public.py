"""`provision status`'s certificate of a public name (not Caddy's internal CA), read whole.

The other certificate tests serve Caddy's internal-CA certificates only, whose warning
threshold is 0 days; a public name's certificate is verified with the kit's process-wide TLS
context and is unhealthy from `WARN_DAYS` (14) days before it expires, as `provision verify`
says. Here a local TLS server serves a self-signed certificate made by `openssl` (as
`tests/test_ops_verify.py` does) for the public name, and the kit's TLS context trusts it the way
a CA bundle trusts a public CA's root. `now` is set from the certificate's own notAfter (read by
`openssl x509`, not by the code under test), so every figure is exact.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from provision.proxy.certificate import certificate_line, certificate_status
from provision.settings import load_settings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

HOST = "gt.acme.io"
DAY = 86400


def make_certificate(tmp_path: Path, subject: str, days: int) -> tuple[Path, Path, float]:
    """A self-signed certificate for HOST: key, certificate and its notAfter in epoch seconds."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", str(days), "-subj", subject,
         "-addext", f"subjectAltName=DNS:{HOST}"],
        check=True, capture_output=True,
    )  # fmt: skip
    end = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", cert],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return key, cert, ssl.cert_time_to_seconds(end.removeprefix("notAfter="))


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start a TLS server for a certificate of `subject`; returns (settings, notAfter, cert)."""
    from provision.api import client

    servers: list[http.server.ThreadingHTTPServer] = []

    def start(subject: str, days: int = 30, bind_address: str = "127.0.0.1", trusted=True):
        folder = tmp_path / f"c{len(servers)}"
        folder.mkdir()
        key, cert, not_after = make_certificate(folder, subject, days)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        if trusted:
            monkeypatch.setattr(client, "_TLS", [ssl.create_default_context(cafile=str(cert))])
        else:
            monkeypatch.setattr(client, "_TLS", [ssl.create_default_context()])
        settings = load_settings(
            folder,
            {
                "proxy": "caddy",
                "glitchtip_domain": f"https://{HOST}",
                "proxy_https_port": str(server.server_address[1]),
                "bind_address": bind_address,
            },
            environ={},
        )
        return settings, not_after, server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def iso(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_a_public_certificate_is_unhealthy_from_fourteen_days_before_it_expires(serve) -> None:
    """Each side of the two bounds (14 days left, 0 days left), the whole answer and line; the
    issuer is the certificate's commonName."""
    settings, end, port = serve("/CN=Acme Test R11/O=Acme Trust", days=30)
    base = {"host": HOST, "port": port, "issuer": "Acme Test R11", "not_after": iso(end)}

    well = certificate_status(settings, now=end - 20 * DAY - 3600)
    assert well == {**base, "days_left": 20.0, "ok": True, "error": None}
    assert certificate_line(well) == (
        f"  certificate of {HOST} on port {port}: expires {iso(end)} (20.0 days), "
        "issued by Acme Test R11"
    )
    just_well = certificate_status(settings, now=end - 14 * DAY - 60)
    assert just_well == {**base, "days_left": 14.0, "ok": True, "error": None}

    at_bound = certificate_status(settings, now=end - 14 * DAY)
    assert at_bound == {
        **base, "days_left": 14.0, "ok": False, "error": "expires in 14.0 days: renew it"
    }  # fmt: skip
    soon = certificate_status(settings, now=end - 3 * DAY - 7200)
    assert soon == {**base, "days_left": 3.1, "ok": False, "error": "expires in 3.1 days: renew it"}
    assert certificate_line(soon) == (
        f"  certificate of {HOST} on port {port}: expires {iso(end)} (3.1 days), "
        "issued by Acme Test R11  expires in 3.1 days: renew it"
    )
    last_minute = certificate_status(settings, now=end - 60)
    assert last_minute == {
        **base, "days_left": 0.0, "ok": False, "error": "expires in 0.0 days: renew it"
    }  # fmt: skip
    at_end = certificate_status(settings, now=end)
    assert at_end == {**base, "days_left": 0.0, "ok": False, "error": "expired"}
    after = certificate_status(settings, now=end + 2 * DAY)
    assert after == {**base, "days_left": -2.0, "ok": False, "error": "expired"}


def test_an_issuer_without_a_common_name_is_named_by_its_organization(serve) -> None:
    """A proxy dialled on this host's loopback when it binds every interface."""
    settings, end, port = serve("/O=Acme Trust Services", days=60, bind_address="0.0.0.0")
    found = certificate_status(settings, now=end - 40 * DAY)
    assert found == {
        "host": HOST, "port": port, "issuer": "Acme Trust Services", "not_after": iso(end),
        "days_left": 40.0, "ok": True, "error": None,
    }  # fmt: skip


def test_a_certificate_no_public_ca_signs_does_not_verify_whole(serve) -> None:
    settings, _, port = serve("/CN=Acme Test R11", trusted=False)
    found = certificate_status(settings)
    assert found == {
        "host": HOST, "port": port, "issuer": None, "not_after": None, "days_left": None,
        "ok": False, "error": "does not verify: self-signed certificate",
    }  # fmt: skip
    assert certificate_line(found) == (
        f"  certificate of {HOST} on port {port}: cannot tell "
        "(does not verify: self-signed certificate)"
    )
