"""The resolved settings of one deployment directory (`Settings`), and where each value came
from as a message names it (`_where`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provision import majors
from provision.masking import MASK, mask_url_password
from provision.proxy.names import proxy_enabled
from provision.settings.base import (
    ENV_FILE,
    SETTINGS_FILE,
    SOURCE_DEFAULT,
    SOURCE_ENV_FILE,
    SOURCE_ENVIRONMENT,
    SOURCE_FILE,
    SOURCE_OPTION,
)
from provision.settings.metrics import DEFAULT_BUDGET
from provision.settings.specs import SECRET_SETTINGS, SPEC_BY_NAME, URL_WITH_PASSWORD


@dataclass(frozen=True)
class Settings:
    """The resolved, validated settings of one deployment directory."""

    directory: Path
    glitchtip_major: int
    glitchtip_domain: str
    bind_address: str
    http_port: int
    glitchtip_image: str
    postgres_image: str
    valkey_image: str
    postgres_version: int
    postgres_data_path: str
    partman_image: str
    default_from_email: str
    email_url: str
    enable_user_registration: bool
    enable_organization_creation: bool
    retention_days: int
    worker_pool: str
    worker_concurrency: int
    worker_prefetch: int
    web_concurrency: int
    db_pool_max_size: int
    postgres_max_connections: int
    postgres_shared_buffers_mb: int
    postgres_effective_cache_size_mb: int
    postgres_maintenance_work_mem_mb: int
    advanced_partitioning: bool
    admin_email: str
    organization: str
    project: str
    platform: str
    compose_project_name: str
    locust_image: str
    locust_port: int
    load_project: str
    profile: str = "standard"
    metrics: bool = False
    prometheus_image: str = majors.PROMETHEUS_IMAGE
    grafana_image: str = majors.GRAFANA_IMAGE
    postgres_exporter_image: str = majors.POSTGRES_EXPORTER_IMAGE
    valkey_exporter_image: str = majors.VALKEY_EXPORTER_IMAGE
    prometheus_port: int = 9090
    grafana_port: int = 3000
    prometheus_retention: str = "15d"
    proxy: str = "auto"
    caddy_image: str = majors.CADDY_IMAGE
    acme_email: str = ""
    proxy_http_port: int = 80
    proxy_https_port: int = 443
    proxy_max_body_mb: int = 40
    proxy_subnet: str = "10.203.0.0/29"
    error_budgets: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {"default": dict(DEFAULT_BUDGET)}
    )
    # Container memory limits (provision/limits.py); defaults only for hand-built Settings.
    web_memory_limit_mb: int = 1024
    worker_memory_limit_mb: int = 1024
    postgres_memory_limit_mb: int = 1024
    valkey_memory_limit_mb: int = 256
    target: str = "compose"
    swarm_publish_mode: str = "ingress"
    web_replicas: int = 1
    worker_replicas: int = 1
    database_url: str = ""
    database_sslmode: str = ""
    valkey_url: str = ""
    uploads_bucket: str = ""
    uploads_endpoint_url: str = ""
    uploads_region: str = ""
    uploads_access_key_id: str = ""
    uploads_secret_access_key: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def major(self) -> majors.Major:
        """The `majors.MAJORS` row of the chosen GlitchTip major."""
        return majors.MAJORS[self.glitchtip_major]

    @property
    def proxy_enabled(self) -> bool:
        """Whether the Caddy front door runs (`proxy`, and for `auto` the public URL)."""
        host = urlsplit(self.glitchtip_domain).hostname or ""
        return proxy_enabled(self.proxy, self.glitchtip_domain, host)

    @property
    def internal_url(self) -> str:
        """Where the kit reaches GlitchTip from this host: the published web port, or with the
        proxy its plain-HTTP door for this host only (127.0.0.1:http_port)."""
        if self.proxy_enabled:
            return f"http://127.0.0.1:{self.http_port}"
        address = self.bind_address
        if ipaddress.ip_address(address).is_unspecified:
            address = "127.0.0.1"
        elif ":" in address:
            address = f"[{address}]"
        return f"http://{address}:{self.http_port}"

    @property
    def settings_path(self) -> Path:
        return self.directory / SETTINGS_FILE

    @property
    def env_path(self) -> Path:
        return self.directory / ENV_FILE

    def value(self, name: str) -> Any:
        """The value of setting `name`."""
        return getattr(self, name)

    def display_value(self, name: str) -> Any:
        """The value as shown to the operator (passwords in URLs masked, secrets masked)."""
        value = getattr(self, name)
        if name in SECRET_SETTINGS:
            return MASK if value else ""
        return mask_url_password(value) if name in URL_WITH_PASSWORD else value

    @property
    def external_database(self) -> bool:
        """Postgres is an existing server (`database_url`), not the bundled service."""
        return bool(self.database_url)

    @property
    def external_valkey(self) -> bool:
        """Valkey is an existing server (`valkey_url`), not the bundled service."""
        return bool(self.valkey_url)

    @property
    def s3_uploads(self) -> bool:
        """Uploads go to an S3 bucket, not the uploads volume."""
        return bool(self.uploads_bucket)

    @property
    def database_url_suffix(self) -> str:
        """What compose.yml appends to `${DATABASE_URL}`: `database_sslmode` as libpq's query
        parameter (not a secret, so it may be written into the rendered file)."""
        if not self.database_url or not self.database_sslmode:
            return ""
        joiner = "&" if urlsplit(self.database_url).query else "?"
        return f"{joiner}sslmode={self.database_sslmode}"

    @property
    def effective_database_url(self) -> str:
        """The URL GlitchTip receives: `database_url` plus `database_url_suffix`."""
        return self.database_url + self.database_url_suffix

    def external_services(self) -> dict[str, str]:
        """service -> where it is: "bundled" or the masked address of the external one."""
        return {
            "postgres": mask_url_password(self.database_url) if self.database_url else "bundled",
            "valkey": mask_url_password(self.valkey_url) if self.valkey_url else "bundled",
            "uploads": (
                f"s3://{self.uploads_bucket}"
                + (f" at {self.uploads_endpoint_url}" if self.uploads_endpoint_url else "")
                if self.uploads_bucket
                else "volume"
            ),
        }


def _where(settings: Settings, name: str) -> str:
    source = settings.sources.get(name, SOURCE_DEFAULT)
    spec = SPEC_BY_NAME[name]
    return {
        SOURCE_OPTION: f"option {name}",
        SOURCE_ENVIRONMENT: f"environment variable {spec.env}",
        SOURCE_FILE: SETTINGS_FILE,
        SOURCE_ENV_FILE: ".env",
    }.get(source, source)
