"""`run_load` against a deployment whose Valkey is external (valkey_url): the backlog is read
from that Valkey by a throw-away container, each of the major's queue keys by name, and the
run counts what GlitchTip stored (part q of the CI-shaped run's survivors)."""

from __future__ import annotations

from test_load_run_counts import fake, load, stack  # noqa: F401  (the fixtures)

from provision.stack import external

VALKEY_URL = "redis://:valkey-Pa55-q9@cache.example.com:6379/0"


def test_the_backlog_of_an_external_valkey_is_read_by_its_queue_keys(
    stack,  # noqa: F811
    monkeypatch,
):
    directory, state, state_dir = stack
    state(sent=3)
    monkeypatch.setenv("GLITCHTIP_KIT_VALKEY_URL", VALKEY_URL)
    scripts: list[str] = []

    def runner(image, script, environment):
        scripts.append(script)
        return external.ProbeResult(0, "0\n" * (script.split("; do")[0].count("'") // 2))

    monkeypatch.setattr(external, "engine_runner", lambda engine: runner)
    result, _ = load(directory)
    assert (result["events_sent"], result["events_processed"]) == (3, 3)
    assert scripts, "the external Valkey was never asked"
    assert all(script.startswith("for key in '") for script in scripts)
    calls = (state_dir / "calls.log").read_text()
    assert "LLEN" not in calls  # no exec in a Valkey service of the stack
