"""`provision scale web=N worker=M`: record the replicas, re-render, scale, wait.

The counts are recorded in `.env` (GLITCHTIP_KIT_WEB_REPLICAS / _WORKER_REPLICAS) and written
into stack.swarm.yml, so the next `provision up` deploys the same numbers instead of scaling back.
A count set in glitchtip.yaml is the operator's: scale refuses and says to edit it there.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from provision.errors import UsageError

SCALABLE = {"web": "web_replicas", "worker": "worker_replicas"}
MAX_REPLICAS = 100


def parse_counts(items: Iterable[str]) -> dict[str, int]:
    """`("web=2", "worker=3")` -> {"web": 2, "worker": 3}; a `UsageError` for anything else."""
    counts: dict[str, int] = {}
    for item in items:
        name, sep, raw = str(item).partition("=")
        name = name.strip()
        if not sep or name not in SCALABLE:
            raise UsageError(
                f"{item!r} is not SERVICE=COUNT for web or worker",
                "use e.g. `provision scale web=2 worker=3`",
            )
        text = raw.strip()
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
            raise UsageError(
                f"{item!r}: the count must be a whole number from 1 to {MAX_REPLICAS}",
                f"use e.g. {name}=2 (to stop GlitchTip, use `provision down`)",
            )
        counts[name] = int(text)
    if not counts:
        raise UsageError("nothing to scale", "use e.g. `provision scale web=2 worker=3`")
    return counts


def record_counts(directory: Path, settings, counts: dict[str, int]) -> None:
    """Refuse counts glitchtip.yaml fixes; record the others in .env."""
    from provision.envfile import update_env_file
    from provision.settings import RECORDED_WHEN_GIVEN, SOURCE_FILE

    for service, count in counts.items():
        setting = SCALABLE[service]
        if settings.sources.get(setting) == SOURCE_FILE and getattr(settings, setting) != count:
            raise UsageError(
                f"{setting} is set to {getattr(settings, setting)} in glitchtip.yaml",
                f"change it there and run `provision up`, or remove it so `scale` records {count}",
            )
    update_env_file(
        Path(directory) / ".env",
        {RECORDED_WHEN_GIVEN[SCALABLE[name]]: str(count) for name, count in counts.items()},
    )


def refuse_host_overcommit(settings, counts: dict[str, int], nodes: int) -> None:
    """With host publishing each node holds one web task: more would wait forever."""
    web = counts.get("web")
    if settings.swarm_publish_mode == "host" and web is not None and web > nodes:
        raise UsageError(
            f"web={web} needs {web} nodes with swarm_publish_mode host (one web task per node; "
            f"this Swarm has {nodes})",
            "add nodes, or use swarm_publish_mode: ingress (the routing mesh)",
        )


def scale_args(stack: str, counts: dict[str, int]) -> list[str]:
    """`docker service scale` arguments: <stack>_<service>=N."""
    return [f"{stack}_{name}={count}" for name, count in sorted(counts.items())]
