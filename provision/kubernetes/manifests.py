"""The manifests the kit writes itself: the release's Namespace and the Secret with its secrets.

Pure: `.env`'s values in, YAML text out. The values are base64 in `data` (what the API server
stores and `kubectl get -o yaml` shows), so the file is the object as applied; it holds secrets
and is written 0600 and never printed. The Secret is labelled as the kit's, not Helm's: the
chart only references it, so `helm uninstall` leaves it (and its SECRET_KEY) in place.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from provision.errors import SecretsError
from provision.kubernetes import values
from provision.settings import Settings

MANAGED_BY = {"app.kubernetes.io/managed-by": "glitchtip-kit"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def secret_data(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """Key -> plain value of the kit's Secret: SECRET_KEY and EMAIL_URL always, DATABASE_URL and
    REDIS_URL when those services are external (the chart's own ones make their own), the S3
    credentials when uploads go to a bucket with keys."""
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        raise SecretsError(
            "SECRET_KEY is missing from .env", "run `provision init` (it never replaces one)"
        )
    data = {values.SECRET_KEY_KEY: secret_key, values.EMAIL_URL_KEY: settings.email_url}
    database_url = values.external_database_url(settings)
    if database_url:
        data[values.DATABASE_URL_KEY] = database_url
    valkey_url = values.external_valkey_url(settings)
    if valkey_url:
        data[values.REDIS_URL_KEY] = valkey_url
    data.update(values.upload_secrets(settings))
    return data


def namespace_manifest(settings: Settings) -> dict[str, Any]:
    """The release's Namespace (applied before the Secret that lives in it)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": values.release_name(settings), "labels": dict(MANAGED_BY)},
    }


def secret_manifest(settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """The Secret the chart's values reference by name."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": values.secret_name(settings),
            "namespace": values.release_name(settings),
            "labels": dict(MANAGED_BY),
        },
        "type": "Opaque",
        "data": {key: _b64(value) for key, value in secret_data(settings, env).items()},
    }


SECRETS_HEADER = (
    "# The GlitchTip kit's secrets for Kubernetes, from .env (mode 0600). NEVER commit this file.\n"
    "# Apply: kubectl apply --server-side -f kubernetes/secrets.yaml\n"
)


def manifests(settings: Settings, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every object of secrets.yaml, in apply order."""
    return [namespace_manifest(settings), secret_manifest(settings, env)]


def secrets_text(settings: Settings, env: Mapping[str, str]) -> str:
    """secrets.yaml: the Namespace and the Secret as a multi-document YAML stream."""
    import yaml

    body = yaml.safe_dump_all(manifests(settings, env), sort_keys=False, explicit_start=True)
    return SECRETS_HEADER + body
