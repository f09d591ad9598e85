"""Classification metrics for one set of labels, probabilities and a decision threshold."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRIC_NAMES = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "brier",
    "log_loss",
)


def classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, *, threshold: float
) -> dict[str, float]:
    """Ranking, thresholded and probabilistic quality in one dict (keys: METRIC_NAMES)."""
    y_pred = (probabilities >= threshold).astype(int)
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(y_true, probabilities)),
        "pr_auc": float(average_precision_score(y_true, probabilities)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "brier": float(brier_score_loss(y_true, probabilities)),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
    }


def mean_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.mean([fold[name] for fold in per_fold])) for name in per_fold[0]}
