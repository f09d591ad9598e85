"""Figure builders of the Monitoring and Models pages: the data and marks each figure carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from churnops.dashboard import charts_monitoring as charts
from churnops.modeling.registry import VersionSummary
from churnops.modeling.registry_history import RegistryEvent, VersionDetails, version_events
from churnops.monitoring.history import (
    DriftMatrix,
    FeatureDistribution,
    IncidentSpan,
    PerformanceSeries,
    PeriodActivity,
)
from churnops.store.queries import DailyVolume

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _matrix() -> DriftMatrix:
    return DriftMatrix(
        features=["contract", "monthly_charges", "tenure"],
        periods=["2026-03-01", "2026-03-02"],
        psi=[[0.01, 0.35], [0.15, 0.8], [0.0, None]],
        drifted=[[False, True], [False, True], [False, False]],
        psi_warning=0.1,
        psi_drift=0.2,
    )


def test_drift_heatmap_carries_the_psi_and_marks_thresholds_and_drifted_cells() -> None:
    matrix = _matrix()

    fig = charts.drift_heatmap(matrix)

    heatmap, marks = fig.data
    assert [list(row) for row in heatmap.z] == matrix.psi
    assert list(heatmap.y) == matrix.features and list(heatmap.x) == matrix.periods
    assert heatmap.zmax == pytest.approx(0.8)  # the largest PSI (above twice the drift mark)
    assert list(heatmap.colorbar.tickvals) == [0.0, 0.1, 0.2]
    assert "drift 0.2" in heatmap.colorbar.ticktext and "warning 0.1" in heatmap.colorbar.ticktext
    # colour breaks sit exactly at the thresholds (as fractions of zmax)
    stops = [stop for stop, _ in heatmap.colorscale]
    assert stops.count(pytest.approx(0.1 / 0.8)) == 2 and stops.count(pytest.approx(0.2 / 0.8)) == 2
    assert list(zip(marks.x, marks.y, strict=True)) == [
        ("2026-03-02", "contract"),
        ("2026-03-02", "monthly_charges"),
    ]
    assert "0.2" in marks.name


def test_drift_heatmap_scale_reaches_twice_the_drift_threshold_when_psi_is_small() -> None:
    matrix = DriftMatrix(["a"], ["2026-03-01"], [[0.05]], [[False]], 0.1, 0.25)
    fig = charts.drift_heatmap(matrix)
    assert fig.data[0].zmax == pytest.approx(0.5)
    assert len(fig.data[1].x) == 0


def test_alerts_timeline_runs_open_incidents_to_now_and_closes_resolved_ones() -> None:
    opened = NOW - timedelta(days=3)
    spans = [
        IncidentSpan("data_quality", opened - timedelta(days=2), opened, "nulls", 2),
        IncidentSpan("dataset_drift", opened, None, "dataset drift: contract", 3),
    ]

    fig = charts.alerts_timeline(spans, now=NOW)

    traces = {t.name: t for t in fig.data}
    assert list(traces["open"].x) == [opened, NOW, None]
    assert list(traces["open"].y) == ["dataset_drift", "dataset_drift", None]
    assert traces["open"].line.color == charts.DRIFT_COLOUR
    assert list(traces["resolved"].x) == [opened - timedelta(days=2), opened, None]
    assert "dataset drift: contract" in traces["open"].text


def _activity() -> PeriodActivity:
    return PeriodActivity(
        periods=["2026-03-01", "2026-03-02"],
        n=[100, 50],
        mean_score=[0.3, 0.5],
        predicted_positive=[20, 10],
        flagged_probability=[14.0, 6.0],
        n_labelled=[40, 0],
        label_positive=[10, 0],
        fp=[4, 0],
        fn=[4, 0],
        score_hist=[[50, 50] + [0] * 18, [0] * 10 + [25, 25] + [0] * 8],
    )


def test_volume_chart_has_counts_per_day_and_the_mean_score_the_checks_saw() -> None:
    volume = DailyVolume(days=["2026-02-28", "2026-03-01", "2026-03-02"], n=[7, 100, 50])
    bars, line = charts.volume_chart(volume, _activity()).data
    assert list(bars.x) == volume.days and list(bars.y) == [7, 100, 50]
    assert list(line.x) == ["2026-03-01", "2026-03-02"] and list(line.y) == [0.3, 0.5]


def test_score_distribution_gives_each_day_shares_that_sum_to_one() -> None:
    heatmap = charts.score_distribution_chart(_activity()).data[0]
    z = [list(row) for row in heatmap.z]
    assert len(z) == 20 and heatmap.y[0] == "0.00-0.05" and heatmap.y[-1] == "0.95-1.00"
    for day in range(2):
        assert sum(row[day] for row in z) == pytest.approx(1.0)
    assert z[10][1] == pytest.approx(0.5) and z[0][0] == pytest.approx(0.5)


def test_performance_chart_marks_training_and_degradation_lines() -> None:
    series = PerformanceSeries(
        periods=["2026-03-01", "2026-03-02"],
        estimated_roc_auc=[0.84, 0.83],
        realised_roc_auc=[0.82, None],
        n_labelled=[40, 0],
        training_roc_auc=0.85,
        drop_limit=0.05,
    )

    fig = charts.performance_chart(series)

    estimated, realised = fig.data
    assert list(estimated.y) == [0.84, 0.83] and list(realised.y) == [0.82, None]
    lines = sorted(shape.y0 for shape in fig.layout.shapes)
    assert lines == [pytest.approx(0.80), pytest.approx(0.85)]
    texts = [a.text for a in fig.layout.annotations]
    assert "training 0.850" in texts and "degraded below 0.800" in texts


def test_churn_rate_chart_puts_predicted_against_realised() -> None:
    predicted, flagged, realised = charts.churn_rate_chart(_activity()).data
    assert list(predicted.y) == [0.3, 0.5]
    assert list(flagged.y) == [pytest.approx(0.2), pytest.approx(0.2)]
    assert list(realised.y) == [pytest.approx(0.25), None]
    assert list(realised.customdata) == [40, 0]


def test_feature_distribution_chart_puts_reference_beside_current() -> None:
    dist = FeatureDistribution(
        "contract", "categorical", ["A", "B (unseen)"], [1.0, 0.0], [0.4, 0.6], 10
    )
    fig = charts.feature_distribution_chart(dist, psi=1.234)
    reference, current = fig.data
    assert list(reference.y) == [1.0, 0.0] and list(current.y) == [0.4, 0.6]
    assert list(current.x) == ["A", "B (unseen)"]
    assert "PSI 1.234" in fig.layout.title.text


def _version(number: str, aliases: list[str], auc: float, tags: dict[str, str]) -> VersionDetails:
    summary = VersionSummary(
        version=number,
        aliases=aliases,
        candidate="xgboost",
        cv_roc_auc=auc - 0.01,
        test_roc_auc=auc,
        threshold=0.4,
        leakage=False,
        created_at="2026-03-01T10:00:00+00:00",
        run_id=None,
    )
    return VersionDetails(
        summary=summary,
        metrics={"cv_roc_auc": auc - 0.01, "test_roc_auc": auc, "test_f1": 0.6},
        tags=tags,
        events=version_events(number, tags),
    )


def test_version_events_read_who_when_why_from_the_tags() -> None:
    tags = {
        "churnops.promoted_by": "ana",
        "churnops.promoted_at": "2026-03-02T09:00:00+00:00",
        "churnops.promoted_why": "better recall",
        "churnops.gate": "held",
        "churnops.gate_reason": "does not beat champion",
    }
    events = version_events("2", tags)
    assert events == [
        RegistryEvent("2", "promoted", "2026-03-02T09:00:00+00:00", "ana", "better recall"),
        RegistryEvent("2", "gate held", None, "training", "does not beat champion"),
    ]


def test_models_tables_list_versions_history_and_comparison() -> None:
    old = _version(
        "1",
        [],
        0.84,
        {
            "churnops.promoted_at": "2026-03-01T11:00:00+00:00",
            "churnops.promoted_by": "ci",
            "churnops.promoted_why": "first",
        },
    )
    new = _version(
        "2",
        ["champion"],
        0.86,
        {
            "churnops.promoted_at": "2026-03-02T09:00:00+00:00",
            "churnops.promoted_by": "ana",
            "churnops.promoted_why": "better",
        },
    )

    versions = charts.versions_table([new, old])
    assert list(versions["version"]) == ["2", "1"]
    assert versions.loc[0, "aliases"] == "champion"
    assert versions.loc[0, "last change"].startswith("promoted by ana")

    history = charts.history_table([new, old])
    assert list(history["version"]) == ["2", "1"]  # newest first
    assert list(history["why"]) == ["better", "first"]

    table = charts.comparison_table(old, new).set_index("metric")
    assert table.loc["test_roc_auc", "b - a"] == "+0.0200"
    assert table.loc["test_roc_auc", "v1"] == "0.8400"
    assert table.loc["model", "v2"] == "xgboost" and table.loc["calibration", "v1"] == "-"

    bars = charts.metrics_comparison_chart(old, new).data
    assert [b.name for b in bars] == ["v1 (xgboost)", "v2 (xgboost)"]
    assert list(bars[1].x) == ["cv_roc_auc", "test_roc_auc", "test_f1"]
