"""Where the recorded GlitchTip exchanges live, and how they are ordered and grouped.

The recordings are not copied into the repository: they are read from the shared contract
directory beside the checkout (`<repo>/../shared/glitchtip-contract/fixtures`, which is where CI
puts its copy too) or from `GLITCHTIP_CONTRACT_DIR`. New recordings join the replay without any
edit here: only the server state a number range was recorded on is written down.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ENV_VAR = "GLITCHTIP_CONTRACT_DIR"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO.parent / "shared" / "glitchtip-contract" / "fixtures"
NAME = re.compile(r"(\d+)([a-z]?)_")


def recordings_dir() -> Path:
    """The fixtures directory: `$GLITCHTIP_CONTRACT_DIR` (or its `fixtures/`), else beside."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if not configured:
        return DEFAULT_DIR
    path = Path(configured).expanduser()
    return path / "fixtures" if (path / "fixtures").is_dir() else path


def missing_message(path: Path) -> str:
    """The one line a contract run prints when it cannot find the recordings."""
    return (
        f"no GlitchTip recordings at {path}: clone shared/glitchtip-contract beside the "
        f"repository or set {ENV_VAR} to its fixtures directory"
    )


def load_recordings(path: Path) -> dict[str, dict]:
    """Every recorded exchange by file stem ({} when the directory is missing)."""
    if not path.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(path.glob("*.json"))}


def order_key(name: str) -> tuple[int, str, str]:
    """Recorded order: `15` before `15b` before `16`, `100` after `93`."""
    match = NAME.match(name)
    if match is None:
        return (10**9, "", name)  # an oddly named new recording still replays, last
    return int(match.group(1)), match.group(2), name


# Which recorded server state a number range belongs to (NOTES.md §2 B and C, and the
# "Recorded on 2026-11-26" section: fixtures 150+ come from a second server, the Docker image).
GROUP_RANGES = {
    "initial_user": range(120, 130),
    "fresh": range(130, 140),
    "contract": range(150, 10**6),
}
# Where the file names' order differs from the order the recording ran in, as (names matching a
# regex, the recording they ran before), applied in turn. Seen in the recorded values: the
# session token is id 1, the e-mail alert id 1, `web-app-2` before `-3`; the events (100-116,
# received at 00:03) came before the project update (66, whose firstEvent is 00:03:06, while the
# issues still show the old platform) and before the worker's checks (88, at 00:05).
MOVED_BEFORE = (
    ("131_signup_first_user_weak_password_400", "131_signup_first_user_200"),
    (r"1[01]\d[a-z]?_.*", "88_monitors_list_after_worker_checks"),
    ("66_project_update_put", "88_monitors_list_after_worker_checks"),
    # Monitor ids show the creation order 411, 415, 416, 417, 424, 413, 414, 418; the broken
    # monitor (424) was deleted after the list that fails because of it (428).
    (r"41[5-7]_.*", "413_monitor_create_post_201"),
    ("424_monitor_create_unknown_type_500_row_created", "413_monitor_create_post_201"),
    ("424b_monitor_delete_invalid_type_204", "428b_monitors_list_event_read_token_no_scope_check"),
    ("18_api_token_create_session_201", "18_api_token_create_readonly_201"),
    ("52_project_create_duplicate_name_201", "52_project_create_duplicate_explicit_slug"),
    ("72_project_alert_create_email_201", "72_project_alert_create_duplicate_201"),
    ("72_project_alert_create_webhook_201", "72_project_alert_create_duplicate_201"),
)


def group_of(name: str) -> str:
    """The server state a recording was made on (`main` unless a range says otherwise)."""
    number = order_key(name)[0]
    return next((g for g, numbers in GROUP_RANGES.items() if number in numbers), "main")


def ordered(names: list[str]) -> list[str]:
    """Names in recorded order, with the few known reorderings applied."""
    result = sorted(names, key=order_key)
    for pattern, before in MOVED_BEFORE:
        moved = [n for n in result if re.fullmatch(pattern, n)]
        if not moved or before not in result:
            continue
        result = [n for n in result if n not in moved]
        index = result.index(before)
        result[index:index] = moved
    return result
