"""What `status`, `verify` and `up --target swarm` read from Swarm, read whole: Docker's times
with nanoseconds, the replicas column (with its "(max N per node)"), the image Swarm pins by
digest, every update state, the services of one stack and the migrate job's newest task.

The rows and specs are the shapes Docker 20.10+ prints (`service ls --format '{{json .}}'`,
`service inspect`, task `inspect`), as tests/test_swarm.py documents.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from test_swarm import FakeDocker

from provision.errors import KitError
from provision.swarm.secrets import SwarmSecret, secret_values
from provision.swarm.services import (
    ServiceState,
    job_state,
    parse_time,
    stack_health,
    stack_services,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T10:00:00.123456789Z", datetime(2026, 12, 6, 10, 0, 0, 123456)),
        ("2026-12-06T10:00:00.5Z", datetime(2026, 12, 6, 10, 0, 0, 500000)),
        ("2026-12-06T10:00:00Z", datetime(2026, 12, 6, 10, 0, 0)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),  # Go's zero time: a task not started
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_docker_times_are_read_to_the_microsecond_and_anything_else_is_no_time(text, expected):
    assert parse_time(text) == expected


def _state(**changes) -> ServiceState:
    values = dict(
        name="gt_web", service="web", running=2, desired=2, image="glitchtip/glitchtip:v6",
        update_state=None, update_message="", ports="*:8000->8000/tcp",
    )  # fmt: skip
    values.update(changes)
    return ServiceState(**values)


@pytest.mark.parametrize(
    ("changes", "converged"),
    [
        ({}, True),
        ({"update_state": "completed"}, True),
        ({"update_state": "rollback_completed"}, True),  # idle: judged by wait_converged
        ({"update_state": "updating"}, False),
        ({"update_state": "rollback_started"}, False),
        ({"running": 1}, False),
        ({"running": 3}, False),
        ({"service": "migrate", "running": 0, "desired": 0, "update_state": "updating"}, True),
    ],
)
def test_a_service_has_converged_when_every_replica_runs_and_no_update_is_in_flight(
    changes, converged
):
    assert _state(**changes).converged is converged


def test_a_service_as_json_is_every_field_status_shows():
    assert _state(update_state="paused", update_message="update paused").as_dict() == {
        "name": "gt_web",
        "service": "web",
        "running": 2,
        "desired": 2,
        "image": "glitchtip/glitchtip:v6",
        "update": "paused",
        "ports": "*:8000->8000/tcp",
    }


def _listing(rows, specs):
    def answer_ls(args, _stdin):
        assert args[:3] == ("service", "ls", "--filter") and args[3] == (
            "label=com.docker.stack.namespace=gt"
        )
        return 0, "".join(json.dumps(row) + "\n" for row in rows), ""

    def answer_inspect(args, _stdin):
        assert list(args[2:]) == [row["ID"] for row in rows]
        return 0, json.dumps(specs), ""

    return FakeDocker({("service", "ls"): answer_ls, ("service", "inspect"): answer_inspect})


def test_the_services_of_a_stack_are_read_whole_and_sorted_by_their_name_in_the_stack():
    rows = [
        {"ID": "w1", "Name": "gt_worker", "Image": "row:img", "Replicas": "1/2", "Ports": ""},
        {"ID": "p1", "Name": "gt_web", "Image": "row:img", "Replicas": "1/1 (max 1 per node)",
         "Ports": "*:8000->8000/tcp"},
        {"ID": "x1", "Name": "stray", "Image": "other:1", "Replicas": "n/a"},
    ]  # fmt: skip
    specs = [
        {"Spec": {"Name": "gt_web", "TaskTemplate": {"ContainerSpec": {
            "Image": "glitchtip/glitchtip:v6@sha256:" + "a" * 64}}},
         "UpdateStatus": {"State": "rollback_completed", "Message": "rollback completed"}},
        {"Spec": {"Name": "gt_worker", "TaskTemplate": {"ContainerSpec": {}}},
         "UpdateStatus": None},
    ]  # fmt: skip
    services = stack_services(_listing(rows, specs).cli(), "gt")
    assert services == [
        ServiceState("stray", "stray", 0, 0, "other:1", None, "", ""),
        ServiceState("gt_web", "web", 1, 1, "glitchtip/glitchtip:v6", "rollback_completed",
                     "rollback completed", "*:8000->8000/tcp"),
        ServiceState("gt_worker", "worker", 1, 2, "row:img", None, "", ""),
    ]  # fmt: skip


def test_a_stack_not_deployed_has_no_services_and_asks_for_no_inspect():
    fake = _listing([], [])
    assert stack_services(fake.cli(), "gt") == []
    assert [args[:2] for args, _stdin in fake.calls] == [("service", "ls")]


def _tasks(*tasks):
    return FakeDocker(
        {
            ("service", "ps"): (0, "".join(task["ID"] + "\n" for task in tasks), ""),
            ("inspect",): (0, json.dumps(list(tasks)), ""),
        }
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"State": "complete", "ContainerStatus": {"ExitCode": 0}}, ("complete", "")),
        ({"State": "running"}, ("running", "")),
        ({}, ("pending", "")),
        ({"State": "failed", "ContainerStatus": {"ExitCode": 1}}, ("failed", "exit status 1")),
        (
            {
                "State": "failed",
                "Err": "task: non-zero exit (2)",
                "ContainerStatus": {"ExitCode": 2},
            },
            ("failed", "exit status 2, task: non-zero exit (2)"),
        ),
        ({"State": "rejected", "Err": "no suitable node"}, ("rejected", "no suitable node")),
    ],
)
def test_the_jobs_newest_task_gives_its_state_and_error_whole(status, expected):
    old = {"State": "failed", "Err": "old", "ContainerStatus": {"ExitCode": 9}}
    older = {"ID": "t1", "CreatedAt": "2026-12-06T09:00:00.999999999Z", "Status": old}
    newest = {"ID": "t2", "CreatedAt": "2026-12-06T10:00:00.000000001Z", "Status": status}
    assert job_state(_tasks(newest, older).cli(), "gt_migrate") == expected
    assert job_state(_tasks(older, newest).cli(), "gt_migrate") == expected


def test_a_task_without_a_creation_time_is_the_oldest():
    undated = {"ID": "t1", "Status": {"State": "failed", "Err": "old"}}
    dated = {"ID": "t2", "CreatedAt": "2026-12-06T10:00:00Z", "Status": {"State": "complete"}}
    assert job_state(_tasks(undated, dated).cli(), "gt_migrate") == ("complete", "")
    assert job_state(_tasks().cli(), "gt_migrate") == ("pending", "")


class _Settings:
    compose_project_name = "gt"
    external_database = False
    profile = "standard"
    glitchtip_major = 6


def test_stack_health_names_each_missing_unconverged_and_unfinished_service(monkeypatch):
    import provision.profiles as profiles

    monkeypatch.setattr(
        profiles, "core_services", lambda _s: ("postgres", "valkey", "web", "worker")
    )
    rows = [
        {"ID": "m", "Name": "gt_migrate", "Image": "i", "Replicas": "0/0"},
        {"ID": "v", "Name": "gt_valkey", "Image": "i", "Replicas": "1/1"},
        {"ID": "w", "Name": "gt_web", "Image": "i", "Replicas": "0/2"},
    ]
    specs = [{"Spec": {"Name": row["Name"]}} for row in rows]
    fake = _listing(rows, specs)
    task = {"ID": "t", "CreatedAt": "2026-12-06T10:00:00Z", "Status": {"State": "running"}}
    fake.answers[("service", "ps")] = (0, "t\n", "")
    fake.answers[("inspect",)] = (0, json.dumps([task]), "")
    health = stack_health(_Settings(), fake.cli())
    assert health.problems == ["postgres missing", "worker missing", "web 0/2", "migrate running"]
    assert health.jobs == {"gt_migrate": "running"}
    assert health.ok is False


def test_a_swarm_secret_never_shows_its_value():
    secret = SwarmSecret("secret_key", "gt_secret_key_0123456789ab", "s3cr3t-value")
    assert repr(secret) == "SwarmSecret('secret_key', 'gt_secret_key_0123456789ab')"
    assert "s3cr3t-value" not in str(secret)


def test_secret_values_name_every_secret_missing_from_env():
    with pytest.raises(KitError) as refused:
        secret_values(_Settings(), {"POSTGRES_PASSWORD": "p" * 16, "SECRET_KEY": ""})
    assert (refused.value.message, refused.value.fix) == (
        ".env has no SECRET_KEY, DJANGO_SUPERUSER_PASSWORD",
        "run `provision render --target swarm` (missing secrets are generated, others kept)",
    )
