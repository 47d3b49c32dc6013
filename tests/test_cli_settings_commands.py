"""`provision init`, `render`, `config`, `rotate-secret` through the real CLI on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import run
from click.testing import CliRunner

from provision.cli import cli
from provision.envfile import read_env_file

pytestmark = pytest.mark.usefixtures("kit_environ")

SECRET_KEYS = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Content, mode and mtime of every file: "unchanged" means not even rewritten."""
    return {
        path.name: (path.read_bytes(), path.stat().st_mode & 0o777, path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


def assert_no_secret(directory: Path, text: str) -> None:
    env = read_env_file(directory / ".env")
    for key in SECRET_KEYS:
        if env.get(key):
            assert env[key] not in text


def test_init_then_render_check(tmp_path: Path) -> None:
    result = run(tmp_path, "init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "glitchtip.yaml").exists()
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert "SECRET_KEY: ******** (generated)" in result.output
    assert_no_secret(tmp_path, result.output)

    result = run(tmp_path, "render", "--check")
    assert result.exit_code == 0, result.output
    assert "compose.yml + compose.part.yml valid" in result.output
    assert (tmp_path / "compose.yml").stat().st_mode & 0o777 == 0o644
    assert_no_secret(tmp_path, result.output)


def test_init_is_idempotent_and_keeps_secrets(tmp_path: Path) -> None:
    run(tmp_path, "init")
    before = snapshot(tmp_path)
    result = run(tmp_path, "init")
    assert result.exit_code == 0
    assert "glitchtip.yaml: kept" in result.output and "(kept)" in result.output
    assert snapshot(tmp_path) == before


def test_init_writes_options_into_a_new_settings_file(tmp_path: Path) -> None:
    result = run(tmp_path, "init", "--domain", "https://errors.example.com", "--set", "project=web")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "glitchtip.yaml").read_text()
    assert "\nglitchtip_domain: https://errors.example.com\n" in text
    assert "\nproject: web\n" in text
    assert "\n# http_port: 8000\n" in text


def test_init_settings_file_round_trips(tmp_path: Path) -> None:
    """Every line init writes is valid: uncommenting them all gives the same settings."""
    from provision.settings import load_settings

    run(tmp_path, "init")
    first = load_settings(tmp_path, environ={})
    path = tmp_path / "glitchtip.yaml"
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("# ") and ": " in line and line[2].islower() and " " not in line[2:6]:
            line = line[2:].split("  # derived")[0]
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    second = load_settings(tmp_path, environ={})
    for name in first.sources:
        assert first.value(name) == second.value(name), name


def test_rerender_after_a_setting_change_keeps_every_secret(tmp_path: Path) -> None:
    run(tmp_path, "init")
    run(tmp_path, "render")
    before = read_env_file(tmp_path / ".env")
    (tmp_path / "glitchtip.yaml").write_text("glitchtip_major: 5\nhttp_port: 9000\n")
    result = run(tmp_path, "render", "--check")
    assert result.exit_code == 0, result.output
    after = read_env_file(tmp_path / ".env")
    for key in SECRET_KEYS:
        assert after[key] == before[key]
    assert "./bin/run-celery-with-beat.sh" in (tmp_path / "compose.yml").read_text()
    result = run(tmp_path, "init")
    assert read_env_file(tmp_path / ".env") == after


def test_render_reports_unchanged(tmp_path: Path) -> None:
    run(tmp_path, "render")
    before = snapshot(tmp_path)
    assert {".env", "compose.yml", "compose.part.yml"} <= set(before)
    result = run(tmp_path, "render")
    assert result.exit_code == 0, result.output
    assert result.output.count("unchanged") == 4
    assert "monitoring/: 0 files written" in result.output
    assert snapshot(tmp_path) == before  # not rewritten: same bytes, mode and mtime


def test_config_shows_sources_and_masks(tmp_path: Path) -> None:
    run(tmp_path, "init")
    (tmp_path / "glitchtip.yaml").write_text("retention_days: 30\n")
    result = run(
        tmp_path,
        "config",
        "--json",
        "--http-port",
        "8100",
        env={
            "GLITCHTIP_KIT_PROJECT": "web",
            "EMAIL_URL": "smtp+tls://me:mailsecret-123@mail.example.com:587",
        },
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    settings = data["settings"]
    assert settings["http_port"] == {
        "value": 8100,
        "source": "option",
        "env": "GLITCHTIP_KIT_HTTP_PORT",
    }
    assert settings["project"]["source"] == "environment"
    assert settings["retention_days"]["source"] == "file"
    assert settings["platform"]["source"] == "default"
    assert settings["worker_concurrency"]["source"] == "derived"
    assert "mailsecret-123" not in result.output
    assert data["secrets"]["SECRET_KEY"] == "********"
    assert data["secrets"]["GLITCHTIP_API_TOKEN"] == "(unset)"
    assert_no_secret(tmp_path, result.output)


def test_config_table(tmp_path: Path) -> None:
    run(tmp_path, "init")
    result = run(tmp_path, "config")
    assert result.exit_code == 0
    assert any(
        line.split() == ["glitchtip_major", "6", "file"] for line in result.output.splitlines()
    )
    assert_no_secret(tmp_path, result.output)


def test_rotate_secret_needs_yes_and_says_what_breaks(tmp_path: Path) -> None:
    run(tmp_path, "init")
    before = snapshot(tmp_path)
    result = run(tmp_path, "rotate-secret", "SECRET_KEY")
    assert result.exit_code == 2
    assert "logged out" in result.output and "--yes" in result.output
    assert snapshot(tmp_path) == before
    old = read_env_file(tmp_path / ".env")
    result = run(tmp_path, "rotate-secret", "SECRET_KEY", "--yes")
    assert result.exit_code == 0, result.output
    new = read_env_file(tmp_path / ".env")
    assert new["SECRET_KEY"] != old["SECRET_KEY"]
    assert new["POSTGRES_PASSWORD"] == old["POSTGRES_PASSWORD"]
    assert old["SECRET_KEY"] not in result.output and new["SECRET_KEY"] not in result.output


def test_rotate_database_password_is_refused_with_the_way(tmp_path: Path) -> None:
    run(tmp_path, "init")
    before = snapshot(tmp_path)
    result = run(tmp_path, "rotate-secret", "POSTGRES_PASSWORD", "--yes")
    assert result.exit_code == 2
    assert "ALTER USER" in result.output
    assert snapshot(tmp_path) == before


# --- bad input: one line naming the setting and the fix, exit 2, every file as it was ---

BAD_INPUTS = {
    "url": (["--domain", "glitchtip.example.com"], None, None, "glitchtip_domain"),
    "port": (["--http-port", "70000"], None, None, "http_port"),
    "email-url": ([], {"EMAIL_URL": "smtp://"}, None, "email_url"),
    "image": (["--set", "postgres_image=postgres"], None, None, "postgres_image"),
    "retention": ([], {"GLITCHTIP_MAX_EVENT_LIFE_DAYS": "-1"}, None, "retention_days"),
    "unknown-option": (["--set", "colour=blue"], None, None, "colour"),
    "unknown-key": ([], None, ("glitchtip.yaml", "retention_dayz: 3\n"), "retention_dayz"),
    "bad-yaml": ([], None, ("glitchtip.yaml", "http_port: [\n"), "glitchtip.yaml"),
    "bad-env": ([], None, (".env", "SECRET_KEY=tiny\n"), "SECRET_KEY"),
    "corrupt-env": ([], None, (".env", "garbage line\n"), ".env line 1"),
    "partman-on-6": (["--set", "advanced_partitioning=true"], None, None, "advanced_partitioning"),
    "old-postgres": (["--set", "postgres_image=postgres:13.1"], None, None, "postgres_image"),
}


@pytest.mark.parametrize("command", ["init", "render", "config"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(tmp_path: Path, command: str, case: str) -> None:
    args, env, file, names = BAD_INPUTS[case]
    run(tmp_path, "init")
    run(tmp_path, "render")
    if file is not None:
        (tmp_path / file[0]).write_text(file[1])
    before = snapshot(tmp_path)
    result = run(tmp_path, command, *args, env=env)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and names in lines[0]
    assert lines[0].count(": ") >= 2  # the problem, then the fix
    assert snapshot(tmp_path) == before


def test_bad_set_syntax_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "render", "--set", "novalue")
    assert result.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_partitioning_switch_refused_by_render(tmp_path: Path) -> None:
    run(tmp_path, "render", "--major", "5")
    before = snapshot(tmp_path)
    result = run(tmp_path, "render", "--major", "5", "--set", "advanced_partitioning=true")
    assert result.exit_code == 2
    assert "cannot switch on an existing database" in result.stderr
    assert snapshot(tmp_path) == before


def test_dir_from_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init"], env={"GLITCHTIP_KIT_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".env").exists()


def test_python_dash_m_and_help_stay_light() -> None:
    code = (
        "import sys; from provision.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('jinja2', 'yaml', 'httpx', 'docker') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "render" in done.stdout and "rotate-secret" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "HEAVY="
    version = subprocess.run(
        [sys.executable, "-m", "provision", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and "provision" in version.stdout


def test_init_text_is_a_header_then_three_lines_per_setting(tmp_path: Path, kit_environ) -> None:
    """glitchtip.yaml as `provision init` writes it: the header, then for every setting its
    help and variable, its line (active when given as an option, else commented; a derived one
    says how it is derived; a password masked and a secret left out, both commented) and a
    blank line."""
    from provision.settings import SPECS, load_settings
    from provision.settings.init_text import initial_settings_text

    settings = load_settings(
        tmp_path,
        {
            "http_port": "8080",
            "email_url": "smtp://u:secretpw@mail.example.com:587",
            "uploads_bucket": "b1-gt",
            "uploads_access_key_id": "AKIAX1",
            "uploads_secret_access_key": "sekrit-value",
            "enable_user_registration": "true",
        },
        environ={},
    )
    lines = initial_settings_text(settings).split("\n")
    assert lines[:4] == [
        "# Settings of this GlitchTip deployment (safe to commit: no secrets here).",
        "# Precedence: command-line option > environment variable > this file > default.",
        "# `provision config` shows the effective values; `provision render --check` applies them.",
        "",
    ]
    blocks = {
        SPECS[index].name: lines[4 + 3 * index : 7 + 3 * index] for index in range(len(SPECS))
    }
    assert len(lines) == 4 + 3 * len(SPECS)
    for spec in SPECS:
        assert blocks[spec.name][0] == f"# {spec.help} [{spec.env}]"
        assert blocks[spec.name][2] == ""
    shown = {name: block[1] for name, block in blocks.items()}
    assert shown["glitchtip_major"] == "glitchtip_major: 6"  # always written
    assert shown["http_port"] == "http_port: 8080"
    assert shown["enable_user_registration"] == "enable_user_registration: true"
    assert shown["uploads_bucket"] == "uploads_bucket: b1-gt"
    assert shown["bind_address"] == "# bind_address: 127.0.0.1"
    assert shown["glitchtip_domain"] == "# glitchtip_domain: http://localhost:8080"
    assert shown["glitchtip_image"] == (
        "# glitchtip_image: glitchtip/glitchtip:6.2.6  # derived: 6: "
        "`glitchtip/glitchtip:6.2.6`, 5: `glitchtip/glitchtip:v5.1.0`"
    )
    assert shown["email_url"] == "# email_url: smtp://u:********@mail.example.com:587"
    assert shown["uploads_secret_access_key"] == "# uploads_secret_access_key: ''"
    assert shown["uploads_access_key_id"] == "# uploads_access_key_id: ''"
    assert shown["database_url"] == "# database_url: ''"


def test_init_writes_a_long_value_on_its_one_line(tmp_path: Path, kit_environ) -> None:
    """A value longer than YAML's default line width (80) stays on its setting's line: a
    folded value would not read back as the same setting."""
    from provision.settings import load_settings
    from provision.settings.init_text import initial_settings_text

    sender = "GlitchTip notifications of the platform team " + "x" * 40 + " <gt@example.com>"
    settings = load_settings(tmp_path, {"default_from_email": sender}, environ={})
    lines = initial_settings_text(settings).split("\n")
    assert f"default_from_email: {sender}" in lines
