"""Service logs, redacted line by line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.errors import KitError


def show_logs(
    compose: Any,
    on_line: Callable[[str], None],
    service: str | None = None,
    follow: bool = False,
    tail: str = "200",
) -> None:
    """Stream `compose logs` for one service or all, with secrets masked."""
    args = ["logs", "--no-color", "--tail", tail]
    if follow:
        args.append("--follow")
    if service:
        args.append(service)
    try:
        result = compose.stream(*args, on_line=on_line)
    except KeyboardInterrupt:
        return
    if not result.ok:
        raise KitError(f"`compose logs` failed: {result.last_lines(1)}", "see `provision status`")
