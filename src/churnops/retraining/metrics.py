"""The gate's figures on one set of labelled rows: metric, paired bootstrap, Brier, profit."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

from churnops.settings import BusinessSettings


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC from ranks (ties averaged): the same figure as sklearn's, cheap enough to bootstrap."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def metric_value(name: str, y: np.ndarray, p: np.ndarray) -> float:
    if name == "pr_auc":
        return float(average_precision_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return roc_auc(y, p)


def paired_bootstrap(
    name: str,
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    samples: int,
    confidence: float,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and one-sided lower bound of (challenger - champion) over row resamples; both models
    are scored on the SAME resampled rows, so row difficulty cancels out."""
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = []
    for _ in range(samples):
        index = rng.integers(0, n, n)
        diff = metric_value(name, y[index], challenger[index]) - metric_value(
            name, y[index], champion[index]
        )
        if not np.isnan(diff):
            diffs.append(diff)
    if not diffs:
        return float("nan"), float("nan")
    values = np.asarray(diffs)
    return float(values.mean()), float(np.quantile(values, 1.0 - confidence))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def expected_profit(
    y: np.ndarray, p: np.ndarray, *, threshold: float, business: BusinessSettings
) -> float | None:
    """Per customer: an offer to everyone flagged costs `offer_cost`; a churner who takes it is
    worth `value_retained` with `offer_success_rate`. None without business values."""
    if not business.complete:
        return None
    assert business.value_retained is not None and business.offer_cost is not None
    assert business.offer_success_rate is not None
    flagged = p >= threshold
    gain = business.value_retained * business.offer_success_rate * y[flagged].sum()
    return float((gain - business.offer_cost * flagged.sum()) / max(len(y), 1))
