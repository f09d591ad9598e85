"""The provisioned Grafana: datasource, dashboard provider and the churnops dashboard.

No Grafana server can be installed here (Debian and PyPI ship none), so the dashboard is checked
the way Grafana would read it: the JSON model's structure, one datasource uid everywhere, every
PromQL expression parsed by the real Prometheus parser (`promtool check rules` on the panels'
queries with Grafana's variables substituted) and reading only metrics the API exports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.exported_metrics import churnops_names, unknown_references
from tests.support.services import needs

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "churnops.json"
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "6h",
    "$instance": ".*",
}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def datasource_uid() -> str:
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    return str(source["uid"])


def test_dashboard_model_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    for panel in panels():
        assert panel["type"] in {"timeseries", "stat", "gauge", "bargauge", "piechart"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def test_one_datasource_uid_everywhere() -> None:
    uid = datasource_uid()
    board = dashboard()
    seen = [panel["datasource"]["uid"] for panel in panels()]
    seen += [target["datasource"]["uid"] for panel in panels() for target in panel["targets"]]
    seen += [variable["datasource"]["uid"] for variable in board["templating"]["list"]]
    assert seen and set(seen) == {uid}


def test_every_query_reads_metrics_the_api_exports() -> None:
    for title, expr in exprs():
        assert churnops_names(expr), f"{title}: reads no churnops metric"
        assert not unknown_references(expr), (title, unknown_references(expr))
    for variable in dashboard()["templating"]["list"]:
        assert not unknown_references(variable["definition"])


def test_the_dashboard_shows_what_operators_need() -> None:
    text = " ".join(expr for _, expr in exprs())
    assert "churnops_http_requests_total" in text  # traffic
    assert "histogram_quantile(0.5, sum by (le) (rate(churnops_http_request_duration" in text
    assert "histogram_quantile(0.99, sum by (le) (rate(churnops_http_request_duration" in text
    assert 'status=~"5.."' in text  # errors
    assert "sum by (risk_level) (increase(churnops_predictions_total" in text  # risk mix
    assert "churnops_drift_share" in text and "churnops_feature_drift_score" in text  # drift
    assert "churnops_store_queue_depth" in text and "churnops_store_spooled_records" in text


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        needs("promtool", "not installed (Debian: apt-get install prometheus; make setup does)")
    rules = [
        {"record": f"churnops:dashboard_query_{i}", "expr": substituted(expr)}
        for i, (_, expr) in enumerate(exprs())
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_compose_mounts_what_the_provisioning_reads() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {
        target.removesuffix(":ro"): source
        for source, target in (v.split(":", 1) for v in grafana["volumes"])
    }
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "churnops.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert (DEPLOY / mounts[path]).resolve() == DASHBOARD.parent
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
