"""Temporal analysis: a window split by day or week, and the drift/performance series.

One pass over the rows builds the per-period summaries; their merge is the whole-window summary, so
the series costs nothing extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from churnops.errors import DataValidationError, Problem
from churnops.lazy import lazy_module
from churnops.monitoring.drift import data_drift, prediction_drift
from churnops.monitoring.performance import estimated_metrics, realised_metrics
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import TIME_COLUMN, WindowSummary
from churnops.settings import MonitoringSettings

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API never needs pandas
    pd = lazy_module("pandas")

Period = Literal["day", "week"]


class PeriodPoint(BaseModel):
    """Drift and performance of one day or week."""

    period: str  # ISO date of the period start (weeks start on Monday)
    n_rows: int
    share_drifted: float
    dataset_drift: bool
    drifted_features: list[str] = Field(default_factory=list)
    feature_psi: dict[str, float] = Field(default_factory=dict)
    prediction_psi: float | None = None
    mean_score: float | None = None
    estimated_roc_auc: float | None = None
    realised_roc_auc: float | None = None
    n_labelled: int = 0
    # Counts behind the app's charts over time (so months of them never re-read the rows):
    predicted_positive: int = 0  # predictions at or above the threshold
    flagged_probability: float = 0.0  # sum of their probabilities
    label_positive: int = 0  # labelled rows that churned
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    score_hist: list[int] = Field(default_factory=list)  # the reference's equal-width score bins


def period_days(times: pd.Series, period: Period) -> np.ndarray:
    """Days since 1970-01-01 (UTC) of the day or ISO week (Monday) each timestamp falls in; -1 when
    the timestamp is unreadable."""
    parsed = pd.to_datetime(times, errors="coerce", utc=True)
    missing = parsed.isna().to_numpy()
    stamps = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    days = stamps.astype("datetime64[D]").astype(np.int64)
    if period == "week":
        days = days - (days + 3) % 7  # 1970-01-01 was a Thursday
    return np.where(missing, -1, days)


def summarise_by_period(
    frame: pd.DataFrame, reference: MonitoringReference, *, period: Period = "day"
) -> dict[str, WindowSummary]:
    """One summary per period of `created_at`, keyed by the ISO date the period starts on."""
    if TIME_COLUMN not in frame.columns:
        raise DataValidationError([Problem(TIME_COLUMN, "needed to group rows by day or week")])
    days = period_days(frame[TIME_COLUMN], period)
    if (days < 0).any():
        bad = frame.loc[days < 0, TIME_COLUMN].head(5).tolist()
        raise DataValidationError([Problem(TIME_COLUMN, "unreadable timestamps", bad)])
    summaries: dict[str, WindowSummary] = {}
    keys, inverse = np.unique(days, return_inverse=True)
    for index, day in enumerate(keys):
        label = str(np.datetime64(int(day), "D"))
        rows = np.flatnonzero(inverse == index)
        summaries[label] = WindowSummary.empty(reference).update(frame.iloc[rows])
    return summaries


def period_series(
    summaries: dict[str, WindowSummary],
    reference: MonitoringReference,
    settings: MonitoringSettings,
) -> list[PeriodPoint]:
    """Drift and performance per period, oldest first."""
    points: list[PeriodPoint] = []
    for period in sorted(summaries):
        summary = summaries[period]
        drift = data_drift(summary, reference, settings, p_values=False)  # a point shows none
        prediction = prediction_drift(summary, reference, settings)
        counts = summary.performance
        estimated = estimated_metrics(counts) if counts is not None else None
        realised = realised_metrics(counts) if counts is not None else None
        points.append(
            PeriodPoint(
                period=period,
                n_rows=summary.n_rows,
                share_drifted=drift.share_drifted,
                dataset_drift=drift.dataset_drift,
                drifted_features=drift.drifted_features,
                feature_psi={f.feature: f.psi for f in drift.features},
                prediction_psi=prediction.psi if prediction is not None else None,
                mean_score=prediction.current_mean if prediction is not None else None,
                estimated_roc_auc=estimated.roc_auc if estimated is not None else None,
                realised_roc_auc=realised.roc_auc if realised is not None else None,
                n_labelled=counts.n_labelled if counts is not None else 0,
                **_period_counts(summary),
            )
        )
    return points


def _period_counts(summary: WindowSummary) -> dict[str, Any]:
    """Volume, decision and label counts of a period, as stored beside its drift figures."""
    counts = summary.performance
    scores = summary.scores
    found: dict[str, Any] = {"score_hist": list(scores.hist) if scores is not None else []}
    if counts is not None:
        found |= {
            "predicted_positive": counts.pred_pos_n,
            "flagged_probability": counts.pred_pos_sum_p,
            "label_positive": int(sum(counts.pos)),
            "tp": counts.tp,
            "fp": counts.fp,
            "fn": counts.fn,
            "tn": counts.tn,
        }
    return found
