"""Benchmark: the kit's tuned defaults against GlitchTip's upstream defaults, same load.

For each GlitchTip major asked for, two fresh stacks on this host with the same images (the
registry-free stand-ins, tests/stack/build-images.sh) take the same headless Locust load through
`provision.load.run.run_load` (what `provision load --json` runs), one after the other:

  upstream  `provision up`, then a bench-only Compose override that puts back what GlitchTip's
            official compose.sample runs: the image's default web server (5: uWSGI, one
            process; 6: granian, one worker), the worker as shipped (5: run-celery-with-beat.sh
            with no CELERY_WORKER_* in its environment, so Celery runs prefork, one process per
            CPU, prefetch 4; 6: VTASKS_CONCURRENCY unset, 20), GlitchTip's own
            DATABASE_POOL_MAX_SIZE and the Postgres image's default settings;
  no-durab. `provision up`, then an override that takes the durability settings of issue 19
            back out (provision/durability.py): Valkey with its image's persistence and no
            maxmemory, GlitchTip 5's worker on GlitchTip's own settings (acks early, the
            one-hour visibility timeout), no DATABASE_CONN_HEALTH_CHECKS: the tuning before;
  kit       `provision up` as rendered (granian ASGI; 5: threads, prefetch 100; pools and
            Postgres sized for the host; the durability settings).

It prints them side by side (accepted/s, p95, processed/s, drain, failures), the ratio of
processed events per second kit/upstream (issue target >= 1.5x, guide >= 10x for 5), whether the
kit accepts at least as many events/s as upstream with no failed request (the guide), and what
the durability settings cost (kit against no-durability), with the worker banner each stack
logged (what the worker really ran with). Every stack is removed with `down -v`, also after a
failure or Ctrl-C; loads and drains are bounded.
The kit's web checks of issue 17 are printed too: accepted/s at least the upstream default's,
0 failed requests, every accepted event processed, drained within 10 s.

GlitchTip 5 runs on the stand-in of each code asked for (`--release`): v5.1.0, the released
image (`glitchtip:5`: uvicorn for the kit, uWSGI upstream), and the later 5.x code
(`glitchtip:5-snapshot`: granian ASGI for the kit).

Run: `GLITCHTIP_KIT_TEST_IMAGES=gtk-load .venv/bin/python bench/bench_ingest.py
[--major 5|6|both] [--release v5.1.0|snapshot|both] [--users 8] [--duration 30]
[--drain-timeout 60] [--set KEY=VALUE ...] [--json]`.
Exit status 1 when a run fails, the processed/s ratio is under 1.5x, or a web check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ISSUE_TARGET = 1.5
GUIDE_TARGET = 10.0
DRAIN_TARGET_S = 10.0  # issue 17: every accepted event processed within 10 s of the load
UP_TIMEOUT = 600
OVERRIDE = "bench-upstream.yml"


class BenchError(Exception):
    """A run failed: the benchmark stops (after cleaning up) with this message."""


def namespace() -> str:
    return os.environ.get("GLITCHTIP_KIT_TEST_IMAGES") or "glitchtip-kit-test"


def images(major: int, release: str = "") -> dict[str, str]:
    """The stand-in images; GlitchTip 5's `release` "snapshot" is the later 5.x code's."""
    ns = namespace()
    tag = f"{major}-snapshot" if release == "snapshot" else str(major)
    return {
        "glitchtip_image": f"{ns}/glitchtip:{tag}",
        "postgres_image": f"{ns}/postgres:17",
        "valkey_image": f"{ns}/valkey:8",
        "locust_image": f"{ns}/locust:2",
    }


def upstream_override(major: int) -> str:
    """The Compose override that undoes the kit's tuning (`!reset` drops a key)."""
    from provision import majors

    m = majors.MAJORS[major]
    names = [m.worker_concurrency_env, *m.web_concurrency_envs, "DATABASE_POOL_MAX_SIZE"]
    names += [name for name in (m.worker_pool_env, m.worker_prefetch_env) if name]
    names += [name for name, _value in m.web_server_env]  # 5: back to the image's uWSGI
    names.append("DATABASE_CONN_HEALTH_CHECKS")  # the durability settings are not upstream's
    reset = "".join(f"      {name}: !reset null\n" for name in names)
    worker = reset
    if m.worker_settings_overlay:
        worker += "      DJANGO_SETTINGS_MODULE: !reset null\n      PYTHONPATH: !reset null\n"
    return (
        "# bench_ingest.py: GlitchTip's upstream defaults (official compose.sample): the image's\n"
        "# web server and worker as shipped, GlitchTip's pool size and settings, Postgres's and\n"
        "# Valkey's defaults.\n"
        "services:\n"
        "  postgres:\n"
        "    command: !reset null\n"
        "  valkey:\n"
        "    command: !reset null\n"
        f"  web:\n    environment:\n{reset}"
        f"  worker:\n    environment:\n{worker}"
    )


def durability_off_override(major: int) -> str:
    """The Compose override that takes the durability settings back out (`!reset` drops a
    key): what the kit ran before issue 19."""
    from provision import durability, majors

    m = majors.MAJORS[major]
    reset = "      DATABASE_CONN_HEALTH_CHECKS: !reset null\n"
    worker = reset
    if m.worker_settings_overlay:
        worker += "      DJANGO_SETTINGS_MODULE: !reset null\n      PYTHONPATH: !reset null\n"
    return (
        "# bench_ingest.py: the kit before its durability settings (provision/durability.py).\n"
        f"# Valkey: the image's persistence, no maxmemory ({durability.VALKEY_MAXMEMORY_POLICY}"
        " off).\n"
        "services:\n"
        "  valkey:\n"
        "    command: !reset null\n"
        f"  web:\n    environment:\n{reset}"
        f"  worker:\n    environment:\n{worker}"
    )


VARIANTS = ("upstream", "no-durability", "kit")


def compose_argv(compose: tuple[str, ...], project: str, files: list[str], *args: str):
    return [*compose, *(p for f in files for p in ("-f", f)), "--project-name", project, *args]


def run(argv: list[str], directory: Path, timeout: int, what: str) -> str:
    done = subprocess.run(
        argv, cwd=directory, capture_output=True, text=True, timeout=timeout, env=clean_env()
    )
    if done.returncode != 0:
        raise BenchError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return done.stdout


def down(compose: tuple[str, ...], directory: Path, project: str) -> None:
    argv = compose_argv(compose, project, ["compose.yml"], "down", "-v", "--remove-orphans")
    subprocess.run([*argv, "-t", "5"], cwd=directory, capture_output=True, timeout=300)
    subprocess.run(
        [*compose, "--project-name", f"{project}-locust", "down", "-v", "--remove-orphans"],
        cwd=directory, capture_output=True, timeout=120,
    )  # fmt: skip


def worker_log(compose: tuple[str, ...], directory: Path, project: str, files) -> str:
    return subprocess.run(
        compose_argv(compose, project, files, "logs", "--no-log-prefix", "worker"),
        cwd=directory, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip


def worker_banner(log: str) -> str:
    lines = [line for line in log.splitlines() if "ready" in line]
    return lines[-1].strip() if lines else "(no worker banner)"


HELD = re.compile(r"longest held before ack so far ([0-9.]+) s")
RESTORED = re.compile(r"Restored (\d+) message\(s\) past the visibility timeout")
STORE = re.compile(r"stand-in store ([0-9.]+) s of the modelled ([0-9.]+) s CPU")


def redelivery(log: str) -> dict:
    """What the GlitchTip 5 stand-in's worker logged about its messages: the longest a message
    waited from delivery to its acknowledgement (past the visibility timeout kombu delivers it
    again), and how many were put back on the queue that way (delivered twice)."""
    held = [float(match) for match in HELD.findall(log)]
    stores = [(float(took), float(modelled)) for took, modelled in STORE.findall(log)]
    return {
        "held_max_s": max(held) if held else None,
        "redelivered": sum(int(match) for match in RESTORED.findall(log)),
        # The stand-in's own store per batch (not GlitchTip's cost) against the modelled CPU
        # part: above it, the stand-in is slower than the model it stands for.
        "standin_store_s": (
            f"{sum(t for t, _m in stores) / len(stores):.2f} / {max(t for t, _m in stores):.2f}"
            f" (model {max(m for _t, m in stores):.2f})"
            if stores
            else None
        ),
    }


def one_stack(
    major: int, variant: str, compose: tuple[str, ...], args: argparse.Namespace, release: str = ""
) -> dict:
    """Bring up one stack, load it, measure, remove it."""
    from provision.load.run import run_load

    with tempfile.TemporaryDirectory(prefix="glitchtip-kit-bench-ingest-") as scratch:
        directory = Path(scratch)
        project = f"gtkingest-{secrets.token_hex(3)}"
        settings = {
            "glitchtip_major": major,
            **images(major, release),
            "http_port": free_port(),
            "compose_project_name": project,
            # --set KEY=VALUE: a kit setting to try (the kit's stack only; upstream undoes it).
            **(dict(args.kit_settings) if variant == "kit" else {}),
        }
        (directory / "glitchtip.yaml").write_text(
            "".join(f"{key}: {value}\n" for key, value in settings.items())
        )
        files = ["compose.yml"]
        try:
            run(
                [sys.executable, "-m", "provision", "up", "--quiet", "--dir", str(directory)],
                directory, UP_TIMEOUT, f"provision up ({variant})",
            )  # fmt: skip
            if variant in ("upstream", "no-durability"):
                override = (
                    upstream_override(major)
                    if variant == "upstream"
                    else durability_off_override(major)
                )
                (directory / OVERRIDE).write_text(override)
                files = ["compose.yml", OVERRIDE]
                run(
                    compose_argv(compose, project, files, "up", "-d", "--wait", "--pull", "never"),
                    directory, UP_TIMEOUT, "compose up with the upstream override",
                )  # fmt: skip
            began = time.monotonic()
            result = run_load(
                directory,
                users=args.users,
                spawn_rate=float(args.users),
                duration_s=float(args.duration),
                drain_timeout_s=float(args.drain_timeout),
                environ=clean_env(),
                progress=(lambda line: print(f"    [{major} {variant}] {line}", flush=True))
                if args.verbose
                else None,
            )
            result["wall_s"] = round(time.monotonic() - began, 1)
            log = worker_log(compose, directory, project, files)
            result["worker"] = worker_banner(log)
            result.update(redelivery(log))
            return result
        finally:
            down(compose, directory, project)


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def web_checks(upstream: dict, kit: dict) -> list[tuple[str, bool]]:
    """Issue 17's web criteria for the kit's stack, each with its verdict."""
    accepted = kit["accepted_per_s"] or 0.0
    default = upstream["accepted_per_s"] or 0.0
    drain = kit.get("drain_s")
    return [
        (f"accepted/s kit {accepted:.1f} >= upstream {default:.1f}", accepted >= default),
        (f"failed requests kit: {kit['failures']}", kit["failures"] == 0),
        (
            f"events processed kit: {kit['events_processed']} of {kit['events_sent']}",
            kit["events_processed"] == kit["events_sent"],
        ),
        (
            f"drain kit: {fmt(drain, ' s')} (<= {DRAIN_TARGET_S:.0f} s)",
            drain is not None and drain <= DRAIN_TARGET_S,
        ),
    ]


def report(
    major: int, sides: dict[str, dict], args: argparse.Namespace, title: str = ""
) -> tuple[list, bool]:
    """The table for one run, side by side, and whether the targets hold."""
    upstream, kit = sides["upstream"], sides["kit"]
    ratio = kit["processed_per_s"] / max(upstream["processed_per_s"], 0.01)
    drain = f"> {args.drain_timeout} s"
    rows = [
        ("requests (failures)", "requests", "failures"),
        ("accepted events/s", "accepted_per_s", None),
        ("p50 / p95 ingest ms", "p50_ms", "p95_ms"),
        ("events sent", "events_sent", None),
        ("events processed", "events_processed", None),
        ("processed events/s", "processed_per_s", None),
        ("queue peak after load", "queue_peak", None),
        ("held before ack, max s", "held_max_s", None),
        ("delivered again", "redelivered", None),
        ("stand-in store mean/max s", "standin_store_s", None),
    ]
    heads = {"upstream": "upstream defaults", "no-durability": "kit, no durability",
             "kit": "kit defaults"}  # fmt: skip
    names = [name for name in VARIANTS if name in sides]
    lines = [
        f"GlitchTip {title or major}: {args.users} users, {args.duration} s of load, drain bound "
        f"{args.drain_timeout} s (stand-in images {namespace()}/*)",
        f"  {'':24}" + "".join(f" {heads[name]:>20}" for name in names),
    ]
    for label, first, second in rows:
        cells = []
        for name in names:
            side = sides[name]
            text = fmt(side.get(first))
            if second:
                text += f" ({fmt(side.get(second))})" if label.startswith("req") else (
                    f" / {fmt(side.get(second))}"
                )  # fmt: skip
            cells.append(text)
        lines.append(f"  {label:24}" + "".join(f" {cell:>20}" for cell in cells))
    drains = [fmt(sides[name]["drain_s"], " s") if sides[name]["drain_s"] is not None else drain
              for name in names]  # fmt: skip
    lines.append(f"  {'drain after the load':24}" + "".join(f" {d:>20}" for d in drains))
    for name in names:
        lines.append(f"  {name + ' worker:':24} {sides[name]['worker']}")
    issue = "PASS" if ratio >= ISSUE_TARGET else "FAIL"
    guide = ("PASS" if ratio >= GUIDE_TARGET else "FAIL") if major == 5 else "applies to 5 only"
    lines.append(
        f"  processed/s ratio kit/upstream: {ratio:.1f}x  (issue >= {ISSUE_TARGET}x {issue}; "
        f"guide >= {GUIDE_TARGET:.0f}x {guide})"
    )
    web = web_checks(upstream, kit)
    for text, passed in web:
        lines.append(f"  web: {text}  {'PASS' if passed else 'FAIL'}")
    if "no-durability" in sides:
        before = sides["no-durability"]
        for label, key in (("accepted/s", "accepted_per_s"), ("processed/s", "processed_per_s")):
            change = 100 * (kit[key] / max(before[key], 0.01) - 1)
            lines.append(
                f"  durability cost, {label}: {fmt(before[key])} -> {fmt(kit[key])} "
                f"({change:+.0f} %)"
            )
    return lines, ratio >= ISSUE_TARGET and all(passed for _text, passed in web)


def main(argv: list[str] | None = None) -> int:
    from provision.runtime.compose_binary import compose_command

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--major", choices=("5", "6", "both"), default="both")
    parser.add_argument(
        "--release",
        choices=("v5.1.0", "snapshot", "both"),
        default="both",
        help="GlitchTip 5's code: the released v5.1.0, the later snapshot, or both",
    )
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--drain-timeout", type=int, default=60)
    parser.add_argument(
        "--set",
        dest="kit_settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=lambda text: tuple(text.split("=", 1)) if "=" in text else (text, ""),
        help="a glitchtip.yaml setting for the kit's stack (e.g. web_concurrency=3); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--verbose", action="store_true", help="show run_load's progress")
    args = parser.parse_args(argv)
    if not (
        1 <= args.users <= 200 and 5 <= args.duration <= 600 and 5 <= args.drain_timeout <= 900
    ):
        parser.error("users 1-200, duration 5-600 s, drain timeout 5-900 s")
    releases = ("v5.1.0", "snapshot") if args.release == "both" else (args.release,)
    runs = [
        (major, release if major == 5 else "")
        for major in ((5, 6) if args.major == "both" else (int(args.major),))
        for release in (releases if major == 5 else ("",))
    ]
    missing = [
        image
        for major, release in runs
        for image in images(major, release).values()
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          timeout=30).returncode != 0
    ]  # fmt: skip
    if missing:
        print(f"bench_ingest: missing images {', '.join(sorted(set(missing)))}: build them with "
              "`GLITCHTIP_KIT_TEST_IMAGES=... bash tests/stack/build-images.sh`")  # fmt: skip
        return 1
    compose = tuple(compose_command())
    results, ok = {}, True
    for major, release in runs:
        title = f"{major} {release}".strip()
        try:
            sides = {name: one_stack(major, name, compose, args, release) for name in VARIANTS}
        except Exception as error:  # a failed run: report it, clean up, go on
            print(f"bench_ingest: GlitchTip {title}: FAIL: {type(error).__name__}: {error}")
            ok = False
            continue
        lines, passed = report(major, sides, args, title)
        print("\n".join(lines), flush=True)
        results[title] = sides
        ok = ok and passed
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
