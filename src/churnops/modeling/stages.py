"""The stages of a training run, each a plain function with typed inputs and outputs.

split -> leakage check -> encode folds -> tune each candidate -> select the winner -> package the
bundle -> validate it -> (log, `modeling.runlog`) -> register -> promotion gate.
`train.run_training` composes them; a flow can wrap each one as a task. Nothing here reads settings or MLflow state on its own:
what a stage needs (settings sections, the MLflow client, the run id) is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from churnops.data.profile import profile_frame, profile_scores, typical_record
from churnops.data.schema import Schema, target_vector
from churnops.features.pipeline import build_pipeline
from churnops.modeling.calibration import Calibrator, choose_calibration
from churnops.modeling.candidates import CANDIDATES
from churnops.modeling.evaluate import classification_metrics, mean_metrics
from churnops.modeling.leakage import LeakageFlag, feature_leakage, model_leakage
from churnops.modeling.lineage import TrialRecord
from churnops.modeling.loading import ModelSource
from churnops.modeling.registry import (
    CHAMPION,
    PromotionDecision,
    alias_version,
    promote,
    promotion_decision,
    record_decision,
    record_validation,
    register_version,
)
from churnops.modeling.scorer import ModelBundle, Scorer
from churnops.modeling.threshold import choose_threshold
from churnops.modeling.tune import Fold, encode_folds, tune
from churnops.modeling.validate import champion_under_test, scorer_under_test
from churnops.settings import BusinessSettings, RiskBands, TrainingSettings, ValidationSettings
from churnops.validation.result import ValidationResult
from churnops.validation.run import validate_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """The stratified train/test split, both parts indexed from 0."""

    train: pd.DataFrame
    test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


def split_data(frame: pd.DataFrame, schema: Schema, *, test_size: float, seed: int) -> Split:
    """Hold out `test_size` of the rows, stratified on the target."""
    y = target_vector(frame, schema)
    train, test, y_train, y_test = train_test_split(
        frame, y, test_size=test_size, stratify=y, random_state=seed
    )
    return Split(train.reset_index(drop=True), test.reset_index(drop=True), y_train, y_test)


@dataclass(frozen=True)
class LeakageCheck:
    """Features that predict the target alone too well, and every feature's ROC-AUC."""

    flags: list[LeakageFlag]
    feature_aucs: dict[str, float]


def check_leakage(split: Split, schema: Schema, *, limit: float, seed: int) -> LeakageCheck:
    """Each feature scored alone on the training part (never the test part)."""
    flags, aucs = feature_leakage(split.train, split.y_train, schema, limit=limit, seed=seed)
    return LeakageCheck(flags=flags, feature_aucs=aucs)


def encode_cv_folds(split: Split, schema: Schema, *, folds: int, seed: int) -> list[Fold]:
    """The training part's CV folds, each encoded once on its own fitting rows."""
    return encode_folds(split.train, split.y_train, schema, folds=folds, seed=seed)


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


@dataclass(frozen=True)
class TrialLog:
    """Where tuning trials go: nested runs under the training run."""

    client: MlflowClient
    experiment_id: str
    parent_run_id: str


def candidate_deadline(
    *, started: float, budget_seconds: float, remaining: int, now: float
) -> float:
    """A candidate's deadline (monotonic): an equal share of what is left of the budget."""
    share = max((budget_seconds - (now - started)) / remaining, 0.0)
    return now + share


def tune_candidate(
    name: str,
    split: Split,
    folds: list[Fold],
    schema: Schema,
    *,
    training: TrainingSettings,
    business: BusinessSettings,
    deadline: float,
    trials: TrialLog | None = None,
    on_trial: Callable[[int, float], Any] | None = None,
    max_trials: int | None = None,
) -> CandidateResult:
    """Tune on CV, calibrate and pick a threshold on out-of-fold scores, refit, score the test split.

    `max_trials` replaces the candidate's trial count (a rebuild replays the recorded count).
    """
    candidate = CANDIDATES[name]
    seed, n_jobs = training.seed, training.n_jobs
    result = tune(
        candidate,
        folds,
        seed=seed,
        n_jobs=n_jobs,
        deadline=deadline,
        client=trials.client if trials else None,
        experiment_id=trials.experiment_id if trials else None,
        parent_run_id=trials.parent_run_id if trials else None,
        on_trial=on_trial,
        max_trials=max_trials,
    )
    calibration = choose_calibration(result.oof, split.y_train, folds=len(folds), seed=seed)
    calibrated_oof = calibration.calibrator.apply(result.oof)
    choice = choose_threshold(split.y_train, calibrated_oof, business=business)
    cv = _cv_metrics(folds, calibrated_oof, threshold=choice.threshold)
    cv["roc_auc"] = result.cv_roc_auc  # of the raw scores: calibration must not move the ranking
    pipeline = build_pipeline(schema, candidate.make(result.params, seed, n_jobs))
    pipeline.fit(split.train, split.y_train)
    test_probability = calibration.calibrator.apply(pipeline.predict_proba(split.test)[:, 1])
    return CandidateResult(
        name=name,
        params=result.params,
        cv=cv,
        test=classification_metrics(split.y_test, test_probability, threshold=choice.threshold),
        calibration=calibration.calibrator.method,
        threshold=choice.threshold,
        threshold_objective=choice.objective,
        n_trials=result.n_trials,
        truncated=result.truncated,
        pipeline=pipeline,
        calibrator=calibration.calibrator,
        test_probability=test_probability,
    )


def _cv_metrics(folds: list[Fold], oof: np.ndarray, *, threshold: float) -> dict[str, float]:
    """Metrics of the calibrated out-of-fold scores, averaged over the folds."""
    return mean_metrics(
        [
            classification_metrics(fold.eval_y, oof[fold.eval_index], threshold=threshold)
            for fold in folds
        ]
    )


@dataclass(frozen=True)
class Selection:
    """The winner among the tuned candidates, and every leakage flag of the run."""

    winner: CandidateResult
    candidates: list[CandidateResult]
    leakage_flags: list[LeakageFlag]  # the features' first, then the models'


def trial_records(results: Sequence[CandidateResult]) -> dict[str, TrialRecord]:
    """How far each candidate's tuning went, for the lineage manifest."""
    return {
        r.name: TrialRecord(
            n_trials=r.n_trials, max_trials=CANDIDATES[r.name].max_trials, truncated=r.truncated
        )
        for r in results
    }


def select_winner(
    results: Sequence[CandidateResult], feature_flags: Sequence[LeakageFlag], *, model_limit: float
) -> Selection:
    """Best CV ROC-AUC wins (ties: the shorter name); a test ROC-AUC above `model_limit` is a flag."""
    if not results:
        raise ValueError("no candidate was tuned")
    winner = max(results, key=lambda r: (r.cv["roc_auc"], -len(r.name)))
    model_flags = [
        flag
        for r in results
        for flag in model_leakage(r.name, r.test["roc_auc"], limit=model_limit)
    ]
    return Selection(
        winner=winner, candidates=list(results), leakage_flags=[*feature_flags, *model_flags]
    )


@dataclass(frozen=True)
class PackagedModel:
    """The bundle that is logged and served, and the features' mean |contribution| on the test part."""

    bundle: ModelBundle
    importance: dict[str, float]


def package_bundle(
    selection: Selection,
    split: Split,
    schema: Schema,
    *,
    risk_bands: RiskBands,
    data_fingerprint: str,
) -> PackagedModel:
    """The winner with its reference profile (features on train, scores on test) and metadata."""
    winner = selection.winner
    bundle = ModelBundle(
        schema=schema,
        pipeline=winner.pipeline,
        calibrator=winner.calibrator,
        threshold=winner.threshold,
        risk_bands=risk_bands,
        profile=profile_frame(split.train, schema),
        candidate=winner.name,
        params=winner.params,
        metrics={"cv": winner.cv, "test": winner.test},
        data_fingerprint=data_fingerprint,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        leakage_flags=[f.to_dict() for f in selection.leakage_flags],
    )
    # Made up from the schema and profile, never real customers: the bundle travels with the model.
    bundle.input_example = [typical_record(schema, bundle.profile)]
    scorer = Scorer(bundle)
    test_scores = scorer.score_frame(split.test)
    bundle.profile.scores = profile_scores(
        test_scores.probability, test_scores.risk_level, threshold=winner.threshold
    )
    contributions = np.abs(scorer.feature_contributions(scorer.encoder.encode_frame(split.test)))
    importance = dict(
        zip(scorer.encoder.feature_names, contributions.mean(axis=0).tolist(), strict=True)
    )
    return PackagedModel(bundle=bundle, importance=importance)


def validate_candidate(
    client: MlflowClient,
    packaged: PackagedModel,
    split: Split,
    *,
    model_name: str,
    settings: ValidationSettings,
    seed: int,
) -> ValidationResult:
    """Segments (against the current champion), fairness and behaviour of the packaged model on
    the held-out split; what blocks is decided by the promotion gate."""
    champion, why_not = champion_under_test(
        client, model_name=model_name, columns=list(split.test.columns)
    )
    return validate_model(
        scorer_under_test(Scorer(packaged.bundle), "candidate"),
        split.test,
        split.y_test,
        settings=settings,
        champion=champion,
        champion_note=why_not,
        evaluated_on="held-out split",
        seed=seed,
    )


def register_model(
    client: MlflowClient,
    model_name: str,
    model_uri: str,
    *,
    run_id: str,
    selection: Selection,
    fingerprint: str,
    lineage_tags: dict[str, str] | None = None,
) -> str:
    """A new registered version (alias `challenger`) tagged with what it is and where it came
    from (`lineage_tags`, `modeling.lineage.version_tags`); returns the version."""
    winner = selection.winner
    tags = {
        **(lineage_tags or {}),
        "churnops.candidate": winner.name,
        "churnops.cv_roc_auc": f"{winner.cv['roc_auc']:.6f}",
        "churnops.test_roc_auc": f"{winner.test['roc_auc']:.6f}",
        "churnops.threshold": f"{winner.threshold:.6f}",
        "churnops.leakage": "true" if selection.leakage_flags else "false",
        "churnops.data_fingerprint": fingerprint,
    }
    version = register_version(
        client, name=model_name, model_uri=model_uri, run_id=run_id, tags=tags
    )
    return str(version.version)


def cache_for_serving(model_name: str, version: str, source: ModelSource) -> bool:
    """Put a new version in the local model cache now, while this process has MLflow loaded:
    the server's or `churnops predict`'s first load of it (after a promotion, say) is then a
    warm one (~1 s) instead of a download through MLflow (~3.5 s). Best effort: False when it
    could not be cached (the load will fill the cache then)."""
    from churnops.modeling.loading import load_scorer

    if source.cache_dir is None:
        return False
    try:
        load_scorer(f"models:/{model_name}/{version}", source=source)
    except Exception as exc:  # never fails a training run that registered its model
        logger.warning("version %s not cached for serving: %s", version, exc)
        return False
    return True


@dataclass(frozen=True)
class GateResult:
    """What the promotion gate decided for a version, and the aliases it holds afterwards."""

    decision: PromotionDecision
    champion_before: str  # the champion's version compared with, "none" or "unknown"
    aliases: list[str]


def champion_score(
    client: MlflowClient, *, model_name: str, test: pd.DataFrame, y_test: np.ndarray
) -> tuple[float | None, str]:
    """The current champion's ROC-AUC on THIS run's held-out data, and its version."""
    from sklearn.metrics import roc_auc_score

    from churnops.modeling.pyfunc import load_scorer

    current = alias_version(client, model_name, CHAMPION)
    if current is None:
        return None, "none"
    scorer, _ = load_scorer(f"models:/{model_name}@{CHAMPION}")
    missing = [c for c in scorer.schema.feature_names if c not in test.columns]
    if missing:
        raise ValueError(f"champion v{current.version} needs columns missing here: {missing[:5]}")
    probability = scorer.score_frame(test).probability
    return float(roc_auc_score(y_test, probability)), str(current.version)


def promotion_gate(
    client: MlflowClient,
    model_name: str,
    version: str,
    selection: Selection,
    split: Split,
    *,
    margin: float,
    allow_leakage: bool,
    validation: ValidationResult | None = None,
) -> GateResult:
    """Promote `version` to champion only when it beats the champion on this run's test split by
    `margin`, has no leakage flag (unless allowed) and fails no blocking validation check (unless
    allowed); the decision, and the validation verdict with its overrides, are recorded on the
    version."""
    if validation is not None:
        _record_validation(client, model_name, version, validation)
    try:
        score, champion_before = champion_score(
            client, model_name=model_name, test=split.test, y_test=split.y_test
        )
        decision = promotion_decision(
            candidate_score=selection.winner.test["roc_auc"],
            champion_score=score,
            margin=margin,
            leakage_flags=[str(f) for f in selection.leakage_flags],
            allow_leakage=allow_leakage,
            validation_failures=[str(c) for c in validation.blocking_failures()]
            if validation
            else [],
            validation_allowed=[str(c) for c in validation.allowed_failures()]
            if validation
            else [],
        )
    except Exception as exc:  # champion cannot score this data: never replace it silently
        decision = PromotionDecision(False, f"champion could not be evaluated on this data: {exc}")
        champion_before = "unknown"
    record_decision(client, name=model_name, version=version, decision=decision)
    if decision.promote:
        promote(client, name=model_name, version=version, why=f"training gate: {decision.reason}")
    aliases = sorted(client.get_model_version(model_name, version).aliases)
    return GateResult(decision=decision, champion_before=champion_before, aliases=aliases)


def _record_validation(
    client: MlflowClient, model_name: str, version: str, validation: ValidationResult
) -> None:
    record_validation(
        client,
        name=model_name,
        version=version,
        status=validation.status,
        allowed=[str(c) for c in validation.allowed_failures()],
    )


def held_for_later(
    client: MlflowClient,
    model_name: str,
    version: str,
    *,
    validation: ValidationResult | None = None,
) -> GateResult:
    """No training gate: the version stays challenger for a gate that runs elsewhere (which
    reads the validation verdict recorded here through `modeling.validate.validation_blockers`)."""
    if validation is not None:
        _record_validation(client, model_name, version, validation)
    current = alias_version(client, model_name, CHAMPION)
    decision = PromotionDecision(False, "left as challenger for the production gate")
    aliases = sorted(client.get_model_version(model_name, version).aliases)
    return GateResult(
        decision=decision,
        champion_before=str(current.version) if current is not None else "none",
        aliases=aliases,
    )
