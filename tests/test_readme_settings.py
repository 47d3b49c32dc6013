"""The settings reference lists exactly the settings of the model, in order, and the security
section names the defaults. Both moved from README.md to their pages under docs/ (README keeps
a map); a section is looked up in README.md and every page, so it may move again."""

from __future__ import annotations

import re
from pathlib import Path

from provision.settings import SPECS

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))


def section(name: str) -> str:
    """The text between `<!-- section: name -->` and its end, in exactly one page."""
    found = [
        match.group(1)
        for page in PAGES
        for match in re.finditer(
            rf"<!-- section: {name} -->\n(.*?)<!-- /section: {name} -->",
            page.read_text(encoding="utf-8"),
            flags=re.DOTALL,
        )
    ]
    assert len(found) == 1, f"{len(found)} {name} sections in README.md and docs/ (want one)"
    return found[0]


def test_readme_links_every_page_of_docs() -> None:
    """README.md is the map: every page under docs/ is linked from it, and every link works."""
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[a-z0-9-]+\.md)(?:#[a-z0-9-]+)?\)", text))
    pages = {f"docs/{page.name}" for page in PAGES[1:]}
    assert pages - linked == set(), "pages README.md does not link"
    assert linked - pages == set(), "README.md links pages that do not exist"


def test_readme_keeps_the_quick_start() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.partition("## Quick start")[2].partition("```sh\n")[2].partition("```")[0]
    assert [line.split()[:2] for line in quick.splitlines()] == [
        ["make", "start"],
        ["make", "test"],
    ]


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
