"""Monitoring: data drift, prediction drift, data quality and performance of a window of
predictions against the reference profile carried inside the model.

Submodules: `summary` (streaming counts), `stats`, `drift`, `performance`, `temporal`, `monitor`
(the report of a window), `window` (gathering one), `run` (the whole check: `run_monitor`),
`alerts`, `report` (HTML/JSON, imports plotly) and `prometheus` (gauges).
"""

from churnops.monitoring.drift import DataQualityReport, DriftReport, FeatureDrift, PredictionDrift
from churnops.monitoring.monitor import MonitoringReport, monitor_frame, report_from_summary
from churnops.monitoring.performance import PerformanceReport, evaluate_performance
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import WindowSummary, merge_all
from churnops.monitoring.temporal import period_series, summarise_by_period

__all__ = [
    "DataQualityReport",
    "DriftReport",
    "FeatureDrift",
    "MonitoringReference",
    "MonitoringReport",
    "PerformanceReport",
    "PredictionDrift",
    "WindowSummary",
    "evaluate_performance",
    "merge_all",
    "monitor_frame",
    "period_series",
    "report_from_summary",
    "summarise_by_period",
]
