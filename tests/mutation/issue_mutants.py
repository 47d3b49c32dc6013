"""The breakages issues 13 and 20 found unseen, applied one at a time to a copy of `provision/`.

Each entry is a small hand-written change (a realistic bug, not a random operator swap) to a
copy of the package in a temporary directory; the fast tests that guard it then run against the
copy (PYTHONPATH puts it before the editable install; `-P` keeps the
checkout itself off sys.path). A mutation no test notices "survives" and
the script exits 1. An entry whose original text is gone ("stale") means the code moved on:
update the entry rather than deleting it. Run by `make mutation` after mutmut; stdlib only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTEST = ["-m", "not stack"]
TESTS = [
    "tests/test_up_steps_real.py",
    "tests/test_provisioning_logic.py",
    "tests/test_fileio.py",
    "tests/test_dsn.py",
    "tests/test_secrets.py",
    "tests/test_stack_steps.py",
]


@dataclass(frozen=True)
class Mutation:
    """Replace `old` by `new` (exactly once) in `module`, a path under provision/."""

    name: str
    module: str
    old: str
    new: str
    tests: tuple[str, ...] = ()  # the test files that guard it (default: TESTS)


MUTATIONS = (
    Mutation(
        "render step deletes .env and generates new secrets on every run",
        "stack/render_step.py",
        "    written = write_rendered(settings) or []",
        "    ctx.env_path.unlink(missing_ok=True)\n    written = write_rendered(settings) or []",
    ),
    Mutation(
        "project step stops passing the .env path (a new API token every run)",
        "stack/project.py",
        '        "env_path": ctx.env_path,\n',
        "",
    ),
    Mutation(
        'project step always reports "unchanged"',
        "stack/project.py",
        "    if created:\n",
        "    if False:\n",
    ),
    Mutation(
        "migrate step passes while the one-shot migrate container is still running",
        "stack/migrate.py",
        '    if state != "exited":\n',
        '    if state not in ("exited", "running", "created", "restarting", ""):\n',
    ),
    Mutation(
        "write_atomic truncates the target and writes in place (and deletes it on error)",
        "fileio.py",
        "\n    fd, tmp_name = tempfile.mkstemp(",
        "\n    tmp_name = str(path)\n"
        "    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)\n"
        "    _unused = (",
    ),
    Mutation(
        "fsync removed",
        "fileio.py",
        "            os.fsync(handle.fileno())\n        publish(tmp_name, path)\n",
        "        publish(tmp_name, path)\n",
    ),
    Mutation(
        "a rejected stored token raises instead of minting a new one",
        "provisioning.py",
        '        progress(f"the token stored in {request.env_path} was rejected; '
        'creating a new one")',
        '        raise ApiError("token rejected by GlitchTip (401)", status=401)',
    ),
    Mutation(
        "organization lookup by slugified name removed",
        "provisioning.py",
        " or _pick(orgs, slug=slugify(wanted))",
        "",
    ),
    Mutation(
        "project lookup by slugified name removed",
        "provisioning.py",
        " or _pick(projects, slug=slugify(name))",
        "",
    ),
    Mutation(
        "the farthest .glitchtiprc wins instead of the nearest",
        "dsn.py",
        "    for directory in (start, *start.parents):",
        "    for directory in reversed((start, *start.parents)):",
    ),
    Mutation(
        "a whitespace-only ERROR_TRACKING_DSN is not skipped",
        "dsn.py",
        '        value = environ.get(name, "").strip()',
        '        value = environ.get(name, "")',
    ),
    # --- issue 20: bugs in ops, load, swarm, settings and the exporter no fast test saw ---
    Mutation(
        "an archive changed after its manifest check goes to pg_restore (no final SHA-256)",
        "ops/manifest.py",
        "            if digest.hexdigest() != expected.sha256:\n",
        "            if False:\n",
        ("tests/test_ops_refusals.py",),
    ),
    Mutation(
        "restore replaces this host's glitchtip.yaml with the archive's",
        "ops/restore_files.py",
        "    if SETTINGS in files and SETTINGS not in plan.current:\n",
        "    if SETTINGS in files:\n",
        ("tests/test_ops_refusals.py", "tests/test_ops_restore.py"),
    ),
    Mutation(
        "verify reads free space in MiB as GiB",
        "ops/verify.py",
        "shutil.disk_usage(path).free / 2**30",
        "shutil.disk_usage(path).free / 2**20",
        ("tests/test_ops_refusals.py", "tests/test_ops_verify.py"),
    ),
    Mutation(
        "verify reports only a 5xx from the store endpoint, not a rejected DSN key (401/403)",
        "ops/verify.py",
        "        if response.status_code != 200:\n"
        "            raise _Failed(f\"the DSN's store endpoint",
        "        if response.status_code >= 500:\n"
        "            raise _Failed(f\"the DSN's store endpoint",
        ("tests/test_ops_refusals.py", "tests/test_ops_verify.py"),
    ),
    Mutation(
        "upgrade starts from a stack with an unhealthy service",
        "ops/upgrade.py",
        '        elif row.get("Health") not in (None, "", "healthy"):\n',
        "        elif False:\n",
        ("tests/test_ops_refusals.py", "tests/test_ops_upgrade.py"),
    ),
    Mutation(
        "the load summary counts accepted events as stored (100% when events were lost)",
        "load/run.py",
        '        "events_processed": drain.stored.total,\n',
        '        "events_processed": stats.accepted,\n',
        ("tests/test_load_run_counts.py", "tests/test_load_run.py"),
    ),
    Mutation(
        "Swarm deploy takes every secret of the stack for stale (removes those in use)",
        "swarm/secrets.py",
        "    wanted = {secret.swarm_name for secret in keep}\n",
        "    wanted = set()\n",
        ("tests/test_swarm_engine.py", "tests/test_swarm.py"),
    ),
    Mutation(
        "an error-budget window of 0h is accepted",
        "settings/metrics.py",
        "    if not 3600 <= budget_window_seconds(text) <= MAX_BUDGET_WINDOW:\n",
        "    if not 0 <= budget_window_seconds(text) <= MAX_BUDGET_WINDOW:\n",
        ("tests/test_setting_bounds.py", "tests/test_metrics_settings.py"),
    ),
    Mutation(
        "web_replicas 0 is accepted",
        "settings/specs.py",
        '"web_replicas", "GLITCHTIP_KIT_WEB_REPLICAS", int_between(1, 100,',
        '"web_replicas", "GLITCHTIP_KIT_WEB_REPLICAS", int_between(0, 100,',
        ("tests/test_setting_bounds.py", "tests/test_swarm.py", "tests/test_kubernetes.py"),
    ),
    Mutation(
        "the exporter's errors-in-window sum counts older hours of the answer too",
        "monitoring/project_exporter.py",
        "sum(c for h, c in buckets.items() if window_start <= h <= now)",
        "sum(c for h, c in buckets.items() if h <= now)",
        (
            "tests/monitoring/test_project_exporter_window.py",
            "tests/monitoring/test_project_exporter.py",
        ),
    ),
)


def run_one(mutation: Mutation, workdir: Path, tests: tuple[str, ...] = ()) -> tuple[str, float]:
    """Apply `mutation` to a fresh copy of provision/ and run the guarding tests against it."""
    copy = workdir / "src"
    shutil.rmtree(copy, ignore_errors=True)
    for name in ("provision", "templates"):  # render.py finds templates/ next to provision/
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("*.pyc"))
    if mutation.module:
        target = copy / "provision" / mutation.module
        text = target.read_text(encoding="utf-8")
        if text.count(mutation.old) != 1:
            return "stale", 0.0
        target.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            *PYTEST,
            *(tests or mutation.tests or TESTS),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - began
    if done.returncode == 1:
        return "killed", elapsed
    if done.returncode == 0:
        return "SURVIVED", elapsed
    return f"error (pytest exit {done.returncode})", elapsed


def main(argv: list[str] | None = None) -> int:
    """Run every mutation (or those whose name holds one of the words given); print one line
    each and a summary; exit 1 unless all are killed."""
    words = sys.argv[1:] if argv is None else argv
    chosen = [m for m in MUTATIONS if not words or any(w in m.name for w in words)]
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="issue-mutants-") as tmp:
        # The unmutated copy must pass, or every "killed" below would mean nothing.
        every = tuple(dict.fromkeys([*TESTS, *(f for m in chosen for f in m.tests)]))
        control, elapsed = run_one(
            Mutation("control: the copy unchanged", "", "", ""), Path(tmp), every
        )
        used = subprocess.run(
            [sys.executable, "-P", "-c", "import provision; print(provision.__file__)"],
            env={**os.environ, "PYTHONPATH": str(Path(tmp) / "src")},
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        shown = "passes" if control == "SURVIVED" else control
        print(f"  {shown:<9} {elapsed:5.1f}s  control: the unmutated copy ({used})", flush=True)
        if control != "SURVIVED" or not used.startswith(tmp):
            print("the tests fail on an unmutated copy, or the copy is not the one imported")
            return 2
        for mutation in chosen:
            status, elapsed = run_one(mutation, Path(tmp))
            results.append(status)
            print(f"  {status:<9} {elapsed:5.1f}s  {mutation.name}", flush=True)
    killed = results.count("killed")
    took = time.monotonic() - began
    print(f"hand-made mutations (issues 13, 20): {killed}/{len(results)} killed in {took:.0f} s")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
