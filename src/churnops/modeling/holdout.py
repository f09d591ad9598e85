"""Evaluate a registered version on labelled rows: its own held-out split (rebuilt from the
lineage manifest) or another table. What `churnops evaluate` writes (and the DVC pipeline's
`evaluate` stage tracks): flat metrics JSON, ROC and precision-recall curves as CSV, and plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.data.schema import target_vector
from churnops.errors import DataValidationError, Problem
from churnops.modeling.evaluate import classification_metrics
from churnops.modeling.scorer import Scorer

METRICS_FILE = "metrics.json"
ROC_FILE = "roc.csv"
PR_FILE = "precision_recall.csv"
CONTEXT_FILE = "evaluation.json"
PLOT_FILES = ("roc.png", "precision_recall.png", "confusion_matrix.png")


@dataclass(frozen=True)
class Evaluation:
    model_name: str
    version: str
    data: str  # "held-out split" or the table's path
    rows: int
    threshold: float
    metrics: dict[str, float]
    y: np.ndarray
    probability: np.ndarray

    def context(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "data": self.data,
            "rows": self.rows,
            "threshold": self.threshold,
            "positive_rate": float(self.y.mean()) if self.rows else None,
        }


def evaluate_scorer(
    scorer: Scorer, frame: pd.DataFrame, *, model_name: str, version: str, data: str
) -> Evaluation:
    """The model's metrics at its own threshold on `frame`, which must hold the target."""
    schema = scorer.schema
    if schema.target not in frame.columns:
        raise DataValidationError(
            [Problem(schema.target, f"the target column is missing from {data}")]
        )
    labelled = frame[frame[schema.target].notna()].reset_index(drop=True)
    y = target_vector(labelled, schema)
    if len(np.unique(y)) < 2:
        raise DataValidationError(
            [Problem(schema.target, f"{data} needs rows of both classes to be evaluated")]
        )
    probability = scorer.score_frame(labelled).probability
    return Evaluation(
        model_name=model_name,
        version=version,
        data=data,
        rows=len(labelled),
        threshold=scorer.threshold,
        metrics=classification_metrics(y, probability, threshold=scorer.threshold),
        y=y,
        probability=probability,
    )


def write_evaluation(evaluation: Evaluation, output_dir: Path) -> list[Path]:
    """metrics.json (flat numbers, for `dvc metrics show`), evaluation.json (what was evaluated),
    the curves as CSV (for `dvc plots`) and the same as PNG; returns the files written."""
    import json

    from sklearn.metrics import precision_recall_curve, roc_curve

    from churnops.modeling import plots

    output_dir.mkdir(parents=True, exist_ok=True)
    y, p = evaluation.y, evaluation.probability
    metrics = {**evaluation.metrics, "rows": evaluation.rows, "threshold": evaluation.threshold}
    written = [output_dir / METRICS_FILE, output_dir / CONTEXT_FILE]
    written[0].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    written[1].write_text(json.dumps(evaluation.context(), indent=2) + "\n")
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    curves = {
        ROC_FILE: pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        PR_FILE: pd.DataFrame({"recall": recall, "precision": precision}),
    }
    for name, curve in curves.items():
        curve.round(6).to_csv(output_dir / name, index=False)
        written.append(output_dir / name)
    label = f"{evaluation.model_name} v{evaluation.version}"
    figures = dict(
        zip(
            PLOT_FILES,
            (
                plots.roc_figure(y, {label: p}),
                plots.pr_figure(y, {label: p}),
                plots.confusion_figure(y, p, evaluation.threshold),
            ),
            strict=True,
        )
    )
    for name, figure in figures.items():
        figure.savefig(output_dir / name, dpi=80)
        plots.close(figure)
        written.append(output_dir / name)
    return written
