"""Keep secrets out of everything the kit prints.

`mask()` turns a secret into a fixed-shape stand-in for display; `redact()` scrubs known secret
values from free text (a subprocess's output, an HTTP error body) before it is shown or logged.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"


def mask(value: str | None) -> str:
    """A display form of a secret that reveals nothing but whether it is set."""
    return MASK if value else "(unset)"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by the mask."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
