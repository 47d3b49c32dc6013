"""The Docker CLI runner hands the child what the kit gives it: a value on stdin (how `docker
secret create NAME -` receives a secret, never on the command line) and nothing when there is
none, never the kit's own stdin (issue 20: `subprocess_runner`'s `stdin` survived)."""

from __future__ import annotations

import pytest

from provision.runtime.docker import subprocess_runner
from provision.runtime.process import ProcessResult

PATH = {"PATH": "/usr/bin:/bin"}


def test_a_value_reaches_the_child_on_stdin_and_its_output_comes_back():
    assert subprocess_runner(["cat"], "s3cret value", PATH, 10) == (0, "s3cret value", "")


def test_no_value_is_an_empty_stdin_not_the_kits_own():
    assert subprocess_runner(["cat"], None, PATH, 10) == (0, "", "")
    assert subprocess_runner(["sh", "-c", "echo oops >&2; exit 3"], None, PATH, 10) == (
        3,
        "",
        "oops\n",
    )


def test_the_cli_runs_its_command_in_the_kits_environment_and_masks_what_comes_back(
    monkeypatch,
):
    from provision.masking import MASK
    from provision.runtime.docker import DockerCLI

    monkeypatch.setenv("FROM_THE_KIT", "kept")
    seen = []

    def runner(argv, stdin, env, timeout):
        seen.append((tuple(argv), stdin, env.get("FROM_THE_KIT"), env.get("EXTRA"), timeout))
        return 3, "out s3cret-one\n", "err s3cret-one\n"

    cli = DockerCLI(["s3cret-one", "", None], runner=runner, command=("docker", "--context", "x"))
    assert cli.secrets == ["s3cret-one"]
    result = cli.run("secret", "ls", stdin="v", env={"EXTRA": "1"}, timeout=7)
    assert result == ProcessResult(
        ("docker", "--context", "x", "secret", "ls"), 3, f"out {MASK}\n", f"err {MASK}\n"
    )
    cli.run("info")
    assert seen == [
        (("docker", "--context", "x", "secret", "ls"), "v", "kept", "1", 7),
        (("docker", "--context", "x", "info"), None, "kept", None, 120),
    ]


def test_check_names_the_call_and_docker_s_last_lines_and_json_lines_skips_blank_ones():
    from provision.errors import KitError
    from provision.runtime.docker import DockerCLI

    answers = iter([(1, "", "a\nb\n\nc\nd\n"), (0, '{"A": 1}\n\n  \n{"B": 2}\n', "")])
    cli = DockerCLI(runner=lambda argv, stdin, env, timeout: next(answers))
    with pytest.raises(KitError) as refused:
        cli.check("service", "ls", "--quiet", fix="the fix")
    assert (refused.value.message, refused.value.fix) == (
        "`docker service ls` failed: b | c | d",
        "the fix",
    )
    assert cli.json_lines("node", "ls", fix="f") == [{"A": 1}, {"B": 2}]
