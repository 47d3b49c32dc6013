"""The proxy's place in the stack commands, with fake Compose and engine: the CA export
(`provision proxy-ca`, the `proxy-ca` step of `up`), status with the certificate, preflight's
ports."""

from __future__ import annotations

import dataclasses
import json
import ssl
from pathlib import Path

import pytest
from cli_run import run
from test_stack_steps import FakeCompose, FakeEngine, container, make_ctx, ok, run_preflight

from provision.errors import KitError
from provision.proxy import ca
from provision.proxy.caddyfile import ROOT_CERT_PATH
from provision.runtime.process import ProcessResult
from provision.stack import status

LOCAL = {"glitchtip_domain": "https://glitchtip.test", "proxy": "caddy"}
PUBLIC = {"glitchtip_domain": "https://glitchtip.acme.io"}


def a_pem() -> str:
    """A real certificate in PEM (any will do: the export checks the form, not the issuer)."""
    path = ssl.get_default_verify_paths().cafile
    if path is None:
        import certifi

        path = certifi.where()
    text = Path(path).read_text()
    start = text.index(ca.PEM_BEGIN)
    end = text.index(ca.PEM_END, start) + len(ca.PEM_END)
    return text[start:end] + "\n"


def test_export_writes_the_root_0644_and_only_when_it_changed(tmp_path: Path) -> None:
    compose = FakeCompose({"exec": ok(a_pem())})
    ctx = make_ctx(tmp_path, compose=compose, **LOCAL)
    assert ca.applies(ctx)
    first = ca.export_step(ctx)
    path = tmp_path / ca.CA_FILE
    assert first.changed is True
    assert path.read_text() == a_pem()
    assert path.stat().st_mode & 0o777 == 0o644
    assert compose.calls[0] == ("exec", "-T", "proxy", "cat", ROOT_CERT_PATH)
    assert ca.export_step(ctx).changed is False


def test_no_export_for_a_public_name_or_without_the_proxy(tmp_path: Path) -> None:
    compose = FakeCompose({"exec": ok(a_pem())})
    for values in (PUBLIC, {"glitchtip_domain": "https://glitchtip.test"}):
        ctx = make_ctx(tmp_path, compose=compose, **values)
        assert not ca.applies(ctx)
        assert ca.export_root(ctx.load_settings(), compose)["path"] is None
    assert compose.calls == [] and not (tmp_path / "certs").exists()


@pytest.mark.parametrize(
    "answer",
    [
        ProcessResult(("compose",), 1, "", 'service "proxy" is not running'),
        ok("<html>not a certificate</html>"),
        ok(a_pem().replace("M", "!", 3)),
    ],
)
def test_export_refuses_what_is_not_a_certificate(tmp_path: Path, answer) -> None:
    compose = FakeCompose({"exec": answer})
    ctx = make_ctx(tmp_path, compose=compose, **LOCAL)
    with pytest.raises(KitError, match="cannot read the proxy's CA root"):
        ca.export_root(
            ctx.load_settings(), compose, read=lambda c: ca.read_root(c, attempts=2, sleep=id)
        )
    assert not (tmp_path / ca.CA_FILE).exists()


def test_export_waits_for_caddy_to_create_the_root(tmp_path: Path) -> None:
    missing = ProcessResult(("compose",), 1, "", "cat: root.crt: No such file or directory")
    compose = FakeCompose({"exec": [missing, missing, ok(a_pem())]})
    pauses: list[float] = []
    assert ca.read_root(compose, attempts=5, pause=0.5, sleep=pauses.append) == a_pem()
    assert pauses == [0.5, 0.5]


def test_export_refuses_a_symlinked_certs_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deployment = tmp_path / "d"
    deployment.mkdir()
    (deployment / "certs").symlink_to(elsewhere)
    compose = FakeCompose({"exec": ok(a_pem())})
    ctx = make_ctx(deployment, compose=compose, **LOCAL)
    with pytest.raises(KitError, match="symbolic link"):
        ca.export_step(ctx)
    assert list(elsewhere.iterdir()) == []


def test_proxy_ca_command_without_a_proxy_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, "proxy-ca", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "path": None, "changed": False, "why": "no TLS proxy (proxy: none)"
    }  # fmt: skip


def test_status_shows_the_certificate_and_fails_when_it_does_not_verify(tmp_path: Path):
    engine = FakeEngine()
    engine.containers_list = [container("web"), container("proxy")]
    ctx = make_ctx(tmp_path, engine=engine, **LOCAL)
    good = {
        "host": "glitchtip.test", "port": 443, "issuer": "Caddy Local Authority",
        "not_after": "2026-11-27T00:00:00Z", "days_left": 0.4, "ok": True, "error": None,
    }  # fmt: skip
    probe = lambda url: {"url": url, "ok": True, "status": 200, "ms": 3}  # noqa: E731
    found = status.collect_status(
        ctx.load_settings(), engine, prober=probe, read_certificate=lambda s: good
    )
    assert found["up"] is True and found["certificate"] == good
    lines = status.status_lines(found)
    assert any("expires 2026-11-27T00:00:00Z" in line for line in lines)
    bad = {**good, "ok": False, "error": "does not verify: self-signed certificate"}
    found = status.collect_status(
        ctx.load_settings(), engine, prober=probe, read_certificate=lambda s: bad
    )
    assert found["up"] is False
    # no proxy container running: nothing to ask
    engine.containers_list = [container("web")]
    found = status.collect_status(ctx.load_settings(), engine, prober=probe,
                                  read_certificate=lambda s: pytest.fail("asked"))  # fmt: skip
    assert found["certificate"] is None


def test_preflight_checks_the_proxys_ports(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, engine=FakeEngine(), bind_address="0.0.0.0", **PUBLIC)
    asked: list[tuple[str, int]] = []

    def is_free(host: str, port: int) -> bool:
        asked.append((host, port))
        return port != 443

    from provision.stack import preflight

    with pytest.raises(KitError, match=r"port 0\.0\.0\.0:443 is in use"):
        preflight.preflight(
            ctx, compose_version=lambda: (2, 40, 3), disk_free=lambda info: 50 << 30,
            is_free=is_free,
        )  # fmt: skip
    # the kit's door on loopback, 80 and 443 on bind_address
    assert asked == [("127.0.0.1", 18000), ("0.0.0.0", 80), ("0.0.0.0", 443)]


def test_preflight_accepts_the_door_held_by_our_own_web_when_switching(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.port_publishers = lambda port: [container("web")] if port == 18000 else []
    ctx = make_ctx(tmp_path, engine=engine, **PUBLIC)
    outcome = run_preflight(ctx, free=True)
    assert "already ours (gtkit-web-1)" in outcome.detail


def test_metrics_urls_stay_on_bind_address_with_the_proxy(tmp_path: Path) -> None:
    from provision.stack.metrics import urls

    ctx = make_ctx(tmp_path, bind_address="10.0.0.5", **PUBLIC)
    settings = ctx.load_settings()
    assert settings.internal_url == "http://127.0.0.1:18000"  # the kit's door
    assert urls(settings) == {
        "prometheus": "http://10.0.0.5:9090",
        "grafana": "http://10.0.0.5:3000",
    }


def test_switching_the_proxy_off_removes_its_container(tmp_path: Path) -> None:
    from provision.proxy import switch

    class Api:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def stop(self, name, timeout):
            self.calls.append(("stop", name))

        def remove_container(self, name):
            self.calls.append(("remove", name))

    engine = FakeEngine()
    engine.client = type("Client", (), {"api": Api()})()
    stopped = dataclasses.replace(container("proxy", name="gtkit-proxy-2"), state="exited")
    # Docker refuses to remove a restarting or paused container: each is stopped first.
    looping = dataclasses.replace(container("proxy", name="gtkit-proxy-3"), state="restarting")
    paused = dataclasses.replace(container("proxy", name="gtkit-proxy-4"), state="paused")
    engine.containers_list = [container("web"), container("proxy"), stopped, looping, paused]
    ctx = make_ctx(tmp_path, engine=engine)  # no proxy in these settings
    assert switch.applies(ctx)
    outcome = switch.retire_step(ctx)
    assert outcome.changed is True
    assert engine.client.api.calls == [
        ("stop", "gtkit-proxy-1"), ("remove", "gtkit-proxy-1"), ("remove", "gtkit-proxy-2"),
        ("stop", "gtkit-proxy-3"), ("remove", "gtkit-proxy-3"),
        ("stop", "gtkit-proxy-4"), ("remove", "gtkit-proxy-4"),
    ]  # fmt: skip
    assert outcome.detail == (
        "removed gtkit-proxy-1, gtkit-proxy-2, gtkit-proxy-3, gtkit-proxy-4 (its volumes kept)"
    )
    engine.containers_list = [container("web")]
    assert switch.retire_step(ctx).changed is False
    assert not switch.applies(make_ctx(tmp_path, engine=engine, **PUBLIC))


def test_export_refuses_a_certs_file_and_says_where_each_skip_comes_from(tmp_path: Path) -> None:
    """certs/ as a regular file is refused with the fix; the reasons of a skip are exact (the
    `proxy-ca --json` output scripts read). Kills proxy/ca.export_root survivors of issue 20."""
    compose = FakeCompose({"exec": ok(a_pem())})
    public = make_ctx(tmp_path, compose=compose, proxy="caddy", **PUBLIC)
    assert ca.export_root(public.load_settings(), compose) == {
        "path": None, "changed": False, "why": "public name: an ACME certificate"
    }  # fmt: skip
    deployment = tmp_path / "d"
    deployment.mkdir()
    (deployment / "certs").write_text("not a directory\n")
    ctx = make_ctx(deployment, compose=compose, **LOCAL)
    with pytest.raises(KitError) as refused:
        ca.export_root(ctx.load_settings(), compose)
    assert refused.value.message == f"{deployment / 'certs'} is a symbolic link or not a directory"
    assert refused.value.fix == (
        "the kit writes certs/ only into a directory of its own: move it away"
    )
    assert (deployment / "certs").read_text() == "not a directory\n"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    ctx = make_ctx(fresh, compose=compose, **LOCAL)
    assert ca.export_root(ctx.load_settings(), compose) == {
        "path": str(fresh / ca.CA_FILE), "changed": True, "why": "internal CA"
    }  # fmt: skip
