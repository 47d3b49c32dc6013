"""profile minimal: GlitchTip's all-in-one per major, the refusals, what the other commands do
with it, and the switch from standard (retiring worker and Valkey without losing a queued
event)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cli_run import one_line_error, run

from provision import profiles
from provision.errors import KitError, UsageError
from provision.render import COMPOSE_FILE, combinations_for, render_files
from provision.settings import load_settings
from provision.stack import profile_switch

pytestmark = pytest.mark.usefixtures("kit_environ")

PARTMAN = ("--set", "advanced_partitioning=true")
SECRETS = {"SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "pw", "DJANGO_SUPERUSER_PASSWORD": "pw"}


def settings_for(directory: Path, **overrides: str):
    return load_settings(directory, overrides, environ={})


def compose_of(directory: Path, **overrides: str) -> dict:
    rendered = render_files(settings_for(directory, **overrides), SECRETS)
    return yaml.safe_load(rendered[COMPOSE_FILE])


def test_minimal_on_6_is_postgres_and_one_all_in_one_container_without_valkey(tmp_path):
    model = compose_of(tmp_path, profile="minimal")
    assert set(model["services"]) == {"postgres", "migrate", "web"}
    web = model["services"]["web"]
    environment = web["environment"]
    # bin/start.sh: SERVER_ROLE=all_in_one -> run-all-in-one.sh; VALKEY_URL explicitly empty.
    assert web["command"] == "./bin/start.sh"
    assert environment["SERVER_ROLE"] == "all_in_one"
    assert environment["VALKEY_URL"] == ""
    assert environment["SKIP_INIT"] == "true"  # the kit's migrate service did the init
    # Migrations and the admin still come first.
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "valkey" not in web["depends_on"]
    assert "valkey" not in model["services"]["migrate"]["depends_on"]
    assert "valkey-data" not in model["volumes"]
    assert set(model["volumes"]) >= {"postgres-data", "uploads"}  # data kept across a switch


def test_minimal_on_5_runs_run_all_in_one_and_keeps_valkey(tmp_path):
    model = compose_of(tmp_path, profile="minimal", glitchtip_major="5")
    assert set(model["services"]) == {"postgres", "valkey", "migrate", "web"}
    web = model["services"]["web"]
    # bin/run-all-in-one.sh is `python app.py`, run by its path from /tmp: v5.1.0's beat keeps
    # its schedule in the working directory, which the read-only root refuses elsewhere.
    assert web["command"] == "python /code/app.py"
    assert web["working_dir"] == "/tmp"
    assert "/tmp:size=256m" in web["tmpfs"] and web["read_only"] is True
    assert web["environment"]["VALKEY_URL"] == "redis://valkey:6379/0"
    assert web["environment"]["REDIS_URL"] == "redis://valkey:6379/0"  # v5.1.0's name
    assert "SERVER_ROLE" not in web["environment"]
    assert web["depends_on"]["valkey"]["condition"] == "service_healthy"
    assert web["ports"][0]["target"] == 8000  # app.py's uvicorn listens on 8000


@pytest.mark.parametrize("major", ["5", "6"])
def test_standard_keeps_web_worker_and_valkey(tmp_path, major):
    model = compose_of(tmp_path, glitchtip_major=major)
    assert {"postgres", "valkey", "migrate", "web", "worker"} <= set(model["services"])
    assert "SERVER_ROLE" not in model["services"]["web"]["environment"]
    assert model["services"]["web"]["environment"]["VALKEY_URL"] == "redis://valkey:6379/0"


def test_render_check_validates_only_the_file_minimal_runs(tmp_path):
    assert combinations_for(settings_for(tmp_path, profile="minimal")) == ((COMPOSE_FILE,),)
    assert len(combinations_for(settings_for(tmp_path))) > 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "profile=minimal", "--set", "metrics=true"], "without the metrics stack"),
        (
            [*("--set", "profile=minimal", "--set", "glitchtip_major=5"), *PARTMAN],
            "no separate worker",
        ),
        (["--set", "profile=tiny"], "is not a profile"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(tmp_path, args, words):
    line = one_line_error(run(tmp_path, "render", *args))
    assert words in line
    assert list(tmp_path.iterdir()) == []


def test_profile_given_once_is_recorded_for_later_commands(tmp_path):
    assert run(tmp_path, "render", "--set", "profile=minimal").exit_code == 0
    assert "GLITCHTIP_KIT_PROFILE=minimal" in (tmp_path / ".env").read_text()
    later = settings_for(tmp_path)  # a later `down`/`status`/`up` without the option
    assert later.profile == "minimal"
    assert "worker:" not in (tmp_path / "compose.yml").read_text()


@pytest.mark.parametrize(
    ("major", "profile", "core", "keys"),
    [
        ("6", "standard", ("postgres", "valkey", "web", "worker"), ("{vt}:q:ingest",)),
        ("6", "minimal", ("postgres", "web"), ()),
        ("5", "minimal", ("postgres", "valkey", "web"), ("celery",)),
    ],
)
def test_service_sets(tmp_path, major, profile, core, keys):
    settings = settings_for(tmp_path, glitchtip_major=major, profile=profile)
    assert profiles.core_services(settings) == core
    assert profiles.queue_keys(settings)[: len(keys)] == keys
    assert bool(profiles.queue_keys(settings)) == bool(keys)


def test_load_needs_only_the_minimal_services(tmp_path):
    from provision.load.run import require_stack

    settings = settings_for(tmp_path, profile="minimal")
    stack = SimpleNamespace(
        ps=lambda: [
            {"Service": "postgres", "State": "running"},
            {"Service": "web", "State": "running"},
        ]
    )
    require_stack(SimpleNamespace(settings=settings, compose=lambda: stack))  # no worker/valkey: ok
    standard = SimpleNamespace(settings=settings_for(tmp_path), compose=lambda: stack)
    with pytest.raises(KitError, match="worker missing"):
        require_stack(standard)


def test_upgrade_is_refused_on_minimal(tmp_path):
    from provision.ops.upgrade import current_state

    settings = settings_for(tmp_path, profile="minimal")
    ctx = SimpleNamespace(load_settings=lambda: settings, compose=lambda: pytest.fail("no compose"))
    with pytest.raises(UsageError, match="profile standard only"):
        current_state(ctx, None)


# --- the switch from standard to minimal -------------------------------------------------


@dataclass
class Row:
    name: str
    service: str
    state: str = "running"
    oneoff: bool = False


class FakeOps:
    """SwitchOps over a scripted queue: `queue` is the LLEN sequence the worker drains."""

    def __init__(self, rows: list[Row], queue: list[int]) -> None:
        self.rows, self.queue, self.log = rows, list(queue), []
        self.now = 0.0

    def ops(self) -> profile_switch.SwitchOps:
        return profile_switch.SwitchOps(
            containers=lambda: self.rows,
            llen=self.llen,
            stop=lambda name: self.log.append(("stop", name)),
            remove=lambda name: self.log.append(("remove", name)),
            sleep=self.sleep,
            clock=lambda: self.now,
        )

    def llen(self, container: str, key: str) -> int:
        assert container == "gt-valkey-1"
        if key != "{vt}:q:ingest":
            return 0
        value = self.queue[0]
        if len(self.queue) > 1:
            self.queue.pop(0)
        return value

    def sleep(self, seconds: float) -> None:
        self.now += seconds


STANDARD_ROWS = [
    Row("gt-postgres-1", "postgres"),
    Row("gt-valkey-1", "valkey"),
    Row("gt-migrate-1", "migrate", "exited"),
    Row("gt-web-1", "web"),
    Row("gt-worker-1", "worker"),
]


def test_switch_stops_web_lets_the_worker_drain_then_removes_worker_and_valkey(tmp_path):
    fake = FakeOps(STANDARD_ROWS, queue=[3, 1, 0])
    notes: list[str] = []
    outcome = profile_switch.retire(
        settings_for(tmp_path, profile="minimal"), fake.ops(), notes.append
    )
    assert outcome.changed is True
    assert fake.log[0] == ("stop", "gt-web-1")  # no new events before the drain
    assert fake.queue == [0]  # drained before anything else went
    assert fake.log[1:] == [
        ("stop", "gt-valkey-1"),
        ("remove", "gt-valkey-1"),
        ("stop", "gt-worker-1"),
        ("remove", "gt-worker-1"),
    ]
    assert fake.now >= profile_switch.SETTLE  # one batch interval after the queue read empty
    assert "volumes kept" in outcome.detail


def test_switch_refuses_a_queue_no_worker_can_drain_and_changes_nothing(tmp_path):
    rows = [
        row if row.service != "worker" else Row(row.name, "worker", "exited")
        for row in STANDARD_ROWS
    ]
    fake = FakeOps(rows, queue=[5])
    with pytest.raises(KitError, match="5 task"):
        profile_switch.retire(settings_for(tmp_path, profile="minimal"), fake.ops(), print)
    assert fake.log == []


def test_switch_gives_up_when_the_worker_does_not_drain(tmp_path):
    fake = FakeOps(STANDARD_ROWS, queue=[7])
    with pytest.raises(KitError, match="did not empty"):
        profile_switch.retire(settings_for(tmp_path, profile="minimal"), fake.ops(), print)
    assert fake.log == [("stop", "gt-web-1")]  # worker and valkey kept: nothing lost
    assert fake.now >= profile_switch.DRAIN_TIMEOUT


def test_switch_on_5_removes_only_the_worker(tmp_path):
    fake = FakeOps(STANDARD_ROWS, queue=[9])  # the all-in-one consumes the same Valkey queue
    settings = settings_for(tmp_path, profile="minimal", glitchtip_major="5")
    outcome = profile_switch.retire(settings, fake.ops(), print)
    assert fake.log == [("stop", "gt-worker-1"), ("remove", "gt-worker-1")]
    assert outcome.changed is True


def test_nothing_to_retire_on_standard_or_a_fresh_minimal(tmp_path):
    fresh = FakeOps([Row("gt-postgres-1", "postgres"), Row("gt-web-1", "web")], queue=[0])
    assert profile_switch.retire(settings_for(tmp_path), fresh.ops(), print).changed is False
    minimal = settings_for(tmp_path, profile="minimal")
    assert profile_switch.retire(minimal, fresh.ops(), print).changed is False
    assert fresh.log == []


@pytest.mark.parametrize("major", ["6", "5"])
def test_minimal_render_passes_a_real_compose_config(tmp_path, major):
    from provision.runtime.compose_check import compose_model

    args = ("--set", "profile=minimal", "--set", f"glitchtip_major={major}")
    result = run(tmp_path, "render", "--check", *args)
    assert result.exit_code == 0, result.output
    model = compose_model(tmp_path, ["compose.yml"])
    assert "worker" not in model["services"]
    assert ("valkey" in model["services"]) is (major == "5")
