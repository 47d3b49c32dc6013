"""The Caddyfile's directives as rendered for a public name and a private one, read whole (its
comments are the template's prose and left out), and the digest label that makes Compose
recreate the proxy when the file changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from provision.proxy import caddyfile
from provision.render import render_files
from provision.settings import load_settings


def directives(tmp_path: Path, **values: str) -> tuple[list[str], str, dict]:
    settings = load_settings(tmp_path, {"proxy": "caddy", **values}, environ={})
    files = render_files(settings, {})
    text = files[caddyfile.CADDYFILE]
    lines = [
        line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    return lines, text, yaml.safe_load(files["compose.yml"])


GLOBAL = ["{", "\tadmin off"]
SERVERS = ["\thttp_port 80", "\thttps_port 443", "\tservers {", "\t\tprotocols h1 h2", "\t}", "}"]


def shared(max_mb: int) -> list[str]:
    return [
        "(glitchtip) {",
        "\trequest_body {",
        f"\t\tmax_size {max_mb}MiB",
        "\t}",
        "\t@internal path /metrics /metrics/* /api/0/observability /api/0/observability/*",
        '\trespond @internal "Not Found" 404',
        "\treverse_proxy web:8000",
        "}",
    ]


DOOR = ["http://:8080 {", "\timport glitchtip", "}"]


def test_a_public_name_on_its_own_port_gets_acme_and_a_redirect_keeping_the_port(tmp_path):
    lines, text, compose = directives(
        tmp_path,
        glitchtip_domain="https://gt.acme.io:8443",
        acme_email="ops@acme.io",
        proxy_max_body_mb="25",
    )
    assert lines == [
        *GLOBAL, "\temail ops@acme.io", *SERVERS,
        *shared(25),
        "https://gt.acme.io {",
        '\theader Strict-Transport-Security "max-age=31536000"',
        "\timport glitchtip",
        "}",
        "http://gt.acme.io {",
        "\tredir https://gt.acme.io:8443{uri} 308",
        "}",
        *DOOR,
    ]  # fmt: skip
    label = compose["services"]["proxy"]["labels"]["glitchtip-kit.caddyfile-digest"]
    assert label == hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] == caddyfile.digest(text)


def test_a_private_name_gets_the_internal_ca_and_no_acme_email(tmp_path):
    lines, _, _ = directives(tmp_path, glitchtip_domain="https://glitchtip.test")
    assert lines == [
        *GLOBAL, "\tskip_install_trust", *SERVERS,
        *shared(40),
        "https://glitchtip.test {",
        "\ttls internal",
        '\theader Strict-Transport-Security "max-age=31536000"',
        "\timport glitchtip",
        "}",
        "http://glitchtip.test {",
        "\tredir https://glitchtip.test{uri} 308",
        "}",
        *DOOR,
    ]  # fmt: skip


def test_the_values_a_local_caddy_run_overrides(tmp_path):
    """The kit's own Caddy tests run the same file on free ports against their own upstream."""
    settings = load_settings(
        tmp_path, {"proxy": "caddy", "glitchtip_domain": "https://[::1]:8443"}, environ={}
    )
    assert caddyfile.caddyfile_values(
        settings, upstream="127.0.0.1:9", http_port=1080, https_port=1443, internal_port=1081
    ) == {
        "host": "[::1]", "netloc": "[::1]:8443", "internal_ca": True, "acme_email": "",
        "max_body_mb": 40, "upstream": "127.0.0.1:9", "http_port": 1080, "https_port": 1443,
        "internal_port": 1081,
    }  # fmt: skip
