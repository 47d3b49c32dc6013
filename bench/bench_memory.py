"""Benchmark: the memory of the stack at rest, profile standard next to profile minimal.

Figures (issue 11): for each GlitchTip major and profile, a throw-away deployment is started
with `provision up` (compose project `bench-mem-<hex>`, a free port on 127.0.0.1, the
registry-free test images `$GLITCHTIP_KIT_TEST_IMAGES/*`, default glitchtip-kit-test), left
alone for BENCH_SETTLE seconds (default 30), then the memory of each of its containers is read
BENCH_SAMPLES times (default 3, 2 s apart) with `docker stats --no-stream` (the cgroup's usage
without the page cache the kernel may drop, which is what `docker stats` shows) and the median
kept. The one-shot migrate has exited by then and counts 0. Printed side by side: per service,
and the stack's total. Every deployment is removed (`down --volumes`) at the end, also after a
failure or Ctrl-C.

These are the STAND-IN images (tests/stack/images: the kit's fake GlitchTip on Debian's Python,
Postgres and Valkey): the totals compare the service sets of the two profiles (one GlitchTip
process instead of two, no Valkey on 6), not the memory of the real GlitchTip images, whose
Django processes are several times larger than the stand-in's.

Run: `.venv/bin/python bench/bench_memory.py` (needs the Docker engine; about a minute per
deployment). BENCH_MAJORS="6 5" (default) picks the majors. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import free_port

NAMESPACE = os.environ.get("GLITCHTIP_KIT_TEST_IMAGES", "").strip() or "glitchtip-kit-test"
SETTLE = float(os.environ.get("BENCH_SETTLE", "30"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "3"))
MAJORS = [int(m) for m in os.environ.get("BENCH_MAJORS", "6 5").split()]
PROFILES = ("standard", "minimal")
TIMEOUT = 600
PROVISION = [sys.executable, "-m", "provision"]
UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2,
         "gb": 1000**3}  # fmt: skip


def parse_size(text: str) -> float:
    """`docker stats` sizes ("12.5MiB", "0B", "1.2GiB") in MiB."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise ValueError(f"unreadable size {text!r}")
    return float(match.group(1)) * UNITS[match.group(2).lower()] / 1024**2


def run(argv: list[str], env: dict[str, str], timeout: float = TIMEOUT) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def containers(project: str) -> dict[str, str]:
    """service -> container name, for the project's containers."""
    out = run(
        ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
         "--format", '{{.Names}} {{.Label "com.docker.compose.service"}}'],
        dict(os.environ), timeout=60,
    )  # fmt: skip
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}


def memory(names: list[str]) -> dict[str, float]:
    """MiB per container, one `docker stats --no-stream` (a stopped container reads 0)."""
    out = run(["docker", "stats", "--no-stream", "--format", "{{json .}}", *names],
              dict(os.environ), timeout=120)  # fmt: skip
    found = {}
    for line in out.splitlines():
        row = json.loads(line)
        found[row["Name"]] = parse_size(row["MemUsage"].split("/")[0])
    return found


class Deployment:
    """One throw-away deployment of a major and a profile."""

    def __init__(self, root: Path, major: int, profile: str) -> None:
        self.directory = root / f"gt{major}-{profile}"
        self.directory.mkdir()
        self.project = f"bench-mem-{secrets.token_hex(4)}"
        postgres = f"{NAMESPACE}/postgres:{18 if major == 6 else 17}"
        settings = {
            "glitchtip_major": major,
            "glitchtip_image": f"{NAMESPACE}/glitchtip:{major}",
            "postgres_image": postgres,
            "valkey_image": f"{NAMESPACE}/valkey:8",
            "http_port": free_port(),
            "compose_project_name": self.project,
            "profile": profile,
        }
        text = "".join(f"{key}: {value}\n" for key, value in settings.items())
        (self.directory / "glitchtip.yaml").write_text(text)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP_")}

    def provision(self, *args: str) -> str:
        return run([*PROVISION, *args, "--dir", str(self.directory)], self.env)

    def measure(self) -> dict[str, float]:
        began = time.monotonic()
        self.provision("up")
        print(f"  {self.directory.name}: up in {time.monotonic() - began:.0f} s, "
              f"settling {SETTLE:g} s", flush=True)  # fmt: skip
        time.sleep(SETTLE)
        by_service = containers(self.project)
        samples: dict[str, list[float]] = {service: [] for service in by_service}
        for index in range(SAMPLES):
            if index:
                time.sleep(2)
            read = memory(list(by_service.values()))
            for service, name in by_service.items():
                samples[service].append(read.get(name, 0.0))
        return {service: statistics.median(values) for service, values in samples.items()}

    def remove(self) -> None:
        subprocess.run(
            [*PROVISION, "down", "--volumes", "--yes", "--dir", str(self.directory)],
            env=self.env, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip


def report(results: dict[str, dict[str, float]]) -> None:
    columns = list(results)
    services = sorted({service for figures in results.values() for service in figures})
    width = max(len(c) for c in columns) + 2
    print(f"\nmemory at rest, MiB (stand-in images, median of {SAMPLES} docker stats samples "
          f"after {SETTLE:g} s)")  # fmt: skip
    print(f"{'service':<12}" + "".join(f"{c:>{width}}" for c in columns))
    for service in services:
        cells = [results[c].get(service) for c in columns]
        print(f"{service:<12}" + "".join(
            f"{'-':>{width}}" if v is None else f"{v:>{width}.1f}" for v in cells))  # fmt: skip
    totals = {c: sum(results[c].values()) for c in columns}
    print(f"{'total':<12}" + "".join(f"{totals[c]:>{width}.1f}" for c in columns))
    for major in MAJORS:
        standard, minimal = totals.get(f"{major}-standard"), totals.get(f"{major}-minimal")
        if standard and minimal:
            saved = standard - minimal
            print(f"GlitchTip {major}: minimal uses {saved:.1f} MiB less than standard "
                  f"({100 * saved / standard:.0f} %)")  # fmt: skip


def main() -> int:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        for major in MAJORS:
            for profile in PROFILES:
                deployment = Deployment(Path(scratch), major, profile)
                try:
                    results[f"{major}-{profile}"] = deployment.measure()
                finally:
                    deployment.remove()
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
