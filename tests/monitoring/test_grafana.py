"""Grafana's files: the generated dashboards and the provisioning that loads them.

Grafana itself cannot run here (no Debian or PyPI package), so what is checked is what can be
without it: the committed dashboards equal a fresh generation by grafana-foundation-sdk; they
survive a round trip through the SDK's dashboard model (every key is one Grafana's schema, as
the SDK models it, knows); panels use only plugin types the SDK knows, the provisioned
datasource uid, unique ids and refIds, and a grid that does not overlap; the provisioning files
name the datasource the dashboards use and the directory compose.metrics.yml mounts.
Not exercised: Grafana's own loading, rendering and query editor (see the README).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from provision.monitoring import dashboards

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "templates" / "monitoring" / "grafana"
DATASOURCE_FILE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_FILE = GRAFANA / "provisioning" / "dashboards" / "kit.yml"
COMPOSE_TEMPLATE = REPO / "templates" / "compose.metrics.yml.j2"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def load(name: str) -> dict:
    return json.loads((dashboards.DASHBOARDS_DIR / name).read_text())


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def roundtrip(data: dict) -> dict:
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    return json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))


NAMES = sorted(dashboards.DASHBOARDS)


def test_the_committed_dashboards_are_a_fresh_generation():
    assert dashboards.stale() == [], "run: python -m provision.monitoring.dashboards --write"
    on_disk = sorted(path.name for path in dashboards.DASHBOARDS_DIR.glob("*.json"))
    assert on_disk == NAMES, "a dashboard file that the generator does not make"


def test_a_hand_edited_dashboard_is_reported_stale(tmp_path):
    shutil.copytree(dashboards.DASHBOARDS_DIR, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "glitchtip-projects.json"
    path.write_text(path.read_text().replace("Burn rate", "Burn  rate"))
    assert dashboards.stale(tmp_path) == ["glitchtip-projects.json"]
    (tmp_path / "glitchtip-service.json").unlink()
    assert dashboards.stale(tmp_path) == ["glitchtip-service.json", "glitchtip-projects.json"]


def test_check_and_write_commands(capsys):
    assert dashboards.main(["--check"]) == 0
    assert dashboards.main(["--bogus"]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("name", NAMES)
def test_every_key_is_one_the_sdk_schema_knows(name):
    data = load(name)
    assert roundtrip(data) == data


def test_the_roundtrip_check_catches_an_unknown_key():
    data = load("glitchtip-service.json")
    data["panels"][1]["fieldConfig"]["defaults"]["colour"] = "red"
    assert roundtrip(data) != data


@pytest.mark.parametrize("name", NAMES)
def test_panels_are_wired_to_the_provisioned_datasource(name):
    from grafana_foundation_sdk.cog import plugins, runtime

    plugins.register_default_plugins()
    dashboard = load(name)
    assert len(dashboard["uid"]) <= 40 and dashboard["title"]
    assert "glitchtip-kit" in dashboard["tags"]  # the dashboards' links find each other by tag
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert runtime.panelcfg_config(panel["type"]) is not None, panel["type"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["title"] and panel["description"], panel
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and all(refs) and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in dashboard.get("templating", {}).get("list", []):
        assert variable["datasource"] == DATASOURCE, variable["name"]


@pytest.mark.parametrize("name", NAMES)
def test_the_grid_fits_24_columns_without_overlap(name):
    boxes = []
    for panel in load(name)["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        box = (pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"])
        for other in boxes:
            apart = (
                box[2] <= other[0] or other[2] <= box[0] or box[3] <= other[1] or other[3] <= box[1]
            )
            assert apart, (panel["title"], box, other)
        boxes.append(box)


def test_the_service_dashboard_covers_what_operators_watch():
    titles = {panel["title"] for panel in panels(load("glitchtip-service.json"))}
    assert {
        "Scrape targets",
        "Responses by status",
        "5xx ratio",
        "Latency percentiles",
        "Accepted events",
        "Ingest requests",
        "Task queue",
        "Memory (resident)",
        "CPU",
        "Database size",
        "Connections",
    } <= titles


def test_the_projects_dashboard_covers_budgets_and_the_exporter():
    dashboard = load("glitchtip-projects.json")
    titles = {panel["title"] for panel in panels(dashboard)}
    assert {
        "Events per minute by project",
        "Top projects by errors",
        "Budget remaining",
        "Burn rate",
        "Budgets",
        "Last poll",
        "Since last success",
    } <= titles
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables == ["organization", "project"]


# --- provisioning ---


def test_the_datasource_is_the_stacks_prometheus_read_only():
    document = yaml.safe_load(DATASOURCE_FILE.read_text())
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["uid"] == dashboards.DATASOURCE_UID == DATASOURCE["uid"]
    assert source["type"] == DATASOURCE["type"]
    assert source["url"] == "http://prometheus:9090"
    assert source["access"] == "proxy" and source["editable"] is False and source["isDefault"]


def test_the_scrape_interval_grafana_assumes_is_prometheus_s():
    source = yaml.safe_load(DATASOURCE_FILE.read_text())["datasources"][0]
    template = (REPO / "templates" / "monitoring" / "prometheus" / "prometheus.yml.j2").read_text()
    scrape = re.search(r"^\s+scrape_interval:\s*(\S+)", template, re.M)
    # Without a global scrape_interval Prometheus scrapes every minute (its default).
    interval = scrape.group(1) if scrape else "1m"
    assert source["jsonData"]["timeInterval"] == interval


def provider() -> dict:
    document = yaml.safe_load(PROVIDER_FILE.read_text())
    assert document["apiVersion"] == 1
    (found,) = document["providers"]
    return found


def test_the_dashboard_provider_loads_the_kits_folder_read_only():
    found = provider()
    assert found["type"] == "file" and found["folder"] == "GlitchTip"
    assert found["disableDeletion"] is True and found["allowUiUpdates"] is False
    assert found["options"]["path"] == "/etc/grafana/dashboards"


@pytest.mark.skipif(not COMPOSE_TEMPLATE.is_file(), reason="no templates/compose.metrics.yml.j2")
def test_compose_mounts_the_dashboards_where_the_provider_reads_them():
    text = COMPOSE_TEMPLATE.read_text()
    mounts = dict(re.findall(r"source:\s*(\./monitoring/grafana/\S+)\s*\n\s*target:\s*(\S+)", text))
    assert mounts.get("./monitoring/grafana/dashboards") == provider()["options"]["path"]
    assert mounts.get("./monitoring/grafana/provisioning") == "/etc/grafana/provisioning"
