"""Drift decisions: shifts are caught, stable data is not flagged, at 7,000 and 1,000,000 rows."""

from __future__ import annotations

import time

import numpy as np
import pytest

from churnops.monitoring.drift import data_drift, data_quality, prediction_drift
from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import WindowSummary
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import make_customers, true_probability, with_predictions

SHIFTED = {"monthly_charges", "contract"}


def _shifted(n: int, seed: int):
    # +18 on monthly charges (0.6 reference std) and month-to-month from 55% to 80%.
    return make_customers(n, seed=seed, charges_shift=18.0, m2m_share=0.8)


@pytest.mark.parametrize("n", [7_000])
def test_stable_window_is_not_flagged(
    n: int, reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    report, _ = monitor_frame(
        with_predictions(make_customers(n, seed=11)), reference, settings=settings, period=None
    )
    assert report.drift.drifted_features == []
    assert not report.drift.dataset_drift
    assert report.prediction is not None and not report.prediction.drifted
    assert all(f.status == "ok" for f in report.drift.features), report.drift.features
    assert not report.drift_found


@pytest.mark.parametrize("n", [7_000])
def test_shifted_numeric_and_categorical_are_caught(
    n: int, reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    summary = WindowSummary.from_frame(_shifted(n, seed=12), reference)
    drift = data_drift(summary, reference, settings)
    assert set(drift.drifted_features) == SHIFTED
    assert drift.share_drifted == pytest.approx(2 / 6)
    assert drift.dataset_drift  # 2 of 6 >= 0.3
    charges = drift.feature("monthly_charges")
    assert charges.wasserstein_norm is not None and charges.wasserstein_norm > 0.4
    assert charges.ks_pvalue is not None and charges.ks_pvalue < 1e-6  # reported beside
    assert drift.feature("contract").chi2_pvalue is not None


def test_without_p_values_every_figure_and_decision_is_the_same(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    summary = WindowSummary.from_frame(_shifted(7_000, seed=12), reference)
    full = data_drift(summary, reference, settings)

    lean = data_drift(summary, reference, settings, p_values=False)

    assert all(
        f.ks_pvalue is None and f.chi2_pvalue is None and f.chi2_statistic is None
        for f in lean.features
    )
    p_value_fields = {"ks_pvalue", "chi2_pvalue", "chi2_statistic"}
    assert lean.model_dump(exclude={"features": {"__all__": p_value_fields}}) == full.model_dump(
        exclude={"features": {"__all__": p_value_fields}}
    )


@pytest.mark.serial  # asserts a time: run alone, not beside another test
@pytest.mark.slow
def test_one_million_rows_stable_and_shifted(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    started = time.perf_counter()
    stable = WindowSummary.from_frame(make_customers(1_000_000, seed=13), reference)
    shifted = WindowSummary.from_frame(_shifted(1_000_000, seed=14), reference)
    stable_drift = data_drift(stable, reference, settings)
    shifted_drift = data_drift(shifted, reference, settings)
    elapsed = time.perf_counter() - started
    assert stable_drift.drifted_features == []
    assert set(shifted_drift.drifted_features) == SHIFTED
    assert elapsed < 20, elapsed


def test_dataset_drift_share_threshold_is_configurable(reference: MonitoringReference) -> None:
    summary = WindowSummary.from_frame(_shifted(7_000, seed=15), reference)
    strict = MonitoringSettings(dataset_drift_share=0.5)
    assert not data_drift(summary, reference, strict).dataset_drift
    assert data_drift(summary, reference, MonitoringSettings(dataset_drift_share=0.3)).dataset_drift


def test_category_drift_and_unseen_categories(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    current = make_customers(7_000, seed=16)
    rng = np.random.default_rng(0)
    current.loc[rng.random(len(current)) < 0.15, "payment_method"] = "Crypto wallet"
    summary = WindowSummary.from_frame(current, reference)
    drift = data_drift(summary, reference, settings)
    assert drift.feature("payment_method").drifted
    assert drift.drifted_features == ["payment_method"]
    quality = data_quality(summary, reference)
    payment = next(q for q in quality.features if q.feature == "payment_method")
    assert payment.unseen_examples == ["Crypto wallet"]
    assert payment.unseen_share == pytest.approx(0.15, abs=0.02)
    assert any("unseen" in issue for issue in quality.issues)


def test_quality_nulls_and_out_of_range(reference: MonitoringReference) -> None:
    current = make_customers(5_000, seed=17)
    current.loc[:999, "total_charges"] = np.nan
    current.loc[1000:1199, "tenure"] = 400
    quality = data_quality(WindowSummary.from_frame(current, reference), reference)
    by_name = {q.feature: q for q in quality.features}
    assert by_name["total_charges"].null_rate_current == pytest.approx(0.2, abs=0.003)
    assert by_name["total_charges"].issues
    assert by_name["tenure"].out_of_range_share == pytest.approx(0.04)
    assert by_name["tenure"].above_range == 200
    assert not by_name["monthly_charges"].issues


def test_prediction_drift(reference: MonitoringReference, settings: MonitoringSettings) -> None:
    stable = make_customers(7_000, seed=18)
    stable_summary = WindowSummary.from_frame(with_predictions(stable), reference)
    assert not prediction_drift(stable_summary, reference, settings).drifted

    riskier = make_customers(7_000, seed=19, m2m_share=0.9)
    p = np.clip(true_probability(riskier) * 1.3, 0, 1)
    summary = WindowSummary.from_frame(with_predictions(riskier, p), reference)
    drift = prediction_drift(summary, reference, settings)
    assert drift is not None and drift.drifted
    assert drift.current_mean > drift.reference_mean
    assert drift.risk_shares_current["high"] > drift.risk_shares_reference["high"]
    assert 0.0 < drift.ks_statistic <= 1.0
    assert sum(drift.risk_shares_current.values()) == pytest.approx(1.0)


def test_no_scores_means_no_prediction_drift(
    reference: MonitoringReference, settings: MonitoringSettings
) -> None:
    summary = WindowSummary.from_frame(make_customers(500, seed=20), reference)
    assert prediction_drift(summary, reference, settings) is None
