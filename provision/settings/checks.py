"""Combinations of valid values that cannot work together, refused with the reason."""

from __future__ import annotations

from urllib.parse import urlsplit

from provision import majors
from provision.errors import SettingsError
from provision.settings.external import VALKEY_SCHEMES_5
from provision.settings.limits import POSTGRES_BASE_MB
from provision.settings.model import Settings, _where
from provision.settings.parsers import image_tag_major
from provision.settings.sizing import RESERVED_CONNECTIONS, connections_needed, worker_db_slots


def check_combinations(settings: Settings) -> None:
    """Refuse combinations of valid values that cannot work together, with the reason."""
    major = settings.major
    if settings.advanced_partitioning and not major.supports_partman:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): "
            f"GlitchTip {major.number} has no pg_partman support (it manages partitions itself)",
            "set advanced_partitioning: false, or glitchtip_major: 5",
        )
    check_profile(settings)
    check_tuning(settings)
    check_limits(settings)
    check_external(settings)
    tagged = image_tag_major(settings.glitchtip_image)
    if tagged is not None and tagged in majors.MAJORS and tagged != major.number:
        raise SettingsError(
            f"glitchtip_image (from {_where(settings, 'glitchtip_image')}): tag "
            f"{settings.glitchtip_image!r} is GlitchTip {tagged}, but glitchtip_major is "
            f"{major.number}",
            f"set glitchtip_major: {tagged}, or use a GlitchTip {major.number} image",
        )
    version = settings.postgres_version
    if version < majors.MINIMUM_POSTGRES:
        raise SettingsError(
            f"postgres_image (from {_where(settings, 'postgres_image')}): Postgres {version} is "
            f"older than {majors.MINIMUM_POSTGRES}, which GlitchTip requires",
            f"use Postgres {majors.MINIMUM_POSTGRES} or newer",
        )
    path = settings.postgres_data_path
    if version >= majors.POSTGRES_NEW_LAYOUT and path == "/var/lib/postgresql/data":
        raise SettingsError(
            f"postgres_data_path (from {_where(settings, 'postgres_data_path')}): Postgres "
            f"{version} keeps its data under /var/lib/postgresql/<version>; a volume at "
            "/var/lib/postgresql/data is refused by the image",
            "mount it at /var/lib/postgresql (remove postgres_data_path to get the default)",
        )
    if version < majors.POSTGRES_NEW_LAYOUT and path == "/var/lib/postgresql":
        raise SettingsError(
            f"postgres_data_path (from {_where(settings, 'postgres_data_path')}): Postgres "
            f"{version} writes to /var/lib/postgresql/data, an anonymous volume would hide the "
            "data from the named volume",
            "mount it at /var/lib/postgresql/data (remove postgres_data_path to get the default)",
        )
    check_proxy(settings)
    if settings.metrics:
        _refuse_shared_ports(
            settings, ("prometheus_port", "grafana_port"), f" on {settings.bind_address}"
        )
    partman_version = image_tag_major(settings.partman_image)
    if partman_version is not None and partman_version != version:
        raise SettingsError(
            f"partman_image (from {_where(settings, 'partman_image')}): Postgres "
            f"{partman_version} differs from postgres_image's {version}; the override could not "
            "read the data volume",
            f"use a pg_partman image of Postgres {version}",
        )


def check_profile(settings: Settings) -> None:
    """Refuse what the all-in-one profile cannot run: the metrics stack (its Valkey exporter
    and worker panels assume the standard services, and Prometheus with Grafana would use more
    memory than minimal saves) and pg_partman (its override configures the worker service)."""
    if settings.profile != "minimal":
        return
    where = _where(settings, "profile")
    if settings.metrics:
        raise SettingsError(
            f"metrics (from {_where(settings, 'metrics')}): profile minimal (from {where}) runs "
            "without the metrics stack (its exporters expect the standard services, and "
            "Prometheus and Grafana need more memory than minimal saves)",
            "stop the metrics first (`provision down --only-metrics`), or use profile: standard",
        )
    if settings.advanced_partitioning:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): profile "
            f"minimal (from {where}) has no separate worker for pg_partman's override",
            "use profile: standard with advanced partitioning",
        )


def check_proxy(settings: Settings) -> None:
    """Refuse a TLS proxy for an http:// URL, and proxy ports that clash with the kit's door."""
    if settings.proxy == "caddy" and not settings.glitchtip_domain.startswith("https://"):
        raise SettingsError(
            f"proxy (from {_where(settings, 'proxy')}): caddy serves HTTPS, but "
            f"glitchtip_domain is {settings.glitchtip_domain}",
            "set glitchtip_domain to the https:// URL users open, or proxy: none",
        )
    if not settings.proxy_enabled:
        return
    _refuse_shared_ports(settings, ("proxy_http_port", "proxy_https_port"))


def _refuse_shared_ports(settings: Settings, names: tuple[str, ...], where: str = "") -> None:
    """Refuse a port of `names` that http_port or an earlier one of `names` already takes:
    the second service would not start (the address is in use)."""
    ports = {"http_port": settings.http_port}
    for name in names:
        port = getattr(settings, name)
        clash = next((other for other, used in ports.items() if used == port), None)
        if clash:
            raise SettingsError(
                f"{name} (from {_where(settings, name)}): port {port} is also {clash}",
                f"give {name} a port of its own{where}",
            )
        ports[name] = port


def check_external(settings: Settings) -> None:
    """Refuse external-service settings that cannot work together (docs/scale-out.md, External
    Postgres, Valkey and uploads): pg_partman on a server the kit does not run, a TLS mode twice
    or without a server, a Valkey scheme GlitchTip 5 cannot read, half an S3 configuration."""
    from urllib.parse import parse_qs

    if settings.external_database and settings.advanced_partitioning:
        raise SettingsError(
            f"advanced_partitioning (from {_where(settings, 'advanced_partitioning')}): needs "
            "the bundled Postgres (compose.part.yml swaps in a pg_partman image)",
            "set advanced_partitioning: false, or leave database_url empty",
        )
    if settings.database_sslmode and not settings.external_database:
        raise SettingsError(
            f"database_sslmode (from {_where(settings, 'database_sslmode')}): applies to an "
            "external database only (the bundled one is reached on the stack's own network)",
            "set database_url, or remove database_sslmode",
        )
    query = urlsplit(settings.database_url).query if settings.external_database else ""
    if settings.database_sslmode and "sslmode" in parse_qs(query):
        raise SettingsError(
            f"database_sslmode (from {_where(settings, 'database_sslmode')}): database_url "
            "already sets sslmode",
            "keep one of them",
        )
    scheme = settings.valkey_url.partition("://")[0].lower()
    if (
        settings.external_valkey
        and settings.glitchtip_major == 5
        and scheme not in VALKEY_SCHEMES_5
    ):
        raise SettingsError(
            f"valkey_url (from {_where(settings, 'valkey_url')}): GlitchTip 5 (Celery, "
            f"redis-py) does not read {scheme}:// URLs",
            "use redis:// (or rediss:// for TLS)",
        )
    s3_only = (
        "uploads_endpoint_url",
        "uploads_region",
        "uploads_access_key_id",
        "uploads_secret_access_key",
    )
    if not settings.s3_uploads:
        for name in s3_only:
            if getattr(settings, name):
                raise SettingsError(
                    f"{name} (from {_where(settings, name)}): no uploads_bucket is set",
                    "set uploads_bucket, or remove it",
                )
    key_id, secret = settings.uploads_access_key_id, settings.uploads_secret_access_key
    if bool(key_id) != bool(secret):
        missing = "uploads_secret_access_key" if key_id else "uploads_access_key_id"
        raise SettingsError(
            f"{missing}: the bucket's access key id and secret access key go together",
            "set both (uploads_access_key_id and uploads_secret_access_key), or neither to use "
            "the instance's role",
        )


def check_tuning(settings: Settings) -> None:
    """Refuse worker and database sizes that cannot work together: tasks waiting for a pooled
    connection fail after 30 s, and pools that do not fit in max_connections fail under load."""
    major = settings.major
    fixed_pool = major.all_in_one_worker_pool if settings.profile == "minimal" else None
    if fixed_pool is not None and settings.worker_pool != fixed_pool:
        raise SettingsError(
            f"worker_pool (from {_where(settings, 'worker_pool')}): {settings.worker_pool}, but "
            f"GlitchTip {major.number}'s all-in-one (profile: minimal) always runs its worker "
            f"with {fixed_pool}",
            "remove worker_pool, or use profile: standard for a worker of its own",
        )
    slots = worker_db_slots(major, settings.worker_pool, settings.worker_concurrency)
    if slots > settings.db_pool_max_size:
        raise SettingsError(
            f"db_pool_max_size (from {_where(settings, 'db_pool_max_size')}): "
            f"{settings.db_pool_max_size} connections per process, but the worker runs {slots} "
            "slots that each need one",
            f"set db_pool_max_size to at least {slots}, or lower worker_concurrency",
        )
    needed = connections_needed(
        major,
        settings.worker_pool,
        settings.worker_concurrency,
        settings.web_concurrency,
        settings.db_pool_max_size,
    )
    if needed > settings.postgres_max_connections:
        raise SettingsError(
            f"postgres_max_connections (from {_where(settings, 'postgres_max_connections')}): "
            f"{settings.postgres_max_connections}, but the web and worker pools may open "
            f"{needed} (including {RESERVED_CONNECTIONS} reserved)",
            f"set postgres_max_connections to at least {needed}, or lower db_pool_max_size, "
            "web_concurrency or worker_concurrency",
        )
    if major.worker_prefetch_env is not None and settings.worker_pool != "solo":
        window = settings.worker_concurrency * settings.worker_prefetch
        if settings.worker_prefetch != 0 and window < major.ingest_batch_size:
            raise SettingsError(
                f"worker_prefetch (from {_where(settings, 'worker_prefetch')}): a window of "
                f"{settings.worker_concurrency} x {settings.worker_prefetch} = {window} "
                f"messages never fills a batch of {major.ingest_batch_size}: the worker would "
                f"store {window} events per 2 s",
                f"set worker_prefetch to at least "
                f"{-(-major.ingest_batch_size // settings.worker_concurrency)} (or 0: unlimited)",
            )


def check_limits(settings: Settings) -> None:
    """Refuse a Postgres limit its own shared buffers do not fit in: the kernel would kill
    Postgres as soon as the buffers fill, and every connection with it."""
    needed = settings.postgres_shared_buffers_mb + POSTGRES_BASE_MB
    if settings.postgres_memory_limit_mb < needed:
        raise SettingsError(
            f"postgres_memory_limit_mb (from {_where(settings, 'postgres_memory_limit_mb')}): "
            f"{settings.postgres_memory_limit_mb} MiB, but shared buffers alone take "
            f"{settings.postgres_shared_buffers_mb} MiB",
            f"set postgres_memory_limit_mb to at least {needed}, or lower "
            "postgres_shared_buffers_mb",
        )
