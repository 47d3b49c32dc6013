"""Stopping the stack: containers go, named volumes (the data) stay unless asked."""

from __future__ import annotations

from typing import Any

from provision.errors import KitError


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
