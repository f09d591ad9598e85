"""Train, compare, calibrate, gate and register: the whole training run on one validated table."""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from churnops.data.fingerprint import fingerprint
from churnops.data.profile import profile_frame, profile_scores
from churnops.data.schema import Schema, target_vector
from churnops.features.pipeline import build_pipeline
from churnops.modeling import plots
from churnops.modeling.calibration import Calibrator, choose_calibration
from churnops.modeling.candidates import CANDIDATES
from churnops.modeling.evaluate import classification_metrics, mean_metrics
from churnops.modeling.leakage import LeakageFlag, feature_leakage, model_leakage
from churnops.modeling.pyfunc import load_scorer, log_churn_model
from churnops.modeling.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    promote,
    promotion_decision,
    record_decision,
    register_version,
)
from churnops.modeling.scorer import ModelBundle, Scorer
from churnops.modeling.threshold import choose_threshold
from churnops.modeling.tune import encode_folds, tune
from churnops.settings import Settings

EdaWriter = Callable[[pd.DataFrame, Schema, Path, str], Path]


class Reporter(Protocol):
    """Where progress goes (Rich in the CLI, nothing in tests)."""

    def stage(self, description: str, total: int | None = None) -> None: ...

    def advance(self, detail: str = "") -> None: ...


class SilentReporter:
    def stage(self, description: str, total: int | None = None) -> None:
        return None

    def advance(self, detail: str = "") -> None:
        return None


@dataclass
class CandidateResult:
    name: str
    params: dict[str, Any]
    cv: dict[str, float]
    test: dict[str, float]
    calibration: str
    threshold: float
    threshold_objective: str
    n_trials: int
    truncated: bool
    pipeline: Pipeline
    calibrator: Calibrator
    test_probability: np.ndarray

    def metrics_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name}
        row.update({f"cv_{k}": v for k, v in self.cv.items()})
        row.update({f"test_{k}": v for k, v in self.test.items()})
        row.update(
            {
                "threshold": self.threshold,
                "calibration": self.calibration,
                "n_trials": self.n_trials,
                "tuning_truncated": self.truncated,
            }
        )
        return row


@dataclass
class TrainingOutcome:
    run_id: str
    model_name: str
    version: str
    aliases: list[str]
    promoted: bool
    promotion_reason: str
    threshold: float
    leakage_flags: list[LeakageFlag]
    allow_leakage: bool
    winner: CandidateResult
    candidates: list[CandidateResult]
    schema: Schema
    data_fingerprint: str
    feature_aucs: dict[str, float]
    duration_seconds: float
    model_uri: str
    card: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The machine-readable summary printed by `churnops train --json`."""
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "version": self.version,
            "aliases": self.aliases,
            "promoted": self.promoted,
            "promotion_reason": self.promotion_reason,
            "threshold": self.threshold,
            "leakage_flags": [f.to_dict() for f in self.leakage_flags],
            "allow_leakage": self.allow_leakage,
            "winner": self.winner.metrics_row(),
            "candidates": [c.metrics_row() for c in self.candidates],
            "data_fingerprint": self.data_fingerprint,
            "duration_seconds": round(self.duration_seconds, 2),
            "model_uri": self.model_uri,
        }


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _versions() -> dict[str, str]:
    names = ["churnops", "mlflow", "scikit-learn", "xgboost-cpu", "lightgbm", "optuna", "pandas"]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = package_version(name)
        except Exception:
            continue
    return found


def evaluate_candidate(
    name: str,
    *,
    train: pd.DataFrame,
    y_train: np.ndarray,
    test: pd.DataFrame,
    y_test: np.ndarray,
    folds: list[Any],
    schema: Schema,
    settings: Settings,
    deadline: float,
    client: MlflowClient | None,
    experiment_id: str | None,
    parent_run_id: str | None,
    reporter: Reporter,
) -> CandidateResult:
    """Tune on CV, calibrate and pick a threshold on out-of-fold scores, refit, score the test split."""
    candidate = CANDIDATES[name]
    seed = settings.training.seed
    n_jobs = settings.training.n_jobs
    result = tune(
        candidate,
        folds,
        seed=seed,
        n_jobs=n_jobs,
        deadline=deadline,
        client=client,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        on_trial=lambda n, s: reporter.advance(f"{name} trial {n}: cv roc-auc {s:.4f}"),
    )
    calibration = choose_calibration(result.oof, y_train, folds=len(folds), seed=seed)
    calibrated_oof = calibration.calibrator.apply(result.oof)
    choice = choose_threshold(y_train, calibrated_oof, business=settings.business)
    cv = mean_metrics(
        [
            classification_metrics(
                fold.eval_y, calibrated_oof[fold.eval_index], threshold=choice.threshold
            )
            for fold in folds
        ]
    )
    cv["roc_auc"] = result.cv_roc_auc  # of the raw scores: calibration must not move the ranking
    pipeline = build_pipeline(schema, candidate.make(result.params, seed, n_jobs)).fit(
        train, y_train
    )
    test_probability = calibration.calibrator.apply(pipeline.predict_proba(test)[:, 1])
    test_metrics = classification_metrics(y_test, test_probability, threshold=choice.threshold)
    return CandidateResult(
        name=name,
        params=result.params,
        cv=cv,
        test=test_metrics,
        calibration=calibration.calibrator.method,
        threshold=choice.threshold,
        threshold_objective=choice.objective,
        n_trials=result.n_trials,
        truncated=result.truncated,
        pipeline=pipeline,
        calibrator=calibration.calibrator,
        test_probability=test_probability,
    )


def _champion_score(
    client: MlflowClient, *, name: str, test: pd.DataFrame, y_test: np.ndarray
) -> tuple[float | None, str]:
    """The current champion's test ROC-AUC on THIS run's held-out data."""
    from sklearn.metrics import roc_auc_score

    current = alias_version(client, name, CHAMPION)
    if current is None:
        return None, "none"
    scorer, _ = load_scorer(f"models:/{name}@{CHAMPION}")
    missing = [c for c in scorer.schema.feature_names if c not in test.columns]
    if missing:
        raise ValueError(f"champion v{current.version} needs columns missing here: {missing[:5]}")
    probability = scorer.score_frame(test).probability
    return float(roc_auc_score(y_test, probability)), str(current.version)


def _log_plots(
    winner: CandidateResult,
    results: list[CandidateResult],
    y_test: np.ndarray,
    importance: dict[str, float],
) -> None:
    figures = {
        "plots/roc.png": plots.roc_figure(y_test, {r.name: r.test_probability for r in results}),
        "plots/precision_recall.png": plots.pr_figure(
            y_test, {r.name: r.test_probability for r in results}
        ),
        "plots/calibration.png": plots.calibration_figure(
            y_test, winner.test_probability, winner.name
        ),
        "plots/confusion_matrix.png": plots.confusion_figure(
            y_test, winner.test_probability, winner.threshold
        ),
        "plots/feature_importance.png": plots.importance_figure(importance),
    }
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)
        plots.close(fig)


def model_card(outcome: TrainingOutcome) -> str:
    """A short human-readable description of the trained model (markdown)."""
    w = outcome.winner
    lines = [
        f"# {outcome.model_name} v{outcome.version}",
        "",
        f"- winner: **{w.name}** (calibration: {w.calibration}, "
        f"threshold {w.threshold:.4f} by {w.threshold_objective})",
        f"- CV ROC-AUC {w.cv['roc_auc']:.4f}, test ROC-AUC {w.test['roc_auc']:.4f}, "
        f"test PR-AUC {w.test['pr_auc']:.4f}, Brier {w.test['brier']:.4f}",
        f"- test precision {w.test['precision']:.3f}, recall {w.test['recall']:.3f}, "
        f"F1 {w.test['f1']:.3f}",
        f"- target `{outcome.schema.target}` positive `{outcome.schema.positive_label}` "
        f"({outcome.schema.positive_rate:.1%} of {outcome.schema.n_rows} rows), "
        f"{len(outcome.schema.features)} features",
        f"- aliases: {', '.join(outcome.aliases) or 'none'}; promoted: {outcome.promoted} "
        f"({outcome.promotion_reason})",
        f"- leakage flags: {', '.join(str(f) for f in outcome.leakage_flags) or 'none'}",
        f"- data fingerprint {outcome.data_fingerprint[:16]}…, run {outcome.run_id}",
        f"- load: `mlflow.pyfunc.load_model('models:/{outcome.model_name}@{CHALLENGER}')`",
    ]
    return "\n".join(lines)


def run_training(
    frame: pd.DataFrame,
    *,
    schema: Schema,
    settings: Settings,
    client: MlflowClient,
    experiment_id: str,
    reporter: Reporter | None = None,
    eda_writer: EdaWriter | None = None,
) -> TrainingOutcome:
    """Everything `churnops train` does after the data is loaded and validated."""
    reporter = reporter or SilentReporter()
    started = time.monotonic()
    training = settings.training
    budget_seconds = training.budget_minutes * 60
    model_name = settings.registry.model_name
    y = target_vector(frame, schema)
    digest = fingerprint(frame)
    train, test, y_train, y_test = train_test_split(
        frame, y, test_size=training.test_size, stratify=y, random_state=training.seed
    )
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_name}") as run:
        run_id = run.info.run_id
        mlflow.set_tags({"churnops.git_commit": _git_commit(), "churnops.kind": "training"})
        mlflow.log_dict(_versions(), "environment/versions.json")
        mlflow.log_params(
            {
                "target": schema.target,
                "positive_label": schema.positive_label,
                "id_column": schema.id_column,
                "seed": training.seed,
                "test_size": training.test_size,
                "cv_folds": training.cv_folds,
                "budget_minutes": training.budget_minutes,
                "candidates": ",".join(training.candidates),
                "data_fingerprint": digest,
                "n_rows": len(frame),
            }
        )
        with warnings.catch_warnings():
            # The dataset record's schema is informational: MLflow's advice about integer
            # columns and missing values concerns model signatures (ours is explicit).
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                frame, name=settings.data.path or "table", digest=digest[:36]
            )
        mlflow.log_input(dataset, context="training")
        mlflow.log_text(schema.to_yaml(), "schema.yaml")
        if eda_writer is not None:
            reporter.stage("Exploratory report")
            with tempfile.TemporaryDirectory() as tmp:
                report = eda_writer(frame, schema, Path(tmp) / "eda.html", digest)
                mlflow.log_artifact(str(report), "eda")

        reporter.stage("Leakage check")
        feature_flags, feature_aucs = feature_leakage(
            train, y_train, schema, limit=training.leakage_feature_auc, seed=training.seed
        )
        mlflow.log_dict(feature_aucs, "leakage/feature_roc_auc.json")

        reporter.stage("Encoding CV folds")
        folds = encode_folds(train, y_train, schema, folds=training.cv_folds, seed=training.seed)

        results: list[CandidateResult] = []
        total_trials = sum(CANDIDATES[n].max_trials for n in training.candidates)
        reporter.stage("Tuning candidates", total=total_trials)
        for index, name in enumerate(training.candidates):
            remaining = len(training.candidates) - index
            spent = time.monotonic() - started
            share = max((budget_seconds - spent) / remaining, 0.0)
            result = evaluate_candidate(
                name,
                train=train,
                y_train=y_train,
                test=test,
                y_test=y_test,
                folds=folds,
                schema=schema,
                settings=settings,
                deadline=time.monotonic() + share,
                client=client,
                experiment_id=experiment_id,
                parent_run_id=run_id,
                reporter=reporter,
            )
            results.append(result)
            mlflow.log_metrics({f"{name}.cv_{k}": v for k, v in result.cv.items()})
            mlflow.log_metrics({f"{name}.test_{k}": v for k, v in result.test.items()})

        winner = max(results, key=lambda r: (r.cv["roc_auc"], -len(r.name)))
        model_flags = [
            f
            for r in results
            for f in model_leakage(r.name, r.test["roc_auc"], limit=training.leakage_model_auc)
        ]
        leakage_flags = feature_flags + model_flags
        table = pd.DataFrame([r.metrics_row() for r in results])
        mlflow.log_table(table, "comparison.json")
        mlflow.log_text(
            table.to_markdown(index=False) if _has_tabulate() else table.to_string(),
            "comparison.md",
        )
        mlflow.log_metrics({f"cv_{k}": v for k, v in winner.cv.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in winner.test.items()})
        mlflow.log_params(
            {
                "winner": winner.name,
                "threshold": winner.threshold,
                "calibration": winner.calibration,
            }
        )
        mlflow.log_dict({k: str(v) for k, v in winner.params.items()}, "winner_params.json")
        mlflow.set_tag("churnops.leakage", "true" if leakage_flags else "false")
        if leakage_flags:
            mlflow.log_dict({"flags": [f.to_dict() for f in leakage_flags]}, "leakage/flags.json")
        mlflow.set_tag("churnops.allow_leakage", str(training.allow_leakage).lower())

        reporter.stage("Packaging the model")
        bundle = ModelBundle(
            schema=schema,
            pipeline=winner.pipeline,
            calibrator=winner.calibrator,
            threshold=winner.threshold,
            risk_bands=settings.risk_bands,
            profile=profile_frame(train, schema),
            candidate=winner.name,
            params=winner.params,
            metrics={"cv": winner.cv, "test": winner.test},
            data_fingerprint=digest,
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            leakage_flags=[f.to_dict() for f in leakage_flags],
            input_example=_input_example(train, schema),
        )
        scorer = Scorer(bundle)
        test_scores = scorer.score_frame(test)
        bundle.profile.scores = profile_scores(
            test_scores.probability, test_scores.risk_level, threshold=winner.threshold
        )
        contributions = np.abs(scorer.feature_contributions(scorer.encoder.encode_frame(test)))
        importance = dict(
            zip(scorer.encoder.feature_names, contributions.mean(axis=0).tolist(), strict=True)
        )
        mlflow.log_dict(importance, "feature_importance.json")
        _log_plots(winner, results, y_test, importance)
        with tempfile.TemporaryDirectory() as tmp:
            info = log_churn_model(bundle, workdir=Path(tmp))

        reporter.stage("Registering")
        tags = {
            "churnops.candidate": winner.name,
            "churnops.cv_roc_auc": f"{winner.cv['roc_auc']:.6f}",
            "churnops.test_roc_auc": f"{winner.test['roc_auc']:.6f}",
            "churnops.threshold": f"{winner.threshold:.6f}",
            "churnops.leakage": "true" if leakage_flags else "false",
            "churnops.data_fingerprint": digest,
        }
        version = register_version(
            client, name=model_name, model_uri=info.model_uri, run_id=run_id, tags=tags
        )
        try:
            champion_score, champion_version = _champion_score(
                client, name=model_name, test=test, y_test=y_test
            )
            decision = promotion_decision(
                candidate_score=winner.test["roc_auc"],
                champion_score=champion_score,
                margin=settings.registry.promotion_margin,
                leakage_flags=[str(f) for f in leakage_flags],
                allow_leakage=training.allow_leakage,
            )
        except Exception as exc:  # champion cannot score this data: never replace it silently
            from churnops.modeling.registry import PromotionDecision

            decision = PromotionDecision(
                False, f"champion could not be evaluated on this data: {exc}"
            )
            champion_version = "unknown"
        record_decision(client, name=model_name, version=str(version.version), decision=decision)
        mlflow.set_tags(
            {
                "churnops.promoted": str(decision.promote).lower(),
                "churnops.promotion_reason": decision.reason,
                "churnops.champion_before": champion_version,
            }
        )
        if decision.promote:
            promote(
                client,
                name=model_name,
                version=str(version.version),
                why=f"training gate: {decision.reason}",
            )
        aliases = sorted(client.get_model_version(model_name, version.version).aliases)
        outcome = TrainingOutcome(
            run_id=run_id,
            model_name=model_name,
            version=str(version.version),
            aliases=aliases,
            promoted=decision.promote,
            promotion_reason=decision.reason,
            threshold=winner.threshold,
            leakage_flags=leakage_flags,
            allow_leakage=training.allow_leakage,
            winner=winner,
            candidates=results,
            schema=schema,
            data_fingerprint=digest,
            feature_aucs=feature_aucs,
            duration_seconds=time.monotonic() - started,
            model_uri=f"models:/{model_name}/{version.version}",
        )
        outcome.card = model_card(outcome)
        mlflow.log_text(outcome.card, "model_card.md")
        mlflow.log_dict(outcome.summary(), "summary.json")
        return outcome


def _input_example(train: pd.DataFrame, schema: Schema, rows: int = 3) -> list[dict[str, Any]]:
    """A few complete training rows (features, and the id when there is one) as JSON records."""
    columns = [*([schema.id_column] if schema.id_column else []), *schema.feature_names]
    sample = train[columns].dropna().head(rows)
    return json.loads(sample.to_json(orient="records"))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
