"""stack.swarm.yml against compose.yml: the two are rendered from the same settings and the same
GlitchTip environment partial, so the services both run read the same environment and the same
healthchecks (the stack's own differences are its secrets, deploy blocks and configs). Read
whole, so a value the stack alone gets wrong (an https cookie flag, the trusted proxies, the
Valkey URLs, a probe) shows as the key that differs.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml
from cli_run import run

from provision import durability
from provision.swarm.render import STACK_FILE


def _render(directory, *sets: str) -> tuple[dict, dict]:
    args = [arg for item in sets for arg in ("--set", item)]
    result = run(directory, "render", "--target", "swarm", *args)
    assert result.exit_code == 0, result.output
    stack = yaml.safe_load((directory / STACK_FILE).read_text(encoding="utf-8"))
    compose = yaml.safe_load((directory / "compose.yml").read_text(encoding="utf-8"))
    return stack, compose


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("glitchtip_domain=https://errors.example.com", "proxy=none"),
        ("glitchtip_major=5",),
    ],
)
def test_the_stack_runs_glitchtip_with_compose_ymls_environment_and_probes(tmp_path, sets):
    stack, compose = _render(tmp_path, *sets)
    assert sorted(stack["services"]) == sorted(compose["services"])
    for name in ("web", "worker", "migrate"):
        ours, theirs = stack["services"][name], compose["services"][name]
        assert ours["environment"] == theirs["environment"], name
        assert ours.get("healthcheck", {}).get("test") == theirs.get("healthcheck", {}).get(
            "test"
        ), name
    web = stack["services"]["web"]["environment"]
    assert web["TRUSTED_PROXIES"] == "127.0.0.1"  # no TLS proxy of the kit's in a stack
    assert web["VALKEY_URL"] == "redis://valkey:6379/0"
    assert ("SESSION_COOKIE_SECURE" in web) is bool(sets and sets[0].endswith(".example.com"))


def test_the_worker_settings_reach_every_node_as_a_config_named_by_the_modules_digest(tmp_path):
    stack, _compose = _render(tmp_path)
    module = durability.WORKER_SETTINGS_MODULE
    written = (tmp_path / durability.WORKER_SETTINGS_FILE).read_bytes()
    digest = hashlib.sha256(written).hexdigest()[:12]
    assert stack["configs"] == {
        module: {
            "name": f"glitchtip_worker_settings_{digest}",
            "file": f"./python/{module}.py",
        }
    }
    assert stack["services"]["worker"]["configs"] == [
        {"source": module, "target": f"/kit/python/{module}.py", "mode": 0o444}
    ]


UNSUPPORTED = (
    "error: target swarm does not take valkey_url or S3 access keys yet (they would be written "
    "into the service spec): use the bundled Valkey and S3 credentials from the node's IAM role, "
    "or target compose\n"
)


@pytest.mark.parametrize(
    ("sets", "env"),
    [
        (("valkey_url=redis://cache.example.com:6379/0",), {}),
        (
            ("uploads_bucket=glitchtip-uploads", "uploads_access_key_id=AKIAEXAMPLE"),
            {"GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"},
        ),
    ],
)
def test_an_external_valkey_or_s3_keys_are_refused_in_one_whole_line(tmp_path, sets, env):
    args = [arg for item in sets for arg in ("--set", item)]
    result = run(tmp_path, "render", "--target", "swarm", *args, env=env)
    assert (result.exit_code, result.output) == (2, UNSUPPORTED)
    assert list(tmp_path.iterdir()) == []


def test_the_longest_secret_name_of_a_25_character_stack_is_swarms_64(tmp_path):
    """Swarm refuses a secret name over 64 characters; the kit's check allows a stack name of
    25 because a version is 12 hex digits: the names it really gives must keep to that."""
    stack, _compose = _render(tmp_path, "compose_project_name=" + "a" * 25)
    names = {key: spec["name"] for key, spec in stack["secrets"].items()}
    assert max(len(name) for name in names.values()) == 64
    for key, name in names.items():
        prefix, _sep, version = name.rpartition("_")
        assert prefix == "a" * 25 + "_" + key
        assert len(version) == 12 and set(version) <= set("0123456789abcdef")
