"""`training_flow`: the training run as one Prefect task per stage (`modeling.stages`), with
retries on loading the data and on registry calls, and a markdown artifact (model card,
candidate comparison, the MLflow run)."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from churnops.flows.tasks import load_settings, once, retrying
from churnops.modeling import runlog, stages

ARTIFACT_KEY = "churnops-training"


@retrying("load data")
def load_data(settings: Any) -> tuple[Any, Any]:
    from churnops.data.load import load_training_table

    return load_training_table(settings.data)


@retrying("start run")
def start_run(settings: Any, frame: Any, schema: Any, digest: str) -> tuple[Any, str, str]:
    """The MLflow client, experiment and a new run with the run's inputs logged."""
    from churnops.modeling.tracking import configure_tracking, ensure_experiment

    client = configure_tracking(settings)
    experiment_id = ensure_experiment(client, settings)
    run = client.create_run(experiment_id, run_name=f"train-{settings.registry.model_name}")
    runlog.log_run_inputs(
        client,
        run.info.run_id,
        frame,
        schema,
        training=settings.training,
        data_name=settings.data.path or "table",
        data_fingerprint=digest,
    )
    return client, experiment_id, run.info.run_id


split_data = once("split")(stages.split_data)
check_leakage = once("leakage check")(stages.check_leakage)
encode_folds = once("encode CV folds")(stages.encode_cv_folds)
tune_candidate = once("tune candidate")(stages.tune_candidate)
select_winner = once("select winner")(stages.select_winner)
package_bundle = once("package bundle")(stages.package_bundle)
validate_candidate = once("validate model")(stages.validate_candidate)
log_model = retrying("log model")(runlog.log_model)
register_model = retrying("register")(stages.register_model)
promotion_gate = retrying("promotion gate")(stages.promotion_gate)
held_for_later = retrying("leave as challenger")(stages.held_for_later)


def comparison_table(outcome: Any) -> str:
    """The candidates side by side (markdown)."""
    lines = [
        "| candidate | CV ROC-AUC | test ROC-AUC | test Brier | threshold | trials |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in outcome.candidates:
        lines.append(
            f"| {c.name} | {c.cv['roc_auc']:.4f} | {c.test['roc_auc']:.4f} | {c.test['brier']:.4f} "
            f"| {c.threshold:.3f} | {c.n_trials} |"
        )
    return "\n".join(lines)


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A link to the run in the MLflow UI when tracking goes to a server, else where it lives."""
    if tracking_uri.startswith(("http://", "https://")):
        url = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"[MLflow run {run_id}]({url})"
    return f"MLflow run `{run_id}` in `{tracking_uri}` (`mlflow ui --backend-store-uri {tracking_uri}`)"


def tune_all(
    split: Any, folds: Any, schema: Any, settings: Any, trials: Any, started: float
) -> list[Any]:
    """One task per candidate, each with an equal share of what is left of the budget."""
    names = settings.training.candidates
    results = []
    for index, name in enumerate(names):
        deadline = stages.candidate_deadline(
            started=started,
            budget_seconds=settings.training.budget_minutes * 60,
            remaining=len(names) - index,
            now=time.monotonic(),
        )
        result = tune_candidate.with_options(task_run_name=f"tune {name}")(
            name,
            split,
            folds,
            schema,
            training=settings.training,
            business=settings.business,
            deadline=deadline,
            trials=trials,
        )
        runlog.log_candidate(trials.client, trials.parent_run_id, result)
        results.append(result)
    return results


@flow(name="churnops-training", log_prints=True)
def training_flow(config: str | None = None, gate: bool = True) -> dict[str, Any]:
    """Train, compare, calibrate, register (and gate, unless `gate` is False); returns the summary."""
    from churnops.data.fingerprint import fingerprint
    from churnops.data.sources import resolve_validation_settings
    from churnops.modeling.train import training_outcome

    settings = load_settings(config)
    started = time.monotonic()
    training, name = settings.training, settings.registry.model_name
    frame, schema = load_data(settings)
    digest = fingerprint(frame)
    client, experiment_id, run_id = start_run(settings, frame, schema, digest)
    split = split_data(frame, schema, test_size=training.test_size, seed=training.seed)
    leakage = check_leakage(split, schema, limit=training.leakage_feature_auc, seed=training.seed)
    runlog.log_leakage_check(client, run_id, leakage)
    folds = encode_folds(split, schema, folds=training.cv_folds, seed=training.seed)
    results = tune_all(
        split, folds, schema, settings, stages.TrialLog(client, experiment_id, run_id), started
    )
    selection = select_winner(results, leakage.flags, model_limit=training.leakage_model_auc)
    runlog.log_selection(client, run_id, selection, allow_leakage=training.allow_leakage)
    packaged = package_bundle(
        selection, split, schema, risk_bands=settings.risk_bands, data_fingerprint=digest
    )
    validation = resolve_validation_settings(settings.validation, settings.data)
    checked = None
    if validation.enabled:
        checked = validate_candidate(
            client, packaged, split, model_name=name, settings=validation, seed=training.seed
        )
        runlog.log_validation(client, run_id, checked)
    info = log_model(client, run_id, packaged, selection, split.y_test)
    version = register_model(
        client, name, info.model_uri, run_id=run_id, selection=selection, fingerprint=digest
    )
    result = (
        promotion_gate(
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
        else held_for_later(client, name, version, validation=checked)
    )
    runlog.log_gate(client, run_id, result)
    outcome = training_outcome(
        run_id, version, result, selection, leakage, schema, digest, settings, checked
    )
    outcome.duration_seconds = time.monotonic() - started
    runlog.log_outcome(client, run_id, card=outcome.card, summary=outcome.summary())
    link = run_link(settings.resolved_tracking_uri(), experiment_id, run_id)
    create_markdown_artifact(
        f"{outcome.card}\n\n## Candidates\n\n{comparison_table(outcome)}\n\n{link}\n",
        key=ARTIFACT_KEY,
        description=f"{name} v{version}",
    )
    return outcome.summary()
