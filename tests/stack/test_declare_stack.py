"""`provision apply` against the stand-in GlitchTip 6 deployed by `provision up` (issue 22).

One deployment: `up` (admin, token in .env), then a declaration of two teams, a member, two
projects with keys, an alert and DSN files (one `.sentryclirc`), and two monitors is applied;
a second `plan` says "no changes" and a second `apply` changes nothing; `export` of the result
re-plans as "no changes" (with --prune); and the real sentry-cli (PyPI wheel) reads URL, org,
project and its own token from the written `.sentryclirc`, authenticates against this GlitchTip
and makes, finalizes and lists a release with it. About 1 minute (most of it `up`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_up_stack import Deployment

pytestmark = pytest.mark.stack

DECLARATION = """\
organization: Declared
teams: [backend, frontend]
members:
  - {email: admin@example.com, role: owner, teams: [backend, frontend]}
projects:
  - name: Web App
    platform: python
    teams: [backend, frontend]
    keys:
      - name: ""
      - name: ci
        rate_limit: {window: 60, count: 100}
    alerts:
      - name: Errors burst
        quantity: 5
        timespan_minutes: 10
        recipients:
          - type: email
          - type: webhook
            url_env: STACK_HOOK
    dsn_files:
      - path: apps/web/.glitchtiprc
      - path: apps/web/.sentryclirc
        format: sentryclirc
        key: ci
  - name: worker
    platform: python-celery
    teams: [backend]
monitors:
  - {name: db port, type: TCP Port, url: "postgres:5432", project: worker}
  - {name: hourly job, type: Heartbeat, interval: 3600}
"""
HOOK = "https://hooks.example.com/services/stack/secret"


@pytest.fixture
def gt(tmp_path, stack_env):
    directory = tmp_path / "gt6"
    directory.mkdir()
    deployment = Deployment(directory, 6, stack_env.images)
    deployment.env["STACK_HOOK"] = HOOK
    yield deployment
    deployment.teardown()


def sentry_cli() -> str:
    found = shutil.which("sentry-cli") or str(Path(sys.executable).parent / "sentry-cli")
    assert Path(found).exists(), "sentry-cli is missing: `make venv` installs it"
    return found


def test_apply_plan_export_and_sentry_cli_against_the_stand_in(gt):
    gt.provision("up")
    (gt.directory / "apps" / "web").mkdir(parents=True)
    (gt.directory / "glitchtip-resources.yaml").write_text(DECLARATION)
    first = gt.provision("plan", check=False)
    assert first.returncode == 3, first.stdout + first.stderr
    applied = json.loads(gt.provision("apply", "--json").stdout)
    assert applied["files_written"] and applied["summary"]["create"] >= 8
    again = gt.provision("plan", check=False)
    assert again.returncode == 0 and "no changes" in again.stdout
    second = json.loads(gt.provision("apply", "--json").stdout)
    assert second["changes"] == [] and second["posts"] == 0 and second["files_written"] == []
    assert HOOK not in first.stdout + json.dumps(applied)

    exported = gt.directory / "exported.yaml"
    gt.provision("export", "--org", "declared", "--output", str(exported),
                 "--secrets-out", str(gt.directory / "hooks.env"))  # fmt: skip
    text = exported.read_text()
    assert HOOK not in text and "url_env:" in text
    variable = text.split("url_env: ", 1)[1].split()[0]
    replanned = gt.provision("plan", "--file", str(exported), "--prune", check=False,
                             env={variable: HOOK})  # fmt: skip
    assert replanned.returncode == 0, replanned.stdout + replanned.stderr

    rc = gt.directory / "apps/web/.sentryclirc"
    assert rc.stat().st_mode & 0o777 == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY")}
    env["HOME"] = str(gt.directory)
    done = subprocess.run([sentry_cli(), "info", "--config-status-json"], cwd=rc.parent,
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["auth"] == {"type": "token", "successful": True}
    assert status["config"]["url"] == f"http://127.0.0.1:{gt.port}"
    assert status["config"]["org"] == "declared" and status["config"]["project"] == "web-app"
    scopes = subprocess.run([sentry_cli(), "info"], cwd=rc.parent, env=env,
                            capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert "project:releases" in scopes and "org:write" not in scopes
    for args in (("releases", "new", "2.0.0"), ("releases", "finalize", "2.0.0"),
                 ("releases", "list")):  # fmt: skip
        done = subprocess.run([sentry_cli(), *args], cwd=rc.parent, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (args, done.stderr)
    assert "2.0.0" in done.stdout
