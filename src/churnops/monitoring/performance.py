"""Model performance of a window: realised once labels arrive, estimated (CBPE) before.

Confidence-based performance estimation reads each calibrated probability p as P(y=1): the expected
confusion matrix at the decision threshold is sum(p) and sum(1-p) over predicted positives and
negatives, and the expected ROC-AUC weighs every row as p of a positive and 1-p of a negative. It is
right as long as calibration holds (covariate shift, not concept drift), which is why realised
figures replace it as soon as labels exist.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from churnops.monitoring.summary import PERF_BINS, PerformanceCounts
from churnops.settings import MonitoringSettings

RELIABILITY_BINS = 10
HIGHER_IS_BETTER = ("roc_auc", "precision", "recall", "f1")


class CalibrationBin(BaseModel):
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


class Metrics(BaseModel):
    """Classification figures of one window (realised or expected)."""

    n: int
    roc_auc: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    brier: float | None
    positive_rate: float | None = None
    ece: float | None = None


class PerformanceReport(BaseModel):
    """Realised and estimated metrics against the training metrics, with degradation flags."""

    n_scored: int
    n_labelled: int
    realised: Metrics | None
    estimated: Metrics | None
    training: dict[str, float] = Field(default_factory=dict)
    drops: dict[str, float] = Field(default_factory=dict)  # training - realised (Brier: reversed)
    estimated_drops: dict[str, float] = Field(default_factory=dict)
    calibration: list[CalibrationBin] = Field(default_factory=list)
    performance_drop: float
    degraded: bool
    estimated_degraded: bool
    reasons: list[str] = Field(default_factory=list)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _f1(tp: float, fp: float, fn: float) -> float | None:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def binned_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """ROC-AUC from (weighted) positive and negative counts per ascending score bin; ties: 1/2."""
    pos = np.asarray(positive, float)
    neg = np.asarray(negative, float)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_pos * total_neg))


def realised_metrics(counts: PerformanceCounts) -> Metrics | None:
    """Metrics on the labelled rows; None without labels of both classes."""
    if counts.n_labelled == 0:
        return None
    pos = np.asarray(counts.pos, float)
    neg = np.asarray(counts.neg, float)
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    return Metrics(
        n=counts.n_labelled,
        roc_auc=binned_auc(pos, neg),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_f1(tp, fp, fn),
        brier=counts.brier_sum / counts.n_labelled,
        positive_rate=float(pos.sum() / counts.n_labelled),
        ece=expected_calibration_error(counts),
    )


def estimated_metrics(counts: PerformanceCounts) -> Metrics | None:
    """CBPE: expected metrics from calibrated probabilities alone, labels not needed."""
    if counts.n == 0:
        return None
    count = np.asarray(counts.count, float)
    sum_p = np.asarray(counts.sum_p, float)
    e_tp = counts.pred_pos_sum_p
    e_fp = counts.pred_pos_n - counts.pred_pos_sum_p
    e_fn = counts.pred_neg_sum_p
    return Metrics(
        n=counts.n,
        roc_auc=binned_auc(sum_p, count - sum_p),
        precision=_ratio(e_tp, e_tp + e_fp),
        recall=_ratio(e_tp, e_tp + e_fn),
        f1=_f1(e_tp, e_fp, e_fn),
        brier=counts.expected_brier_sum / counts.n,
        positive_rate=float(sum_p.sum() / counts.n),
    )


def calibration_bins(
    counts: PerformanceCounts, n_bins: int = RELIABILITY_BINS
) -> list[CalibrationBin]:
    """Reliability diagram of the labelled rows on `n_bins` equal-width probability bins."""
    per = PERF_BINS // n_bins
    pos = np.asarray(counts.pos, float).reshape(n_bins, per).sum(axis=1)
    total = (
        (np.asarray(counts.pos, float) + np.asarray(counts.neg, float))
        .reshape(n_bins, per)
        .sum(axis=1)
    )
    sum_p = np.asarray(counts.labelled_sum_p, float).reshape(n_bins, per).sum(axis=1)
    return [
        CalibrationBin(
            lower=i / n_bins,
            upper=(i + 1) / n_bins,
            count=int(total[i]),
            mean_predicted=float(sum_p[i] / total[i]),
            observed_rate=float(pos[i] / total[i]),
        )
        for i in range(n_bins)
        if total[i] > 0
    ]


def expected_calibration_error(
    counts: PerformanceCounts, n_bins: int = RELIABILITY_BINS
) -> float | None:
    """Count-weighted mean gap between predicted and observed rates over the reliability bins."""
    bins = calibration_bins(counts, n_bins)
    n = sum(b.count for b in bins)
    if n == 0:
        return None
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in bins) / n)


def _drops(metrics: Metrics | None, training: dict[str, float]) -> dict[str, float]:
    if metrics is None:
        return {}
    drops: dict[str, float] = {}
    for name in (*HIGHER_IS_BETTER, "brier"):
        now = getattr(metrics, name)
        before = training.get(name)
        if now is None or before is None:
            continue
        drops[name] = float(before - now) if name != "brier" else float(now - before)
    return drops


def evaluate_performance(
    counts: PerformanceCounts | None,
    *,
    training_metrics: dict[str, float],
    settings: MonitoringSettings,
) -> PerformanceReport | None:
    """Compare a window's realised and estimated figures with training; flag a drop in ROC-AUC.

    ROC-AUC decides degradation because it does not move with the churn rate; the other drops are
    reported beside it.
    """
    if counts is None or counts.n == 0:
        return None
    training_metrics = {k.removeprefix("test_"): float(v) for k, v in training_metrics.items()}
    realised = realised_metrics(counts)
    estimated = estimated_metrics(counts)
    drops = _drops(realised, training_metrics)
    estimated_drops = _drops(estimated, training_metrics)
    limit = settings.performance_drop
    reasons: list[str] = []
    degraded = drops.get("roc_auc", 0.0) > limit
    if degraded:
        reasons.append(f"realised ROC-AUC fell by {drops['roc_auc']:.3f} (> {limit})")
    estimated_degraded = estimated_drops.get("roc_auc", 0.0) > limit
    if estimated_degraded:
        reasons.append(f"estimated ROC-AUC fell by {estimated_drops['roc_auc']:.3f} (> {limit})")
    return PerformanceReport(
        n_scored=counts.n,
        n_labelled=counts.n_labelled,
        realised=realised,
        estimated=estimated,
        training=dict(training_metrics),
        drops=drops,
        estimated_drops=estimated_drops,
        calibration=calibration_bins(counts) if counts.n_labelled else [],
        performance_drop=limit,
        degraded=degraded,
        estimated_degraded=estimated_degraded,
        reasons=reasons,
    )
