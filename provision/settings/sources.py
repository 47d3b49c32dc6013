"""Precedence: each setting from an option, the environment, glitchtip.yaml, `.env` (the
values an earlier render keeps there) or its default, and which one won (`sources`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision.errors import SettingsError
from provision.masking import url_passwords
from provision.settings.base import (
    ENV_FILE,
    SETTINGS_FILE,
    SOURCE_DEFAULT,
    SOURCE_DERIVED,
    SOURCE_ENV_FILE,
    SOURCE_ENVIRONMENT,
    SOURCE_FILE,
    SOURCE_OPTION,
    Invalid,
)
from provision.settings.checks import check_combinations
from provision.settings.model import Settings
from provision.settings.specs import (
    SECRET_SETTINGS,
    SPEC_BY_NAME,
    SPECS,
    URL_WITH_PASSWORD,
    Spec,
)
from provision.settings.yamlfile import _key_text, _suggest, read_settings_file


def load_settings(
    directory: Path,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve and validate every setting of the deployment in `directory`.

    `overrides` are command-line values keyed by setting name (None values are ignored);
    `environ` defaults to `os.environ`. Raises `SettingsError` on the first bad value.
    """
    directory = Path(directory)
    environ = os.environ if environ is None else environ
    options = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key in options:
        if key not in SPEC_BY_NAME:
            raise SettingsError(
                f"{_key_text(key)}: unknown setting given as an option", _suggest(key[:100])
            )
    file_values = read_settings_file(directory / SETTINGS_FILE)

    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        candidates: list[tuple[str, str, object]] = []
        if spec.name in options:
            candidates.append((SOURCE_OPTION, f"option {spec.name}", options[spec.name]))
        if environ.get(spec.env, "") != "":
            candidates.append(
                (SOURCE_ENVIRONMENT, f"environment variable {spec.env}", environ[spec.env])
            )
        if file_values.get(spec.name) is not None:
            candidates.append((SOURCE_FILE, SETTINGS_FILE, file_values[spec.name]))
        if spec.file_only and candidates and candidates[0][0] != SOURCE_FILE:
            raise SettingsError(
                f"{spec.name} (from {candidates[0][1]}): can only be set in {SETTINGS_FILE}",
                f"write it in {directory / SETTINGS_FILE} (see docs/metrics.md)",
            )
        if candidates:
            source, where, raw = candidates[0]
            try:
                value = spec.parse(raw)
            except Invalid as problem:
                raise SettingsError(
                    f"{spec.name} (from {where}): {problem.problem}", problem.fix
                ) from None
            if source == SOURCE_FILE and (
                (spec.name in SECRET_SETTINGS and value)
                or (spec.name in URL_WITH_PASSWORD and url_passwords(value))
            ):
                what = "is a secret" if spec.name in SECRET_SETTINGS else "holds a password"
                raise SettingsError(
                    f"{spec.name} (from {SETTINGS_FILE}): {what} in a file meant to be committed",
                    f"remove it from glitchtip.yaml and set {spec.env} in the environment or "
                    f"pass --set {spec.name}=...; the kit keeps it in .env (0600)",
                )
        elif spec.name in ENV_FILE_FALLBACK and (
            (stored := _from_env_file(directory, spec)) is not None
        ):
            # Kept in .env by an earlier render; the default stays labelled as the default.
            value = stored
            source = SOURCE_DEFAULT if stored == spec.default(resolved) else SOURCE_ENV_FILE
        else:
            source = SOURCE_DERIVED if spec.derived else SOURCE_DEFAULT
            value = spec.default(resolved)
        resolved[spec.name] = value
        sources[spec.name] = source

    settings = Settings(directory=directory, sources=sources, **resolved)
    check_combinations(settings)
    return settings


# Settings that an earlier render keeps in `.env` and that are read back from there when no
# option, variable or glitchtip.yaml sets them: the e-mail URL (it may hold a password) and the
# advanced-partitioning choice recorded at the first render (it cannot change afterwards).
ENV_FILE_FALLBACK: dict[str, str] = {
    "email_url": "EMAIL_URL",
    # External services: their URLs and keys may hold secrets, so .env is their home.
    "database_url": "DATABASE_URL",
    "database_sslmode": "GLITCHTIP_KIT_DATABASE_SSLMODE",
    "valkey_url": "VALKEY_URL",
    "uploads_bucket": "AWS_STORAGE_BUCKET_NAME",
    "uploads_endpoint_url": "AWS_S3_ENDPOINT_URL",
    "uploads_region": "AWS_DEFAULT_REGION",
    "uploads_access_key_id": "AWS_ACCESS_KEY_ID",
    "uploads_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "advanced_partitioning": "GLITCHTIP_KIT_ADVANCED_PARTITIONING",
    # `up --metrics` / `down --only-metrics` record the choice; every render writes it back.
    "metrics": "GLITCHTIP_KIT_METRICS",
}


# The settings that identify a running deployment. When one was given only for one run (an
# option or an environment variable), render records it in `.env` so that later commands without
# it (`down`, `status`, the next `up`) still address the same stack instead of silently falling
# back to the default: another Compose project, another port, or another GlitchTip major (an
# unintended upgrade). glitchtip.yaml stays the source of truth: values it sets are not recorded.
RECORDED_WHEN_GIVEN: dict[str, str] = {
    "glitchtip_major": "GLITCHTIP_KIT_MAJOR",
    "compose_project_name": "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME",
    "bind_address": "GLITCHTIP_KIT_BIND_ADDRESS",
    "http_port": "GLITCHTIP_KIT_HTTP_PORT",
    "glitchtip_domain": "GLITCHTIP_DOMAIN",
    "prometheus_port": "GLITCHTIP_KIT_PROMETHEUS_PORT",
    "grafana_port": "GLITCHTIP_KIT_GRAFANA_PORT",
    # Which services exist: `down`, `status` and the next `up` must see the same set.
    "profile": "GLITCHTIP_KIT_PROFILE",
    "target": "GLITCHTIP_KIT_TARGET",
    "web_replicas": "GLITCHTIP_KIT_WEB_REPLICAS",
    "worker_replicas": "GLITCHTIP_KIT_WORKER_REPLICAS",
}


ENV_FILE_FALLBACK.update(RECORDED_WHEN_GIVEN)


def recorded_values(settings: Settings) -> dict[str, str]:
    """The `.env` keys of `RECORDED_WHEN_GIVEN`: the value when it was given for this run or
    read back from `.env`, else empty (a default or glitchtip.yaml value needs no record)."""
    values = {}
    for name, key in RECORDED_WHEN_GIVEN.items():
        source = settings.sources.get(name)
        given = source in (SOURCE_OPTION, SOURCE_ENVIRONMENT, SOURCE_ENV_FILE)
        values[key] = str(getattr(settings, name)) if given else ""
    return values


def _from_env_file(directory: Path, spec: Spec) -> Any:
    from provision.envfile import read_env_file

    key = ENV_FILE_FALLBACK[spec.name]
    stored = read_env_file(directory / ENV_FILE).get(key)
    if not stored:
        return None
    try:
        return spec.parse(stored)
    except Invalid as problem:
        raise SettingsError(
            f"{spec.name} (from .env {key}): {problem.problem}", problem.fix
        ) from None
