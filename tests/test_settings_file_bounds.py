"""glitchtip.yaml's size bound on both sides, and what PyYAML cannot read, refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import SettingsError
from provision.settings.yamlfile import MAX_SETTINGS_BYTES, read_settings_file


def test_a_settings_file_of_256_kib_is_read_and_one_byte_more_is_refused(tmp_path: Path):
    """Comments fill the file: the bound is on the bytes read, whatever they hold."""
    path = tmp_path / "glitchtip.yaml"
    head = "http_port: 8000\n"
    path.write_text(head + "#" * (256 * 1024 - len(head) - 1) + "\n")
    assert path.stat().st_size == MAX_SETTINGS_BYTES == 262144
    assert read_settings_file(path) == {"http_port": 8000}
    path.write_text(head + "#" * (256 * 1024 - len(head)) + "\n")
    with pytest.raises(SettingsError) as refused:
        read_settings_file(path)
    assert (refused.value.message, refused.value.fix) == (
        f"{path} cannot be read: 262145 bytes is more than the 262144 a kit file can be",
        f"check that {path} is the right file; trim it or remove it",
    )


@pytest.mark.parametrize("text", ["http_port: 8000\x07\n", "organization: \ufffe\n"])
def test_a_character_yaml_cannot_read_is_refused_without_a_line(tmp_path: Path, text: str):
    """PyYAML's reader refuses control and non-characters before it knows lines (its error has
    no mark): the refusal says so without a line number rather than failing on the mark."""
    path = tmp_path / "glitchtip.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as refused:
        read_settings_file(path)
    assert (refused.value.message, refused.value.fix) == (
        "glitchtip.yaml: not valid YAML",
        f"fix the syntax of {path} (one 'setting: value' per line)",
    )


def test_a_number_too_long_to_read_is_one_whole_refusal(tmp_path: Path) -> None:
    """PyYAML turns 5,000 digits into an int, which Python refuses (ValueError)."""
    path = tmp_path / "glitchtip.yaml"
    path.write_text("http_port: " + "9" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(SettingsError) as refused:
        read_settings_file(path)
    assert (refused.value.message, refused.value.fix) == (
        "glitchtip.yaml: a value cannot be read as a setting",
        f"check the values in {path}: whole numbers of a few digits, true/false, or text",
    )
