"""Check that nothing of an earlier README.md was lost when its references moved to docs/.

Every unit of the old README (a heading, a paragraph, a table row, a list item, a line of a code
block, a section marker) must appear in today's README.md or a page under docs/, compared with
whitespace collapsed and Markdown links read as their text (`[Metrics](docs/metrics.md)` reads
"Metrics"). Prints each unit not found and exits 1 if there is one.

    .venv/bin/python tests/check_docs_moved.py OLD_README.md
    git show <commit>:README.md | .venv/bin/python tests/check_docs_moved.py -

Run it after moving text out of README (or after merging a branch that added to README): the
merge of a branch that wrote into README.md shows here what still has to move to its page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*\)")
# Cross references whose target moved to another page, rewritten on purpose (old -> new, both
# as `normalized` reads them).
REWORDED = {
    "configures what is still missing itself (below)": (
        "configures what is still missing itself (partman.md)"
    ),
    "overridable (settings above);": "overridable (settings);",
}


def normalized(text: str) -> str:
    """`text` with Markdown links read as their text and runs of whitespace as one space."""
    return " ".join(_LINK.sub(r"\1", text).split())


def units(markdown: str) -> list[str]:
    """The old README cut into the units that must survive (see the module docstring)."""
    found: list[str] = []
    paragraph: list[str] = []
    fenced = False

    def flush() -> None:
        if paragraph:
            found.append(" ".join(paragraph))
            paragraph.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            fenced = not fenced
            continue
        if fenced:
            if stripped:
                found.append(stripped)
            continue
        if not stripped:
            flush()
        elif stripped.startswith(("#", "|", "<!--", "- ", "* ")) or re.match(r"\d+\. ", stripped):
            flush()
            found.append(stripped.lstrip("#").strip() if stripped.startswith("#") else stripped)
        else:
            paragraph.append(stripped)
    flush()
    return found


def missing(old_readme: str, repo: Path = REPO) -> list[str]:
    """The units of `old_readme` found neither in README.md nor under docs/."""
    pages = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    here = "\n".join(normalized(page.read_text(encoding="utf-8")) for page in pages)
    lost = []
    for unit in units(old_readme):
        text = normalized(unit)
        for old, new in REWORDED.items():
            text = text.replace(old, new)
        if text not in here:
            lost.append(unit)
    return lost


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_docs_moved.py OLD_README.md (or - for standard input)", file=sys.stderr)
        return 2
    text = sys.stdin.read() if argv[0] == "-" else Path(argv[0]).read_text(encoding="utf-8")
    lost = missing(text)
    total = len(units(text))
    for unit in lost:
        print(f"not found: {unit[:160]}")
    print(f"{total - len(lost)} of {total} units of the old README found in README.md and docs/")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
