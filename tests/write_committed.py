"""Write the committed default render at the repository's top level: compose.yml,
compose.part.yml, compose.metrics.yml and monitoring/ (files no longer rendered are removed),
and the settings table of docs/settings.md from the spec table (`settings_doc.py`).

Tests compare those files with a fresh render of the default settings (`test_render.py`,
`test_metrics_render.py`); after changing a template, a rule, a dashboard or the project exporter,
run `.venv/bin/python tests/write_committed.py` and commit the result. No secret is involved: the
render uses placeholder secrets, and `.env` is not written.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLACEHOLDERS = {
    "SECRET_KEY": "placeholder-" + "x" * 50,
    "POSTGRES_PASSWORD": "placeholder-password",
    "DJANGO_SUPERUSER_PASSWORD": "placeholder-password",
    "GRAFANA_ADMIN_PASSWORD": "placeholder-password",
}


def main() -> None:
    from provision.render import ENV_FILE, render_files
    from provision.settings import load_settings

    with tempfile.TemporaryDirectory() as scratch:  # no glitchtip.yaml, no .env: the defaults
        files = render_files(load_settings(Path(scratch), environ={}), PLACEHOLDERS)
    shutil.rmtree(REPO / "monitoring", ignore_errors=True)
    for name, text in files.items():
        if name == ENV_FILE:
            continue
        path = REPO / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {name}")
    # compose.locust.yml is written by `provision load`, not by render: its default too.
    from provision.load.compose_file import LOCUST_FILE, render_locust

    with tempfile.TemporaryDirectory() as scratch:
        locust = render_locust(load_settings(Path(scratch), environ={}))
    (REPO / LOCUST_FILE).write_text(locust, encoding="utf-8")
    print(f"wrote {LOCUST_FILE}")
    sys.path.insert(0, str(REPO / "tests"))
    import settings_doc

    settings_doc.write()
    print(f"wrote {settings_doc.PAGE.relative_to(REPO)} (the settings table)")


if __name__ == "__main__":
    main()
