"""HTML report works offline and holds every section; Prometheus gauges carry the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest

from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.prometheus import export_gauges
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.report import write_report
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import make_customers, with_predictions


def _window() -> pd.DataFrame:
    frame = with_predictions(make_customers(4_000, seed=60, charges_shift=18.0, m2m_share=0.8))
    frame["created_at"] = pd.Timestamp("2026-04-01", tz="UTC") + pd.to_timedelta(
        frame.index % 4, unit="D"
    )
    return frame


def test_html_and_json_report(
    reference: MonitoringReference, settings: MonitoringSettings, tmp_path: Path
) -> None:
    report, summary = monitor_frame(_window(), reference, settings=settings, period="day")
    html_path, json_path = write_report(report, summary, reference, tmp_path, stem="r")
    page = html_path.read_text()
    assert page.count("plotly.js v") >= 1 and "cdn.plot.ly" not in page.split("</head>")[1]
    assert 'src="http' not in page
    for section in ("Data drift", "Prediction drift", "Performance", "Over time", "Data quality"):
        assert section in page
    assert page.count('class="plotly-graph-div"') >= 3 + len(report.drift.features)
    data = json.loads(json_path.read_text())
    assert data["summary"]["drift_found"] is True
    assert set(data["summary"]["drifted_features"]) == {"monthly_charges", "contract"}
    assert len(data["series"]) == 4


def test_prometheus_gauges(reference: MonitoringReference, settings: MonitoringSettings) -> None:
    report, _ = monitor_frame(_window(), reference, settings=settings, period=None)
    registry = CollectorRegistry()
    collector = export_gauges(None, registry)
    assert b"churnops_dataset_drift" not in generate_latest(registry)
    collector.set_report(report)
    text = generate_latest(registry).decode()
    assert "churnops_dataset_drift 1.0" in text
    assert 'churnops_feature_drifted{feature="contract"} 1.0' in text
    assert 'churnops_feature_drifted{feature="tenure"} 0.0' in text
    assert 'churnops_feature_drift_score{feature="monthly_charges",statistic="psi"}' in text
    assert 'churnops_roc_auc{kind="estimated"}' in text
    assert f"churnops_drift_share {report.drift.share_drifted}" in text
