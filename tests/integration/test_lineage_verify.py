"""Lineage and verify as a user runs them: the manifest a training run records, `churnops verify`
rebuilding a fresh version (and refusing a tampered or missing source), and `churnops lineage`
tracing stored predictions back through the registry, the training run and the decisions."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.datasets import demo_path
from churnops.modeling import verify
from churnops.modeling.lineage import DIGEST_TAG, MANIFEST_ARTIFACT, LineageManifest
from churnops.modeling.registry import promote
from churnops.store.decisions import Decision, record_decision
from churnops.store.records import PredictionRecord
from churnops.store.store import PredictionStore
from tests.support.models import TrainedModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli_env(home: Path) -> dict[str, str]:
    """The environment a CLI call sees: everything under `home`, nothing from the developer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_TRACK"))}
    env.update(
        CHURNOPS_HOME=str(home),
        CHURNOPS_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        CHURNOPS_DATABASE_URL=f"sqlite:///{home / 'predictions.db'}",
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    unset: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    result = CliRunner().invoke(app, list(args), env={**unset, **env})
    return result.exit_code, result.stdout, result.stderr


def loans(n: int = 1200, seed: int = 5) -> pd.DataFrame:
    """A credit-default table: no Telco column, target or id."""
    rng = np.random.default_rng(seed)
    debt = rng.uniform(0, 1, n)
    grade = rng.choice(["A", "B", "C"], n)
    logit = 3 * debt + (grade == "C") * 1.0 - 2.0
    return pd.DataFrame(
        {
            "loan_ref": [f"L{i}" for i in range(n)],
            "debt_ratio": debt.round(4),
            "grade": grade,
            "defaulted": np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no"),
        }
    )


@dataclass
class LoansProject:
    folder: Path
    env: dict[str, str]
    table: Path
    client: MlflowClient
    versions: list[str]


@pytest.fixture(scope="module")
def loans_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoansProject]:
    """Two versions trained by `churnops train` on a generated table given by flags alone."""
    folder = tmp_path_factory.mktemp("loans")
    table = folder / "loans.csv"
    loans().to_csv(table, index=False)
    (folder / "params.yaml").write_text(
        "training:\n  budget_minutes: 0.02\n  cv_folds: 3\n"
        "  candidates: [logistic_regression, lightgbm]\n"
    )
    env = cli_env(folder / "home")
    env["CHURNOPS_CONFIG"] = str(folder / "params.yaml")
    versions = []
    for _ in range(2):
        code, out, err = run_cli(
            env,
            "train",
            "--data",
            str(table),
            "--target",
            "defaulted",
            "--positive-label",
            "yes",
            "--id-column",
            "loan_ref",
            "--model-name",
            "loans",
            "--json",
        )
        assert code == 0, err
        versions.append(json.loads(out)["version"])
    uri = env["CHURNOPS_TRACKING_URI"]
    yield LoansProject(folder, env, table, MlflowClient(uri, uri), versions)


def manifest_of(client: MlflowClient, run_id: str) -> LineageManifest:
    text = client.download_artifacts(run_id, MANIFEST_ARTIFACT)
    return LineageManifest.from_dict(json.loads(Path(text).read_text()))


def test_training_records_the_manifest_on_run_and_version(trained_model: TrainedModel) -> None:
    outcome, client = trained_model.outcome, trained_model.client
    manifest = manifest_of(client, outcome.run_id)
    (source,) = manifest.sources
    assert source.role == "table" and source.bundled == demo_path().name
    assert source.fingerprint == manifest.data_fingerprint == outcome.data_fingerprint
    assert source.rows == manifest.data_rows == len(trained_model.frame)
    assert manifest.settings["training"]["seed"] == trained_model.settings.training.seed
    assert manifest.settings["data"]["target"] == "churn"
    assert re.fullmatch(r"[0-9a-f]{40}", manifest.code["git_commit"]), "an editable checkout"
    assert isinstance(manifest.code["git_dirty"], bool)
    assert {"scikit-learn", "xgboost-cpu", "lightgbm", "numpy", "python"} <= set(manifest.libraries)
    assert set(manifest.seeds.values()) == {trained_model.settings.training.seed}
    assert set(manifest.tuning) == set(trained_model.settings.training.candidates)
    for name, record in manifest.tuning.items():
        candidate = next(c for c in outcome.candidates if c.name == name)
        assert (record.n_trials, record.truncated) == (candidate.n_trials, candidate.truncated)
    assert manifest.platform["n_jobs"] == trained_model.settings.training.n_jobs
    tags = client.get_model_version(outcome.model_name, outcome.version).tags
    assert tags[DIGEST_TAG] == manifest.digest()
    assert tags["churnops.lineage.git_commit"] == manifest.code["git_commit"]
    assert tags["churnops.lineage.manifest"] == f"runs:/{outcome.run_id}/{MANIFEST_ARTIFACT}"


def test_verify_reproduces_a_fresh_version_exactly(trained_model: TrainedModel) -> None:
    """The CI check: a version trained a moment ago rebuilds to the same probabilities (1e-9),
    even when the time budget truncated its tuning (the recorded trial counts are replayed)."""
    env = cli_env(Path(trained_model.settings.home))
    code, out, err = run_cli(env, "verify", trained_model.outcome.version, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["reproduced"] is True and result["first_difference"] is None
    assert {c["name"] for c in result["checks"]} >= {"winner", "metrics", "probabilities"}
    assert result["sample_rows"] > 100 and result["max_probability_difference"] <= 1e-9
    if any(c.truncated for c in trained_model.outcome.candidates):
        assert any("cut short" in note for note in result["notes"])


def test_verify_names_the_first_difference_and_exits_1(
    trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild that lands elsewhere (here: the threshold moved) is 'not reproduced'."""
    rebuild = verify.rebuild_selection

    def moved(*args, **kwargs):
        selection, split = rebuild(*args, **kwargs)
        winner = dataclasses.replace(selection.winner, threshold=selection.winner.threshold + 0.01)
        return dataclasses.replace(selection, winner=winner), split

    monkeypatch.setattr(verify, "rebuild_selection", moved)
    env = cli_env(Path(trained_model.settings.home))
    code, _, err = run_cli(env, "verify", "champion")
    assert code == 1
    assert "not reproduced: threshold: recorded" in " ".join(err.split())


def test_verify_another_table_and_refuses_changed_or_missing_sources(
    loans_project: LoansProject,
) -> None:
    env, table, version = loans_project.env, loans_project.table, loans_project.versions[0]
    code, out, err = run_cli(env, "verify", version, "--model-name", "loans", "--json")
    assert code == 0, err
    assert json.loads(out)["reproduced"] is True
    original = table.read_text()
    try:
        table.write_text(original.replace("L7,", "L7x,", 1))  # one id changed
        code, _, err = run_cli(env, "verify", version, "--model-name", "loans")
        assert code == 2
        assert "fingerprint" in err and "changed since training" in err
        assert len(err.strip().splitlines()) == 1, "one readable line"
        table.unlink()
        code, _, err = run_cli(env, "verify", version, "--model-name", "loans")
        assert code == 2 and "recorded source is missing" in err
        moved = loans_project.folder / "moved.csv"
        moved.write_text(original)
        code, _, err = run_cli(
            env, "verify", version, "--model-name", "loans", "--data", str(moved)
        )
        assert code == 0, err
    finally:
        table.write_text(original)
    code, _, err = run_cli(env, "verify", "99", "--model-name", "loans")
    assert code == 2 and "no version or alias '99'" in err


def test_lineage_traces_predictions_to_alias_run_data_and_decisions(
    loans_project: LoansProject,
) -> None:
    env, client = loans_project.env, loans_project.client
    v1, v2 = loans_project.versions
    assert str(client.get_model_version_by_alias("loans", "champion").version) == v1
    store = PredictionStore(env["CHURNOPS_DATABASE_URL"])
    store.create()
    now = datetime.now(UTC)

    def predict(version: str, customer: str, at: datetime) -> str:
        record = PredictionRecord(
            features={"debt_ratio": 0.5, "grade": "A"},
            churn_probability=0.4,
            will_churn=False,
            risk_level="medium",
            model_name="loans",
            model_version=version,
            customer_id=customer,
            created_at=at,
        )
        store.write_predictions([record])
        return record.prediction_id

    by_champion = predict(v1, "L1", now)
    by_challenger = predict(v2, "L1", now + timedelta(milliseconds=1))
    time.sleep(1.1)  # the registry records alias moves to the second
    promote(client, name="loans", version=v2, why="test: canary looked fine")
    record_decision(
        store,
        Decision(kind="promotion", outcome="promoted", model_name="loans", to_version=v2),
    )
    after = datetime.now(UTC) + timedelta(seconds=5)
    by_old_champion = predict(v1, "L2", after)
    latest_for_l1 = predict(v2, "L1", after)

    def lineage(*args: str) -> dict:
        code, out, err = run_cli(env, "lineage", *args, "--json")
        assert code == 0, err
        return json.loads(out)

    first = lineage(by_champion)
    assert first["prediction"]["prediction_id"] == by_champion
    assert first["prediction"]["variant"] == "champion"  # no deployment: the champion answered
    assert first["model"]["version"] == v1 and first["model"]["alias_at_prediction"] == "champion"
    manifest = manifest_of(client, first["model"]["run_id"])
    assert first["training_run"]["run_id"] == first["model"]["run_id"]
    assert first["training_run"]["params"]["winner"] in {"logistic_regression", "lightgbm"}
    assert first["data"]["fingerprint"] == manifest.data_fingerprint
    (source,) = first["data"]["sources"]
    assert source["uri"] == str(loans_project.table.resolve()) and source["rows"] == 1200
    assert first["code"]["git_commit"] == manifest.code["git_commit"]
    assert first["model"]["gate"] == "passed"

    assert lineage(by_challenger)["model"]["alias_at_prediction"] == "challenger"
    old = lineage(by_old_champion)
    assert old["model"]["alias_at_prediction"] == "none" and old["model"]["aliases_now"] == []
    latest = lineage("--customer", "L1")
    assert latest["prediction"]["prediction_id"] == latest_for_l1
    assert latest["model"]["alias_at_prediction"] == "champion"
    assert latest["model"]["aliases_now"] == ["challenger", "champion"]
    assert [d["outcome"] for d in latest["decisions"]] == ["promoted"]
    assert any(e["action"] == "promoted" for e in latest["registry_events"])

    code, out, err = run_cli(env, "lineage", by_champion)
    assert code == 0 and "Model version" in out and "alias_at_prediction" in out
    for args, message in (
        (["no-such-id"], "no prediction with id 'no-such-id'"),
        (["--customer", "nobody"], "no prediction for customer 'nobody'"),
        ([], "give either a PREDICTION_ID or --customer ID"),
    ):
        code, _, err = run_cli(env, "lineage", *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_verify_and_lineage_need_an_existing_store(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "empty")
    code, _, err = run_cli(env, "verify", "1")
    assert code == 2 and "no MLflow tracking store" in err
    assert not (tmp_path / "empty").exists(), "a read-only command creates nothing"
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)


def test_evaluate_on_the_held_out_split_matches_training(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The held-out split rebuilt from the manifest is the one training scored: same metrics."""
    env = cli_env(Path(trained_model.settings.home))
    out_dir = tmp_path / "evaluation"
    code, out, err = run_cli(env, "evaluate", "--output-dir", str(out_dir), "--json")
    assert code == 0, err
    result = json.loads(out)
    winner = trained_model.outcome.winner
    assert result["version"] == trained_model.outcome.version
    assert result["data"] == "held-out split" and result["rows"] == len(winner.test_probability)
    # Training scored through the classifier's own predict_proba, evaluate through the Scorer
    # (the served path): they agree to ~1e-8 (docs/architecture.md, flat forests).
    for name, value in winner.test.items():
        assert result["metrics"][name] == pytest.approx(value, abs=1e-6), name
    written = {p.name for p in out_dir.iterdir()}
    assert written == {
        "metrics.json",
        "evaluation.json",
        "roc.csv",
        "precision_recall.csv",
        "roc.png",
        "precision_recall.png",
        "confusion_matrix.png",
    }
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert all(isinstance(v, int | float) for v in metrics.values()), "flat, for dvc metrics"
    roc = pd.read_csv(out_dir / "roc.csv")
    assert list(roc.columns) == ["fpr", "tpr"] and roc["tpr"].iloc[-1] == 1.0

    table = tmp_path / "labelled.csv"
    trained_model.frame.head(400).to_csv(table, index=False)
    code, out, err = run_cli(
        env, "evaluate", "1", "--data", str(table), "-o", str(out_dir), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["rows"] == 400 and json.loads(out)["data"] == str(table)
    trained_model.frame.head(50).drop(columns=["churn"]).to_csv(table, index=False)
    code, _, err = run_cli(env, "evaluate", "--data", str(table), "-o", str(out_dir))
    assert code == 2 and "the target column is missing" in err


def test_a_retraining_run_records_its_production_window(tmp_path: Path) -> None:
    """The retraining loop's contract: the table's rows followed by production rows; kept rows
    make the run verifiable, rows not kept make verify say so (exit 2)."""
    from churnops.data.fingerprint import fingerprint
    from churnops.data.schema import infer_schema
    from churnops.modeling.lineage import ProductionRows
    from churnops.modeling.tracking import configure_tracking, ensure_experiment
    from churnops.modeling.train import run_training
    from tests.support.models import make_settings

    demo = pd.read_csv(demo_path())
    table, production_rows = demo.iloc[:2400], demo.iloc[2400:3000].reset_index(drop=True)
    base = tmp_path / "base.csv"
    table.to_csv(base, index=False)
    frame = pd.concat([pd.read_csv(base), production_rows], ignore_index=True)
    settings = make_settings(tmp_path / "home", candidates=["logistic_regression"], cv_folds=3)
    settings.data.path = str(base)
    client = configure_tracking(settings)
    production = ProductionRows(
        fingerprint=fingerprint(production_rows),
        rows=len(production_rows),
        window_start="2026-11-01T00:00:00+00:00",
        window_end="2026-12-01T00:00:00+00:00",
        share=len(production_rows) / len(frame),
    )
    versions = []
    for keep in (True, False):
        outcome = run_training(
            frame,
            schema=infer_schema(frame, settings.data),
            settings=settings,
            client=client,
            experiment_id=ensure_experiment(client, settings),
            production=production,
            production_frame=production_rows if keep else None,
        )
        versions.append(outcome.version)
        manifest = manifest_of(client, outcome.run_id)
        table_source, taken = manifest.sources
        assert (table_source.uri, table_source.rows) == (str(base.resolve()), 2400)
        assert (taken.role, taken.rows, taken.fingerprint) == (
            "production",
            600,
            production.fingerprint,
        )
        assert taken.window_end == "2026-12-01T00:00:00+00:00" and taken.share == 0.2
        assert (taken.artifact is not None) is keep
    env = cli_env(tmp_path / "home")
    code, out, err = run_cli(env, "verify", versions[0], "--json")
    assert code == 0, err
    assert json.loads(out)["reproduced"] is True
    code, _, err = run_cli(env, "verify", versions[1])
    assert code == 2 and "600 production rows" in err and "not kept" in err
