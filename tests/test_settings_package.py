"""The settings as a package (issue 21): the names callers import, the host they size for, what
they never import, and the messages of the rules two parsers or checks share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provision import settings
from provision.errors import SettingsError

REPO = Path(__file__).resolve().parent.parent


def test_loading_settings_imports_no_api_render_or_provisioning(tmp_path: Path) -> None:
    """Settings sit below the API, the render and the provisioning: resolving every setting,
    a name checked for its slug included, loads none of them."""
    code = (
        "import sys; from pathlib import Path; from provision.settings import load_settings; "
        f"load_settings(Path({str(tmp_path)!r}), {{'organization': 'Acme', 'project': 'web'}}, "
        "environ={}); "
        "print(sorted(m for m in sys.modules if m.startswith(('provision.api', "
        "'provision.render', 'provision.provisioning', 'provision.stack'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_host_is_pinned_on_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`provision.settings.host_resources` is the one place the host is replaced."""
    monkeypatch.setattr(settings, "host_resources", lambda: (3, 16384))
    loaded = settings.load_settings(tmp_path, environ={})
    assert loaded.postgres_shared_buffers_mb == 16384 // 8
    assert loaded.valkey_memory_limit_mb == 4096


def test_limits_keeps_its_old_module_name() -> None:
    from provision import limits

    assert limits.limit_values is settings.limits.limit_values
    assert limits.check_limits is settings.check_limits


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("email_url", "smtp://u:p#w@mail.example.com:25", "in EMAIL_URL or --set email_url=..."),
        ("database_url", "postgres://u:p/w@db.example.com/gt", "in DATABASE_URL"),
        ("valkey_url", "redis://:p?w@cache.example.com:6379/0", "in VALKEY_URL"),
    ],
)
def test_a_password_that_ends_the_server_part_is_refused_with_where_to_encode_it(
    tmp_path: Path, name: str, value: str, fix: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        settings.load_settings(tmp_path, {name: value}, environ={})
    problem = refused.value.message
    assert "the user name or password contains" in problem
    assert "which ends the server part of a URL" in problem
    assert fix in refused.value.fix
    assert "p#w" not in problem and "p/w" not in problem and "p?w" not in problem


def test_a_proxy_port_that_the_web_port_takes_is_refused(tmp_path: Path) -> None:
    overrides = {"glitchtip_domain": "https://glitchtip.example.com", "proxy_https_port": 8000}
    with pytest.raises(SettingsError) as refused:
        settings.load_settings(tmp_path, overrides, environ={})
    assert refused.value.message == (
        "proxy_https_port (from option proxy_https_port): port 8000 is also http_port"
    )
    assert refused.value.fix == "give proxy_https_port a port of its own"


def test_every_name_the_package_exports_exists() -> None:
    assert [name for name in settings.__all__ if not hasattr(settings, name)] == []
