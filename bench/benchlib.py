"""What the benchmarks share: a free local port, and the caller's environment without the
variables that would change the deployment a benchmark brings up.

Not a benchmark itself (`make bench` runs `bench/bench_*.py`); the scripts import it from
their own directory, which Python puts first on `sys.path` when it runs a script.
"""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The caller's environment without settings that would change the deployment."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GLITCHTIP_") and key not in ("DEFAULT_FROM_EMAIL", "EMAIL_URL")
    }
