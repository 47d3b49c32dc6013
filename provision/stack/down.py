"""Stopping the stack: containers go, named volumes (the data) stay unless asked."""

from __future__ import annotations

from typing import Any

from provision.errors import KitError, SettingsError


def stop_stack(compose: Any, volumes: bool = False) -> str:
    """`compose down` (with `--volumes` only when asked); a one-line summary."""
    args = ["down", "--remove-orphans"]
    if volumes:
        args.append("--volumes")
    result = compose.run(*args, timeout=300)
    if not result.ok:
        raise KitError(f"`compose down` failed: {result.last_lines(2)}", "see `provision status`")
    counts = {"Container": 0, "Network": 0, "Volume": 0}
    for line in result.output.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in counts and words[-1] == "Removed":
            counts[words[0]] += 1
    removed = ", ".join(f"{n} {kind.lower()}s" for kind, n in counts.items() if n) or "nothing"
    kept = "volumes deleted" if volumes else "volumes (data) and .env kept"
    return f"removed {removed}; {kept}"


def refuse_if_pinned_on(settings: Any) -> None:
    """`down --only-metrics` records metrics off in `.env`; a glitchtip.yaml or environment
    value of true would turn them on again at the next `up`, so it must go first."""
    from provision.settings import SOURCE_ENVIRONMENT, SOURCE_FILE, SPEC_BY_NAME

    source = settings.sources.get("metrics")
    if settings.metrics and source in (SOURCE_FILE, SOURCE_ENVIRONMENT):
        where = (
            "glitchtip.yaml sets metrics: true"
            if source == SOURCE_FILE
            else f"the environment sets {SPEC_BY_NAME['metrics'].env}=true"
        )
        raise SettingsError(
            f"{where}, so the next `up` would start the metrics services again",
            "set metrics: false there (or remove it), then run `make metrics-stop` again",
        )


def stop_metrics(settings: Any, engine: Any, compose: Any, volumes: bool = False) -> str:
    """Remove only the metrics services (GlitchTip and its data untouched), record metrics off
    in `.env` (the next `up` leaves them off), and with `volumes` delete Prometheus's samples
    and Grafana's state too. A one-line summary."""
    from dataclasses import replace

    from provision.render import write_rendered
    from provision.settings import SOURCE_OPTION
    from provision.stack.metrics import METRICS_VOLUMES, metrics_services, remove_metrics

    refuse_if_pinned_on(settings)
    summary = remove_metrics(compose, metrics_services(settings))
    off = replace(settings, metrics=False, sources={**settings.sources, "metrics": SOURCE_OPTION})
    write_rendered(off)  # .env: GLITCHTIP_KIT_METRICS=false, COMPOSE_FILE without metrics
    if volumes:
        deleted = [
            name
            for name in (f"{settings.compose_project_name}_{v}" for v in METRICS_VOLUMES)
            if engine.remove_volume(name)
        ]
        summary = summary.split(";")[0] + (
            f"; deleted volumes {', '.join(deleted)}" if deleted else "; no volume to delete"
        )
    return summary + "; metrics recorded off (`make metrics-start` turns them on)"
