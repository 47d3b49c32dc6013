"""Values for GlitchTip's Helm chart from the kit's settings. Pure: no file, no secret.

Every secret reaches the pods from the kit's Secret (`manifests.py`) by reference:
`glitchtip.existingSecret` (SECRET_KEY), `glitchtip.database.existingSecret` (DATABASE_URL, with
an external database), `glitchtip.valkey.existingSecret` (REDIS_URL, with an external Valkey) and
`secretKeyRef`s in `extraEnvVars` (EMAIL_URL). The rest of the kit's GlitchTip environment
(public URL, registration, retention, e-mail sender, pool and concurrency sizes) carries over as
plain `extraEnvVars`, so a deployment moved from Compose behaves the same.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from provision import durability
from provision.errors import SettingsError
from provision.kubernetes import chart
from provision.settings import Settings

# The kit's Secret: keys the chart and extraEnvVars read.
SECRET_KEY_KEY = "SECRET_KEY"
DATABASE_URL_KEY = "DATABASE_URL"
REDIS_URL_KEY = "REDIS_URL"
EMAIL_URL_KEY = "EMAIL_URL"

# Per web process, the chart's defaults for one web pod (values.yaml `web.resources`); the kit
# runs `web_concurrency` processes in each pod, so it asks for that many times as much.
WEB_REQUEST_CPU_M = 100
WEB_REQUEST_MEMORY_MI = 256
WEB_LIMIT_CPU_M = 1000
WEB_LIMIT_MEMORY_MI = 512
# The worker of GlitchTip 6 is one process with async slots: the chart's defaults fit it.
WORKER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "350Mi"},
    "limits": {"cpu": "900m", "memory": "768Mi"},
}


def release_name(settings: Settings) -> str:
    """The Helm release and namespace: the deployment's `compose_project_name`, which must be a
    DNS label there (no `_`)."""
    name = settings.compose_project_name
    if not chart.is_release_name(name):
        raise SettingsError(
            f"compose_project_name: {name!r} cannot name a Helm release or namespace",
            "use lowercase letters, digits and '-' (no '_'), at most 53 characters",
        )
    return name


def secret_name(settings: Settings) -> str:
    """The name of the Secret holding the kit's secrets in the release's namespace."""
    return f"{release_name(settings)}-kit-secrets"


def external_database_url(settings: Settings) -> str:
    """The external database's URL as GlitchTip receives it (with `database_sslmode`), or ""
    when the chart's own Postgres is used."""
    return settings.effective_database_url if settings.database_url else ""


def external_valkey_url(settings: Settings) -> str:
    """The external Valkey/Redis URL, or "" when the chart's own Valkey is used. The chart
    hands it over as REDIS_URL, which GlitchTip 6 reads when VALKEY_URL is unset."""
    return settings.valkey_url


# The S3 credentials (settings kept in .env) -> the Secret's keys, named as boto3 reads them.
UPLOAD_SECRETS = {
    "uploads_access_key_id": "AWS_ACCESS_KEY_ID",
    "uploads_secret_access_key": "AWS_SECRET_ACCESS_KEY",
}


def upload_secrets(settings: Settings) -> dict[str, str]:
    """Key -> value of the S3 credentials that are set (none with an IAM role or no bucket)."""
    if not settings.s3_uploads:
        return {}
    return {
        key: getattr(settings, name)
        for name, key in UPLOAD_SECRETS.items()
        if getattr(settings, name)
    }


def upload_environment(settings: Settings) -> list[dict[str, Any]]:
    """Uploads on S3-compatible storage (django-storages), as compose.yml sets them."""
    if not settings.s3_uploads:
        return []
    env = [
        _env("DEFAULT_FILE_STORAGE", "storages.backends.s3boto3.S3Boto3Storage"),
        _env("AWS_STORAGE_BUCKET_NAME", settings.uploads_bucket),
    ]
    if settings.uploads_endpoint_url:
        env.append(_env("AWS_S3_ENDPOINT_URL", settings.uploads_endpoint_url))
    if settings.uploads_region:
        env.append(_env("AWS_DEFAULT_REGION", settings.uploads_region))
    env += [_secret_env(key, secret_name(settings), key) for key in upload_secrets(settings)]
    return env


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) as the chart joins them (`repository:tag`); a digest stays on the tag
    (`6.2.6@sha256:...`), which the chart's `repository:tag` turns back into the pinned image."""
    from provision.settings import _IMAGE

    match = _IMAGE.fullmatch(image)
    if match is None or not match.group("tag"):
        raise SettingsError(
            f"glitchtip_image: {image!r} has no tag, and the chart needs one",
            "pin a tag as well as the digest (name:tag@sha256:...)",
        )
    repository = image.split("@", 1)[0].rsplit(":", 1)[0]
    tag = match.group("tag")
    if match.group("digest"):
        tag = f"{tag}@{match.group('digest')}"
    return repository, tag


def _env(name: str, value: object) -> dict[str, str]:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return {"name": name, "value": text}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def shared_environment(settings: Settings) -> list[dict[str, Any]]:
    """`extraEnvVars` for web, worker and the migration job: the kit's GlitchTip settings."""
    major = settings.major
    env = [
        _secret_env(EMAIL_URL_KEY, secret_name(settings), EMAIL_URL_KEY),
        _env("DEFAULT_FROM_EMAIL", settings.default_from_email),
        _env("CSRF_TRUSTED_ORIGINS", settings.glitchtip_domain),
        _env("ENABLE_USER_REGISTRATION", settings.enable_user_registration),
        _env("ENABLE_SOCIAL_APPS_USER_REGISTRATION", settings.enable_user_registration),
        _env("ENABLE_ORGANIZATION_CREATION", settings.enable_organization_creation),
        _env(major.retention_env, settings.retention_days),
        _env("DATABASE_POOL_MAX_SIZE", settings.db_pool_max_size),
        # Pooled connections checked before use (provision/durability.py): a Postgres restart
        # makes batches wait instead of failing on a stale connection.
        _env("DATABASE_CONN_HEALTH_CHECKS", durability.DATABASE_CONN_HEALTH_CHECKS),
    ]
    if settings.glitchtip_domain.startswith("https://"):
        env.append(_env("SESSION_COOKIE_SECURE", True))
    return env + upload_environment(settings)


def _web_resources(processes: int) -> dict[str, dict[str, str]]:
    return {
        "requests": {
            "cpu": f"{WEB_REQUEST_CPU_M * processes}m",
            "memory": f"{WEB_REQUEST_MEMORY_MI * processes}Mi",
        },
        "limits": {
            "cpu": f"{WEB_LIMIT_CPU_M * processes}m",
            "memory": f"{WEB_LIMIT_MEMORY_MI * processes}Mi",
        },
    }


def public_host(settings: Settings) -> str:
    """The host name users open, without port."""
    return urlsplit(settings.glitchtip_domain).hostname or ""


def wants_ingress(settings: Settings) -> bool:
    """An Ingress for the public host, unless the public URL is this machine or an address
    (an Ingress rule needs a DNS name)."""
    import ipaddress

    host = public_host(settings)
    if host in ("", "localhost"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def check_supported(settings: Settings) -> None:
    """Refuse what the pinned chart cannot run."""
    if settings.glitchtip_major != chart.CHART_MAJOR_GLITCHTIP:
        raise SettingsError(
            f"glitchtip_major: GlitchTip {settings.glitchtip_major} cannot run from the Helm "
            f"chart {chart.CHART_VERSION} (its worker is GlitchTip 6's)",
            "set glitchtip_major: 6 for --target kubernetes (upgrade first: `provision upgrade`)",
        )


def chart_values(settings: Settings) -> dict[str, Any]:
    """The values file for `helm upgrade --install -f`, as a mapping. Pure."""
    check_supported(settings)
    secret = secret_name(settings)
    repository, tag = split_image(settings.glitchtip_image)
    database_url = external_database_url(settings)
    valkey_url = external_valkey_url(settings)
    major = settings.major

    glitchtip: dict[str, Any] = {
        "domain": settings.glitchtip_domain,
        "existingSecret": secret,
        "existingSecretKey": SECRET_KEY_KEY,
    }
    if database_url:
        glitchtip["database"] = {"existingSecret": secret, "existingSecretKey": DATABASE_URL_KEY}
    if valkey_url:
        glitchtip["valkey"] = {"existingSecret": secret, "existingSecretKey": REDIS_URL_KEY}

    web: dict[str, Any] = {
        "replicaCount": settings.web_replicas,
        "resources": _web_resources(settings.web_concurrency),
        "extraEnvVars": [
            _env(name, settings.web_concurrency) for name in major.web_concurrency_envs
        ],
    }
    if wants_ingress(settings):
        host = public_host(settings)
        ingress: dict[str, Any] = {
            "enabled": True,
            "hosts": [{"host": host, "paths": [{"path": "/", "pathType": "Prefix"}]}],
        }
        if settings.glitchtip_domain.startswith("https://"):
            ingress["tls"] = [{"secretName": f"{release_name(settings)}-tls", "hosts": [host]}]
        web["ingress"] = ingress

    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "glitchtip": glitchtip,
        "extraEnvVars": shared_environment(settings),
        "migrationJob": {
            "enabled": True,
            "command": list(chart.MIGRATE_COMMAND),
            "activeDeadlineSeconds": chart.MIGRATE_DEADLINE_SECONDS,
        },
        "web": web,
        "worker": {
            "enabled": True,
            "replicaCount": settings.worker_replicas,
            "resources": {part: dict(sizes) for part, sizes in WORKER_RESOURCES.items()},
            "extraEnvVars": [
                _env(major.worker_concurrency_env, settings.worker_concurrency),
            ],
        },
        # The chart's own Valkey and (CloudNativePG) Postgres, unless external ones are set.
        "valkey": {"enabled": not valkey_url},
        "postgresql": {"enabled": not database_url},
    }


VALUES_HEADER = (
    "# Values for GlitchTip's Helm chart {chart} {version} (GlitchTip {app}), written by the\n"
    "# GlitchTip kit from glitchtip.yaml: `provision render --target kubernetes` rewrites it.\n"
    "# No secret is in this file: they are in the Secret {secret} (kubernetes/secrets.yaml).\n"
)


def values_text(settings: Settings) -> str:
    """values.yaml: the header and the values as block YAML, in the order written above."""
    import yaml

    header = VALUES_HEADER.format(
        chart=chart.CHART_NAME,
        version=chart.CHART_VERSION,
        app=chart.CHART_APP_VERSION,
        secret=secret_name(settings),
    )
    body = yaml.safe_dump(
        chart_values(settings), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return header + body
