"""The kit's settings: one table of specs, precedence, validation.

Non-secret settings live in `glitchtip.yaml`, a file the operator may commit. Each setting is
resolved in this order and `sources` records which one won:

    option ("--set name=value" or a named option) > environment variable > glitchtip.yaml > default

Defaults marked "derived" are computed from other settings or from the host (images from the
GlitchTip major, concurrency from CPUs and memory, the Postgres layout from its image tag).
`email_url` may hold an SMTP password, so glitchtip.yaml must not contain one; it is kept in
`.env` after the first render and read back from there (source ".env") when no higher source
sets it. `advanced_partitioning` is read back the same way from the choice the first render
recorded, so a deployment started with `--set advanced_partitioning=true` keeps it.

Everything is validated before anything is written; a bad value is a `SettingsError` naming the
setting, where it came from and the fix.

The package splits that job by concern; this module re-exports every name the single
`settings.py` had, so `from provision.settings import X` works as before:

- `base`: file names, sources, `Invalid`, `shown`
- `urls`: passwords inside URLs, found and masked
- `parsers`: the general value parsers; `mail`, `external`, `tls`, `metrics`: each
  capability's own
- `sizing`: host-derived defaults; `limits`: the containers' memory, CPU and pids limits
- `specs`: the table of settings; `model`: `Settings`
- `yamlfile`: reading glitchtip.yaml; `sources`: precedence and the `.env` fallback
- `checks`: combinations refused; `init_text`: glitchtip.yaml for `init`, `config`'s report

`host_resources` is looked up here at call time (`specs.host_resources`): replace it on this
module to pin the host.
"""

from __future__ import annotations

from provision.masking import (
    _QUERY_PASSWORD,
    mask_url_password,
    url_passwords,
)
from provision.settings import limits
from provision.settings.base import (
    ENV_FILE,
    MAX_SHOWN,
    SETTINGS_FILE,
    SOURCE_DEFAULT,
    SOURCE_DERIVED,
    SOURCE_ENV_FILE,
    SOURCE_ENVIRONMENT,
    SOURCE_FILE,
    SOURCE_OPTION,
    Invalid,
    shown,
)
from provision.settings.checks import (
    check_combinations,
    check_external,
    check_limits,
    check_profile,
    check_proxy,
    check_tuning,
)
from provision.settings.external import (
    DATABASE_SCHEMES,
    SSL_MODES,
    VALKEY_SCHEMES,
    VALKEY_SCHEMES_5,
    _service_url_parts,
    is_loopback_host,
    parse_access_key,
    parse_bucket,
    parse_database_url,
    parse_endpoint_url,
    parse_region,
    parse_secret_access_key,
    parse_sslmode,
    parse_valkey_url,
)
from provision.settings.init_text import (
    _ALWAYS_WRITTEN,
    _yaml_scalar,
    describe,
    initial_settings_text,
    write_initial_settings,
)
from provision.settings.mail import (
    _EMAIL,
    _NEEDS_HOST,
    EMAIL_SCHEMES,
    _ascii_address,
    parse_email,
    parse_email_url,
    parse_from_email,
)
from provision.settings.metrics import (
    _DURATION_UNITS,
    _PROMETHEUS_DURATION,
    _WINDOW,
    _WINDOW_SECONDS,
    BUDGET_KEYS,
    DEFAULT_BUDGET,
    MAX_BUDGET_ERRORS,
    MAX_BUDGET_WINDOW,
    _budget_slug,
    _parse_max_errors,
    _parse_window,
    budget_window_seconds,
    parse_error_budgets,
    parse_retention,
)
from provision.settings.model import (
    Settings,
    _where,
)
from provision.settings.parsers import (
    _FALSE,
    _IMAGE,
    _LABEL,
    _TRUE,
    ascii_host,
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
    MAX_WORKER_THREADS,
    POSTGRES_DEFAULT_MAX_CONNECTIONS,
    RESERVED_CONNECTIONS,
    connections_needed,
    derive_concurrency,
    derive_db_pool_max_size,
    derive_postgres_memory,
    derive_worker_concurrency,
    derive_worker_pool,
    host_resources,
    worker_db_slots,
    worker_prefetch_default,
    worker_processes,
)
from provision.settings.sources import (
    ENV_FILE_FALLBACK,
    RECORDED_WHEN_GIVEN,
    _from_env_file,
    load_settings,
    recorded_values,
)
from provision.settings.specs import (
    PROFILES,
    SECRET_SETTINGS,
    SPEC_BY_NAME,
    SPECS,
    TARGETS,
    URL_WITH_PASSWORD,
    WORKER_POOLS,
    Spec,
    _const,
    _default_postgres_version,
    _major_row,
)
from provision.settings.tls import (
    _RESERVED_SUBNETS,
    parse_optional_email,
    parse_proxy_subnet,
)
from provision.settings.yamlfile import (
    MAPPING_DEPTH,
    MAX_SETTINGS_BYTES,
    _check_yaml_shape,
    _key_text,
    _suggest,
    read_settings_file,
)

__all__ = [
    "BUDGET_KEYS",
    "DATABASE_SCHEMES",
    "DEFAULT_BUDGET",
    "EMAIL_SCHEMES",
    "ENV_FILE",
    "ENV_FILE_FALLBACK",
    "MAPPING_DEPTH",
    "MAX_BUDGET_ERRORS",
    "MAX_BUDGET_WINDOW",
    "MAX_SETTINGS_BYTES",
    "MAX_SHOWN",
    "MAX_WORKER_THREADS",
    "POSTGRES_DEFAULT_MAX_CONNECTIONS",
    "PROFILES",
    "RECORDED_WHEN_GIVEN",
    "RESERVED_CONNECTIONS",
    "SECRET_SETTINGS",
    "SETTINGS_FILE",
    "SOURCE_DEFAULT",
    "SOURCE_DERIVED",
    "SOURCE_ENVIRONMENT",
    "SOURCE_ENV_FILE",
    "SOURCE_FILE",
    "SOURCE_OPTION",
    "SPECS",
    "SPEC_BY_NAME",
    "SSL_MODES",
    "TARGETS",
    "URL_WITH_PASSWORD",
    "VALKEY_SCHEMES",
    "VALKEY_SCHEMES_5",
    "WORKER_POOLS",
    "_ALWAYS_WRITTEN",
    "_DURATION_UNITS",
    "_EMAIL",
    "_FALSE",
    "_IMAGE",
    "_LABEL",
    "_NEEDS_HOST",
    "_PROMETHEUS_DURATION",
    "_QUERY_PASSWORD",
    "_RESERVED_SUBNETS",
    "_TRUE",
    "_WINDOW",
    "_WINDOW_SECONDS",
    "Invalid",
    "Settings",
    "Spec",
    "_ascii_address",
    "_budget_slug",
    "_check_yaml_shape",
    "_const",
    "_default_postgres_version",
    "_from_env_file",
    "_key_text",
    "_major_row",
    "_parse_max_errors",
    "_parse_window",
    "_service_url_parts",
    "_suggest",
    "_where",
    "_yaml_scalar",
    "ascii_host",
    "budget_window_seconds",
    "check_combinations",
    "check_external",
    "check_limits",
    "check_profile",
    "check_proxy",
    "check_tuning",
    "connections_needed",
    "derive_concurrency",
    "derive_db_pool_max_size",
    "derive_postgres_memory",
    "derive_worker_concurrency",
    "derive_worker_pool",
    "describe",
    "host_resources",
    "image_tag_major",
    "initial_settings_text",
    "int_between",
    "is_loopback_host",
    "limits",
    "load_settings",
    "mask_url_password",
    "parse_abs_path",
    "parse_access_key",
    "parse_bool",
    "parse_bucket",
    "parse_choice",
    "parse_database_url",
    "parse_email",
    "parse_email_url",
    "parse_endpoint_url",
    "parse_error_budgets",
    "parse_from_email",
    "parse_image",
    "parse_ip",
    "parse_major",
    "parse_name",
    "parse_optional_email",
    "parse_platform",
    "parse_proxy_subnet",
    "parse_public_url",
    "parse_region",
    "parse_retention",
    "parse_secret_access_key",
    "parse_slug",
    "parse_sslmode",
    "parse_valkey_url",
    "read_settings_file",
    "recorded_values",
    "shown",
    "url_passwords",
    "worker_db_slots",
    "worker_prefetch_default",
    "worker_processes",
    "write_initial_settings",
]
