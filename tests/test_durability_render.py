"""The durability settings reach the rendered files (provision/durability.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision import durability
from provision.envfile import parse_env
from provision.render import render_files
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

FAKE_SECRETS = {
    "SECRET_KEY": "fake-secret-key-" + "x" * 50,
    "POSTGRES_PASSWORD": "fake-postgres-password",
    "DJANGO_SUPERUSER_PASSWORD": "fake-admin-password",
}


def _render(directory: Path, **overrides) -> dict[str, str]:
    return render_files(load_settings(directory, overrides, environ={}), FAKE_SECRETS)


def _services(files: dict[str, str]) -> dict[str, dict]:
    return yaml.safe_load(files["compose.yml"])["services"]


@pytest.mark.parametrize("major", [5, 6])
def test_valkey_keeps_what_it_acknowledged_and_refuses_when_full(tmp_path: Path, major: int):
    files = _render(tmp_path, glitchtip_major=major, valkey_memory_limit_mb=600)
    command = _services(files)["valkey"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "valkey-server"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--maxmemory"] == "${GLITCHTIP_KIT_VALKEY_MAXMEMORY:-256mb}"
    env = parse_env(files[".env"])
    assert env["GLITCHTIP_KIT_VALKEY_MEMORY_LIMIT"] == "600m"
    assert env["GLITCHTIP_KIT_VALKEY_MAXMEMORY"] == "300mb"  # half: headroom for the AOF fork


def test_maxmemory_leaves_headroom_under_the_limit():
    for limit in (64, 256, 512, 4096):
        assert durability.valkey_maxmemory_mb(limit) <= limit // 2


def test_glitchtip5_worker_loads_the_kit_settings_module(tmp_path: Path):
    files = _render(tmp_path, glitchtip_major=5)
    worker = _services(files)["worker"]
    assert worker["environment"]["DJANGO_SETTINGS_MODULE"] == durability.WORKER_SETTINGS_MODULE
    assert worker["environment"]["PYTHONPATH"] == "/kit/python:/code"
    assert "./python:/kit/python:ro" in worker["volumes"]
    assert "uploads:/code/uploads" in worker["volumes"]
    module = files[durability.WORKER_SETTINGS_FILE]
    assert "CELERY_TASK_ACKS_LATE = True" in module
    assert '"visibility_timeout": 10' in module
    compile(module, durability.WORKER_SETTINGS_FILE, "exec")
    # Only the worker: web and migrate keep GlitchTip's own settings.
    for name in ("web", "migrate"):
        assert "DJANGO_SETTINGS_MODULE" not in _services(files)[name]["environment"]


@pytest.mark.parametrize(
    "overrides", [{"glitchtip_major": 6}, {"glitchtip_major": 5, "profile": "minimal"}]
)
def test_no_worker_settings_module_where_no_worker_reads_it(tmp_path: Path, overrides):
    files = _render(tmp_path, **overrides)
    assert durability.WORKER_SETTINGS_FILE not in files
    for service in _services(files).values():
        assert "DJANGO_SETTINGS_MODULE" not in (service.get("environment") or {})


def test_swarm_valkey_has_the_same_durability(tmp_path: Path):
    from provision.swarm.render import render_stack

    settings = load_settings(tmp_path, {"valkey_memory_limit_mb": 1000}, environ={})
    stack = yaml.safe_load(render_stack(settings, {}))
    command = stack["services"]["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory") + 1] == "500mb"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
