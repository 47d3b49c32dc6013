"""The breakages issue 13 found unseen, applied one at a time to a copy of `provision/`.

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


MUTATIONS = (
    Mutation(
        "render step deletes .env and generates new secrets on every run",
        "stack/render_step.py",
        "    settings = ctx.load_settings()\n    written = write_rendered(settings)",
        "    settings = ctx.load_settings()\n    ctx.env_path.unlink(missing_ok=True)\n"
        "    written = write_rendered(settings)",
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
        "    fd, tmp_name = tempfile.mkstemp(",
        "    tmp_name = str(path)\n"
        "    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)\n"
        "    _unused = (",
    ),
    Mutation(
        "fsync removed",
        "fileio.py",
        "            os.fsync(handle.fileno())\n",
        "",
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
)


def run_one(mutation: Mutation, workdir: Path) -> tuple[str, float]:
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
            *TESTS,
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


def main() -> int:
    """Run every mutation; print one line each and a summary; exit 1 unless all are killed."""
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="issue-mutants-") as tmp:
        # The unmutated copy must pass, or every "killed" below would mean nothing.
        control, elapsed = run_one(Mutation("control: the copy unchanged", "", "", ""), Path(tmp))
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
        for mutation in MUTATIONS:
            status, elapsed = run_one(mutation, Path(tmp))
            results.append(status)
            print(f"  {status:<9} {elapsed:5.1f}s  {mutation.name}", flush=True)
    killed = results.count("killed")
    print(f"issue 13 mutations: {killed}/{len(results)} killed in {time.monotonic() - began:.0f} s")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
