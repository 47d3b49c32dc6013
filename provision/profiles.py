"""Which services a deployment runs, by `profile` (standard or minimal).

standard: postgres, valkey, migrate, web, worker. minimal: GlitchTip's all-in-one mode, one
container serving the web and running the worker (and beat), named `web` like the official
`compose.minimal.yml` names it, so every command that talks to `web` (admin, backup, restore,
partman, the load test's target) works unchanged. GlitchTip 6 runs it without Valkey
(`VALKEY_URL=""`: tasks, cache and sessions in Postgres); GlitchTip 5's all-in-one still needs
Valkey (`majors.Major.all_in_one_needs_valkey`). The migrate service stays in both profiles:
migrations and the first admin happen before the app serves anyone.
"""

from __future__ import annotations

from typing import Any

MINIMAL = "minimal"
# compose.metrics.yml's services, started by the `metrics` step of `up` after the API token.
METRICS_SERVICES = (
    "prometheus",
    "grafana",
    "postgres-exporter",
    "valkey-exporter",
    "project-exporter",
)


def is_minimal(settings: Any) -> bool:
    """Whether `settings` deploy GlitchTip's all-in-one mode."""
    return getattr(settings, "profile", "standard") == MINIMAL


def uses_valkey(settings: Any) -> bool:
    """Whether the deployment runs a Valkey service."""
    return not is_minimal(settings) or settings.major.all_in_one_needs_valkey


def app_services(settings: Any) -> tuple[str, ...]:
    """The GlitchTip services that write events (stopped around a restore or an upgrade)."""
    return ("web",) if is_minimal(settings) else ("web", "worker")


def core_services(settings: Any) -> tuple[str, ...]:
    """The long-running services of a working stack (without the one-shot migrate): Postgres
    and Valkey only where the kit runs them (not when `database_url` / `valkey_url` point at
    external servers)."""
    postgres = () if getattr(settings, "external_database", False) else ("postgres",)
    bundled_valkey = uses_valkey(settings) and not getattr(settings, "external_valkey", False)
    valkey = ("valkey",) if bundled_valkey else ()
    return (*postgres, *valkey, *app_services(settings))


def queue_keys(settings: Any) -> tuple[str, ...]:
    """The Valkey lists holding the worker's backlog; none when the queue is in Postgres."""
    return tuple(settings.major.task_queue_keys) if uses_valkey(settings) else ()


def retired_services(settings: Any) -> tuple[str, ...]:
    """Services of the other profile that this one does not run (left by a profile switch)."""
    if not is_minimal(settings):
        return ()
    return ("worker",) if uses_valkey(settings) else ("worker", "valkey")


def metrics_services(settings: Any) -> tuple[str, ...]:
    """The metrics services compose.metrics.yml holds for `settings`: without the exporter of
    an external database or Valkey (the kit does not watch servers it does not run)."""
    left_out = set()
    if getattr(settings, "external_database", False):
        left_out.add("postgres-exporter")
    if getattr(settings, "external_valkey", False):
        left_out.add("valkey-exporter")
    return tuple(name for name in METRICS_SERVICES if name not in left_out)
