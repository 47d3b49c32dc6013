"""The README's settings reference lists exactly the settings of the model, in order."""

from __future__ import annotations

import re
from pathlib import Path

from provision.settings import SPECS

README = Path(__file__).resolve().parent.parent / "README.md"


def section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- section: {name} -->\n(.*?)<!-- /section: {name} -->", text, flags=re.DOTALL
    )
    assert match, f"README.md has no {name} section"
    return match.group(1)


def test_settings_reference_matches_the_model() -> None:
    rows = re.findall(
        r"^\| `([a-z0-9_]+)` \| `([A-Z0-9_]+)` \| (.+?) \| (.+?) \|$", section("settings"), re.M
    )
    assert [(name, env) for name, env, _, _ in rows] == [(spec.name, spec.env) for spec in SPECS]
    for (_, _, default, description), spec in zip(rows, SPECS, strict=True):
        assert description == spec.help
        assert spec.default_text.strip("`") in default


def test_security_section_names_the_defaults() -> None:
    text = section("security")
    for fact in ("0600", "rotate-secret", "127.0.0.1", "no-new-privileges", ".gitignore"):
        assert fact in text
