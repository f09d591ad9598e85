"""The report of a window: a summarised window (or a frame) in, a `MonitoringReport` out.

No I/O here: `monitoring.run` gathers the window, writes and records the report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from churnops.errors import DataValidationError, Problem
from churnops.lazy import lazy_module
from churnops.monitoring.drift import (
    DataQualityReport,
    DriftReport,
    PredictionDrift,
    data_drift,
    data_quality,
    prediction_drift,
)
from churnops.monitoring.performance import PerformanceReport, evaluate_performance
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import TIME_COLUMN, WindowSummary, merge_all
from churnops.monitoring.temporal import Period, PeriodPoint, period_series, summarise_by_period
from churnops.settings import MonitoringSettings

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API never needs pandas
    pd = lazy_module("pandas")


class MonitoringReport(BaseModel):
    """Everything one monitoring run found, JSON-ready."""

    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    window_start: datetime | None = None
    window_end: datetime | None = None
    n_rows: int
    reference_rows: int
    drift: DriftReport
    prediction: PredictionDrift | None = None
    quality: DataQualityReport
    performance: PerformanceReport | None = None
    period: str | None = None
    series: list[PeriodPoint] = Field(default_factory=list)

    @property
    def prediction_drift(self) -> bool:
        return self.prediction is not None and self.prediction.drifted

    @property
    def performance_degraded(self) -> bool:
        return self.performance is not None and self.performance.degraded

    @property
    def drift_found(self) -> bool:
        """What a scheduler acts on (exit code 1): dataset or prediction drift, or degradation."""
        return self.drift.dataset_drift or self.prediction_drift or self.performance_degraded

    def headline(self) -> dict[str, Any]:
        """The few figures a log line, an alert or a dashboard tile needs."""
        perf = self.performance
        return {
            "n_rows": self.n_rows,
            "dataset_drift": self.drift.dataset_drift,
            "share_drifted": round(self.drift.share_drifted, 4),
            "drifted_features": self.drift.drifted_features,
            "prediction_drift": self.prediction_drift,
            "performance_degraded": self.performance_degraded,
            "estimated_roc_auc": perf.estimated.roc_auc if perf and perf.estimated else None,
            "realised_roc_auc": perf.realised.roc_auc if perf and perf.realised else None,
            "quality_issues": self.quality.issues,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["summary"] = self.headline() | {"drift_found": self.drift_found}
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def report_from_summary(
    summary: WindowSummary,
    reference: MonitoringReference,
    *,
    settings: MonitoringSettings,
    periods: dict[str, WindowSummary] | None = None,
    period: Period | None = None,
) -> MonitoringReport:
    """Decide drift, quality and performance of a summarised window (and its periods, if given)."""
    return MonitoringReport(
        window_start=summary.start,
        window_end=summary.end,
        n_rows=summary.n_rows,
        reference_rows=reference.profile.n_rows,
        drift=data_drift(summary, reference, settings),
        prediction=prediction_drift(summary, reference, settings),
        quality=data_quality(summary, reference),
        performance=evaluate_performance(
            summary.performance, training_metrics=reference.training_metrics, settings=settings
        ),
        period=period if periods else None,
        series=period_series(periods, reference, settings) if periods else [],
    )


def monitor_frame(
    current: pd.DataFrame,
    reference: MonitoringReference,
    *,
    settings: MonitoringSettings,
    period: Period | None = "day",
) -> tuple[MonitoringReport, WindowSummary]:
    """Monitor a current window held in a frame; with `created_at` and a period, add the series."""
    if current.empty:
        raise DataValidationError([Problem(None, "the current window has no rows")])
    if period is not None and TIME_COLUMN in current.columns:
        periods = summarise_by_period(current, reference, period=period)
        summary = merge_all(list(periods.values()))
    else:
        periods = None
        summary = WindowSummary.from_frame(current, reference)
    report = report_from_summary(
        summary, reference, settings=settings, periods=periods, period=period
    )
    return report, summary
