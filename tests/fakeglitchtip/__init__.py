"""A fake GlitchTip that speaks the recorded API contract (stdlib, plus prometheus_client for
its metrics).

Entry points: `start_fake(...)` (tests), `python3 -m fakeglitchtip` (the stand-in image),
`create_superuser(store, email, password)` (`manage.py createsuperuser --noinput`),
`process_pending(store, queue)` (the worker). See README.md in this directory.
"""

from .app import FakeConfig, FakeGlitchTip, Request, Response
from .model import ALL_SCOPES, create_api_token, create_superuser
from .server import FakeHandle, start_fake
from .store import EventQueue, MemoryQueue, MemoryStore, Store, initial_state
from .worker import Worker, process_pending, run_uptime_checks

__all__ = [
    "ALL_SCOPES",
    "EventQueue",
    "FakeConfig",
    "FakeGlitchTip",
    "FakeHandle",
    "MemoryQueue",
    "MemoryStore",
    "Request",
    "Response",
    "Store",
    "Worker",
    "create_api_token",
    "create_superuser",
    "initial_state",
    "process_pending",
    "run_uptime_checks",
    "start_fake",
]
