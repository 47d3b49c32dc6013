"""The table of settings: one `Spec` per setting (name, variable, parser, default, help), in
the order they are resolved (a derived default reads the settings above it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision import majors
from provision.profiles import MINIMAL
from provision.proxy.names import PROXY_CHOICES, default_subnet
from provision.settings import limits
from provision.settings.external import (
    parse_access_key,
    parse_bucket,
    parse_database_url,
    parse_endpoint_url,
    parse_region,
    parse_secret_access_key,
    parse_sslmode,
    parse_valkey_url,
)
from provision.settings.mail import parse_email, parse_email_url, parse_from_email
from provision.settings.metrics import DEFAULT_BUDGET, parse_error_budgets, parse_retention
from provision.settings.parsers import (
    image_tag_major,
    int_between,
    parse_abs_path,
    parse_bool,
    parse_choice,
    parse_image,
    parse_ip,
    parse_major,
    parse_name,
    parse_platform,
    parse_public_url,
    parse_slug,
)
from provision.settings.sizing import (
    POSTGRES_DEFAULT_MAX_CONNECTIONS,
    connections_needed,
    derive_concurrency,
    derive_db_pool_max_size,
    derive_postgres_memory,
    derive_worker_concurrency,
    derive_worker_pool,
    worker_prefetch_default,
)
from provision.settings.tls import parse_optional_email, parse_proxy_subnet


def host_resources() -> tuple[int, int]:
    """The host's (CPUs, MiB) for the derived defaults below, looked up on the package at call
    time: `provision.settings.host_resources` is the one place a caller (or a test pinning the
    host) replaces it."""
    from provision import settings

    return settings.host_resources()


WORKER_POOLS = ("threads", "prefork", "solo")

# standard: web, worker, Postgres, Valkey; minimal: GlitchTip's all-in-one (see majors.Major).
PROFILES = ("standard", "minimal")

# Where the deployment runs (`target`): one Compose project, a Swarm stack, Helm values.
TARGETS = ("compose", "swarm", "kubernetes")


@dataclass(frozen=True)
class Spec:
    """One setting: its name (in glitchtip.yaml and as attribute), variable, parser, default."""

    name: str
    env: str
    parse: Callable[[object], Any]
    default: Callable[[dict[str, Any]], Any]
    help: str
    derived: bool = False
    default_text: str = ""  # how docs/settings.md shows the default
    # Only glitchtip.yaml may set it (a mapping has no sensible one-line form as an option).
    file_only: bool = False


def _const(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda resolved: value


def _major_row(resolved: dict[str, Any]) -> majors.Major:
    return majors.MAJORS[resolved["glitchtip_major"]]


def _all_in_one_pool(resolved: dict[str, Any]) -> str | None:
    """The pool the minimal profile's all-in-one runs whatever the settings say, or None."""
    if resolved["profile"] != MINIMAL:
        return None
    return _major_row(resolved).all_in_one_worker_pool


def _default_postgres_version(resolved: dict[str, Any]) -> int:
    found = image_tag_major(resolved["postgres_image"])
    if found is not None:
        return found
    # An unparseable tag (a digest, "stable"): assume the layout of the major's default image.
    fallback = image_tag_major(_major_row(resolved).postgres_image)
    assert fallback is not None
    return fallback


SPECS: tuple[Spec, ...] = (
    Spec(
        "glitchtip_major", "GLITCHTIP_KIT_MAJOR", parse_major, _const(majors.DEFAULT_MAJOR),
        "GlitchTip major version to deploy: 6 (current) or 5.", default_text="6",
    ),
    Spec(
        "bind_address", "GLITCHTIP_KIT_BIND_ADDRESS", parse_ip, _const("127.0.0.1"),
        "Host address the web service publishes on; 127.0.0.1 keeps it behind a reverse proxy.",
        default_text="127.0.0.1",
    ),
    Spec(
        "http_port", "GLITCHTIP_KIT_HTTP_PORT", int_between(1, 65535, "port number"),
        _const(8000), "Host port the web service publishes on.", default_text="8000",
    ),
    Spec(
        "glitchtip_domain", "GLITCHTIP_DOMAIN", parse_public_url,
        lambda r: f"http://localhost:{r['http_port']}",
        "Public URL of GlitchTip (http or https, no path); used in DSNs and e-mail links.",
        default_text="http://localhost:<http_port>",
    ),
    Spec(
        "glitchtip_image", "GLITCHTIP_KIT_GLITCHTIP_IMAGE", parse_image,
        lambda r: _major_row(r).glitchtip_image,
        "GlitchTip image (pinned tag; point it at a mirror for air-gapped hosts).",
        derived=True,
        default_text="6: `glitchtip/glitchtip:6.2.6`, 5: `glitchtip/glitchtip:v5.1.0`",
    ),
    Spec(
        "postgres_image", "GLITCHTIP_KIT_POSTGRES_IMAGE", parse_image,
        lambda r: _major_row(r).postgres_image, "Postgres image (14 or newer).",
        derived=True, default_text="6: `postgres:18.1`, 5: `postgres:17.7`",
    ),
    Spec(
        "valkey_image", "GLITCHTIP_KIT_VALKEY_IMAGE", parse_image,
        lambda r: _major_row(r).valkey_image, "Valkey image.",
        derived=True, default_text="6: `valkey/valkey:9.0`, 5: `valkey/valkey:8.1`",
    ),
    Spec(
        "postgres_version", "GLITCHTIP_KIT_POSTGRES_VERSION",
        int_between(1, 99, "Postgres major"), _default_postgres_version,
        "Postgres major of `postgres_image`; read from its tag, set it when the tag has no number.",
        derived=True, default_text="from the image tag",
    ),
    Spec(
        "postgres_data_path", "GLITCHTIP_KIT_POSTGRES_DATA_PATH", parse_abs_path,
        lambda r: majors.postgres_data_path(r["postgres_version"]),
        "Where the Postgres volume is mounted: /var/lib/postgresql from 18 on, .../data before.",
        derived=True, default_text="from `postgres_version`",
    ),
    Spec(
        "partman_image", "GLITCHTIP_KIT_PARTMAN_IMAGE", parse_image,
        lambda r: majors.partman_image_for(r["postgres_version"]),
        "Postgres image with pg_partman 5 used by compose.part.yml (same Postgres major; the "
        "tag's `-5` pins pg_partman's major).",
        derived=True, default_text="`ghcr.io/dbsystel/postgresql-partman:<postgres_version>-5`",
    ),
    Spec(
        "default_from_email", "DEFAULT_FROM_EMAIL", parse_from_email,
        _const("glitchtip@localhost"), "Sender address of GlitchTip's e-mails.",
        default_text="glitchtip@localhost",
    ),
    Spec(
        "email_url", "EMAIL_URL", parse_email_url, _const("consolemail://"),
        "How GlitchTip sends e-mail (django-environ URL). Kept in .env, never in glitchtip.yaml "
        "when it holds a password; consolemail:// writes e-mails to the web log.",
        default_text="consolemail://",
    ),
    Spec(
        "database_url", "GLITCHTIP_KIT_DATABASE_URL", parse_database_url, _const(""),
        "An existing Postgres (14+) instead of the bundled one, e.g. "
        "postgres://user:password@db.example.com:5432/glitchtip. Kept in .env, never in "
        "glitchtip.yaml when it holds a password; empty: the bundled postgres service.",
        default_text="empty (bundled)",
    ),
    Spec(
        "database_sslmode", "GLITCHTIP_KIT_DATABASE_SSLMODE", parse_sslmode, _const(""),
        "The libpq sslmode for an external database_url (disable, allow, prefer, require, "
        "verify-ca, verify-full); empty: libpq's default (prefer).",
        default_text="empty",
    ),
    Spec(
        "valkey_url", "GLITCHTIP_KIT_VALKEY_URL", parse_valkey_url, _const(""),
        "An existing Valkey or Redis instead of the bundled one, e.g. "
        "redis://:password@cache.example.com:6379/0 (rediss:// for TLS). Kept in .env like "
        "database_url; empty: the bundled valkey service.",
        default_text="empty (bundled)",
    ),
    Spec(
        "uploads_bucket", "GLITCHTIP_KIT_UPLOADS_BUCKET", parse_bucket, _const(""),
        "Keep uploads (source maps, debug files, attachments) in this S3 bucket instead of "
        "the uploads volume (django-storages S3Boto3Storage); empty: the volume.",
        default_text="empty (uploads volume)",
    ),
    Spec(
        "uploads_endpoint_url", "GLITCHTIP_KIT_UPLOADS_ENDPOINT_URL", parse_endpoint_url,
        _const(""),
        "Endpoint of S3-compatible storage (MinIO, Ceph, R2 ...); empty: AWS S3.",
        default_text="empty (AWS)",
    ),
    Spec(
        "uploads_region", "GLITCHTIP_KIT_UPLOADS_REGION", parse_region, _const(""),
        "Region of the bucket (boto3 reads AWS_DEFAULT_REGION); empty: the provider's default.",
        default_text="empty",
    ),
    Spec(
        "uploads_access_key_id", "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID", parse_access_key,
        _const(""),
        "Access key id for the bucket. Kept in .env, never in glitchtip.yaml; empty: boto3's "
        "own lookup (instance role).",
        default_text="empty",
    ),
    Spec(
        "uploads_secret_access_key", "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY",
        parse_secret_access_key, _const(""),
        "Secret access key for the bucket. Kept in .env (0600), never in glitchtip.yaml; give "
        "it as GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY in the environment once.",
        default_text="empty",
    ),
    Spec(
        "enable_user_registration", "ENABLE_USER_REGISTRATION", parse_bool, _const(False),
        "Let anyone with the URL sign up (off for a private instance).", default_text="false",
    ),
    Spec(
        "enable_organization_creation", "ENABLE_ORGANIZATION_CREATION", parse_bool,
        _const(False), "Let non-admin users create organizations.", default_text="false",
    ),
    Spec(
        "retention_days", "GLITCHTIP_MAX_EVENT_LIFE_DAYS", int_between(1, 3650, "number of days"),
        _const(90), "Days events are kept (GlitchTip 6 reads it as GLITCHTIP_RETENTION_DAYS).",
        default_text="90",
    ),
    Spec(
        "profile", "GLITCHTIP_KIT_PROFILE", parse_choice(PROFILES, "profile"),
        _const("standard"),
        "Which services run: standard (web, worker, Postgres, Valkey) or minimal (one "
        "all-in-one GlitchTip container and Postgres, no Valkey on 6) for a small host.",
        default_text="standard",
    ),
    Spec(
        "worker_pool", "GLITCHTIP_KIT_WORKER_POOL", parse_choice(WORKER_POOLS, "worker pool"),
        lambda r: derive_worker_pool(*host_resources(), _all_in_one_pool(r)),
        "GlitchTip 5 only: Celery worker pool (CELERY_WORKER_POOL); threads share one process.",
        derived=True,
        default_text="prefork with 2+ CPUs, else threads; threads in the minimal profile",
    ),
    Spec(
        "worker_concurrency", "GLITCHTIP_KIT_WORKER_CONCURRENCY",
        int_between(1, 64, "concurrency"),
        lambda r: derive_worker_concurrency(
            _major_row(r), r["worker_pool"], *host_resources()
        ),
        "Worker concurrency: VTASKS_CONCURRENCY on 6 (async slots in one process), "
        "CELERY_WORKER_CONCURRENCY on 5.",
        derived=True, default_text="6: 20; 5: 2 per CPU, prefork: <= 1 per 200 MiB over 1 GiB",
    ),
    Spec(
        "worker_prefetch", "GLITCHTIP_KIT_WORKER_PREFETCH", int_between(0, 1000, "multiplier"),
        lambda r: worker_prefetch_default(_major_row(r)),
        "GlitchTip 5 only: Celery prefetch multiplier (CELERY_WORKER_PREFETCH_MULTIPLIER); "
        "concurrency x this must hold a batch of 100 events.",
        derived=True, default_text="100",
    ),
    Spec(
        "web_concurrency", "GLITCHTIP_KIT_WEB_CONCURRENCY", int_between(1, 64, "concurrency"),
        lambda r: derive_concurrency(
            *host_resources(), _major_row(r).web_processes_per_cpu
        )[0],
        "Web server processes.",
        derived=True, default_text="6: 1 per CPU, 5: 2 per CPU; capped by memory",
    ),
    Spec(
        "db_pool_max_size", "GLITCHTIP_KIT_DB_POOL_MAX_SIZE", int_between(1, 500, "pool size"),
        lambda r: derive_db_pool_max_size(
            _major_row(r), r["worker_pool"], r["worker_concurrency"]
        ),
        "Database connections each GlitchTip process may open (DATABASE_POOL_MAX_SIZE).",
        derived=True, default_text="6: 20, 5: 10, at least the worker's slots",
    ),
    Spec(
        "postgres_max_connections", "GLITCHTIP_KIT_POSTGRES_MAX_CONNECTIONS",
        int_between(20, 10000, "number of connections"),
        lambda r: max(
            POSTGRES_DEFAULT_MAX_CONNECTIONS,
            connections_needed(
                _major_row(r), r["worker_pool"], r["worker_concurrency"],
                r["web_concurrency"], r["db_pool_max_size"],
            ),
        ),
        "Postgres max_connections: every process's full pool fits, plus a reserve.",
        derived=True, default_text="100, or what the pools need",
    ),
    Spec(
        "postgres_shared_buffers_mb", "GLITCHTIP_KIT_POSTGRES_SHARED_BUFFERS_MB",
        int_between(16, 1048576, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[0],
        "Postgres shared_buffers in MiB.",
        derived=True, default_text="1/8 of memory, 128 to 8192",
    ),
    Spec(
        "postgres_effective_cache_size_mb", "GLITCHTIP_KIT_POSTGRES_EFFECTIVE_CACHE_SIZE_MB",
        int_between(16, 4194304, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[1],
        "Postgres effective_cache_size in MiB (a planner estimate; allocates nothing).",
        derived=True, default_text="1/2 of memory",
    ),
    Spec(
        "postgres_maintenance_work_mem_mb", "GLITCHTIP_KIT_POSTGRES_MAINTENANCE_WORK_MEM_MB",
        int_between(1, 65536, "size in MiB"),
        lambda r: derive_postgres_memory(host_resources()[1])[2],
        "Postgres maintenance_work_mem in MiB (vacuum, index builds).",
        derived=True, default_text="1/32 of memory, 64 to 1024",
    ),
    Spec(
        "web_memory_limit_mb", "GLITCHTIP_KIT_WEB_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.web_memory_mb(r["web_concurrency"], host_resources()[1]),
        "Memory limit of the web container in MiB (mem_limit).",
        derived=True, default_text="256 + 384 per web process, at most the host's memory",
    ),
    Spec(
        "worker_memory_limit_mb", "GLITCHTIP_KIT_WORKER_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.worker_memory_mb(
            _major_row(r), r["worker_pool"], r["worker_concurrency"], host_resources()[1]
        ),
        "Memory limit of the worker and migrate containers in MiB (mem_limit).",
        derived=True, default_text="1024 (prefork: 384 + 256 per process)",
    ),
    Spec(
        "postgres_memory_limit_mb", "GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.postgres_memory_mb(
            r["postgres_shared_buffers_mb"], r["postgres_maintenance_work_mem_mb"],
            r["postgres_max_connections"], host_resources()[1],
        ),
        "Memory limit of the Postgres container in MiB (mem_limit).",
        derived=True,
        default_text="shared buffers + 2 x maintenance + 8 per connection + 256",
    ),
    Spec(
        "valkey_memory_limit_mb", "GLITCHTIP_KIT_VALKEY_MEMORY_LIMIT_MB",
        int_between(64, 1048576, "size in MiB"),
        lambda r: limits.valkey_memory_mb(host_resources()[1]),
        "Memory limit of the Valkey container in MiB (mem_limit); it holds the task queue.",
        derived=True, default_text="1/4 of memory, 256 to 4096",
    ),
    Spec(
        "advanced_partitioning", "GLITCHTIP_ADVANCED_PARTITIONING", parse_bool, _const(False),
        "GlitchTip 5 only: pg_partman partitioning via compose.part.yml. Fixed at the first "
        "render; cannot be switched on an existing database.",
        default_text="false",
    ),
    Spec(
        "admin_email", "GLITCHTIP_KIT_ADMIN_EMAIL", parse_email, _const("admin@example.com"),
        "E-mail of the first admin (superuser) the kit creates.",
        default_text="admin@example.com",
    ),
    Spec(
        "organization", "GLITCHTIP_KIT_ORGANIZATION", parse_name, _const("GlitchTip"),
        "Organization the kit creates for the first project.", default_text="GlitchTip",
    ),
    Spec(
        "project", "GLITCHTIP_KIT_PROJECT", parse_name, _const("default"),
        "Project the kit creates and writes the DSN of.", default_text="default",
    ),
    Spec(
        "platform", "GLITCHTIP_KIT_PLATFORM", parse_platform, _const("python"),
        "Platform of that project.", default_text="python",
    ),
    Spec(
        "compose_project_name", "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME", parse_slug,
        _const("glitchtip"), "Compose project name (prefix of containers and volumes).",
        default_text="glitchtip",
    ),
    Spec(
        "target", "GLITCHTIP_KIT_TARGET", parse_choice(TARGETS, "deployment target"),
        _const("compose"),
        "Where GlitchTip runs: compose (one Docker host), swarm (`docker stack deploy`) or "
        "kubernetes (Helm values); recorded in .env, so later commands address the same one.",
        default_text="compose",
    ),
    Spec(
        "swarm_publish_mode", "GLITCHTIP_KIT_SWARM_PUBLISH_MODE",
        parse_choice(("ingress", "host"), "publish mode"), _const("ingress"),
        "Swarm: how web's port is published: ingress (routing mesh, any node, needs the "
        "kernel's IPVS) or host (one web task per node, behind your own load balancer).",
        default_text="ingress",
    ),
    Spec(
        "web_replicas", "GLITCHTIP_KIT_WEB_REPLICAS", int_between(1, 100, "number of replicas"),
        _const(1), "Web tasks (Swarm) or pods (Kubernetes); `provision scale web=N` records it.",
        default_text="1",
    ),
    Spec(
        "worker_replicas", "GLITCHTIP_KIT_WORKER_REPLICAS",
        int_between(1, 100, "number of replicas"), _const(1),
        "Worker tasks (Swarm) or pods (Kubernetes); `provision scale worker=N` records it.",
        default_text="1",
    ),
    Spec(
        "locust_image", "GLITCHTIP_KIT_LOCUST_IMAGE", parse_image,
        _const("locustio/locust:2.47.0"),
        "Locust image of the load test (compose.locust.yml, `provision load`).",
        default_text="`locustio/locust:2.47.0`",
    ),
    Spec(
        "locust_port", "GLITCHTIP_KIT_LOCUST_PORT", int_between(1, 65535, "port number"),
        _const(8089), "Host port of the Locust web UI (`make locust-start`), on `bind_address`.",
        default_text="8089",
    ),
    Spec(
        "load_project", "GLITCHTIP_KIT_LOAD_PROJECT", parse_name, _const("loadtest"),
        "Project the load test sends its events to (created if missing; never `project`).",
        default_text="loadtest",
    ),
    Spec(
        "proxy", "GLITCHTIP_KIT_PROXY", parse_choice(PROXY_CHOICES, "proxy choice"),
        _const("auto"),
        "TLS front door: caddy (Caddy on ports 80/443), none (your own proxy), or auto: caddy "
        "when glitchtip_domain is https:// with a public name.",
        default_text="auto",
    ),
    Spec(
        "caddy_image", "GLITCHTIP_KIT_CADDY_IMAGE", parse_image, _const(majors.CADDY_IMAGE),
        "Caddy image of the TLS proxy.", default_text=f"`{majors.CADDY_IMAGE}`",
    ),
    Spec(
        "acme_email", "GLITCHTIP_KIT_ACME_EMAIL", parse_optional_email, _const(""),
        "E-mail of the ACME account (certificate expiry notices); empty: none.",
        default_text="empty",
    ),
    Spec(
        "proxy_http_port", "GLITCHTIP_KIT_PROXY_HTTP_PORT", int_between(1, 65535, "port number"),
        _const(80), "Host port of the proxy's plain HTTP (redirects to https), on bind_address.",
        default_text="80",
    ),
    Spec(
        "proxy_https_port", "GLITCHTIP_KIT_PROXY_HTTPS_PORT",
        int_between(1, 65535, "port number"), _const(443),
        "Host port of the proxy's HTTPS, on bind_address (not 443: put it in glitchtip_domain).",
        default_text="443",
    ),
    Spec(
        "proxy_max_body_mb", "GLITCHTIP_KIT_PROXY_MAX_BODY_MB",
        int_between(1, 1024, "size in MiB"), _const(40),
        "Largest request body the proxy passes on, in MiB (413 above it); fits GlitchTip's "
        "largest envelopes and the 32 MiB chunks it asks sentry-cli to upload.",
        default_text="40",
    ),
    Spec(
        "proxy_subnet", "GLITCHTIP_KIT_PROXY_SUBNET", parse_proxy_subnet,
        lambda r: default_subnet(r["compose_project_name"]),
        "Subnet of the network between the proxy and web; the proxy's pinned address in it is "
        "the only one GlitchTip trusts X-Forwarded-* from.",
        derived=True, default_text="a /29 of 10.203.0.0/16 chosen by compose_project_name",
    ),
    Spec(
        "metrics", "GLITCHTIP_KIT_METRICS", parse_bool, _const(False),
        "Prometheus, Grafana and the exporters (compose.metrics.yml). Recorded in .env by "
        "`up --metrics`, so later commands keep them; `make metrics-stop` turns them off.",
        default_text="false",
    ),
    Spec(
        "prometheus_image", "GLITCHTIP_KIT_PROMETHEUS_IMAGE", parse_image,
        _const(majors.PROMETHEUS_IMAGE), "Prometheus image.",
        default_text=f"`{majors.PROMETHEUS_IMAGE}`",
    ),
    Spec(
        "grafana_image", "GLITCHTIP_KIT_GRAFANA_IMAGE", parse_image,
        _const(majors.GRAFANA_IMAGE), "Grafana image (OSS).",
        default_text=f"`{majors.GRAFANA_IMAGE}`",
    ),
    Spec(
        "postgres_exporter_image", "GLITCHTIP_KIT_POSTGRES_EXPORTER_IMAGE", parse_image,
        _const(majors.POSTGRES_EXPORTER_IMAGE), "Prometheus exporter of Postgres.",
        default_text=f"`{majors.POSTGRES_EXPORTER_IMAGE}`",
    ),
    Spec(
        "valkey_exporter_image", "GLITCHTIP_KIT_VALKEY_EXPORTER_IMAGE", parse_image,
        _const(majors.VALKEY_EXPORTER_IMAGE), "Prometheus exporter of Valkey (redis_exporter).",
        default_text=f"`{majors.VALKEY_EXPORTER_IMAGE}`",
    ),
    Spec(
        "prometheus_port", "GLITCHTIP_KIT_PROMETHEUS_PORT", int_between(1, 65535, "port number"),
        _const(9090), "Host port Prometheus publishes on (on bind_address).",
        default_text="9090",
    ),
    Spec(
        "grafana_port", "GLITCHTIP_KIT_GRAFANA_PORT", int_between(1, 65535, "port number"),
        _const(3000), "Host port Grafana publishes on (on bind_address).", default_text="3000",
    ),
    Spec(
        "prometheus_retention", "GLITCHTIP_KIT_PROMETHEUS_RETENTION", parse_retention,
        _const("15d"), "How long Prometheus keeps samples (a Prometheus duration, 2h or more).",
        default_text="15d",
    ),
    Spec(
        "error_budgets", "GLITCHTIP_KIT_ERROR_BUDGETS", parse_error_budgets,
        lambda r: {"default": dict(DEFAULT_BUDGET)},
        "Errors each project may report per window, by project slug or `default`; only in "
        "glitchtip.yaml, e.g. `default: {max_errors: 200, per: 1d}`.",
        default_text="`default: {max_errors: 200, per: 1d}`", file_only=True,
    ),
)  # fmt: skip


SPEC_BY_NAME: dict[str, Spec] = {spec.name: spec for spec in SPECS}

# Settings whose URL may hold a password: masked when shown, refused in glitchtip.yaml with one.
URL_WITH_PASSWORD = ("email_url", "database_url", "valkey_url")

# Settings that are secrets themselves: never shown, never accepted from glitchtip.yaml.
SECRET_SETTINGS = ("uploads_secret_access_key", "uploads_access_key_id")
