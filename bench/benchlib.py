"""What the benchmarks share: a free local port, the caller's environment without the
variables that would change the deployment a benchmark brings up, a test module loaded by
path, and the wait until a real-library stack's worker has stored its queue.

Not a benchmark itself (`make bench` runs `bench/bench_*.py`); the scripts import it from
their own directory, which Python puts first on `sys.path` when it runs a script.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any


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


def load_module(name: str, path: Path) -> ModuleType:
    """A test module (the stack harness, a real-library test) imported from its file."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def seconds_to_store(project: Any, stack: Any, tasks: int, bound: float = 600) -> float:
    """Start the stack's worker and return the seconds until `tasks` are stored (a real-library
    stack of tests/stack: `stack.counts()["stored"]`); exit when `bound` s pass first."""
    began = time.monotonic()
    project.run("up", "-d", "worker")
    while True:
        counts = stack.counts()
        if counts["stored"] >= tasks:
            return time.monotonic() - began
        if time.monotonic() - began > bound:
            raise SystemExit(f"not drained in {bound:g} s: {counts}")
        time.sleep(0.2)
