"""Monitoring: data drift, prediction drift, data quality and performance of a window of
predictions against the reference profile carried inside the model.

Submodules: `summary` (streaming counts), `stats`, `drift`, `performance`, `temporal`, `monitor`
(the report of a window), `window` (gathering one), `run` (the whole check: `run_monitor`),
`alerts`, `report` (HTML/JSON, imports plotly) and `prometheus` (gauges).
"""

from typing import TYPE_CHECKING

from churnops.lazy import lazy_exports

# Imported on first use (PEP 562): a batch run needs only `summary` and `model_reference` for its
# summary, not the drift, performance and report code (~60 ms of imports for a 10-row predict).
_EXPORTS = {
    "DataQualityReport": "drift",
    "DriftReport": "drift",
    "FeatureDrift": "drift",
    "PredictionDrift": "drift",
    "MonitoringReport": "monitor",
    "monitor_frame": "monitor",
    "report_from_summary": "monitor",
    "PerformanceReport": "performance",
    "evaluate_performance": "performance",
    "MonitoringReference": "reference",
    "WindowSummary": "summary",
    "merge_all": "summary",
    "period_series": "temporal",
    "summarise_by_period": "temporal",
}

if TYPE_CHECKING:
    from churnops.monitoring.drift import (
        DataQualityReport,
        DriftReport,
        FeatureDrift,
        PredictionDrift,
    )
    from churnops.monitoring.monitor import MonitoringReport, monitor_frame, report_from_summary
    from churnops.monitoring.performance import PerformanceReport, evaluate_performance
    from churnops.monitoring.reference import MonitoringReference
    from churnops.monitoring.summary import WindowSummary, merge_all
    from churnops.monitoring.temporal import period_series, summarise_by_period


__getattr__ = lazy_exports(__name__, _EXPORTS)


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
