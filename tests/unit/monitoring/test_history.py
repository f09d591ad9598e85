"""Monitoring history read back from stored results: incidents replayed with the alert rule,
the feature x day drift matrix, performance series, business value and the drill-down shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.monitoring.alerts import conditions
from churnops.monitoring.history import (
    PeriodActivity,
    StoredCheck,
    business_value,
    categorical_distribution,
    drift_matrix,
    incidents,
    numeric_distribution,
    performance_series,
    period_activity,
    stored_checks,
)
from churnops.monitoring.monitor import MonitoringReport, monitor_frame
from churnops.monitoring.reference import MonitoringReference
from churnops.settings import BusinessSettings, MonitoringSettings
from churnops.store.queries import NumericCounts
from churnops.store.records import MonitoringResult
from tests.unit.monitoring.synthetic import make_customers, with_predictions

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _report(
    reference: MonitoringReference, *, day: int, drifted: bool, seed: int, rows: int = 1_500
) -> MonitoringReport:
    frame = make_customers(
        rows, seed=seed, charges_shift=40.0 if drifted else 0.0, m2m_share=0.9 if drifted else 0.55
    )
    current = with_predictions(frame)
    current["created_at"] = T0 + timedelta(days=day, hours=1)
    report, _ = monitor_frame(current, reference, settings=MonitoringSettings(), period="day")
    return report


def _result(report: MonitoringReport, *, index: int, day: int) -> MonitoringResult:
    summary: dict[str, Any] = report.to_dict() | {"run": {"model_name": "m", "model_version": "3"}}
    return MonitoringResult(
        id=index,
        created_at=T0 + timedelta(days=day, hours=23),
        window_start=T0 + timedelta(days=day),
        window_end=T0 + timedelta(days=day + 1),
        kind="drift",
        drift_detected=report.drift_found,
        summary=summary,
    )


@pytest.fixture(scope="module")
def checks(reference: MonitoringReference) -> list[StoredCheck]:
    pattern = [False, True, True, False, True]  # drift on days 1-2, gone on 3, back on 4
    results = [
        _result(_report(reference, day=day, drifted=d, seed=10 + day), index=day + 1, day=day)
        for day, d in enumerate(pattern)
    ]
    junk = MonitoringResult(
        id=99,
        created_at=T0,
        window_start=None,
        window_end=None,
        kind="drift",
        drift_detected=False,
        summary={"not": "a report"},
    )
    return stored_checks([*reversed(results), junk])  # the store reads newest first


def test_stored_checks_are_oldest_first_with_their_model_and_skip_other_rows(
    checks: list[StoredCheck],
) -> None:
    assert [c.id for c in checks] == [1, 2, 3, 4, 5]
    assert all(c.model_name == "m" and c.model_version == "3" for c in checks)
    assert [c.report.drift.dataset_drift for c in checks] == [False, True, True, False, True]


def test_incidents_replay_the_alert_rule_open_and_resolved(checks: list[StoredCheck]) -> None:
    spans = [s for s in incidents(checks) if s.kind == "dataset_drift"]

    assert len(spans) == 2
    first, second = spans
    assert first.opened_at == checks[1].created_at
    assert first.resolved_at == checks[3].created_at and first.checks == 2
    assert second.opened_at == checks[4].created_at and second.open
    assert "monthly_charges" in second.message
    assert second.message == conditions(checks[4].report)["dataset_drift"][0]


def test_drift_matrix_is_feature_by_day_psi_from_the_series(checks: list[StoredCheck]) -> None:
    matrix = drift_matrix(checks)

    assert matrix is not None
    assert matrix.periods == [f"2026-03-0{d}" for d in range(2, 7)]
    assert "monthly_charges" in matrix.features and "contract" in matrix.features
    row = matrix.features.index("monthly_charges")
    for column, check in enumerate(checks):
        point = check.report.series[0]
        assert matrix.psi[row][column] == pytest.approx(point.feature_psi["monthly_charges"])
        assert matrix.drifted[row][column] == ("monthly_charges" in point.drifted_features)
    assert matrix.drifted[row] == [False, True, True, False, True]
    assert matrix.psi_drift == MonitoringSettings().psi_drift
    assert matrix.psi_warning == MonitoringSettings().psi_warning


def test_drift_matrix_takes_the_latest_check_of_a_period(
    reference: MonitoringReference, checks: list[StoredCheck]
) -> None:
    later = _report(reference, day=0, drifted=True, seed=77)  # day 0 checked again, drifted
    again = stored_checks([_result(later, index=50, day=5)])
    matrix = drift_matrix([*checks, *again])

    assert matrix is not None
    row = matrix.features.index("monthly_charges")
    assert matrix.psi[row][0] == pytest.approx(later.series[0].feature_psi["monthly_charges"])
    assert drift_matrix([]) is None


def test_a_later_check_that_saw_part_of_a_day_does_not_replace_it(
    reference: MonitoringReference, checks: list[StoredCheck]
) -> None:
    partial = _report(reference, day=0, drifted=True, seed=78, rows=300)
    activity = period_activity([*checks, *stored_checks([_result(partial, index=51, day=5)])])

    assert activity.n[0] == 1_500
    assert activity.mean_score[0] == checks[0].report.series[0].mean_score


def test_performance_series_has_estimated_and_realised_per_day(checks: list[StoredCheck]) -> None:
    series = performance_series(checks)

    assert series.periods == [c.report.series[0].period for c in checks]
    assert series.realised_roc_auc == [c.report.series[0].realised_roc_auc for c in checks]
    assert series.estimated_roc_auc == [c.report.series[0].estimated_roc_auc for c in checks]
    assert all(n > 0 for n in series.n_labelled)
    assert series.drop_limit == MonitoringSettings().performance_drop


def test_period_points_carry_the_counts_the_app_charts(reference: MonitoringReference) -> None:
    frame = with_predictions(make_customers(2_000, seed=5))
    frame.loc[frame.index[::2], "label"] = np.nan  # half labelled
    frame["created_at"] = T0 + timedelta(hours=3)

    report, _ = monitor_frame(frame, reference, settings=MonitoringSettings(), period="day")

    (point,) = report.series
    flagged = frame["will_churn"].to_numpy()
    labelled = frame.dropna(subset=["label"])
    churned = (labelled["label"] == 1).to_numpy()
    served = labelled["will_churn"].to_numpy()
    assert point.predicted_positive == int(flagged.sum())
    assert point.flagged_probability == pytest.approx(frame["churn_probability"][flagged].sum())
    assert point.n_labelled == len(labelled) and point.label_positive == int(churned.sum())
    assert (point.tp, point.fp, point.fn, point.tn) == (
        int((served & churned).sum()),
        int((served & ~churned).sum()),
        int((~served & churned).sum()),
        int((~served & ~churned).sum()),
    )
    assert sum(point.score_hist) == len(frame) and len(point.score_hist) == 20


def test_period_activity_takes_each_day_from_the_latest_check(checks: list[StoredCheck]) -> None:
    activity = period_activity(checks)

    points = [c.report.series[0] for c in checks]
    assert activity.periods == [p.period for p in points]
    assert activity.n == [p.n_rows for p in points]
    assert activity.mean_score == [p.mean_score for p in points]
    assert activity.realised_rate == [p.label_positive / p.n_labelled for p in points]
    assert activity.flagged_rate == [p.predicted_positive / p.n_rows for p in points]


def _activity() -> PeriodActivity:
    return PeriodActivity(
        periods=["2026-03-02", "2026-03-03"],
        n=[100, 50],
        mean_score=[0.3, 0.4],
        predicted_positive=[20, 10],
        flagged_probability=[14.0, 6.0],
        n_labelled=[40, 0],
        label_positive=[12, 0],
        fp=[6, 0],
        fn=[4, 0],
        score_hist=[[5] * 20, [0] * 20],
    )


def test_business_value_prices_offers_and_errors() -> None:
    business = BusinessSettings(value_retained=500.0, offer_cost=50.0, offer_success_rate=0.4)

    value = business_value(_activity(), business)

    assert value is not None
    assert value.offers == 30
    assert value.expected_value == pytest.approx(20.0 * 0.4 * 500.0 - 30 * 50.0)
    assert (value.false_positives, value.false_negatives, value.labelled) == (6, 4, 40)
    assert value.false_positive_cost == pytest.approx(6 * 50.0)
    assert value.false_negative_cost == pytest.approx(4 * 0.4 * 500.0)
    assert business_value(_activity(), BusinessSettings(offer_cost=1.0)) is None


def test_numeric_distribution_uses_the_reference_bins(
    reference: MonitoringReference, reference_frame: pd.DataFrame
) -> None:
    edges = reference.profile.numeric["tenure"].bin_edges
    values = reference_frame["tenure"].to_numpy(float)
    counts = NumericCounts(
        n_rows=len(values),
        n_values=len(values),
        edges=edges,
        at_or_below=[int((values <= e).sum()) for e in edges],
    )

    dist = numeric_distribution(reference.profile, "tenure", counts)

    assert len(dist.labels) == len(edges) + 1
    assert dist.current == pytest.approx(dist.reference)  # the reference against itself
    assert sum(dist.current) == pytest.approx(1.0)


def test_categorical_distribution_marks_unseen_and_leaves_nulls_out(
    reference: MonitoringReference,
) -> None:
    counts: dict[str | None, int] = {"Month-to-month": 60, "One year": 20, "Weekly": 20, None: 5}

    dist = categorical_distribution(reference.profile, "contract", counts)

    assert "Weekly (unseen)" in dist.labels
    assert dist.n_current == 100
    assert dist.current[dist.labels.index("Month-to-month")] == pytest.approx(0.6)
    assert dist.current[dist.labels.index("Two year")] == 0.0
    assert sum(dist.reference) == pytest.approx(1.0)
