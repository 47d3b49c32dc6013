"""Every combination check of the settings (`settings.checks`), refused in one whole line:
the problem (which setting, where it came from, why it cannot work with the others) and the fix.
Tests elsewhere read most of these with a substring; a changed word, a dropped clause or a
wrong number in the fix passed them. Each row is the smallest set of options that trips one
check; the last tests accept each limit's own boundary."""

from __future__ import annotations

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")


@pytest.mark.parametrize(
    ("overrides", "message", "fix"),
    [
        (
            {"advanced_partitioning": "true"},
            "advanced_partitioning (from option advanced_partitioning): GlitchTip 6 has no "
            "pg_partman support (it manages partitions itself)",
            "set advanced_partitioning: false, or glitchtip_major: 5",
        ),
        (
            {"profile": "minimal", "metrics": "true"},
            "metrics (from option metrics): profile minimal (from option profile) runs without "
            "the metrics stack (its exporters expect the standard services, and Prometheus and "
            "Grafana need more memory than minimal saves)",
            "stop the metrics first (`provision down --only-metrics`), or use profile: standard",
        ),
        (
            {"profile": "minimal", "advanced_partitioning": "true", "glitchtip_major": "5"},
            "advanced_partitioning (from option advanced_partitioning): profile minimal (from "
            "option profile) has no separate worker for pg_partman's override",
            "use profile: standard with advanced partitioning",
        ),
        (
            {"profile": "minimal", "worker_pool": "solo", "glitchtip_major": "5"},
            "worker_pool (from option worker_pool): solo, but GlitchTip 5's all-in-one "
            "(profile: minimal) always runs its worker with threads",
            "remove worker_pool, or use profile: standard for a worker of its own",
        ),
        (
            {"profile": "minimal", "worker_pool": "prefork", "glitchtip_major": "5"},
            "worker_pool (from option worker_pool): prefork, but GlitchTip 5's all-in-one "
            "(profile: minimal) always runs its worker with threads",
            "remove worker_pool, or use profile: standard for a worker of its own",
        ),
        (
            {"worker_concurrency": "8", "db_pool_max_size": "4"},
            "db_pool_max_size (from option db_pool_max_size): 4 connections per process, but "
            "the worker runs 8 slots that each need one",
            "set db_pool_max_size to at least 8, or lower worker_concurrency",
        ),
        (
            {"postgres_max_connections": "20", "web_concurrency": "8", "db_pool_max_size": "20"},
            "postgres_max_connections (from option postgres_max_connections): 20, but the web "
            "and worker pools may open 190 (including 10 reserved)",
            "set postgres_max_connections to at least 190, or lower db_pool_max_size, "
            "web_concurrency or worker_concurrency",
        ),
        (
            {"worker_concurrency": "2", "worker_prefetch": "1", "glitchtip_major": "5"},
            "worker_prefetch (from option worker_prefetch): a window of 2 x 1 = 2 messages "
            "never fills a batch of 100: the worker would store 2 events per 2 s",
            "set worker_prefetch to at least 50 (or 0: unlimited)",
        ),
        (
            {
                "worker_concurrency": "3",
                "worker_prefetch": "2",
                "glitchtip_major": "5",
                "worker_pool": "threads",
            },
            "worker_prefetch (from option worker_prefetch): a window of 3 x 2 = 6 messages "
            "never fills a batch of 100: the worker would store 6 events per 2 s",
            "set worker_prefetch to at least 34 (or 0: unlimited)",
        ),
        (
            {"postgres_memory_limit_mb": "256", "postgres_shared_buffers_mb": "512"},
            "postgres_memory_limit_mb (from option postgres_memory_limit_mb): 256 MiB, but "
            "shared buffers alone take 512 MiB",
            "set postgres_memory_limit_mb to at least 768, or lower postgres_shared_buffers_mb",
        ),
        (
            {
                "database_url": "postgres://gt:pw@db.example.com:5432/glitchtip",
                "advanced_partitioning": "true",
                "glitchtip_major": "5",
            },
            "advanced_partitioning (from option advanced_partitioning): needs the bundled "
            "Postgres (compose.part.yml swaps in a pg_partman image)",
            "set advanced_partitioning: false, or leave database_url empty",
        ),
        (
            {"database_sslmode": "require"},
            "database_sslmode (from option database_sslmode): applies to an external database "
            "only (the bundled one is reached on the stack's own network)",
            "set database_url, or remove database_sslmode",
        ),
        (
            {
                "database_url": "postgres://gt:pw@db.example.com:5432/glitchtip?sslmode=require",
                "database_sslmode": "verify-full",
            },
            "database_sslmode (from option database_sslmode): database_url already sets sslmode",
            "keep one of them",
        ),
        (
            {"valkey_url": "valkey://valkey.example.com:6379/0", "glitchtip_major": "5"},
            "valkey_url (from option valkey_url): GlitchTip 5 (Celery, redis-py) does not read "
            "valkey:// URLs",
            "use redis:// (or rediss:// for TLS)",
        ),
        (
            {"uploads_region": "eu-central-1"},
            "uploads_region (from option uploads_region): no uploads_bucket is set",
            "set uploads_bucket, or remove it",
        ),
        (
            {"uploads_endpoint_url": "https://s3.example.com"},
            "uploads_endpoint_url (from option uploads_endpoint_url): no uploads_bucket is set",
            "set uploads_bucket, or remove it",
        ),
        (
            {"uploads_bucket": "b1-glitchtip", "uploads_access_key_id": "AKIAEXAMPLE"},
            "uploads_secret_access_key: the bucket's access key id and secret access key go "
            "together",
            "set both (uploads_access_key_id and uploads_secret_access_key), or neither to use "
            "the instance's role",
        ),
        (
            {"uploads_bucket": "b1-glitchtip", "uploads_secret_access_key": "s3cr3t-value"},
            "uploads_access_key_id: the bucket's access key id and secret access key go together",
            "set both (uploads_access_key_id and uploads_secret_access_key), or neither to use "
            "the instance's role",
        ),
        (
            {"glitchtip_image": "glitchtip/glitchtip:v5.1.0"},
            "glitchtip_image (from option glitchtip_image): tag 'glitchtip/glitchtip:v5.1.0' is "
            "GlitchTip 5, but glitchtip_major is 6",
            "set glitchtip_major: 5, or use a GlitchTip 6 image",
        ),
        (
            {"postgres_image": "postgres:13.9"},
            "postgres_image (from option postgres_image): Postgres 13 is older than 14, which "
            "GlitchTip requires",
            "use Postgres 14 or newer",
        ),
        (
            {"postgres_image": "postgres:17.7", "postgres_data_path": "/var/lib/postgresql"},
            "postgres_data_path (from option postgres_data_path): Postgres 17 writes to "
            "/var/lib/postgresql/data, an anonymous volume would hide the data from the named "
            "volume",
            "mount it at /var/lib/postgresql/data (remove postgres_data_path to get the default)",
        ),
        (
            {"proxy": "caddy"},
            "proxy (from option proxy): caddy serves HTTPS, but glitchtip_domain is "
            "http://localhost:8000",
            "set glitchtip_domain to the https:// URL users open, or proxy: none",
        ),
        (
            {
                "proxy": "caddy",
                "glitchtip_domain": "https://gt.example.com",
                "proxy_http_port": "8000",
            },
            "proxy_http_port (from option proxy_http_port): port 8000 is also http_port",
            "give proxy_http_port a port of its own",
        ),
        (
            {
                "proxy": "caddy",
                "glitchtip_domain": "https://gt.example.com",
                "proxy_http_port": "8080",
                "proxy_https_port": "8080",
            },
            "proxy_https_port (from option proxy_https_port): port 8080 is also proxy_http_port",
            "give proxy_https_port a port of its own",
        ),
        (
            {"metrics": "true", "prometheus_port": "8000"},
            "prometheus_port (from option prometheus_port): port 8000 is also http_port",
            "give prometheus_port a port of its own on 127.0.0.1",
        ),
        (
            {"metrics": "true", "grafana_port": "9090"},
            "grafana_port (from option grafana_port): port 9090 is also prometheus_port",
            "give grafana_port a port of its own on 127.0.0.1",
        ),
        (
            {
                "glitchtip_major": "5",
                "advanced_partitioning": "true",
                "partman_image": "ghcr.io/x/partman:16-5.2",
            },
            "partman_image (from option partman_image): Postgres 16 differs from "
            "postgres_image's 17; the override could not read the data volume",
            "use a pg_partman image of Postgres 17",
        ),
    ],
)
def test_a_combination_that_cannot_work_is_refused_whole(tmp_path, overrides, message, fix):
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, overrides, environ={})
    assert (refused.value.message, refused.value.fix) == (message, fix)


@pytest.mark.parametrize(
    "overrides",
    [
        # the shared buffers plus Postgres's own base exactly fill the limit
        {"postgres_memory_limit_mb": "768", "postgres_shared_buffers_mb": "512"},
        # one pooled connection per worker slot, exactly
        {"worker_concurrency": "8", "db_pool_max_size": "8"},
        # GlitchTip 5's prefetch window exactly fills a batch of 100; 0 is unlimited
        {"worker_concurrency": "2", "worker_prefetch": "50", "glitchtip_major": "5"},
        {"worker_concurrency": "2", "worker_prefetch": "0", "glitchtip_major": "5"},
        # the all-in-one's own pool, named
        {"profile": "minimal", "worker_pool": "threads", "glitchtip_major": "5"},
        {"glitchtip_image": "glitchtip/glitchtip:6.2.6"},
        {"postgres_image": "postgres:14.15"},
        {"metrics": "true", "prometheus_port": "9091", "grafana_port": "9092"},
    ],
)
def test_each_limit_accepts_its_own_boundary(tmp_path, overrides):
    settings = load_settings(tmp_path, overrides, environ={})
    for name, raw in overrides.items():
        value = getattr(settings, name)
        assert str(value).lower() == raw, (name, value)


def test_the_refusal_names_where_the_setting_came_from(tmp_path):
    """glitchtip.yaml or the environment variable, whichever set it: the place to fix it."""
    (tmp_path / "glitchtip.yaml").write_text("proxy: caddy\n")
    (tmp_path / "x").mkdir()
    with pytest.raises(SettingsError) as from_file:
        load_settings(tmp_path, {}, environ={})
    with pytest.raises(SettingsError) as from_environment:
        load_settings(tmp_path / "x", {}, environ={"GLITCHTIP_KIT_PROXY": "caddy"})
    assert [from_file.value.message, from_environment.value.message] == [
        "proxy (from glitchtip.yaml): caddy serves HTTPS, but glitchtip_domain is "
        "http://localhost:8000",
        "proxy (from environment variable GLITCHTIP_KIT_PROXY): caddy serves HTTPS, but "
        "glitchtip_domain is http://localhost:8000",
    ]


def test_the_services_are_named_bundled_or_where_they_are(tmp_path):
    """`provision config`'s services: bundled, or the external one's address (password
    masked); uploads in the volume, or the bucket and its endpoint when one is set."""
    bundled = load_settings(tmp_path, {}, environ={})
    assert bundled.external_services() == {
        "postgres": "bundled", "valkey": "bundled", "uploads": "volume"}  # fmt: skip
    external = load_settings(
        tmp_path,
        {
            "database_url": "postgres://gt:pw@db.example.com:5432/glitchtip",
            "valkey_url": "redis://:pw@valkey.example.com:6379/0",
            "uploads_bucket": "b1-gt",
        },
        environ={},
    )
    assert external.external_services() == {
        "postgres": "postgres://gt:********@db.example.com:5432/glitchtip",
        "valkey": "redis://:********@valkey.example.com:6379/0",
        "uploads": "s3://b1-gt",
    }
    minio = load_settings(
        tmp_path,
        {"uploads_bucket": "b1-gt", "uploads_endpoint_url": "http://minio.example.com:9000"},
        environ={},
    )
    assert minio.external_services()["uploads"] == "s3://b1-gt at http://minio.example.com:9000"
