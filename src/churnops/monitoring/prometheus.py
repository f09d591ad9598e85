"""Prometheus gauges of the latest monitoring report, for the API's `/metrics`.

A custom collector reads whatever report it holds at scrape time, so updating the figures is one
`set_report` call and nothing is registered twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from churnops.monitoring.monitor import MonitoringReport

PREFIX = "churnops"


class MonitoringCollector(Collector):
    """Exposes drift, prediction-drift and performance figures of the report it holds."""

    def __init__(self, report: MonitoringReport | None = None) -> None:
        self._lock = threading.Lock()
        self._report = report

    def set_report(self, report: MonitoringReport | None) -> None:
        with self._lock:
            self._report = report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            report = self._report
        if report is None:
            return
        yield from _families(report)


def _families(report: MonitoringReport) -> Iterator[GaugeMetricFamily]:
    score = GaugeMetricFamily(
        f"{PREFIX}_feature_drift_score",
        "Drift score of a feature against the reference, by statistic",
        labels=["feature", "statistic"],
    )
    drifted = GaugeMetricFamily(
        f"{PREFIX}_feature_drifted", "1 when the feature is judged drifted", labels=["feature"]
    )
    for feature in report.drift.features:
        figures = {
            "psi": feature.psi,
            "jensen_shannon": feature.js_distance,
            "wasserstein_norm": feature.wasserstein_norm,
            "ks": feature.ks_statistic,
        }
        for statistic, value in figures.items():
            if value is not None:
                score.add_metric([feature.feature, statistic], float(value))
        drifted.add_metric([feature.feature], float(feature.drifted))
    yield score
    yield drifted
    yield GaugeMetricFamily(
        f"{PREFIX}_dataset_drift",
        "1 when the share of drifted features passes the threshold",
        value=float(report.drift.dataset_drift),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_drift_share", "Share of drifted features", value=report.drift.share_drifted
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_monitoring_window_rows", "Rows in the monitored window", value=report.n_rows
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_monitoring_last_run_timestamp_seconds",
        "When the monitoring report was made",
        value=report.created_at.timestamp(),
    )
    if report.prediction is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_prediction_drift_psi",
            "PSI of the score distribution",
            value=report.prediction.psi,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_prediction_drift",
            "1 when the score distribution drifted",
            value=float(report.prediction.drifted),
        )
    perf = report.performance
    if perf is not None:
        auc = GaugeMetricFamily(
            f"{PREFIX}_roc_auc",
            "ROC-AUC: estimated (CBPE), realised (labels) or training",
            labels=["kind"],
        )
        values = {
            "estimated": perf.estimated.roc_auc if perf.estimated else None,
            "realised": perf.realised.roc_auc if perf.realised else None,
            "training": perf.training.get("roc_auc"),
        }
        for kind, value in values.items():
            if value is not None:
                auc.add_metric([kind], float(value))
        yield auc
        yield GaugeMetricFamily(
            f"{PREFIX}_performance_degraded",
            "1 when realised ROC-AUC fell past the threshold",
            value=float(perf.degraded),
        )


def export_gauges(
    report: MonitoringReport | None, registry: CollectorRegistry
) -> MonitoringCollector:
    """Register a collector holding `report` on `registry`; call `set_report` on it to update."""
    collector = MonitoringCollector(report)
    registry.register(collector)
    return collector
