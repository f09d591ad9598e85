"""Realised metrics match sklearn; CBPE tracks realised figures; degradation with delayed labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.performance import evaluate_performance, realised_metrics
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import WindowSummary
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import (
    THRESHOLD,
    build_reference,
    make_customers,
    true_probability,
    with_predictions,
)


def _design(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            (frame["contract"] == "Month-to-month").to_numpy(float),
            frame["tenure"].to_numpy(float),
            frame["monthly_charges"].to_numpy(float),
            (frame["payment_method"] == "Electronic check").to_numpy(float),
        ]
    )


def test_realised_metrics_match_sklearn(reference: MonitoringReference) -> None:
    frame = make_customers(20_000, seed=30)
    current = with_predictions(frame)
    counts = WindowSummary.from_frame(current, reference).performance
    assert counts is not None
    metrics = realised_metrics(counts)
    y = (frame["churn"] == "Yes").to_numpy(int)
    p = current["churn_probability"].to_numpy()
    predicted = (p >= THRESHOLD).astype(int)
    assert metrics is not None
    assert metrics.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-3)
    assert metrics.precision == pytest.approx(precision_score(y, predicted))
    assert metrics.recall == pytest.approx(recall_score(y, predicted))
    assert metrics.f1 == pytest.approx(f1_score(y, predicted))
    assert metrics.brier == pytest.approx(brier_score_loss(y, p))
    assert metrics.ece is not None and metrics.ece < 0.03  # scores are calibrated by construction


def test_estimate_tracks_realised_on_a_held_out_set(settings: MonitoringSettings) -> None:
    train, held_out = make_customers(20_000, seed=31), make_customers(20_000, seed=32)
    model = LogisticRegression(max_iter=1_000).fit(_design(train), train["churn"] == "Yes")
    p = model.predict_proba(_design(held_out))[:, 1]
    reference = build_reference(train)
    summary = WindowSummary.from_frame(with_predictions(held_out, p), reference)
    report = evaluate_performance(summary.performance, training_metrics={}, settings=settings)
    assert report is not None and report.realised is not None and report.estimated is not None
    for metric in ("roc_auc", "precision", "recall", "f1", "brier"):
        estimated, realised = getattr(report.estimated, metric), getattr(report.realised, metric)
        assert estimated == pytest.approx(realised, abs=0.02), metric


def test_degradation_with_delayed_labels(settings: MonitoringSettings) -> None:
    train = make_customers(7_000, seed=33)
    y = (train["churn"] == "Yes").to_numpy(int)
    training = {"test_roc_auc": float(roc_auc_score(y, true_probability(train)))}
    reference = build_reference(train, training_metrics=training)

    # Week 1: no feedback yet; only the estimate exists and it matches training.
    window = make_customers(7_000, seed=34)
    unlabelled, _ = monitor_frame(
        with_predictions(window, labelled=False), reference, settings=settings, period=None
    )
    perf = unlabelled.performance
    assert perf is not None and perf.realised is None and perf.n_labelled == 0
    assert perf.estimated is not None
    assert perf.estimated.roc_auc == pytest.approx(training["test_roc_auc"], abs=0.03)
    assert not perf.degraded

    # Feedback arrives for the same window: the relationship changed (concept drift), so the
    # realised ROC-AUC falls although the scores (and the estimate) look the same.
    rng = np.random.default_rng(35)
    changed = window.copy()
    changed["churn"] = np.where(rng.random(len(window)) < 0.3, "Yes", "No")
    labelled, _ = monitor_frame(
        with_predictions(changed), reference, settings=settings, period=None
    )
    perf = labelled.performance
    assert perf is not None and perf.realised is not None
    assert perf.n_labelled == 7_000
    assert perf.degraded and labelled.drift_found
    assert perf.drops["roc_auc"] > settings.performance_drop
    assert not perf.estimated_degraded

    # Labels that follow the old relationship: no degradation.
    stable, _ = monitor_frame(with_predictions(window), reference, settings=settings, period=None)
    assert stable.performance is not None and not stable.performance.degraded


def test_partial_labels_only_count_labelled_rows(reference: MonitoringReference) -> None:
    current = with_predictions(make_customers(4_000, seed=36))
    current.loc[current.index[:3_000], "label"] = np.nan
    counts = WindowSummary.from_frame(current, reference).performance
    assert counts is not None and counts.n == 4_000 and counts.n_labelled == 1_000
