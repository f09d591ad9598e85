"""The Prometheus alert rules: valid for the real promtool, unit-tested against fed series, and
written over metric names and labels the churnops API really exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.exported_metrics import PROMETHEUS_SERIES, churnops_names, unknown_references
from tests.support.services import needs

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


@pytest.fixture
def promtool_installed() -> None:
    if PROMTOOL is None:
        needs("promtool", "not installed (Debian: apt-get install prometheus; make setup does)")


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.usefixtures("promtool_installed")
def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@pytest.mark.usefixtures("promtool_installed")
def test_config_with_its_rule_file_passes_promtool_check(tmp_path: Path) -> None:
    # The bearer token file is a compose secret (/run/secrets/metrics_key): point the copy at a
    # local one, everything else stays as shipped, the rule file beside it as in the container.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    token = tmp_path / "metrics_key"
    token.write_text("k")
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_key"
        job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    done = promtool("check", "config", tmp_path / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


@pytest.mark.usefixtures("promtool_installed")
def test_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", PROMETHEUS / "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.usefixtures("promtool_installed")
@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ("> 0.01", "> 0.1"),  # a 5xx threshold ten times too lax
        ("churnops_store_dropped_records_total", "churnops_store_dropped_records"),  # a wrong name
        ('route=~"/predict.*"', 'route=~"/score.*"'),  # a label value the API never uses
    ],
)
def test_rule_unit_tests_catch_a_broken_rule(tmp_path: Path, original: str, broken: str) -> None:
    text = (PROMETHEUS / "alerts.yml").read_text()
    assert original in text
    (tmp_path / "alerts.yml").write_text(text.replace(original, broken))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    done = promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_every_alert_reads_metrics_the_api_exports() -> None:
    for rule in rules():
        assert not unknown_references(rule["expr"]), (
            rule["alert"],
            unknown_references(rule["expr"]),
        )
        # Every rule reads churnops series, or the target's own `up`.
        assert churnops_names(rule["expr"]) or 'up{job="churnops-api"}' in rule["expr"]
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#")
        assert rule["labels"]["severity"] in ("warning", "critical")
    # The alerts the runbook promises exist.
    alerts = {rule["alert"] for rule in rules()}
    for required in (
        "ChurnopsApiDown",
        "ChurnopsHigh5xxRate",
        "ChurnopsHighLatencyP99",
        "ChurnopsStoreSpoolGrowing",
        "ChurnopsStoreBacklog",
        "ChurnopsPredictionsDropped",
        "ChurnopsDataDrift",
        "ChurnopsModelNotLoaded",
    ):
        assert required in alerts


def test_unit_test_series_are_real_metrics() -> None:
    """The series the promtool tests feed use exported names and labels (or Prometheus' `up`)."""
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    for case in tests:
        for series in case["input_series"]:
            selector = series["series"]
            name = selector.split("{")[0]
            assert name in PROMETHEUS_SERIES or not unknown_references(selector), selector


def test_every_runbook_anchor_is_a_section_of_the_runbook() -> None:
    runbook = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text().lower()
    headings = {
        line.lstrip("#").strip().replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in headings, f"{rule['alert']}: docs/operations.md has no section {anchor}"
