"""The fake GlitchTip the project exporter's tests poll: one per test, closing each connection
after its first answer (GlitchTip 5's uWSGI `--http-socket`; NOTES.md, "The web server of
GlitchTip 5 and HTTP keep-alive") and answering after 2 ms, not at once."""

from __future__ import annotations

import pytest
from fakeglitchtip import start_fake


@pytest.fixture
def fake():
    handle = start_fake(keep_alive=False, latency=0.002)
    yield handle
    handle.stop()
