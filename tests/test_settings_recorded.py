"""A deployment keeps addressing the same stack when a setting was given for one run only.

`GLITCHTIP_KIT_HTTP_PORT=9100 provision up` followed by a plain `provision status` (or the next
`up`) must not fall back to port 8000, the default Compose project or, worst, GlitchTip 6 on a
GlitchTip 5 database. Render records such values in `.env`; glitchtip.yaml stays in charge of
everything it sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli import cli
from provision.envfile import read_env_file
from provision.render import write_rendered
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

GIVEN = {
    "GLITCHTIP_KIT_MAJOR": "5",
    "GLITCHTIP_KIT_HTTP_PORT": "9100",
    "GLITCHTIP_KIT_BIND_ADDRESS": "127.0.0.2",
    "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME": "errors",
    "GLITCHTIP_DOMAIN": "https://errors.example.org",
}


def test_values_given_for_one_run_are_used_by_later_runs(tmp_path: Path) -> None:
    write_rendered(load_settings(tmp_path, environ=GIVEN))
    later = load_settings(tmp_path, environ={})
    assert later.glitchtip_major == 5
    assert later.http_port == 9100
    assert later.bind_address == "127.0.0.2"
    assert later.compose_project_name == "errors"
    assert later.glitchtip_domain == "https://errors.example.org"
    assert later.sources["http_port"] == ".env"
    # ...and rendering again without them changes nothing.
    before = (tmp_path / "compose.yml").read_bytes(), (tmp_path / ".env").read_bytes()
    write_rendered(later)
    assert ((tmp_path / "compose.yml").read_bytes(), (tmp_path / ".env").read_bytes()) == before


def test_an_explicit_value_still_wins_over_the_record(tmp_path: Path) -> None:
    write_rendered(load_settings(tmp_path, environ=GIVEN))
    again = load_settings(tmp_path, environ={"GLITCHTIP_KIT_HTTP_PORT": "9200"})
    assert again.http_port == 9200
    assert again.sources["http_port"] == "environment"
    write_rendered(again)
    assert read_env_file(tmp_path / ".env")["GLITCHTIP_KIT_HTTP_PORT"] == "9200"


def test_values_from_glitchtip_yaml_and_defaults_are_not_recorded(tmp_path: Path) -> None:
    (tmp_path / "glitchtip.yaml").write_text("http_port: 9300\n", encoding="utf-8")
    write_rendered(load_settings(tmp_path, environ={}))
    env = read_env_file(tmp_path / ".env")
    assert env["GLITCHTIP_KIT_HTTP_PORT"] == ""
    assert env["GLITCHTIP_KIT_MAJOR"] == ""
    # Deleting the line from glitchtip.yaml really goes back to the default.
    (tmp_path / "glitchtip.yaml").write_text("", encoding="utf-8")
    assert load_settings(tmp_path, environ={}).http_port == 8000


def test_config_shows_the_record_as_the_source(tmp_path: Path) -> None:
    write_rendered(load_settings(tmp_path, environ=GIVEN))
    result = CliRunner().invoke(cli, ["config", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("http_port"))
    assert "9100" in line and ".env" in line
