"""Validation end to end: trained models with planted problems are flagged and held by the
promotion gate (overrides recorded), the Telco champion passes, and `churnops validate` re-runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.data.load import load_training_table
from churnops.datasets import demo_validation_settings
from churnops.modeling import registry
from churnops.modeling.stages import split_data
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import TrainingOutcome, run_training
from churnops.modeling.validate import (
    REPORT_ARTIFACT,
    champion_under_test,
    scorer_under_test,
    validation_blockers,
)
from churnops.settings import DataSettings, Settings, ValidationSettings
from churnops.validation.run import ModelUnderTest, validate_model
from tests.support.models import TrainedModel, make_settings

pytestmark = pytest.mark.integration

SENSITIVE = "planted_group"


def planted_proxy(frame: pd.DataFrame) -> pd.DataFrame:
    """A sensitive column kept out of the features, churn that depends on it, and a feature
    that copies it 90% of the time: the model can only learn the group through the proxy."""
    rng = np.random.default_rng(3)
    group = rng.integers(0, 2, len(frame))
    churn = np.where((group == 1) & (rng.random(len(frame)) < 0.5), "Yes", frame["churn"])
    proxy = np.where(rng.random(len(frame)) < 0.9, group, 1 - group)
    return frame.assign(churn=churn, **{SENSITIVE: group, "region_code": proxy})


@dataclass
class Trained:
    settings: Settings
    outcome: TrainingOutcome
    path: Path
    champion_after: str | None  # the champion's version right after this training


def _train(settings: Settings) -> TrainingOutcome:
    client = configure_tracking(settings)
    frame, schema = load_training_table(settings.data)
    return run_training(
        frame,
        schema=schema,
        settings=settings,
        client=client,
        experiment_id=ensure_experiment(client, settings),
    )


@pytest.fixture(scope="module")
def proxy_runs(
    tmp_path_factory: pytest.TempPathFactory, demo_frame: pd.DataFrame
) -> Iterator[tuple[Trained, Trained]]:
    """The planted-proxy table trained twice in one store: as configured, then `--allow fairness`."""
    home = tmp_path_factory.mktemp("proxy")
    path = home / "planted.csv"
    planted_proxy(demo_frame).to_csv(path, index=False)
    settings = make_settings(home, candidates=["xgboost"])
    settings.data = DataSettings(
        path=str(path),
        target="churn",
        positive_label="Yes",
        id_column="customer_id",
        exclude=[SENSITIVE],
    )
    settings.validation = ValidationSettings(sensitive_columns=[SENSITIVE])
    held = Trained(settings, _train(settings), path, _champion(settings))
    allowed = settings.model_copy(deep=True)
    allowed.validation.allow = ["fairness"]
    yield held, Trained(allowed, _train(allowed), path, _champion(allowed))


def _champion(settings: Settings) -> str | None:
    client = configure_tracking(settings)
    current = registry.alias_version(client, settings.registry.model_name, "champion")
    return None if current is None else str(current.version)


@pytest.mark.slow  # trains twice
def test_planted_proxy_is_flagged_and_not_promoted(proxy_runs: tuple[Trained, Trained]) -> None:
    held = proxy_runs[0]
    outcome, name = held.outcome, held.settings.registry.model_name
    assert outcome.validation is not None and outcome.validation.status == "failed"
    failed = {c.subject for c in outcome.validation.blocking_failures()}
    assert f"{SENSITIVE} demographic_parity_difference" in failed
    assert not outcome.promoted
    assert outcome.promotion_reason.startswith(f"validation failed: fairness {SENSITIVE}")
    assert held.champion_after is None
    client = configure_tracking(held.settings)
    tags = client.get_model_version(name, outcome.version).tags
    assert tags["churnops.gate"] == "held" and tags["churnops.validation"] == "failed"
    assert tags["churnops.gate_reason"] == outcome.promotion_reason
    run = client.get_run(outcome.run_id)
    assert run.data.tags["churnops.validation"] == "failed"
    assert run.data.metrics["validation_blocking_failures"] >= 1
    assert "## Validation" in outcome.card and "blocking: fairness" in outcome.card
    assert outcome.summary()["validation"]["status"] == "failed"
    # What the retraining loop's gate reads: the logged document.
    reasons = validation_blockers(client, model_name=name, version=outcome.version)
    assert reasons and all(r.startswith(f"fairness {SENSITIVE}") for r in reasons)
    assert (
        validation_blockers(client, model_name=name, version=outcome.version, allow=["fairness"])
        == []
    )
    html = Path(client.download_artifacts(outcome.run_id, REPORT_ARTIFACT, str(held.path.parent)))
    assert "Blocks promotion" in html.read_text()


@pytest.mark.slow  # trains twice
def test_allow_override_promotes_and_is_recorded(proxy_runs: tuple[Trained, Trained]) -> None:
    allowed = proxy_runs[1]
    outcome, name = allowed.outcome, allowed.settings.registry.model_name
    assert outcome.validation is not None and outcome.validation.status == "overridden"
    assert outcome.promoted and "validation failures allowed: fairness" in outcome.promotion_reason
    assert allowed.champion_after == outcome.version
    client = configure_tracking(allowed.settings)
    tags = client.get_model_version(name, outcome.version).tags
    assert tags["churnops.validation"] == "overridden"
    assert tags["churnops.validation_allowed"].startswith(f"fairness {SENSITIVE}")
    assert client.get_run(outcome.run_id).data.tags["churnops.validation_allow"] == "fairness"
    assert validation_blockers(client, model_name=name, version=outcome.version) == []


@pytest.mark.slow  # trains twice
def test_cli_validate_exits_1_on_a_blocking_failure(
    proxy_runs: tuple[Trained, Trained], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = proxy_runs[0]
    _params(tmp_path, held.settings, monkeypatch)
    result = CliRunner().invoke(
        app, ["validate", held.outcome.version, "--json", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert document["evaluated_on"] == "held-out split of its training table"
    allowed = CliRunner().invoke(
        app, ["validate", held.outcome.version, "--allow", "fairness", "-o", str(tmp_path)]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "overridden" in allowed.stdout


def _params(folder: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A params.yaml in an empty working folder pointing at `settings`' store and table."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = {
        "home": settings.home,
        "tracking_uri": settings.tracking_uri,
        "data": settings.data.model_dump(),
        "validation": {"sensitive_columns": settings.validation.sensitive_columns},
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.mark.slow  # trains
def test_planted_directional_violation_is_caught(tmp_path: Path, demo_frame: pd.DataFrame) -> None:
    """Contract values swapped end for end in the data: the model learns risk rising along the
    bundled order (the sidecar's expectation), and the gate holds it."""
    expectation = demo_validation_settings(ValidationSettings()).directions[0]
    first, last = expectation.order[0], expectation.order[-1]
    column = expectation.column
    swapped = demo_frame[column].replace({first: last, last: first})
    path = tmp_path / "swapped.csv"
    demo_frame.assign(**{column: swapped}).to_csv(path, index=False)
    settings = make_settings(tmp_path, candidates=["xgboost"])
    settings.data = settings.data.model_copy(update={"path": str(path)})
    settings.validation = ValidationSettings(directions=[expectation])
    outcome = _train(settings)
    assert outcome.validation is not None
    check = next(c for c in outcome.validation.checks if c.check == "direction")
    assert not check.passed and check.value is not None and check.value > 0.1
    assert not outcome.promoted and f"direction {column}" in outcome.promotion_reason


def test_telco_champion_passes_with_the_bundled_configuration(
    trained_model: TrainedModel,
) -> None:
    outcome = trained_model.outcome
    validation = outcome.validation
    assert validation is not None and validation.status == "passed", validation.failures()
    kinds = {c.check for c in validation.checks}
    assert {"fairness", "invariance", "direction", "robustness", "edge_cases"} <= kinds
    sensitive = trained_model.settings.validation.sensitive_columns
    assert sensitive and {g.column for g in validation.groups} == set(sensitive)
    assert outcome.promoted and "## Validation" in outcome.card
    client = trained_model.client
    name = trained_model.settings.registry.model_name
    assert client.get_model_version(name, outcome.version).tags["churnops.validation"] == "passed"
    assert validation_blockers(client, model_name=name, version=outcome.version) == []


def test_a_segment_made_worse_is_reported_against_the_champion(
    trained_model: TrainedModel,
) -> None:
    """The champion against a copy of itself whose scores are noise on one segment."""
    settings = trained_model.settings
    scorer = trained_model.scorer()
    split = split_data(trained_model.frame, scorer.schema, test_size=0.2, seed=1)
    champion, why_not = champion_under_test(
        trained_model.client,
        model_name=settings.registry.model_name,
        columns=list(split.test.columns),
    )
    assert champion is not None and why_not is None
    column = settings.validation.directions[0].column  # any categorical feature will do
    segment = split.test[column].value_counts().index[0]
    rng = np.random.default_rng(0)

    def damaged(frame: pd.DataFrame) -> np.ndarray:
        probability = scorer.score_frame(frame).probability.copy()
        hit = (frame[column] == segment).to_numpy()
        probability[hit] = rng.random(int(hit.sum()))
        return probability

    base = scorer_under_test(scorer, "damaged")
    model = ModelUnderTest(base.label, base.schema, base.threshold, damaged)
    result = validate_model(
        model, split.test, split.y_test, settings=settings.validation, champion=champion
    )
    worse = {
        c.subject: c for c in result.checks if c.check == "segment_regression" and not c.passed
    }
    assert f"{column} = {segment}" in worse
    assert result.status == "failed" and result.champion == trained_model.outcome.version


def test_cli_validate_reruns_a_registered_version(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _params(tmp_path, trained_model.settings, monkeypatch)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["validation"] = {}  # the bundled table's own validation settings apply
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    version = trained_model.outcome.version
    result = CliRunner().invoke(app, ["validate", version, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout and "direction" in result.stdout
    document = json.loads(
        (tmp_path / "out" / f"validation-churn-model-v{version}.json").read_text()
    )
    assert document["status"] == "passed" and document["rows"] == 1409
    assert (tmp_path / "out" / f"validation-churn-model-v{version}.html").exists()

    missing = CliRunner().invoke(app, ["validate", "99"])
    assert missing.exit_code == 2 and "no version 99" in missing.output
    no_target = tmp_path / "no_target.csv"
    trained_model.frame.drop(columns=["churn"]).to_csv(no_target, index=False)
    bad = CliRunner().invoke(
        app, ["validate", version, "--data", str(no_target), "--target", "churn"]
    )
    assert bad.exit_code == 2 and "churn" in bad.output and "Traceback" not in bad.output
