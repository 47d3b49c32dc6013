"""The Docker CLI runner hands the child what the kit gives it: a value on stdin (how `docker
secret create NAME -` receives a secret, never on the command line) and nothing when there is
none, never the kit's own stdin (issue 20: `subprocess_runner`'s `stdin` survived)."""

from __future__ import annotations

from provision.runtime.docker import subprocess_runner

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
