"""The kit's tuned defaults: derived from the host, rendered through .env, refused when they
cannot work together."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision import majors
from provision import settings as settings_module
from provision.errors import SettingsError
from provision.render import render_files
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

SECRETS = {"SECRET_KEY": "s" * 50, "POSTGRES_PASSWORD": "p" * 20, "DJANGO_SUPERUSER_PASSWORD": "a"}


def load_on(monkeypatch, tmp_path: Path, cpus: int, memory_mib: int, **overrides):
    monkeypatch.setattr(settings_module, "host_resources", lambda: (cpus, memory_mib))
    return load_settings(tmp_path, overrides, environ={})


@pytest.mark.parametrize(
    ("cpus", "memory", "web", "worker5", "pool6", "max_conn6", "shared", "maint"),
    [
        (1, 1024, 1, 2, 20, 100, 128, 64),
        (2, 4096, 2, 4, 20, 100, 512, 128),
        (4, 8192, 4, 8, 20, 110, 1024, 256),
        (8, 32768, 8, 16, 20, 190, 4096, 1024),
        (64, 512 * 1024, 8, 16, 20, 190, 8192, 1024),
    ],
)
def test_derivation_for_host_sizes(
    monkeypatch, tmp_path, cpus, memory, web, worker5, pool6, max_conn6, shared, maint
):
    six = load_on(monkeypatch, tmp_path, cpus, memory)
    assert six.web_concurrency == web
    assert six.worker_concurrency == 20  # django-vtasks' own default, whatever the host
    assert six.db_pool_max_size == pool6
    assert six.postgres_max_connections == max_conn6
    # D4: every process's full pool fits (web processes + the worker + reserve).
    assert (web + 1) * six.db_pool_max_size + 10 <= six.postgres_max_connections
    assert six.postgres_shared_buffers_mb == shared
    assert six.postgres_effective_cache_size_mb == max(512, memory // 2)
    assert six.postgres_maintenance_work_mem_mb == maint

    five = load_on(monkeypatch, tmp_path, cpus, memory, glitchtip_major=5)
    # One CPU: a threaded worker (forked slots would share the one CPU); more: prefork, whose
    # slots store batches on every CPU (the interpreter lock holds threads to one).
    pool5 = "threads" if cpus == 1 else "prefork"
    assert (five.worker_pool, five.worker_concurrency) == (pool5, worker5)
    assert five.worker_concurrency * five.worker_prefetch >= 100  # a full batch fits
    processes = worker5 if pool5 == "prefork" else 1
    assert five.db_pool_max_size == (10 if pool5 == "prefork" else max(10, worker5))
    assert (web + processes) * five.db_pool_max_size + 10 <= five.postgres_max_connections
    threads = load_on(monkeypatch, tmp_path, cpus, memory, glitchtip_major=5, worker_pool="threads")
    assert threads.worker_concurrency == max(2, min(cpus * 2, 16))


def test_prefork_counts_processes(monkeypatch, tmp_path):
    five = load_on(monkeypatch, tmp_path, 8, 32768, glitchtip_major=5, worker_pool="prefork")
    # 16 forked processes with a pool of 10 each, plus 8 web processes.
    assert five.worker_concurrency == 16 and five.db_pool_max_size == 10
    assert five.postgres_max_connections == (8 + 16) * 10 + 10


def _environment(files: dict[str, str], service: str) -> dict:
    return yaml.safe_load(files["compose.yml"])["services"][service]["environment"]


def test_rendered_worker_environment(monkeypatch, tmp_path):
    five = load_on(monkeypatch, tmp_path, 2, 4096, glitchtip_major=5)
    files = render_files(five, SECRETS)
    env = _environment(files, "worker")
    assert env["CELERY_WORKER_POOL"] == "${GLITCHTIP_KIT_WORKER_POOL:-threads}"  # .env has it
    assert env["CELERY_WORKER_PREFETCH_MULTIPLIER"] == "${GLITCHTIP_KIT_WORKER_PREFETCH:-100}"
    assert env["CELERY_WORKER_CONCURRENCY"].startswith("${GLITCHTIP_KIT_WORKER_CONCURRENCY:-")
    assert env["DATABASE_POOL_MAX_SIZE"] == "${GLITCHTIP_KIT_DB_POOL_MAX_SIZE:-10}"
    dotenv = files[".env"]
    for line in (
        "GLITCHTIP_KIT_WORKER_POOL=prefork",
        "GLITCHTIP_KIT_WORKER_PREFETCH=100",
        "GLITCHTIP_KIT_WORKER_CONCURRENCY=4",
        "GLITCHTIP_KIT_DB_POOL_MAX_SIZE=10",
        "GLITCHTIP_KIT_POSTGRES_MAX_CONNECTIONS=100",
        "GLITCHTIP_KIT_POSTGRES_SHARED_BUFFERS_MB=512",
    ):
        assert line in dotenv.splitlines()
    # The worker command is still the image's script (the healthcheck marker stays).
    worker = yaml.safe_load(files["compose.yml"])["services"]["worker"]
    assert worker["command"] == majors.MAJORS[5].worker_command

    six = render_files(load_on(monkeypatch, tmp_path, 2, 4096), SECRETS)
    env6 = _environment(six, "worker")
    assert "CELERY_WORKER_POOL" not in env6
    assert env6["VTASKS_CONCURRENCY"] == "${GLITCHTIP_KIT_WORKER_CONCURRENCY:-20}"
    assert env6["DATABASE_POOL_MAX_SIZE"] == "${GLITCHTIP_KIT_DB_POOL_MAX_SIZE:-20}"


def test_rendered_postgres_command_in_both_files(monkeypatch, tmp_path):
    settings = load_on(monkeypatch, tmp_path, 2, 4096, glitchtip_major=5)
    files = render_files(settings, SECRETS)
    wanted = [
        "max_connections=${GLITCHTIP_KIT_POSTGRES_MAX_CONNECTIONS:-100}",
        "shared_buffers=${GLITCHTIP_KIT_POSTGRES_SHARED_BUFFERS_MB:-128}MB",
        "effective_cache_size=${GLITCHTIP_KIT_POSTGRES_EFFECTIVE_CACHE_SIZE_MB:-4096}MB",
        "maintenance_work_mem=${GLITCHTIP_KIT_POSTGRES_MAINTENANCE_WORK_MEM_MB:-64}MB",
    ]
    for name in ("compose.yml", "compose.part.yml"):
        command = yaml.safe_load(files[name])["services"]["postgres"]["command"]
        assert command[0] == "postgres"
        settings_given = command[2::2]
        assert settings_given[: len(wanted)] == wanted, name
        assert all(flag == "-c" for flag in command[1::2])
    part = yaml.safe_load(files["compose.part.yml"])["services"]["postgres"]["command"]
    assert "shared_preload_libraries=pg_partman_bgw" in part


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"db_pool_max_size": 5}, "db_pool_max_size"),  # 20 vtasks slots, 5 connections
        ({"postgres_max_connections": 40}, "postgres_max_connections"),
        ({"glitchtip_major": 5, "worker_prefetch": 4}, "never fills a batch of 100"),
        ({"worker_pool": "gevent"}, "worker pool"),
    ],
)
def test_sizes_that_cannot_work_are_refused(monkeypatch, tmp_path, overrides, message):
    with pytest.raises(SettingsError, match=message):
        load_on(monkeypatch, tmp_path, 2, 4096, **overrides)


def test_explicit_values_win(monkeypatch, tmp_path):
    settings = load_on(
        monkeypatch, tmp_path, 2, 4096, worker_concurrency=8, postgres_shared_buffers_mb=256
    )
    assert settings.worker_concurrency == 8
    assert settings.postgres_shared_buffers_mb == 256
    assert settings.sources["worker_concurrency"] == "option"
