"""Shared fixtures, kept generic: a hermetic environment for every test.

The kit reads settings, tokens, DSNs and retry knobs from environment variables and looks for
`.glitchtiprc` in every parent directory, so a variable exported in the caller's shell or a stray
file above pytest's temporary directory could change what a test sees. The autouse fixture below
removes every variable the kit reads and stops the upward `.glitchtiprc` search at pytest's base
temporary directory, so the suite gives the same answer on every machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `tests/` holds shared test modules (`fakeglitchtip`, `cli_run`): importable in any import mode.
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

# Variables the kit reads that are not settings (provision/commands, provision/dsn, the stack).
KIT_VARIABLES = (
    "ERROR_TRACKING_DSN",
    "SENTRY_DSN",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
)  # DOCKER_HOST and friends are left alone: the Docker tier needs the real engine
# Every variable with one of these prefixes is the kit's (or GlitchTip's) and is removed.
KIT_PREFIXES = ("GLITCHTIP_", "PROVISION_", "SENTRY_", "ENABLE_")
# Knobs that say where tools are or how the Docker tier builds images; they never change what
# the kit does with a setting, and the Docker tier needs them, so they are kept.
KEPT = frozenset(
    {
        "GLITCHTIP_KIT_COMPOSE",
        "GLITCHTIP_KIT_NO_BUILD",
        "GLITCHTIP_KIT_CACHE_DIR",
        "GLITCHTIP_KIT_DEBIAN_MIRROR",
        "GLITCHTIP_KIT_DEBIAN_SUITE",
    }
)


def kit_variable_names(environ=None) -> set[str]:
    """The variables in `environ` that the kit reads (settings, DSNs, API knobs)."""
    from provision import settings

    environ = os.environ if environ is None else environ
    names = {spec.env for spec in settings.SPECS} | set(KIT_VARIABLES)
    names |= {name for name in environ if name.startswith(KIT_PREFIXES)}
    return names - KEPT


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No kit variable from the caller; `.glitchtiprc` is never looked for above pytest's tmp."""
    from provision.dsn import RC_CEILING_ENV

    for name in kit_variable_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(RC_CEILING_ENV, str(tmp_path_factory.getbasetemp()))
    _unmutated_exporter_copy(monkeypatch)


def _unmutated_exporter_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `make mutation`, render copies the checkout's project exporter, not mutmut's.

    Render copies `project_exporter.py` into monitoring/ as text. mutmut's copy of it holds every
    mutant (about 2 MB), over the kit's 1 MiB read limit, so every "render changes nothing" test
    would fail there for a reason no user meets. The exporter's mutants are judged by the tests
    that run it (imported, or as a script), not by the copy render writes.
    """
    from provision.fileio import MAX_FILE_BYTES
    from provision.monitoring import files

    source = files.EXPORTER_SOURCE
    if source.stat().st_size <= MAX_FILE_BYTES:
        return
    original = Path(__file__).resolve().parents[2] / "provision" / "monitoring" / source.name
    if original.is_file() and original.stat().st_size <= MAX_FILE_BYTES:
        monkeypatch.setattr(files, "EXPORTER_SOURCE", original)


@pytest.fixture
def kit_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the kit's settings read, and pin the host to 2 CPUs / 4 GiB."""
    from provision import settings

    for spec in settings.SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("GLITCHTIP_KIT_DIR", raising=False)
    monkeypatch.setattr(settings, "host_resources", lambda: (2, 4096))
