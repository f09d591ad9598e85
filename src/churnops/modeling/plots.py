"""Evaluation plots of the winning model, as matplotlib figures for MLflow (no screen needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve


def roc_figure(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    return fig


def pr_figure(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, p in probabilities.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name)
    ax.axhline(y.mean(), color="k", ls="--", lw=0.8)
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (test)")
    ax.legend(loc="upper right")
    return fig


def calibration_figure(y: np.ndarray, probabilities: np.ndarray, name: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 5))
    observed, predicted = calibration_curve(y, probabilities, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, "o-", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="Predicted probability", ylabel="Observed rate", title="Calibration (test)")
    ax.legend(loc="upper left")
    return fig


def confusion_figure(y: np.ndarray, probabilities: np.ndarray, threshold: float) -> Figure:
    matrix = confusion_matrix(y, (probabilities >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["stays", "churns"])
    ax.set_yticks([0, 1], ["stays", "churns"])
    ax.set(xlabel="Predicted", ylabel="Actual", title=f"Confusion matrix at {threshold:.3f}")
    return fig


def importance_figure(importance: dict[str, float], top: int = 20) -> Figure:
    items = sorted(importance.items(), key=lambda kv: kv[1])[-top:]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(items))))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#3b6ea5")
    ax.set(xlabel="Mean |contribution| on test", title="Feature importance")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
