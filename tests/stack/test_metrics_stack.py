"""The metrics stack (issue 8) on a real Docker engine, with the registry-free test images.

Two levels, cheapest first:

* `test_metrics_images_*`: the tier's own images (Debian's Prometheus, postgres_exporter and
  redis_exporter in the official images' layout, and the Grafana stand-in) wired by a compose
  file written here against the postgres/valkey test images. Proves the images behave like the
  official ones the kit pins (entrypoints, ports, users, variables, promtool, wget) and that the
  Grafana stand-in refuses what real Grafana would get wrong, so the kit-level test below is not
  testing the images.
* `test_metrics_stack[6|5]`: the kit itself. `provision up --metrics` with the test images, then,
  on one stack per major, in this order: every Prometheus target up; every recording/alert rule
  and every dashboard expression executed by the live Prometheus without error; events through
  the DSN move the project exporter's per-project count (after a second exporter poll, bounded);
  a second `up` recreates nothing; no secret value in `docker compose config`, in rendered files
  other than `.env`, or in a metrics container's environment; `provision down --only-metrics`
  (what `make metrics-stop` runs) removes the metrics services only.

Everything is printed (run with `-s`): the targets table and the per-project events before/after
are the figures for the closing note. Network access stays on 127.0.0.1 and the tests' own
compose networks; every wait is bounded.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

TARGETS_TIMEOUT = 120.0  # every target up within this after the stack is up
EXPORTER_POLL_TIMEOUT = 180.0  # the project exporter polls once a minute at most


# -- Prometheus's HTTP API ----------------------------------------------------------------------


def prom_get(port: int, path: str, **params: str) -> dict:
    import httpx

    response = httpx.get(f"http://127.0.0.1:{port}{path}", params=params, timeout=15)
    body = response.json()
    assert body.get("status") == "success", f"{path} {params}: {response.status_code} {body}"
    return body["data"]


def query(port: int, expr: str) -> list[dict]:
    """An instant query; Prometheus's error (bad expression, unknown function...) fails the test."""
    import httpx

    response = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=30
    )
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus refused {expr!r}: {body.get('errorType')}: "
                             f"{body.get('error')}")  # fmt: skip
    return body["data"]["result"]


def targets(port: int) -> list[dict]:
    return prom_get(port, "/api/v1/targets", state="active")["activeTargets"]


def targets_table(active: list[dict]) -> str:
    rows = [("job", "instance", "health", "last error")]
    rows += [
        (t["labels"].get("job", ""), t["labels"].get("instance", ""), t["health"],
         t.get("lastError", "")[:60])
        for t in sorted(active, key=lambda t: t["labels"].get("job", ""))
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def wait_targets_up(port: int, jobs: set[str], timeout: float = TARGETS_TIMEOUT) -> list[dict]:
    """Poll /api/v1/targets until every job in `jobs` has targets and all are up."""
    deadline = time.monotonic() + timeout
    active: list[dict] = []
    while time.monotonic() < deadline:
        try:
            active = targets(port)
        except Exception:  # Prometheus still starting: keep polling
            active = []
        seen = {t["labels"].get("job") for t in active}
        if jobs <= seen and all(t["health"] == "up" for t in active):
            return active
        time.sleep(2)
    raise AssertionError(
        f"not every target up after {timeout:.0f} s (want jobs {sorted(jobs)}):\n"
        f"{targets_table(active)}"
    )


def scalar(port: int, expr: str) -> float:
    result = query(port, expr)
    return float(result[0]["value"][1]) if result else float("nan")


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


# -- images level -------------------------------------------------------------------------------

IMAGES_PROMETHEUS_YML = """\
global:
  scrape_interval: 3s
  evaluation_interval: 3s
rule_files: ["/etc/prometheus/rules/*.yml"]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["localhost:9090"]}]
  - job_name: postgres
    static_configs: [{targets: ["postgres-exporter:9187"]}]
  - job_name: valkey
    static_configs: [{targets: ["valkey-exporter:9121"]}]
"""

IMAGES_RULES_YML = """\
groups:
  - name: images
    rules:
      - record: images:queue_length:sum
        expr: sum(redis_key_size{key="celery"})
"""

DATASOURCES_YML = """\
apiVersion: 1
datasources:
  - name: Prometheus
    uid: prometheus
    type: prometheus
    access: proxy
    url: http://prometheus:9090
    isDefault: true
"""

DASHBOARD_PROVIDER_YML = """\
apiVersion: 1
providers:
  - name: kit
    folder: GlitchTip
    type: file
    options: {path: /var/lib/grafana/dashboards}
"""


def dashboard(uid: str, datasource_uid: str) -> str:
    return json.dumps({
        "uid": uid, "title": f"Board {uid}", "tags": ["kit"],
        "panels": [{"type": "timeseries", "title": "up",
                    "datasource": {"type": "prometheus", "uid": datasource_uid},
                    "targets": [{"expr": "up", "refId": "A",
                                 "datasource": {"type": "prometheus", "uid": datasource_uid}}]}],
    })  # fmt: skip


def images_compose(images: dict[str, str], prom_port: int, grafana_port: int) -> str:
    return f"""\
name: images-metrics
services:
  postgres:
    image: {images["postgres"]}
    environment: {{POSTGRES_PASSWORD: "${{POSTGRES_PASSWORD}}", POSTGRES_DB: glitchtip}}
    healthcheck: {{test: ["CMD", "pg_isready", "-h", "127.0.0.1"], interval: 1s, retries: 60}}
  valkey:
    image: {images["valkey"]}
    healthcheck: {{test: ["CMD", "valkey-cli", "ping"], interval: 1s, retries: 30}}
  postgres-exporter:
    image: {images["postgres_exporter"]}
    environment:
      DATA_SOURCE_URI: "postgres:5432/glitchtip?sslmode=disable"
      DATA_SOURCE_USER: postgres
      DATA_SOURCE_PASS_FILE: /run/secrets/postgres_password
    # Engine 20.10 leaves a secret root-owned unless uid/gid are given, and looks those up in
    # the host's passwd: `nobody` (65534) exists there, Grafana's 472 does not (docs/hardening.md).
    secrets:
      - {{source: postgres_password, uid: "65534", gid: "65534", mode: 0400}}
    depends_on: {{postgres: {{condition: service_healthy}}}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:9187/metrics"]
      interval: 1s
      retries: 30
  valkey-exporter:
    image: {images["valkey_exporter"]}
    environment:
      REDIS_ADDR: "redis://valkey:6379"
      REDIS_EXPORTER_CHECK_SINGLE_KEYS: "db0=celery"
    depends_on: {{valkey: {{condition: service_healthy}}}}
  prometheus:
    image: {images["prometheus"]}
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --storage.tsdb.path=/prometheus
      - --storage.tsdb.retention.time=1d
    volumes:
      - ./prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - ./rules:/etc/prometheus/rules:ro
      - prometheus-data:/prometheus
    ports: ["127.0.0.1:{prom_port}:9090"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:9090/-/ready"]
      interval: 1s
      retries: 60
  grafana:
    image: {images["grafana"]}
    environment:
      GF_SECURITY_ADMIN_PASSWORD__FILE: /run/secrets/grafana_admin_password
      GF_AUTH_ANONYMOUS_ENABLED: "false"
    secrets:
      - {{source: grafana_admin_password, mode: 0440}}  # root:root, read through gid 0
    volumes:
      - ./grafana/provisioning:/etc/grafana/provisioning:ro
      - ./grafana/dashboards:/var/lib/grafana/dashboards:ro
      - grafana-data:/var/lib/grafana
    ports: ["127.0.0.1:{grafana_port}:3000"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:3000/api/health"]
      interval: 1s
      retries: 30
secrets:
  postgres_password: {{environment: POSTGRES_PASSWORD}}
  grafana_admin_password: {{environment: GRAFANA_ADMIN_PASSWORD}}
volumes:
  prometheus-data: {{}}
  grafana-data: {{}}
"""


def write_images_project(directory: Path, datasource_uid: str = "prometheus") -> None:
    (directory / "prometheus.yml").write_text(IMAGES_PROMETHEUS_YML)
    (directory / "rules").mkdir(exist_ok=True)
    (directory / "rules" / "images.yml").write_text(IMAGES_RULES_YML)
    provisioning = directory / "grafana" / "provisioning"
    for sub in ("datasources", "dashboards"):
        (provisioning / sub).mkdir(parents=True, exist_ok=True)
    (provisioning / "datasources" / "prometheus.yml").write_text(DATASOURCES_YML)
    (provisioning / "dashboards" / "kit.yml").write_text(DASHBOARD_PROVIDER_YML)
    (directory / "grafana" / "dashboards").mkdir(exist_ok=True)
    (directory / "grafana" / "dashboards" / "board.json").write_text(
        dashboard("board-one", datasource_uid)
    )


def test_metrics_images_behave_like_the_official_ones(stack_env, tmp_path):
    """Debian's binaries in the official layout scrape the test postgres/valkey; the Grafana
    stand-in starts with good provisioning and a password file, and answers like Grafana."""
    import httpx

    prom_port, grafana_port = stack_env.free_port(), stack_env.free_port()
    write_images_project(tmp_path)
    secrets = {"POSTGRES_PASSWORD": "pg-" + "s3cret-images", "GRAFANA_ADMIN_PASSWORD": "gr-pw-42"}
    with stack_env.compose_project(tmp_path) as project:
        project.write(images_compose(stack_env.images, prom_port, grafana_port), secrets)
        began = time.monotonic()
        project.run("up", "-d", "--wait", "--wait-timeout", "120", timeout=240)
        print(f"images stack up --wait: {time.monotonic() - began:.1f} s")
        project.run("exec", "-T", "valkey", "valkey-cli", "LPUSH", "celery", "a", "b", "c")

        active = wait_targets_up(prom_port, {"prometheus", "postgres", "valkey"})
        print(targets_table(active))
        assert scalar(prom_port, 'pg_up{job="postgres"}') == 1
        assert scalar(prom_port, 'redis_up{job="valkey"}') == 1
        for name in ("pg_database_size_bytes", "pg_stat_database_numbackends",
                     "pg_settings_max_connections"):  # fmt: skip
            assert query(prom_port, name), f"{name}: no series from postgres_exporter"
        deadline = time.monotonic() + 30  # the key must be scraped once after the LPUSH
        while scalar(prom_port, "images:queue_length:sum") != 3 and time.monotonic() < deadline:
            time.sleep(1)
        assert scalar(prom_port, "images:queue_length:sum") == 3, query(prom_port, "redis_key_size")
        rules = prom_get(prom_port, "/api/v1/rules")["groups"]
        assert [(g["name"], g["rules"][0]["health"]) for g in rules] == [("images", "ok")], rules

        # The official images' users, entrypoints and tools.
        def config(service: str) -> dict:
            cid = project.run("ps", "-q", service).stdout.strip()
            return json.loads(docker("inspect", cid))[0]["Config"]

        assert config("prometheus")["User"] == "nobody"
        assert config("prometheus")["Entrypoint"] == ["/bin/prometheus"]
        assert config("postgres-exporter")["User"] == "nobody"
        assert config("postgres-exporter")["Entrypoint"] == ["/bin/postgres_exporter"]
        assert config("valkey-exporter")["User"] == "59000:59000"
        assert config("valkey-exporter")["Entrypoint"] == ["/redis_exporter"]
        assert config("grafana")["User"] == "472"
        promtool = project.run("exec", "-T", "prometheus", "promtool", "check", "rules",
                               "/etc/prometheus/rules/images.yml").stdout  # fmt: skip
        assert "SUCCESS: 1 rules found" in promtool, promtool

        # The Grafana stand-in: Grafana's health shape, the admin password from the secret file,
        # anonymous off (401), what was provisioned listed in Grafana's API shapes.
        base = f"http://127.0.0.1:{grafana_port}"
        health = httpx.get(f"{base}/api/health", timeout=10).json()
        assert health["database"] == "ok" and health["version"].endswith("-standin"), health
        assert httpx.get(f"{base}/api/search", timeout=10).status_code == 401
        assert (
            httpx.get(f"{base}/api/search", auth=("admin", "wrong"), timeout=10).status_code == 401
        )
        admin = ("admin", secrets["GRAFANA_ADMIN_PASSWORD"])
        found = httpx.get(f"{base}/api/search", auth=admin, timeout=10).json()
        assert [(d["uid"], d["title"], d["type"]) for d in found] == [
            ("board-one", "Board board-one", "dash-db")
        ]
        sources = httpx.get(f"{base}/api/datasources", auth=admin, timeout=10).json()
        assert [(s["uid"], s["url"], s["isDefault"]) for s in sources] == [
            ("prometheus", "http://prometheus:9090", True)
        ]
        logs = project.run("logs", "--no-color", "grafana").stdout
        assert "provisioned 1 datasource(s)" in logs, logs
        assert secrets["GRAFANA_ADMIN_PASSWORD"] not in logs

        # The secrets reached the containers as files only.
        for service in ("postgres-exporter", "grafana", "prometheus"):
            env = "\n".join(config(service)["Env"])
            assert not any(value in env for value in secrets.values()), service


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("no-password", "no admin password"),
        ("unreadable-password", "cannot be read"),
        ("unknown-datasource", "unprovisioned datasource uid 'elsewhere'"),
        ("no-dashboards", "path /var/lib/grafana/dashboards is missing"),
        ("bad-yaml", "does not parse as YAML"),
    ],
)
def test_grafana_standin_refuses_broken_wiring(stack_env, tmp_path, breakage, expected):
    """What real Grafana would start with and show broken (or with the password `admin`) makes
    the stand-in exit 1 with one line naming the problem, and never print the password."""
    write_images_project(
        tmp_path, datasource_uid="elsewhere" if breakage == "unknown-datasource" else "prometheus"
    )
    args = ["run", "--rm", "--network", "none",
            "-v", f"{tmp_path}/grafana/provisioning:/etc/grafana/provisioning:ro"]  # fmt: skip
    if breakage != "no-dashboards":
        args += ["-v", f"{tmp_path}/grafana/dashboards:/var/lib/grafana/dashboards:ro"]
    password = tmp_path / "password"
    password.write_text("gr-secret-value\n")
    password.chmod(0o600 if breakage == "unreadable-password" else 0o644)
    if breakage != "no-password":
        target = "/run/secrets/grafana_admin_password"
        args += [
            "-v",
            f"{password}:{target}:ro",
            "-e",
            f"GF_SECURITY_ADMIN_PASSWORD__FILE={target}",
        ]
    if breakage == "bad-yaml":
        (tmp_path / "grafana/provisioning/datasources/prometheus.yml").write_text("a: [b\n")
    done = subprocess.run(
        ["docker", *args, stack_env.images["grafana"]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stderr, done.stderr
    assert "refusing to start" in done.stderr and "gr-secret-value" not in done.stderr


# -- the kit: `provision up --metrics` ----------------------------------------------------------

# Grafana's own variables, replaced the way Grafana would before sending a query to Prometheus.
GRAFANA_MACROS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
METRICS_SERVICES = {"prometheus", "grafana", "postgres-exporter", "valkey-exporter",
                    "project-exporter"}  # fmt: skip
JOBS = {"prometheus", "glitchtip", "project-exporter", "postgres", "valkey"}
EVENTS = 5  # events sent through the DSN; the per-project count must grow by at least this
BUDGET_ALERT = "GlitchTipErrorBudgetExhausted"  # M1's rule (monitoring/prometheus/rules)


def dashboard_expressions(directory: Path) -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression with Grafana's variables replaced) for every target
    of every panel (rows' nested panels too) of the rendered dashboards."""
    found = []
    for path in sorted((directory / "monitoring" / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        values = dict(GRAFANA_MACROS)
        for var in (board.get("templating") or {}).get("list") or []:
            current = (var.get("current") or {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else None
            if var.get("type") in ("interval", "custom", "constant") and current not in (
                None, "", "$__all"
            ):  # fmt: skip
                values[var["name"]] = str(current)
            else:  # query/datasource variables, "All": match everything
                values[var["name"]] = ".*"

        def substitute(expr: str, values: dict[str, str] = values) -> str:
            def one(match: re.Match) -> str:
                name = match.group(1) or match.group(2)
                return values.get(name, match.group(0))

            return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)

        def panels(items: list) -> list:
            out = []
            for panel in items or []:
                out.append(panel)
                out.extend(panels(panel.get("panels") or []))
            return out

        for panel in panels(board.get("panels") or []):
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    found.append((board.get("title", path.name), panel.get("title", ""),
                                  substitute(target["expr"])))  # fmt: skip
    return found


def rule_expressions(directory: Path) -> list[tuple[str, str]]:
    """(rule name, expression) of every recording and alerting rule in the rendered rules."""
    import yaml

    found = []
    for path in sorted((directory / "monitoring" / "prometheus" / "rules").glob("*.y*ml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                found.append((rule.get("record") or rule.get("alert"), str(rule["expr"])))
    return found


class MetricsDeployment:
    """One deployment with metrics, driven through the real CLI (`python -m provision`)."""

    def __init__(self, directory: Path, major: int, images: dict[str, str], free_port) -> None:
        from stack.test_up_stack import Deployment

        self.base = Deployment(directory, major, images)
        self.directory = directory
        self.major = major
        self.prom_port = free_port()
        self.grafana_port = free_port()
        with (directory / "glitchtip.yaml").open("a") as settings:
            settings.write(
                f"prometheus_image: {images['prometheus']}\n"
                f"grafana_image: {images['grafana']}\n"
                f"postgres_exporter_image: {images['postgres_exporter']}\n"
                f"valkey_exporter_image: {images['valkey_exporter']}\n"
                f"prometheus_port: {self.prom_port}\n"
                f"grafana_port: {self.grafana_port}\n"
                # Small, so that EVENTS spend it: the budget rules then have something to say.
                "error_budgets:\n"
                "  default: {max_errors: 3, per: 1h}\n"
            )

    @property
    def project(self) -> str:
        return self.base.project

    def provision(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.base.provision(*args, check=check)

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        from provision.runtime.compose_binary import compose_command

        files = ["-f", "compose.yml", "-f", "compose.metrics.yml"]
        done = subprocess.run(
            [*compose_command(), *files, "--project-name", self.project, *args],
            cwd=self.directory, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert not check or done.returncode == 0, f"compose {args}: {done.stderr[-3000:]}"
        return done

    def containers(self) -> dict[str, tuple[str, str]]:
        """service -> (container id, StartedAt) of every container of the project."""
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}")
        if not ids.split():
            return {}
        info = json.loads(docker("inspect", *ids.split()))
        return {
            c["Config"]["Labels"]["com.docker.compose.service"]: (
                c["Id"][:12],
                c["State"]["StartedAt"],
            )
            for c in info
        }

    def secret_values(self) -> dict[str, str]:
        env = self.base.env_file()
        return {
            key: value
            for key, value in env.items()
            if re.search(r"PASSWORD|TOKEN|SECRET", key) and len(value) >= 8
        }

    def teardown(self) -> None:
        self.provision("down", "--volumes", "--yes", check=False)
        from provision.runtime.compose_binary import compose_command

        subprocess.run(  # whatever the kit left (metrics included), by project name
            [*compose_command(), "--project-name", self.project, "down", "-v",
             "--remove-orphans", "--timeout", "5"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip


# Fetches a scrape URL from inside the Prometheus container (busybox wget, as Prometheus sees the
# network), with the token Prometheus holds when it holds one; prints the response headers.
SCRAPE_HEADERS = r"""
url="$1"
token=/run/secrets/glitchtip_api_token
if [ -r "$token" ]; then
    wget -S -q -O /dev/null --header "Authorization: Bearer $(cat "$token")" "$url" 2>&1
else
    wget -S -q -O /dev/null "$url" 2>&1
fi
"""
# What Prometheus 3 (the kit's pin) accepts without `fallback_scrape_protocol`; 2.53 here accepts
# anything, so the tier checks the header itself.
SCRAPE_TYPES = re.compile(r"^(text/plain|application/openmetrics-text)\b", re.IGNORECASE)


def scrape_content_types(gt: MetricsDeployment, active: list[dict]) -> dict[str, str]:
    """job -> the Content-Type its target answers Prometheus with."""
    found = {}
    for target in active:
        done = gt.compose(
            "exec", "-T", "prometheus", "sh", "-c", SCRAPE_HEADERS, "sh", target["scrapeUrl"]
        )
        match = re.search(r"^\s*content-type:\s*(.+?)\s*$", done.stdout, re.I | re.M)
        found[target["labels"]["job"]] = match.group(1) if match else "(none)"
    return found


def events_by_project(port: int) -> dict[str, float]:
    result = query(port, 'sum by (project) (glitchtip_project_events_total{category="error"})')
    return {r["metric"].get("project", ""): float(r["value"][1]) for r in result}


@pytest.mark.parametrize("major", [6, 5])
def test_metrics_stack(stack_env, tmp_path, major):
    from stack.test_up_stack import send_event

    directory = tmp_path / f"gt{major}"
    directory.mkdir()
    gt = MetricsDeployment(directory, major, stack_env.images, stack_env.free_port)
    try:
        run_metrics_checks(gt, send_event)
    finally:
        gt.teardown()


def run_metrics_checks(gt: MetricsDeployment, send_event) -> None:
    import httpx

    began = time.monotonic()
    # 1. GlitchTip 6: `make start`, then `make metrics-start` on top of it (the issue's "done
    # when"); GlitchTip 5: `provision up --metrics` on an empty directory (one command).
    if gt.major == 6:
        gt.provision("up")
        before_metrics = gt.containers()
        gt.provision("up", "--metrics")
        after_metrics = gt.containers()
        kept = {s for s in before_metrics if before_metrics[s] == after_metrics.get(s)}
        print(f"metrics-start kept {sorted(kept)}; recreated "
              f"{sorted(set(before_metrics) - kept)}")  # fmt: skip
        assert {"postgres", "valkey"} <= kept  # the data services are never touched
    else:
        gt.provision("up", "--metrics")
        after_metrics = gt.containers()
    assert set(after_metrics) >= METRICS_SERVICES, sorted(after_metrics)
    # Issue 18: the token, Grafana's and the database password reach the metrics services as
    # files; no container (metrics ones, exited migrate) holds a secret value in its config.
    from stack.secret_check import (
        assert_no_secret_in_compose_config,
        assert_no_secret_in_containers,
    )

    assert_no_secret_in_containers(
        gt.directory, gt.project, {"migrate", "web", "worker", *METRICS_SERVICES}
    )
    assert_no_secret_in_compose_config(
        gt.directory, gt.project, ["compose.yml", "compose.metrics.yml"]
    )

    # 2. Every target up (figure for the closing note).
    active = wait_targets_up(gt.prom_port, JOBS)
    print(f"\nGlitchTip {gt.major}: Prometheus targets ({time.monotonic() - began:.0f} s after up)")
    print(targets_table(active))
    # `provision status` reads the same from the live Prometheus (issue 8, item 5).
    status = json.loads(gt.provision("status", "--json", check=False).stdout)["metrics"]
    assert status["all_targets_up"] is True and not status["targets_error"], status
    assert {t["job"] for t in status["targets"]} == JOBS, status
    assert set(status["services"]) == METRICS_SERVICES, status
    types = scrape_content_types(gt, active)
    print("scrape Content-Types:", types)
    assert all(SCRAPE_TYPES.match(t) for t in types.values()), types

    # 3. Every rule loaded and evaluated by Prometheus without error; every rule and dashboard
    # expression executed by the live Prometheus without error.
    rules = rule_expressions(gt.directory)
    assert rules, "no rule rendered into monitoring/prometheus/rules"
    for _name, expr in rules:
        query(gt.prom_port, expr)
    deadline = time.monotonic() + 90
    while True:
        groups = prom_get(gt.prom_port, "/api/v1/rules")["groups"]
        loaded = [r for g in groups for r in g["rules"]]
        evaluated = all(not r.get("lastEvaluation", "").startswith("0001") for r in loaded)
        if evaluated or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sorted(r["name"] for r in loaded) == sorted(name for name, _ in rules)
    broken = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert evaluated and not broken, broken
    expressions = dashboard_expressions(gt.directory)
    assert expressions, "no dashboard expression rendered into monitoring/grafana/dashboards"
    empty = []
    for board, title, expr in expressions:
        if not query(gt.prom_port, expr):
            empty.append(f"{board} / {title}")
    print(f"{len(rules)} rule and {len(expressions)} dashboard expressions ran without error; "
          f"{len(empty)} panels without data yet: {empty}")  # fmt: skip

    # 4. Events through the DSN move the per-project count (the exporter polls once a minute).
    exporter_up = 'glitchtip_project_exporter_up{job="project-exporter"}'
    deadline = time.monotonic() + EXPORTER_POLL_TIMEOUT
    while scalar(gt.prom_port, exporter_up) != 1 and time.monotonic() < deadline:
        time.sleep(3)
    assert scalar(gt.prom_port, exporter_up) == 1, query(gt.prom_port, "{job='project-exporter'}")
    last_poll = 'glitchtip_project_exporter_last_success_timestamp_seconds{job="project-exporter"}'
    first_poll = scalar(gt.prom_port, last_poll)
    before = events_by_project(gt.prom_port)
    for i in range(EVENTS):
        send_event(gt.base.dsn(), gt.base.port, f"metrics stack test {gt.major} #{i}")
    if gt.major == 5:
        # The exporter must survive a GlitchTip restart between two polls (the events are
        # queued already): the count still moves, and the exporter reports itself up again.
        gt.compose("restart", "web")
    deadline = time.monotonic() + EXPORTER_POLL_TIMEOUT
    after = before
    while time.monotonic() < deadline:
        time.sleep(5)
        after = events_by_project(gt.prom_port)
        if after.get("default", 0) - before.get("default", 0) >= EVENTS:
            break
    print(f"per-project error events  before: {before}  after: {after}  (exporter poll at "
          f"{first_poll:.0f}, then {scalar(gt.prom_port, last_poll):.0f})")  # fmt: skip
    assert after.get("default", 0) - before.get("default", 0) >= EVENTS, (before, after)
    assert scalar(gt.prom_port, exporter_up) == 1
    codes = query(gt.prom_port, "sum by (code) (glitchtip_project_exporter_api_requests_total)")
    print("exporter API requests by code:", {r["metric"].get("code"): r["value"][1] for r in codes})
    core = {
        "GlitchTip's own metrics": "glitchtip_projects",
        "Django requests": "django_http_requests_total_by_method_total",
        "database size": "pg_database_size_bytes",
        "connections": "pg_stat_database_numbackends",
        "queue length": "redis_key_size",
        "errors in the budget window": "glitchtip_project_errors_in_budget_window",
        "budget": "glitchtip_project_error_budget_max_errors",
    }
    missing = [what for what, expr in core.items() if not query(gt.prom_port, expr)]
    assert not missing, f"no data for {missing}"
    empty = [f"{board} / {title}" for board, title, expr in expressions
             if not query(gt.prom_port, expr)]  # fmt: skip
    print(f"after the events, {len(expressions) - len(empty)} of {len(expressions)} dashboard "
          f"queries return data; still empty: {empty}")  # fmt: skip
    # The budget (3 errors an hour, glitchtip.yaml above) is spent by EVENTS: the live rule chain
    # exporter -> recording rule -> alert must say so (pending: the alert has a `for:`).
    deadline = time.monotonic() + 90
    while True:
        alerts = prom_get(gt.prom_port, "/api/v1/alerts")["alerts"]
        exhausted = [a for a in alerts if a["labels"].get("alertname") == BUDGET_ALERT
                     and a["labels"].get("project") == "default"]  # fmt: skip
        if exhausted or time.monotonic() > deadline:
            break
        time.sleep(3)
    remaining = query(gt.prom_port, "project:glitchtip_error_budget_remaining:ratio")
    print("budget remaining:", [(r["metric"].get("project"), r["value"][1]) for r in remaining],
          "alerts:", [(a["labels"]["alertname"], a["labels"].get("project"), a["state"])
                      for a in alerts])  # fmt: skip
    assert exhausted and exhausted[0]["state"] in ("pending", "firing"), alerts

    # 5. The Grafana stand-in started with the kit's provisioning and the generated password.
    secrets = gt.secret_values()
    base = f"http://127.0.0.1:{gt.grafana_port}"
    assert httpx.get(f"{base}/api/health", timeout=10).json()["database"] == "ok"
    assert httpx.get(f"{base}/api/search", timeout=10).status_code == 401  # anonymous off
    boards = httpx.get(
        f"{base}/api/search", auth=("admin", secrets["GRAFANA_ADMIN_PASSWORD"]), timeout=10
    ).json()
    rendered = sorted((gt.directory / "monitoring/grafana/dashboards").glob("*.json"))
    assert len(boards) == len(rendered), boards

    # 6. A second `up` recreates nothing.
    ids = gt.containers()
    again = json.loads(gt.provision("up", "--json").stdout)
    assert again["ok"] is True and again["changed"] is False, again
    assert gt.containers() == ids, "a second `up` restarted containers"

    # 7. No secret in compose config, in rendered files other than .env, in container env.
    metrics_only = {"GLITCHTIP_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
    assert metrics_only <= set(secrets), sorted(secrets)
    config = gt.compose("config").stdout
    leaked = sorted(k for k, v in secrets.items() if v in config)
    # Every service, GlitchTip's too, reads its secrets from files (issue 18).
    assert leaked == [], leaked
    model = json.loads(gt.compose("config", "--format", "json").stdout)
    for service in model["services"]:
        section = json.dumps(model["services"][service])
        assert not [k for k, v in secrets.items() if v in section], service
    assert not [k for k, v in secrets.items() if v in json.dumps(model.get("secrets"))]
    # secrets/ holds them by design (derived from .env, 0700): every other file holds none.
    files = [p for p in gt.directory.rglob("*") if p.is_file() and p.name not in (
        ".env", ".glitchtiprc", ".sentryclirc") and p.parent.name != "secrets"]  # fmt: skip
    for path in files:
        text = path.read_text(errors="replace")
        assert not [k for k, v in secrets.items() if v in text], path
    holders = {}
    cids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={gt.project}").split()
    for c in json.loads(docker("inspect", *cids)):
        env = "\n".join(c["Config"]["Env"] or [])
        service = c["Config"]["Labels"]["com.docker.compose.service"]
        holders[service] = sorted(k for k, v in secrets.items() if v in env)
    print(
        "secret values in `docker inspect` environments:", {s: h for s, h in holders.items() if h}
    )
    assert not any(holders.values()), holders  # GlitchTip's containers too (issue 18)

    # 8. `make metrics-stop`: only the metrics services go; GlitchTip and its data stay.
    volumes = sorted(docker("volume", "ls", "-q", "--filter",
                            f"label=com.docker.compose.project={gt.project}").split())  # fmt: skip
    gt.provision("down", "--only-metrics")
    left = gt.containers()
    assert not METRICS_SERVICES & set(left), sorted(left)
    running_before = {s: v for s, v in ids.items() if s not in METRICS_SERVICES}
    assert {s: left.get(s) for s in running_before} == running_before
    assert set(volumes) <= set(docker("volume", "ls", "-q").split())
    send_event(gt.base.dsn(), gt.base.port, f"after metrics-stop {gt.major}")
    print(f"GlitchTip {gt.major}: metrics checks done in {time.monotonic() - began:.0f} s")
