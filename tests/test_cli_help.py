"""`provision --help` must teach and stay fast: it lists every command and loads no heavy library.

The speed itself is measured by bench/bench_help.py; this test guards the cause of slowness that
creeps in unnoticed: a command module importing jinja2, httpx, docker or yaml at import time.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from provision import __version__
from provision.cli import COMMANDS, cli

HEAVY_MODULES = ("jinja2", "httpx", "docker", "yaml")


def test_help_lists_every_registered_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f"  {name} " in result.output or f"  {name}\n" in result.output, name


def test_every_command_has_help_text():
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, f"{name}: {result.output}"
        body = result.output.split("Options:")[0]
        assert len(body.strip().splitlines()) >= 2, f"{name} --help has no description"


def test_every_command_help_shows_an_example():
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        body = result.output.split("Options:")[0]
        assert f"provision {name}" in body, f"{name} --help shows no example invocation"


def test_every_option_has_help():
    import click

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts[0]} has no help"


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_imports_no_heavy_library():
    probe = (
        "import sys\n"
        "from provision.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='provision')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    marker = [line for line in done.stdout.splitlines() if line.startswith("HEAVY:")]
    assert marker == ["HEAVY:"], f"--help imported {marker}"


def test_python_dash_m_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "provision", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_the_kit_never_imports_httpx_command_line_client():
    """httpx imports its CLI (rich, pygments) when rich is installed, as the dev tools install it.

    That doubled the import of `provision.api.client`, which every `create-project` re-run pays
    (bench/bench_create_project.py); the kit never runs httpx's CLI. Any kit module may import
    httpx first, so the guard is in the package itself.
    """
    pytest.importorskip("rich")
    probe = (
        "import sys\n"
        "import provision\n"
        "import httpx\n"  # as stack/start, ops/verify and others do before the API client
        "import provision.api.client\n"
        "print('LOADED:' + ','.join(m for m in ('rich', 'pygments', 'httpx._main') "
        "if sys.modules.get(m) is not None))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    marker = [line for line in done.stdout.splitlines() if line.startswith("LOADED:")]
    assert marker == ["LOADED:"], f"the kit imported {marker}"
