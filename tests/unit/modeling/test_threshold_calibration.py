"""Threshold selection and calibration choice on small, hand-checkable inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from churnops.modeling.calibration import choose_calibration, fit_calibrator
from churnops.modeling.threshold import choose_threshold, expected_profit
from churnops.settings import BusinessSettings, RiskBands

Y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])


def test_f1_threshold_is_the_best_cut_by_brute_force() -> None:
    choice = choose_threshold(Y, P, business=BusinessSettings())
    assert choice.objective == "f1"
    best = max(P, key=lambda t: f1_score(Y, (t <= P).astype(int)))
    assert choice.threshold == pytest.approx(best)
    assert choice.value == pytest.approx(f1_score(Y, (best <= P).astype(int)))


def test_profit_threshold_targets_more_when_offers_are_cheap() -> None:
    cheap = BusinessSettings(value_retained=500, offer_cost=1, offer_success_rate=0.5)
    dear = BusinessSettings(value_retained=500, offer_cost=200, offer_success_rate=0.5)
    low = choose_threshold(Y, P, business=cheap)
    high = choose_threshold(Y, P, business=dear)
    assert low.objective == high.objective == "profit"
    assert low.threshold < high.threshold
    for choice, business in ((low, cheap), (high, dear)):
        brute = max(expected_profit(Y, P, threshold=t, business=business) for t in P)
        assert choice.value == pytest.approx(brute)


def test_sigmoid_and_isotonic_are_monotone_and_chosen_only_when_they_help() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=truth.size) < truth).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))
    choice = choose_calibration(overconfident, y, folds=5, seed=0)
    assert choice.calibrator.method in {"sigmoid", "isotonic"}
    assert choice.brier_by_method[choice.calibrator.method] < choice.brier_by_method["none"]
    calibrated = choice.calibrator.apply(np.sort(overconfident))
    assert np.all(np.diff(calibrated) >= -1e-12)
    already_good = choose_calibration(truth, y, folds=5, seed=0)
    assert already_good.calibrator.method == "none"
    sigmoid = fit_calibrator(overconfident, y, "sigmoid")
    assert 0.2 < sigmoid.slope < 0.5  # undoes the 3x stretch in logit space


def test_risk_bands_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="must be below"):
        RiskBands(medium=0.7, high=0.6)
