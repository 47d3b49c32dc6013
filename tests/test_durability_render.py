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


def test_glitchtip6_worker_loads_the_kit_backend_module(tmp_path: Path):
    """GlitchTip 6's worker runs the kit's module: GlitchTip's settings with TASKS naming the
    kit's subclass of django-vtasks' Valkey backend (proved on the real library by
    tests/stack/test_vtasks_real_stack.py)."""
    files = _render(tmp_path, glitchtip_major=6)
    services = _services(files)
    worker = services["worker"]
    assert worker["environment"]["DJANGO_SETTINGS_MODULE"] == durability.WORKER_SETTINGS_MODULE
    assert worker["environment"]["PYTHONPATH"] == "/kit/python:/code"
    assert worker["environment"]["VALKEY_URL"]  # GlitchTip's environment is merged
    assert "./python:/kit/python:ro" in worker["volumes"]
    assert worker["labels"]["glitchtip-kit.worker-settings-digest"]
    module = files[durability.WORKER_SETTINGS_FILE]
    assert module == durability.WORKER6_SOURCE.read_text(encoding="utf-8")
    assert "from glitchtip.settings import *" in module
    assert "class KitValkeyTaskBackend(_KitWorker, ValkeyTaskBackend)" in module
    assert "CELERY_" not in module
    compile(module, durability.WORKER_SETTINGS_FILE, "exec")
    for name in ("web", "migrate"):
        assert "DJANGO_SETTINGS_MODULE" not in services[name]["environment"]


def test_glitchtip6_minimal_all_in_one_loads_the_kit_backend_module(tmp_path: Path):
    """6's minimal profile keeps its tasks in Postgres (VALKEY_URL=""): GlitchTip's settings name
    django-vtasks' database backend, which the module replaces with the kit's subclass; the
    worker is embedded in the web process, so `web` loads the module."""
    files = _render(tmp_path, glitchtip_major=6, profile="minimal")
    services = _services(files)
    assert "worker" not in services and "valkey" not in services
    web = services["web"]
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == durability.WORKER_SETTINGS_MODULE
    assert web["environment"]["PYTHONPATH"] == "/kit/python:/code"
    assert web["environment"]["VALKEY_URL"] == ""  # GlitchTip's environment is merged
    assert "./python:/kit/python:ro" in web["volumes"]
    assert web["labels"]["glitchtip-kit.worker-settings-digest"]
    assert "DJANGO_SETTINGS_MODULE" not in services["migrate"]["environment"]
    module = files[durability.WORKER_SETTINGS_FILE]
    assert module == durability.WORKER6_SOURCE.read_text(encoding="utf-8")
    assert "class KitDatabaseTaskBackend(_KitWorker, DatabaseTaskBackend)" in module


def test_glitchtip5_worker_keeps_the_secret_digest_label(tmp_path: Path):
    """The worker's own labels replace the anchor's (a YAML merge is shallow): the digest of its
    secrets must be among them, or a rotated secret would not recreate the worker."""
    files = _render(tmp_path, glitchtip_major=5)
    services = _services(files)
    digest = services["web"]["labels"]["org.glitchtip-kit.files-digest"]
    assert services["worker"]["labels"]["org.glitchtip-kit.files-digest"] == digest


def test_glitchtip5_minimal_all_in_one_loads_the_kit_settings_module(tmp_path: Path):
    """app.py runs GlitchTip's Celery app (`from glitchtip.celery import app`, which only
    setdefaults DJANGO_SETTINGS_MODULE) in the web container: it gets the module too."""
    files = _render(tmp_path, glitchtip_major=5, profile="minimal")
    services = _services(files)
    assert "worker" not in services
    web = services["web"]
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == durability.WORKER_SETTINGS_MODULE
    assert web["environment"]["PYTHONPATH"] == "/kit/python:/code"
    assert web["environment"]["VALKEY_URL"]  # GlitchTip's environment is merged, not replaced
    assert "./python:/kit/python:ro" in web["volumes"]
    assert web["labels"]["org.glitchtip-kit.files-digest"].startswith("${")
    assert web["labels"]["glitchtip-kit.worker-settings-digest"]
    assert "CELERY_TASK_ACKS_LATE = True" in files[durability.WORKER_SETTINGS_FILE]


def test_glitchtip5_swarm_worker_loads_the_module_from_a_versioned_config(tmp_path: Path):
    """On Swarm the worker may run on any node: the module is a Swarm config (no bind mount),
    named with its digest so a changed module is a new config the worker rolls onto."""
    from provision.swarm.render import render_stack

    settings = load_settings(tmp_path, {"glitchtip_major": 5}, environ={})
    stack = yaml.safe_load(render_stack(settings, {}))
    worker = stack["services"]["worker"]
    assert worker["environment"]["DJANGO_SETTINGS_MODULE"] == durability.WORKER_SETTINGS_MODULE
    assert worker["environment"]["PYTHONPATH"] == "/kit/python:/code"
    assert worker["environment"]["VALKEY_URL"]
    (mount,) = worker["configs"]
    assert mount["target"] == "/kit/python/glitchtip_kit_worker_settings.py"
    config = stack["configs"][mount["source"]]
    assert config["file"] == "./python/glitchtip_kit_worker_settings.py"
    assert config["name"].startswith(f"{settings.compose_project_name}_worker_settings_")
    six = load_settings(tmp_path, {"glitchtip_major": 6}, environ={})
    stack6 = yaml.safe_load(render_stack(six, {}))
    (mount6,) = stack6["services"]["worker"]["configs"]
    assert mount6["target"] == mount["target"]
    # A different module, so a different digest and config name.
    assert stack6["configs"][mount6["source"]]["name"] != config["name"]


def test_swarm_valkey_has_the_same_durability(tmp_path: Path):
    from provision.swarm.render import render_stack

    settings = load_settings(tmp_path, {"valkey_memory_limit_mb": 1000}, environ={})
    stack = yaml.safe_load(render_stack(settings, {}))
    command = stack["services"]["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory") + 1] == "500mb"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
