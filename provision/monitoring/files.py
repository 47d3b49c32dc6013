"""The files of a deployment's `monitoring/` directory, made from `templates/monitoring/`.

Pure: settings in, {relative path: content} out. Files ending in `.j2` are Jinja2 templates
(rendered without the suffix); every other file is copied as it is (rules, Grafana provisioning,
dashboards). The project exporter is copied from `provision/monitoring/project_exporter.py` and
its configuration (`config.json`, no secret in it: the token is a Compose secret) is built from
the settings. `digests` fingerprints what each service mounts, so compose.metrics.yml changes,
and `up` recreates the service, when one of its files changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

MONITORING_DIR = "monitoring"
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
EXPORTER_SOURCE = Path(__file__).resolve().parent / "project_exporter.py"
EXPORTER_DIR = f"{MONITORING_DIR}/project-exporter"
EXPORTER_PORT = 9808
EXPORTER_POLL_SECONDS = 60
EXPORTER_MAX_PROJECTS = 50
TOKEN_SECRET_FILE = "/run/secrets/glitchtip_api_token"
RULES_DIR = "prometheus/rules"

# The directories compose.metrics.yml bind-mounts (with create_host_path: false, so Docker
# never makes an empty directory where a file should be): render creates each, even empty.
MOUNTED_DIRECTORIES = (
    f"{MONITORING_DIR}/prometheus",
    f"{MONITORING_DIR}/grafana/provisioning",
    f"{MONITORING_DIR}/grafana/dashboards",
    EXPORTER_DIR,
)

# service of compose.metrics.yml -> the directory under monitoring/ it mounts
MOUNTED_BY: dict[str, str] = {
    "prometheus": f"{MONITORING_DIR}/prometheus/",
    "grafana": f"{MONITORING_DIR}/grafana/",
    "project_exporter": f"{EXPORTER_DIR}/",
}


def static_sources() -> list[PurePosixPath]:
    """The files under templates/monitoring/, relative to templates/, sorted."""
    root = TEMPLATES / MONITORING_DIR
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(TEMPLATES)
        if path.is_file() and not any(
            part.startswith(".") or part == "__pycache__" for part in relative.parts
        ):
            found.append(PurePosixPath(relative.as_posix()))
    return found


def rule_files() -> list[str]:
    """The Prometheus rule files (names), listed one by one in prometheus.yml: a file left in
    the deployment's rules/ directory by an older kit is not loaded."""
    rules = TEMPLATES / MONITORING_DIR / RULES_DIR
    if not rules.is_dir():
        return []
    return sorted(
        path.name
        for path in rules.iterdir()
        if path.is_file() and path.suffix in (".yml", ".yaml") and not path.stem.endswith("test")
    )


def exporter_config(settings: Any) -> dict[str, Any]:
    """The project exporter's `config.json`: where GlitchTip is, which organization, how often
    to poll, and each error budget with its window in seconds. No secret: the token is read from
    the Compose secret file."""
    from provision.provisioning import slugify
    from provision.settings import budget_window_seconds

    budgets = {
        slug: {
            "max_errors": int(budget["max_errors"]),
            "per_seconds": budget_window_seconds(str(budget["per"])),
        }
        for slug, budget in settings.error_budgets.items()
    }
    return {
        "api_url": f"http://web:{settings.major.web_port}",
        # GlitchTip checks ALLOWED_HOSTS: the exporter sends the public host, like a browser.
        "host_header": urlsplit(settings.glitchtip_domain).netloc,
        "organization": slugify(settings.organization),
        "poll_seconds": EXPORTER_POLL_SECONDS,
        "max_projects": EXPORTER_MAX_PROJECTS,
        "listen_port": EXPORTER_PORT,
        "token_file": TOKEN_SECRET_FILE,
        "error_budgets": budgets,
    }


def monitoring_files(
    settings: Any, render_template: Callable[[str, Mapping[str, Any]], str]
) -> dict[str, str]:
    """relative path (`monitoring/...`) -> content of every file under `monitoring/`.

    `render_template(name, context)` renders a template of templates/ (the render module's
    Jinja2 environment, so filters and strictness are the same as for the compose files)."""
    context = {
        "s": settings,
        "m": settings.major,
        "rule_files": rule_files(),
        "exporter_port": EXPORTER_PORT,
    }
    files: dict[str, str] = {}
    for source in static_sources():
        if source.suffix == ".j2":
            files[str(source.with_suffix(""))] = render_template(str(source), context)
        else:
            files[str(source)] = (TEMPLATES / source).read_text(encoding="utf-8")
    files[f"{EXPORTER_DIR}/exporter.py"] = EXPORTER_SOURCE.read_text(encoding="utf-8")
    files[f"{EXPORTER_DIR}/config.json"] = (
        json.dumps(exporter_config(settings), indent=2, ensure_ascii=False) + "\n"
    )
    return dict(sorted(files.items()))


def digests(files: Mapping[str, str]) -> dict[str, str]:
    """service -> sha256 of the monitoring files it mounts (path and content)."""
    result = {}
    for service, prefix in MOUNTED_BY.items():
        digest = hashlib.sha256()
        for name in sorted(files):
            if name.startswith(prefix):
                digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        result[service] = digest.hexdigest()
    return result


def queue_keys_check(keys: tuple[str, ...]) -> str:
    """redis_exporter's `check-single-keys` value for the task-queue lists (database 0)."""
    return ",".join(f"db0={key}" for key in keys)
