"""`validate_stack`'s fallback for a docker CLI without `stack config`: Compose's own loader,
called as Compose takes it (`-f FILE config --quiet`: nothing printed, the exit status says),
with the same interpolation values as the stack loader. The stand-in Compose below refuses a
flag it does not know as Compose does ("unknown flag", exit 1), so a changed command line
shows.
"""

from __future__ import annotations

import json
import sys

from test_swarm import FakeDocker, render_swarm

from provision.envfile import read_env_file
from provision.settings import load_settings
from provision.swarm.render import STACK_FILE
from provision.swarm.validate import validate_stack

COMPOSE = """\
import json, os, sys
flags = {"-f", "--file", "config", "--quiet", "-q"}
for arg in sys.argv[1:]:
    if arg.startswith("-") and arg not in flags:
        sys.stderr.write(f"unknown flag: {arg}\\n")
        sys.exit(1)
with open(sys.argv[0] + ".calls", "a") as calls:
    env = {k: v for k, v in os.environ.items() if k.startswith("GLITCHTIP_KIT_")}
    calls.write(json.dumps([sys.argv[1:], env]) + "\\n")
"""


def test_a_cli_without_stack_config_validates_with_compose_config_quiet(tmp_path, monkeypatch):
    import provision.runtime.compose_binary

    render_swarm(tmp_path)
    compose = tmp_path / "compose-stand-in.py"
    compose.write_text(COMPOSE)
    monkeypatch.setattr(
        provision.runtime.compose_binary, "compose_command", lambda: [sys.executable, str(compose)]
    )
    docker = FakeDocker(
        {("stack", "config"): (1, "", 'unknown command "config" for "docker stack"\n')}
    )
    settings = load_settings(tmp_path)
    assert validate_stack(settings, docker=docker.cli()) == "valid (compose config)"
    (call,) = [json.loads(line) for line in (tmp_path / "compose-stand-in.py.calls").open()]
    env = read_env_file(tmp_path / ".env")
    tuning = {
        key: value for key, value in env.items() if key.startswith("GLITCHTIP_KIT_") and value
    }
    assert call[0] == ["-f", str(tmp_path / STACK_FILE), "config", "--quiet"]
    assert tuning and {key: call[1].get(key) for key in tuning} == tuning


def test_the_stack_loader_is_given_a_minute(tmp_path):
    """`docker stack config` runs client-side and answers at once; a CLI that hangs (a broken
    context, a stuck plugin) is stopped after 60 s instead of holding `up` forever."""
    render_swarm(tmp_path)
    bounds = []

    def runner(argv, stdin, env, timeout):
        bounds.append((tuple(argv[1:3]), timeout))
        return 0, "services: {}\n", ""

    from provision.runtime.docker import DockerCLI

    settings = load_settings(tmp_path)
    assert (
        validate_stack(settings, docker=DockerCLI(runner=runner)) == "valid (docker stack config)"
    )
    assert bounds == [(("stack", "config"), 60)]
