"""`check_docs_moved.py` finds every unit of an old README that no page holds any more."""

from __future__ import annotations

from pathlib import Path

import check_docs_moved

OLD = """# Kit

## Metrics

Prometheus and
Grafana run with `up --metrics`.

| setting | default |
| --- | --- |
| `metrics` | `false` |

```sh
make start
```
"""


def _repo(tmp_path: Path, readme: str, page: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    (tmp_path / "docs" / "metrics.md").write_text(page, encoding="utf-8")
    return tmp_path


def test_units_are_headings_paragraphs_rows_and_code_lines() -> None:
    assert check_docs_moved.units(OLD) == [
        "Kit",
        "Metrics",
        "Prometheus and Grafana run with `up --metrics`.",
        "| setting | default |",
        "| --- | --- |",
        "| `metrics` | `false` |",
        "make start",
    ]


def test_moved_text_is_found_rewrapped_and_behind_a_link(tmp_path: Path) -> None:
    readme = "# Kit\n\n```sh\nmake start\n```\n\nSee [Metrics](docs/metrics.md).\n"
    page = (
        "# Metrics\n\nPrometheus and Grafana run\nwith `up --metrics`.\n\n"
        "| setting | default |\n| --- | --- |\n| `metrics` | `false` |\n"
    )
    assert check_docs_moved.missing(OLD, _repo(tmp_path, readme, page)) == []


def test_a_lost_row_and_paragraph_are_reported(tmp_path: Path) -> None:
    readme = "# Kit\n\n## Metrics\n\n```sh\nmake start\n```\n"
    page = "| setting | default |\n| --- | --- |\n"
    assert check_docs_moved.missing(OLD, _repo(tmp_path, readme, page)) == [
        "Prometheus and Grafana run with `up --metrics`.",
        "| `metrics` | `false` |",
    ]
