"""Shared fixtures, kept generic: a hermetic environment for the kit's settings."""

from __future__ import annotations

import pytest


@pytest.fixture
def kit_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the kit's settings read, and pin the host to 2 CPUs / 4 GiB."""
    from provision import settings

    for spec in settings.SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("GLITCHTIP_KIT_DIR", raising=False)
    monkeypatch.setattr(settings, "host_resources", lambda: (2, 4096))
