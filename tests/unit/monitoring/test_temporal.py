"""Per-day series: drift appears on the days it started, and the periods merge to the window."""

from __future__ import annotations

import pandas as pd

from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import WindowSummary
from churnops.monitoring.temporal import period_series, summarise_by_period
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import make_customers, with_predictions


def _days(reference_day: str, n_days: int, drift_from: int) -> pd.DataFrame:
    frames = []
    for day in range(n_days):
        shifted = day >= drift_from
        frame = with_predictions(
            make_customers(
                3_000,
                seed=40 + day,
                charges_shift=18.0 if shifted else 0.0,
                m2m_share=0.8 if shifted else 0.55,
            )
        )
        frame["created_at"] = pd.Timestamp(reference_day, tz="UTC") + pd.Timedelta(
            days=day, hours=9
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_daily_series_shows_when_drift_started(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    current = _days("2026-03-02", n_days=6, drift_from=3)
    report, summary = monitor_frame(current, reference, settings=settings, period="day")
    assert [p.period for p in report.series] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
        "2026-03-07",
    ]
    assert [p.dataset_drift for p in report.series] == [False] * 3 + [True] * 3
    assert all(p.n_rows == 3_000 for p in report.series)
    assert summary.n_rows == 18_000
    assert report.series[-1].estimated_roc_auc is not None
    assert (
        report.series[-1].feature_psi["monthly_charges"]
        > report.series[0].feature_psi["monthly_charges"]
    )


def test_weeks_start_on_monday_and_merge_to_the_window(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    current = _days("2026-03-05", n_days=7, drift_from=99)  # Thursday to Wednesday
    weeks = summarise_by_period(current, reference, period="week")
    assert list(weeks) == ["2026-03-02", "2026-03-09"]
    assert [w.n_rows for w in weeks.values()] == [12_000, 9_000]
    whole = WindowSummary.from_frame(current, reference)
    merged = weeks["2026-03-02"].merge(weeks["2026-03-09"])
    assert merged.numeric["tenure"].grid.le == whole.numeric["tenure"].grid.le
    assert not any(p.dataset_drift for p in period_series(weeks, reference, settings))
