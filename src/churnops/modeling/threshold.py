"""Choose the decision threshold: maximise expected retention profit when it is priced, else F1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnops.settings import BusinessSettings


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    objective: str  # "profit" or "f1"
    value: float  # the objective at the threshold (profit per customer, or F1)


def expected_profit(
    y: np.ndarray, probabilities: np.ndarray, *, threshold: float, business: BusinessSettings
) -> float:
    """Mean profit per customer of offering retention to everyone at or above the threshold."""
    assert business.complete
    value = float(business.value_retained)  # type: ignore[arg-type]
    cost = float(business.offer_cost)  # type: ignore[arg-type]
    success = float(business.offer_success_rate)  # type: ignore[arg-type]
    targeted = probabilities >= threshold
    gain = np.where(y == 1, success * value - cost, -cost)
    return float((gain * targeted).sum() / len(y))


def _candidate_thresholds(probabilities: np.ndarray) -> np.ndarray:
    grid = np.unique(np.round(probabilities, 4))
    if grid.size > 400:
        grid = np.unique(np.quantile(probabilities, np.linspace(0, 1, 401)))
    return grid[(grid > 0.0) & (grid < 1.0)]


def choose_threshold(
    y: np.ndarray, probabilities: np.ndarray, *, business: BusinessSettings
) -> ThresholdChoice:
    """Threshold on out-of-fold calibrated probabilities (never on test data)."""
    thresholds = _candidate_thresholds(probabilities)
    if thresholds.size == 0:
        return ThresholdChoice(0.5, "f1", 0.0)
    order = np.argsort(-probabilities)
    sorted_p = probabilities[order]
    sorted_y = y[order]
    # Counts of positives predicted at each threshold via cumulative sums (vectorised sweep).
    n_selected = np.searchsorted(-sorted_p, -thresholds, side="right")
    cum_tp = np.concatenate([[0], np.cumsum(sorted_y)])
    tp = cum_tp[n_selected]
    fp = n_selected - tp
    positives = int(y.sum())
    if business.complete:
        value = float(business.value_retained)  # type: ignore[arg-type]
        cost = float(business.offer_cost)  # type: ignore[arg-type]
        success = float(business.offer_success_rate)  # type: ignore[arg-type]
        profit = (tp * (success * value - cost) - fp * cost) / len(y)
        best = int(np.argmax(profit))
        return ThresholdChoice(float(thresholds[best]), "profit", float(profit[best]))
    precision = np.divide(tp, n_selected, out=np.zeros(len(tp)), where=n_selected > 0)
    recall = tp / max(positives, 1)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros(len(tp)),
        where=(precision + recall) > 0,
    )
    best = int(np.argmax(f1))
    return ThresholdChoice(float(thresholds[best]), "f1", float(f1[best]))
