"""config.json and the token file as the exporter reads them: a file that is not UTF-8 text is
one line and exit 2, never a traceback in the container's log."""

from __future__ import annotations

from provision.monitoring import project_exporter as pe


def test_a_config_that_is_not_utf8_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"api_url": "http://web:8000", "organization": "acme\xe9"}')
    assert pe.main(["--config", str(path)]) == 2
    assert capsys.readouterr() == (
        "",
        f"error: {path} is not valid JSON: it is not UTF-8 text\n",
    )


def test_a_config_in_utf8_with_a_non_ascii_organization_is_refused_by_name(tmp_path, capsys):
    """The same text written in UTF-8 is read, and refused for what it says."""
    path = tmp_path / "config.json"
    path.write_text('{"api_url": "http://web:8000", "organization": "acmé"}', encoding="utf-8")
    assert pe.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: organization must be an organization slug, not 'acmé'\n"
    )
