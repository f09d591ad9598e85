"""What a training run writes to its MLflow run, one function per stage.

Each takes the MLflow client and the run id, never the active run of the calling thread, so a
stage can log from any thread or task. Only the model itself goes through MLflow's fluent
`log_model` (it has no run id argument), inside `active_run(run_id)`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from churnops.data.schema import Schema
from churnops.modeling import plots
from churnops.modeling.lineage import (
    MANIFEST_ARTIFACT,
    PRODUCTION_ROWS_ARTIFACT,
    LineageManifest,
    ProductionRows,
    code_state,
    library_versions,
)
from churnops.modeling.pyfunc import log_churn_model
from churnops.modeling.stages import (
    CandidateResult,
    GateResult,
    LeakageCheck,
    PackagedModel,
    Selection,
)
from churnops.settings import TrainingSettings
from churnops.validation.report import render_html
from churnops.validation.result import ValidationResult

EdaWriter = Callable[[pd.DataFrame, Schema, Path, str], Path]


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, Any]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])


def git_commit() -> str:
    """The commit churnops runs from (as the lineage manifest records it)."""
    return str(code_state()["git_commit"])


def package_versions() -> dict[str, str]:
    return library_versions()


def log_run_inputs(
    client: MlflowClient,
    run_id: str,
    frame: pd.DataFrame,
    schema: Schema,
    *,
    training: TrainingSettings,
    data_name: str,
    data_fingerprint: str,
) -> None:
    """Code version, package versions, the run's settings, the dataset and its schema."""
    set_tags(client, run_id, {"churnops.git_commit": git_commit(), "churnops.kind": "training"})
    client.log_dict(run_id, package_versions(), "environment/versions.json")
    log_params(
        client,
        run_id,
        {
            "target": schema.target,
            "positive_label": schema.positive_label,
            "id_column": schema.id_column,
            "seed": training.seed,
            "test_size": training.test_size,
            "cv_folds": training.cv_folds,
            "budget_minutes": training.budget_minutes,
            "candidates": ",".join(training.candidates),
            "data_fingerprint": data_fingerprint,
            "n_rows": len(frame),
        },
    )
    with warnings.catch_warnings():
        # The dataset record's schema is informational: MLflow's advice about integer
        # columns and missing values concerns model signatures (ours is explicit).
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, name=data_name, digest=data_fingerprint[:36]
        )
    context = InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), [context])])
    client.log_text(run_id, schema.to_yaml(), "schema.yaml")


def log_lineage(client: MlflowClient, run_id: str, manifest: LineageManifest) -> None:
    """The lineage manifest (`churnops lineage`, `churnops verify` read it back)."""
    client.log_text(run_id, manifest.to_json(), MANIFEST_ARTIFACT)


def log_production_rows(
    client: MlflowClient, run_id: str, production: ProductionRows, rows: pd.DataFrame
) -> ProductionRows:
    """Keep a retraining run's production rows with it (Parquet); the same facts, with where."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(PRODUCTION_ROWS_ARTIFACT).name
        rows.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), str(Path(PRODUCTION_ROWS_ARTIFACT).parent))
    return dataclasses.replace(production, artifact=PRODUCTION_ROWS_ARTIFACT)


def log_eda(
    client: MlflowClient,
    run_id: str,
    frame: pd.DataFrame,
    schema: Schema,
    *,
    eda_writer: EdaWriter,
    data_fingerprint: str,
) -> None:
    """The exploratory report of the training table, under `eda/`."""
    with tempfile.TemporaryDirectory() as tmp:
        report = eda_writer(frame, schema, Path(tmp) / "eda.html", data_fingerprint)
        client.log_artifact(run_id, str(report), "eda")


def log_leakage_check(client: MlflowClient, run_id: str, check: LeakageCheck) -> None:
    client.log_dict(run_id, check.feature_aucs, "leakage/feature_roc_auc.json")


def log_candidate(client: MlflowClient, run_id: str, result: CandidateResult) -> None:
    """A tuned candidate's CV and test metrics, prefixed with its name."""
    name = result.name
    log_metrics(client, run_id, {f"{name}.cv_{k}": v for k, v in result.cv.items()})
    log_metrics(client, run_id, {f"{name}.test_{k}": v for k, v in result.test.items()})


def log_selection(
    client: MlflowClient, run_id: str, selection: Selection, *, allow_leakage: bool
) -> None:
    """The comparison table, the winner's metrics and parameters, and the leakage verdict."""
    winner, flags = selection.winner, selection.leakage_flags
    table = pd.DataFrame([r.metrics_row() for r in selection.candidates])
    client.log_table(run_id, table, "comparison.json")
    client.log_text(
        run_id,
        table.to_markdown(index=False) if _has_tabulate() else table.to_string(),
        "comparison.md",
    )
    log_metrics(client, run_id, {f"cv_{k}": v for k, v in winner.cv.items()})
    log_metrics(client, run_id, {f"test_{k}": v for k, v in winner.test.items()})
    log_params(
        client,
        run_id,
        {"winner": winner.name, "threshold": winner.threshold, "calibration": winner.calibration},
    )
    client.log_dict(run_id, {k: str(v) for k, v in winner.params.items()}, "winner_params.json")
    set_tags(client, run_id, {"churnops.leakage": "true" if flags else "false"})
    if flags:
        client.log_dict(run_id, {"flags": [f.to_dict() for f in flags]}, "leakage/flags.json")
    set_tags(client, run_id, {"churnops.allow_leakage": str(allow_leakage).lower()})


def log_model(
    client: MlflowClient,
    run_id: str,
    packaged: PackagedModel,
    selection: Selection,
    y_test: np.ndarray,
) -> ModelInfo:
    """Feature importance, the evaluation plots and the pyfunc model; returns the logged model."""
    client.log_dict(run_id, packaged.importance, "feature_importance.json")
    _log_plots(client, run_id, selection, y_test, packaged.importance)
    with tempfile.TemporaryDirectory() as tmp, active_run(run_id):
        return log_churn_model(packaged.bundle, workdir=Path(tmp))


def log_validation(client: MlflowClient, run_id: str, result: ValidationResult) -> None:
    """The validation document (what the gates read back) and its HTML report, under
    `validation/`; the verdict and the overrides as tags, the failure counts as metrics."""
    from churnops.modeling.validate import REPORT_ARTIFACT, RESULT_ARTIFACT

    client.log_dict(run_id, result.to_dict(), RESULT_ARTIFACT)
    client.log_text(run_id, render_html(result, title="Validation report"), REPORT_ARTIFACT)
    set_tags(
        client,
        run_id,
        {"churnops.validation": result.status, "churnops.validation_allow": ",".join(result.allow)},
    )
    log_metrics(
        client,
        run_id,
        {
            "validation_failures": len(result.failures()),
            "validation_blocking_failures": len(result.blocking_failures()),
        },
    )


def log_gate(client: MlflowClient, run_id: str, gate: GateResult) -> None:
    set_tags(
        client,
        run_id,
        {
            "churnops.promoted": str(gate.decision.promote).lower(),
            "churnops.promotion_reason": gate.decision.reason,
            "churnops.champion_before": gate.champion_before,
        },
    )


def log_outcome(client: MlflowClient, run_id: str, *, card: str, summary: dict[str, Any]) -> None:
    client.log_text(run_id, card, "model_card.md")
    client.log_dict(run_id, summary, "summary.json")


@contextmanager
def active_run(run_id: str) -> Iterator[None]:
    """Make `run_id` the active run for MLflow's fluent calls (already so inside `run_training`)."""
    current = mlflow.active_run()
    if current is not None and current.info.run_id == run_id:
        yield
        return
    with mlflow.start_run(run_id=run_id, nested=current is not None):
        yield


def _log_plots(
    client: MlflowClient,
    run_id: str,
    selection: Selection,
    y_test: np.ndarray,
    importance: dict[str, float],
) -> None:
    winner = selection.winner
    scores = {r.name: r.test_probability for r in selection.candidates}
    figures = {
        "plots/roc.png": plots.roc_figure(y_test, scores),
        "plots/precision_recall.png": plots.pr_figure(y_test, scores),
        "plots/calibration.png": plots.calibration_figure(
            y_test, winner.test_probability, winner.name
        ),
        "plots/confusion_matrix.png": plots.confusion_figure(
            y_test, winner.test_probability, winner.threshold
        ),
        "plots/feature_importance.png": plots.importance_figure(importance),
    }
    for path, fig in figures.items():
        client.log_figure(run_id, fig, path)
        plots.close(fig)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
