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
    _copied_sources_from_the_checkout(monkeypatch)


def _copied_sources_from_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `make mutation`, the files the kit copies out of its own package as text (the
    project exporter into monitoring/, the locustfile and payloads beside compose.locust.yml)
    come from the checkout, not from mutmut's copy.

    mutmut's copy of such a module holds every mutant (about 2 MB), over the kit's 1 MiB read
    limit, so every test that renders or installs it would fail there for a reason no user
    meets. Their mutants are judged by the tests that import or run them, not by the copy.
    """
    from provision.fileio import MAX_FILE_BYTES
    from provision.load import run as load_run
    from provision.monitoring import files

    checkout = Path(__file__).resolve().parents[2] / "provision"
    exporter = files.EXPORTER_SOURCE
    if exporter.stat().st_size > MAX_FILE_BYTES:
        original = checkout / "monitoring" / exporter.name
        if original.is_file() and original.stat().st_size <= MAX_FILE_BYTES:
            monkeypatch.setattr(files, "EXPORTER_SOURCE", original)
    payloads = load_run.LOCUST_SOURCES / "payloads.py"
    if payloads.stat().st_size > MAX_FILE_BYTES:
        original = checkout / "load"
        if (original / "payloads.py").stat().st_size <= MAX_FILE_BYTES:
            monkeypatch.setattr(load_run, "LOCUST_SOURCES", original)


@pytest.fixture
def kit_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the kit's settings read, and pin the host to 2 CPUs / 4 GiB."""
    from provision import settings

    for spec in settings.SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("GLITCHTIP_KIT_DIR", raising=False)
    monkeypatch.setattr(settings, "host_resources", lambda: (2, 4096))
