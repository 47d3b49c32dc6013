"""A stand-in for `docker compose` in the fast load tests: the stack's `ps` and Valkey, and a
"Locust" that really sends events through the DSN it is given.

Run as: python load_fake_compose.py STATE_DIR ARGS... (`compose_binary` writes an executable
for GLITCHTIP_KIT_COMPOSE), so the kit's own `Compose` and `run_load` run unchanged. STATE_DIR
holds `state.json`:

  {"sent": 6, "lost": 2, "failures": 1, "ps": {"web": "running", ...}, "queued": 0}

`--profile headless up` (Locust's headless run) posts `sent` events to the DSN's store endpoint
(GlitchTip's fake stores them when its worker runs), prints Locust's "Time limit reached" line,
and leaves a stats CSV whose Aggregated row counts `sent + lost` requests of which `failures`
failed: `lost` events GlitchTip answered 200 for but never stored, as when a worker drops them.
`tail_samples` keeps that "Locust" running until the kit sampled the queue that many more times
(the quiet tail of Locust's grace seconds); `no_stats` leaves no stats CSV. `cp` copies the
report files out; `exec valkey ... LLEN` answers `queued` for each key.
`up --detach` (the web UI) records the GLITCHTIP_* variables it was given and marks the master
and workers running (`ui_fail` refuses, as a taken port does). `down` removes the Locust
containers Compose would (docker compose v2.40.3): the services of compose.locust.yml without a
profile, `locust-headless` only with `--profile headless` or `--profile '*'`, and a container of
a service the file no longer has (`locust_orphans`) only with `--remove-orphans`.
`down_exit` makes `down` fail with the lines of `down_error` on stderr; the headless `up`
records its `--scale` (`headless_scale`).
Like Compose, the fake refuses a command line it does not know: an unknown command, flag or
service, a flag without its value, a timeout that is no number (exit 1, Compose's message).
Every call is appended to `calls.log`.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

LOCUST_PROJECT_SUFFIX = "-locust"
# compose.locust.yml's services and their profiles.
LOCUST_SERVICES = {"locust-master": (), "locust-worker": (), "locust-headless": ("headless",)}
COMMANDS = ("version", "ps", "exec", "up", "down", "cp", "config")
# `docker compose down`'s flags (v2.40.3) the fake knows: without a value, and with one.
DOWN_FLAGS = ("--remove-orphans", "-v", "--volumes")
DOWN_VALUED = ("-t", "--timeout", "--rmi")


def _profiles(args: list[str]) -> tuple[list[str], list[str], str | None]:
    """The `--profile X` options before the command, the rest, and Compose's refusal if any."""
    profiles = []
    while args and args[0] == "--profile":
        if len(args) < 2:
            return profiles, [], "flag needs an argument: --profile"
        profiles.append(args[1])
        args = args[2:]
    if args and args[0].startswith("-"):
        return profiles, args, f"unknown flag: {args[0]}"
    if args and args[0] not in COMMANDS:
        return profiles, args, f'unknown docker command: "compose {args[0]}"'
    return profiles, args, None


def _up_refusal(options: list[str]) -> str | None:
    """Compose refuses to scale a service the command line leaves out when it names services
    (v2.40.3, `up --scale b=2 a`: "no such service: b: disabled"); None when it takes them."""
    valued = ("--scale", "--exit-code-from", "--attach", "-t", "--timeout", "--pull")
    named, scaled, index = [], [], 0
    while index < len(options):
        option = options[index]
        if option in valued and index + 1 < len(options):
            if option == "--scale":
                scaled.append(options[index + 1].partition("=")[0])
            index += 2
            continue
        if not option.startswith("-"):
            named.append(option)
        index += 1
    for service in scaled:
        if named and service not in named:
            return f"no such service: {service}: disabled"
    return None


def _down_refusal(options: list[str]) -> str | None:
    """What Compose answers to `down OPTIONS` it cannot take; None when it takes them."""
    index = 0
    while index < len(options):
        option = options[index]
        if option in DOWN_FLAGS:
            index += 1
        elif option in DOWN_VALUED:
            if index + 1 >= len(options):
                return f"flag needs an argument: {option}"
            value = options[index + 1]
            if option in ("-t", "--timeout") and not value.lstrip("-").isdigit():
                return (
                    f'invalid argument "{value}" for "-t, --timeout" flag: strconv.ParseInt: '
                    f'parsing "{value}": invalid syntax'
                )
            index += 2
        elif option.startswith("--"):
            return f"unknown flag: {option}"
        elif option.startswith("-"):
            return f"unknown shorthand flag: {option[1]!r} in {option}"
        elif option not in LOCUST_SERVICES:
            return f"no such service: {option}"
        else:
            index += 1
    return None


def _strip_globals(args: list[str]) -> tuple[list[str], str]:
    project = ""
    while args and args[0] in ("-f", "--project-name", "--project-directory", "--file"):
        if args[0] == "--project-name":
            project = args[1]
        args = args[2:]
    return args, project


def _send(dsn: str, count: int) -> None:
    parts = urlsplit(dsn)
    project_id = parts.path.rstrip("/").rsplit("/", 1)[1]
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{project_id}/store/"
    for number in range(count):
        body = json.dumps(
            {"event_id": uuid.uuid4().hex, "platform": "python", "level": "error",
             "message": f"load event {number}"}
        ).encode()  # fmt: skip
        request = urllib.request.Request(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={parts.username}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200, answer.status


def _quiet_tail(state_dir: Path, samples: int, bound_s: float = 10.0) -> None:
    """Locust's quiet tail: the users stopped sending, Locust runs on for its grace seconds.
    The fake stays up until the kit's sampler has asked Valkey for the queue `samples` more
    times (its `exec ... valkey` calls in calls.log), at most `bound_s`: a run whose samples
    saw every event stored before Locust exited, without a test waiting on real seconds."""
    import time

    def asked() -> int:
        return (state_dir / "calls.log").read_text().count(" exec -T valkey ")

    target, deadline = asked() + samples, time.monotonic() + bound_s
    while samples and asked() < target and time.monotonic() < deadline:
        time.sleep(0.01)


def _stats_csv(requests: int, failures: int) -> str:
    header = "Type,Name,Request Count,Failure Count,50%,95%\n"
    kind = f"POST,store,{requests},{failures},12,30\n"
    return header + kind + f",Aggregated,{requests},{failures},12,30\n"


def main() -> int:
    state_dir = Path(sys.argv[1])
    args, project = _strip_globals(sys.argv[2:])
    if args == ["version", "--short"]:
        print("2.40.3")
        return 0
    state = json.loads((state_dir / "state.json").read_text())
    with open(state_dir / "calls.log", "a") as log:
        log.write(f"{project}: {' '.join(args)}\n")
    locust = project.endswith(LOCUST_PROJECT_SUFFIX)
    profiles, args, refused = _profiles(args)
    if refused is None and args[:1] == ["down"]:
        refused = _down_refusal(args[1:])
    if refused is None and args[:1] == ["up"]:
        refused = _up_refusal(args[1:])
    if refused is not None:
        sys.stderr.write(f"{refused}\n")
        return 1
    if args[:1] == ["ps"]:
        rows = state.get("locust_ps", {}) if locust else state.get("ps", {})
        for service, status in rows.items():
            print(json.dumps({"Service": service, "State": status, "Health": ""}))
        return 0
    if args[:3] == ["exec", "-T", "valkey"]:
        keys = args[args.index("sh", 4) + 1 :] if "sh" in args[4:] else []
        print("\n".join(str(state.get("queued", 0)) for _ in keys))
        return 0
    if locust and "up" in args and "--detach" in args:  # the web UI: master and workers
        if state.get("ui_fail"):
            sys.stderr.write("Error response from daemon: port is already allocated\n")
            return 1
        scale = args[args.index("--scale") + 1].split("=") if "--scale" in args else ["", "0"]
        state["locust_ps"] = {"locust-master": "running", **{scale[0]: "running"}}
        state["ui_env"] = {k: v for k, v in os.environ.items() if k.startswith("GLITCHTIP_")}
        state["ui_workers"] = int(scale[1])
        (state_dir / "state.json").write_text(json.dumps(state))
        return 0
    if locust and args[:1] == ["down"]:
        orphans = state.get("locust_orphans", [])
        kept = {}
        for service, status in state.get("locust_ps", {}).items():
            wanted = LOCUST_SERVICES.get(service)
            in_scope = (
                "*" in profiles or not wanted or any(p in profiles for p in wanted)
                if wanted is not None
                else "--remove-orphans" in args and service in orphans
            )
            if not in_scope:
                kept[service] = status
        if state.get("down_exit"):  # Compose's last lines when the engine refuses
            sys.stderr.write("".join(f"{line}\n" for line in state.get("down_error", [])))
            return int(state["down_exit"])
        state["locust_ps"] = kept
        (state_dir / "state.json").write_text(json.dumps(state))
        return 0
    if locust and "up" in args:
        scale = args[args.index("--scale") + 1] if "--scale" in args else None
        state["headless_scale"] = scale
        state["headless_env"] = {
            k: v for k, v in os.environ.items() if k.startswith(("GLITCHTIP_", "LOCUST_"))
        }
        (state_dir / "state.json").write_text(json.dumps(state))
        _send(os.environ["GLITCHTIP_LOAD_DSN"], int(state.get("sent", 0)))
        _quiet_tail(state_dir, int(state.get("tail_samples", 0)))
        print("locust-headless-1  | [2026-12-06 10:00:05] host/INFO/locust.main: --run-time "
              "limit reached, shutting down")  # fmt: skip
        requests = int(state.get("sent", 0)) + int(state.get("lost", 0))
        if not state.get("no_stats"):  # a Locust that ran but wrote no statistics
            (state_dir / "locust_stats.csv").write_text(
                _stats_csv(requests, int(state.get("failures", 0)))
            )
        return int(state.get("locust_exit", 0))
    if locust and args[:1] == ["cp"]:
        source, target = args[1].split(":", 1)[1], Path(args[2])
        name = Path(source).name if source.endswith(".csv") else "report.html"
        found = state_dir / name
        if name == "locust_stats.csv" and not found.is_file():
            sys.stderr.write(f"Error: no such file {source}\n")
            return 1
        empty = "Method,Name,Error,Occurrences\n"  # Locust writes the header when nothing failed
        target.write_text(found.read_text() if found.is_file() else empty)
        return 0
    if locust and "config" in args:
        return 0
    sys.stderr.write(f"load_fake_compose: unexpected {project}: {args}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
