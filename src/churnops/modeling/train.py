"""Train, compare, calibrate, gate and register: the whole training run on one validated table.

`run_training` is the list of stages in `modeling.stages` (the work) and `modeling.runlog` (what
the MLflow run records), called in order inside one MLflow run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from churnops.data.fingerprint import fingerprint
from churnops.data.schema import Schema
from churnops.data.sources import resolve_validation_settings
from churnops.modeling import lineage, runlog, stages
from churnops.modeling.candidates import CANDIDATES
from churnops.modeling.leakage import LeakageFlag
from churnops.modeling.lineage import ProductionRows
from churnops.modeling.registry import CHALLENGER
from churnops.modeling.runlog import EdaWriter
from churnops.modeling.stages import CandidateResult
from churnops.modeling.tracking import model_source
from churnops.modeling.tune import Fold
from churnops.settings import Settings, ValidationSettings
from churnops.validation.result import ValidationResult
from churnops.validation.run import check_columns

__all__ = [
    "CandidateResult",
    "EdaWriter",
    "ProductionRows",
    "Reporter",
    "SilentReporter",
    "TrainingOutcome",
    "model_card",
    "run_training",
]


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
    validation: ValidationResult | None = None  # None: validation.enabled is false

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
            "validation": validation_summary(self.validation),
        }


def validation_summary(result: ValidationResult | None) -> dict[str, Any] | None:
    """The validation verdict for the training output (the whole document is on the run)."""
    if result is None:
        return None
    return {
        "status": result.status,
        "checks": len(result.checks),
        "failures": [str(c) for c in result.failures()],
        "blocking_failures": [str(c) for c in result.blocking_failures()],
        "allowed_failures": [str(c) for c in result.allowed_failures()],
        "champion": result.champion,
        "seconds": result.duration_seconds,
        "report": "validation/report.html",
    }


def validation_card_lines(result: ValidationResult | None) -> list[str]:
    """The model card's validation section."""
    if result is None:
        return ["", "## Validation", "", "- off (`validation.enabled: false`)"]
    against = f"champion v{result.champion}" if result.champion else "no champion"
    lines = [
        "",
        "## Validation",
        "",
        f"- **{result.status}**: {len(result.checks)} checks on the {result.evaluated_on} "
        f"({result.rows} rows), segments against {against}; report `validation/report.html`",
    ]
    lines += [f"- blocking: {c}" for c in result.blocking_failures()]
    lines += [f"- allowed by override: {c}" for c in result.allowed_failures()]
    others = [c for c in result.failures() if c.check not in result.blocking]
    lines += [f"- failed, not blocking: {c}" for c in others]
    weakest = ", ".join(
        f"{s.column} = {s.segment} ({s.roc_auc:.3f})"
        for s in result.weakest
        if s.roc_auc is not None
    )
    lines += [f"- weakest segments (ROC-AUC): {weakest}"] if weakest else []
    return lines


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
        *validation_card_lines(outcome.validation),
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
    gate: bool = True,
    production: ProductionRows | None = None,
    production_frame: pd.DataFrame | None = None,
) -> TrainingOutcome:
    """Everything `churnops train` does after the data is loaded and validated.

    `gate=False` registers the new version as challenger and leaves the champion alone (the
    retraining loop judges it on production data instead). `production`: the production rows a
    retraining run appended to the table (window, fingerprint, share), recorded in the lineage
    manifest; `production_frame`, those rows, kept with the run when given (`churnops verify`
    cannot rebuild such a run without them).
    """
    reporter = reporter or SilentReporter()
    started = time.monotonic()
    training, name = settings.training, settings.registry.model_name
    digest = fingerprint(frame)
    split = stages.split_data(frame, schema, test_size=training.test_size, seed=training.seed)
    # The bundled table's own validation columns apply however the run was started (CLI or flow).
    validation = resolve_validation_settings(settings.validation, settings.data)
    if validation.enabled:  # a misnamed column fails now, not after tuning
        check_columns(validation, list(frame.columns))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{name}") as run:
        run_id = run.info.run_id
        # Under `mlflow run` the run is the project's, in its experiment: trials go beside it.
        experiment_id = run.info.experiment_id
        _log_inputs(client, run_id, frame, schema, settings, digest, reporter, eda_writer)

        reporter.stage("Leakage check")
        leakage = stages.check_leakage(
            split, schema, limit=training.leakage_feature_auc, seed=training.seed
        )
        runlog.log_leakage_check(client, run_id, leakage)
        reporter.stage("Encoding CV folds")
        folds = stages.encode_cv_folds(split, schema, folds=training.cv_folds, seed=training.seed)

        trials = stages.TrialLog(client, experiment_id, run_id)
        results = _tune_all(split, folds, schema, settings, started, reporter, trials)
        selection = stages.select_winner(
            results, leakage.flags, model_limit=training.leakage_model_auc
        )
        runlog.log_selection(client, run_id, selection, allow_leakage=training.allow_leakage)
        if production is not None and production_frame is not None:
            production = runlog.log_production_rows(client, run_id, production, production_frame)
        manifest = lineage.build_manifest(
            frame,
            settings=settings,
            data_fingerprint=digest,
            production=production,
            tuning=stages.trial_records(results),
        )
        runlog.log_lineage(client, run_id, manifest)

        reporter.stage("Packaging the model")
        packaged = stages.package_bundle(
            selection, split, schema, risk_bands=settings.risk_bands, data_fingerprint=digest
        )
        checked = _validate(client, run_id, packaged, split, settings, validation, reporter)
        info = runlog.log_model(client, run_id, packaged, selection, split.y_test)

        reporter.stage("Registering")
        version = stages.register_model(
            client,
            name,
            info.model_uri,
            run_id=run_id,
            selection=selection,
            fingerprint=digest,
            lineage_tags=lineage.version_tags(manifest, run_id=run_id),
        )
        stages.cache_for_serving(name, version, model_source(settings))
        result = (
            stages.promotion_gate(
                client,
                name,
                version,
                selection,
                split,
                margin=settings.registry.promotion_margin,
                allow_leakage=training.allow_leakage,
                validation=checked,
            )
            if gate
            else stages.held_for_later(client, name, version, validation=checked)
        )
        runlog.log_gate(client, run_id, result)
        outcome = _outcome(
            run_id, version, result, selection, leakage, schema, digest, settings, checked
        )
        outcome.duration_seconds = time.monotonic() - started
        runlog.log_outcome(client, run_id, card=outcome.card, summary=outcome.summary())
        return outcome


def _log_inputs(
    client: MlflowClient,
    run_id: str,
    frame: pd.DataFrame,
    schema: Schema,
    settings: Settings,
    digest: str,
    reporter: Reporter,
    eda_writer: EdaWriter | None,
) -> None:
    """The run's settings, environment and dataset, and the EDA report when a writer is given."""
    runlog.log_run_inputs(
        client,
        run_id,
        frame,
        schema,
        training=settings.training,
        data_name=settings.data.path or "table",
        data_fingerprint=digest,
    )
    if eda_writer is not None:
        reporter.stage("Exploratory report")
        runlog.log_eda(
            client, run_id, frame, schema, eda_writer=eda_writer, data_fingerprint=digest
        )


def _validate(
    client: MlflowClient,
    run_id: str,
    packaged: stages.PackagedModel,
    split: stages.Split,
    settings: Settings,
    validation: ValidationSettings,
    reporter: Reporter,
) -> ValidationResult | None:
    """The validation stage and its log, or None when `validation.enabled` is false."""
    if not validation.enabled:
        return None
    reporter.stage("Validating the model")
    result = stages.validate_candidate(
        client,
        packaged,
        split,
        model_name=settings.registry.model_name,
        settings=validation,
        seed=settings.training.seed,
    )
    runlog.log_validation(client, run_id, result)
    return result


def _tune_all(
    split: stages.Split,
    folds: list[Fold],
    schema: Schema,
    settings: Settings,
    started: float,
    reporter: Reporter,
    trials: stages.TrialLog,
) -> list[CandidateResult]:
    """Each candidate in turn, with an equal share of what is left of the time budget."""
    training = settings.training
    reporter.stage(
        "Tuning candidates", total=sum(CANDIDATES[n].max_trials for n in training.candidates)
    )
    results: list[CandidateResult] = []
    for index, name in enumerate(training.candidates):
        deadline = stages.candidate_deadline(
            started=started,
            budget_seconds=training.budget_minutes * 60,
            remaining=len(training.candidates) - index,
            now=time.monotonic(),
        )
        result = stages.tune_candidate(
            name,
            split,
            folds,
            schema,
            training=training,
            business=settings.business,
            deadline=deadline,
            trials=trials,
            on_trial=_trial_progress(reporter, name),
        )
        runlog.log_candidate(trials.client, trials.parent_run_id, result)
        results.append(result)
    return results


def _trial_progress(reporter: Reporter, name: str) -> Callable[[int, float], None]:
    def advance(number: int, score: float) -> None:
        reporter.advance(f"{name} trial {number}: cv roc-auc {score:.4f}")

    return advance


def _outcome(
    run_id: str,
    version: str,
    gate: stages.GateResult,
    selection: stages.Selection,
    leakage: stages.LeakageCheck,
    schema: Schema,
    digest: str,
    settings: Settings,
    validation: ValidationResult | None,
) -> TrainingOutcome:
    """The run's result with its model card (the duration is set by the caller)."""
    model_name = settings.registry.model_name
    outcome = TrainingOutcome(
        run_id=run_id,
        model_name=model_name,
        version=version,
        aliases=gate.aliases,
        promoted=gate.decision.promote,
        promotion_reason=gate.decision.reason,
        threshold=selection.winner.threshold,
        leakage_flags=selection.leakage_flags,
        allow_leakage=settings.training.allow_leakage,
        winner=selection.winner,
        candidates=selection.candidates,
        schema=schema,
        data_fingerprint=digest,
        feature_aucs=leakage.feature_aucs,
        duration_seconds=0.0,
        model_uri=f"models:/{model_name}/{version}",
        validation=validation,
    )
    outcome.card = model_card(outcome)
    return outcome


def training_outcome(
    run_id: str,
    version: str,
    gate: stages.GateResult,
    selection: stages.Selection,
    leakage: stages.LeakageCheck,
    schema: Schema,
    digest: str,
    settings: Settings,
    validation: ValidationResult | None = None,
) -> TrainingOutcome:
    """The outcome and model card of a run composed elsewhere (the training flow's tasks)."""
    return _outcome(run_id, version, gate, selection, leakage, schema, digest, settings, validation)
