"""The settings reference of docs/settings.md, generated from the spec table.

`tests/write_committed.py` writes it between the two markers below; `test_docs_settings.py`
fails when the page and `provision.settings.SPECS` differ. The prose around the table is
written by hand.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "settings.md"
BEGIN = (
    "<!-- generated from provision/settings/specs.py by tests/write_committed.py: do not edit -->"
)
END = "<!-- /generated -->"


def default_cell(text: str) -> str:
    """A default as the table shows it: a single value in code style, prose (and "empty", the
    word for no value) as it is."""
    if "`" in text or " " in text or text == "empty":
        return text
    return f"`{text}`"


def settings_table() -> str:
    """The Markdown table of every setting, in the spec table's order."""
    from provision.settings import SPECS

    rows = [
        "| setting (`glitchtip.yaml`) | environment variable | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    rows += [
        f"| `{spec.name}` | `{spec.env}` | {default_cell(spec.default_text)} | {spec.help} |"
        for spec in SPECS
    ]
    return "\n".join(rows) + "\n"


def generated_part(page_text: str) -> str:
    """What stands between the markers of `page_text` (ValueError without them)."""
    _head, begin, rest = page_text.partition(BEGIN + "\n")
    body, end, _tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{PAGE.name} has no {BEGIN!r} ... {END!r} part")
    return body


def with_table(page_text: str) -> str:
    """`page_text` with the part between the markers replaced by today's table."""
    head, _begin, rest = page_text.partition(BEGIN + "\n")
    _body, _end, tail = rest.partition(END)
    generated_part(page_text)  # refuses a page without the markers
    return f"{head}{BEGIN}\n{settings_table()}{END}{tail}"


def write() -> None:
    """Rewrite the table of docs/settings.md."""
    PAGE.write_text(with_table(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
