"""Each training stage called alone on small synthetic customers; the ones that fit models are
`slow`, and one of them runs the stages by hand into a real MLflow store (what a flow will do)."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from churnops.data.schema import Schema, infer_schema
from churnops.modeling import runlog, stages
from churnops.modeling.calibration import Calibrator
from churnops.modeling.leakage import LeakageFlag
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.registry import CHALLENGER, CHAMPION
from churnops.modeling.scorer import Scorer
from churnops.settings import BusinessSettings, DataSettings, RiskBands, TrainingSettings
from tests.unit.monitoring.synthetic import make_customers

TARGET = DataSettings(target="churn", positive_label="Yes", id_column="customer_id")


def _customers(n: int = 600, seed: int = 5) -> tuple[pd.DataFrame, Schema]:
    frame = make_customers(n, seed=seed)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(n)])
    return frame, infer_schema(frame, TARGET)


def _result(name: str, cv_auc: float, test_auc: float) -> stages.CandidateResult:
    """A candidate as tuning leaves it; selection reads only its name and metrics."""
    return stages.CandidateResult(
        name=name,
        params={},
        cv={"roc_auc": cv_auc},
        test={"roc_auc": test_auc},
        calibration="none",
        threshold=0.5,
        threshold_objective="f1",
        n_trials=1,
        truncated=False,
        pipeline=Pipeline([("model", LogisticRegression())]),
        calibrator=Calibrator(),
        test_probability=np.zeros(3),
    )


def test_split_is_stratified_reindexed_and_repeatable() -> None:
    frame, schema = _customers()

    split = stages.split_data(frame, schema, test_size=0.25, seed=3)

    assert len(split.train) == 450 and len(split.test) == 150
    assert list(split.train.index) == list(range(450))
    assert np.array_equal(split.y_test, (split.test["churn"] == "Yes").to_numpy().astype(int))
    assert abs(split.y_train.mean() - split.y_test.mean()) < 0.01  # stratified on the target
    again = stages.split_data(frame, schema, test_size=0.25, seed=3)
    assert again.test["customer_id"].tolist() == split.test["customer_id"].tolist()
    other = stages.split_data(frame, schema, test_size=0.25, seed=4)
    assert other.test["customer_id"].tolist() != split.test["customer_id"].tolist()


def test_leakage_check_flags_a_planted_copy_of_the_target_only() -> None:
    frame, _ = _customers()
    frame["refund_issued"] = np.where(frame["churn"] == "Yes", "yes", "no")  # known after churn
    schema = infer_schema(frame, TARGET)
    split = stages.split_data(frame, schema, test_size=0.25, seed=3)

    check = stages.check_leakage(split, schema, limit=0.98, seed=3)

    assert [f.name for f in check.flags] == ["refund_issued"]
    assert check.feature_aucs["refund_issued"] == pytest.approx(1.0)
    assert set(check.feature_aucs) == set(schema.feature_names)
    assert max(v for k, v in check.feature_aucs.items() if k != "refund_issued") < 0.98


def test_cv_folds_cover_the_training_rows_once_each() -> None:
    frame, schema = _customers()
    split = stages.split_data(frame, schema, test_size=0.25, seed=3)

    folds = stages.encode_cv_folds(split, schema, folds=3, seed=3)

    assert len(folds) == 3
    held = np.sort(np.concatenate([f.eval_index for f in folds]))
    assert np.array_equal(held, np.arange(len(split.train)))
    for fold in folds:
        assert fold.fit_x.shape[0] + fold.eval_x.shape[0] == len(split.train)
        assert fold.fit_x.shape[1] == fold.eval_x.shape[1]
        assert np.array_equal(fold.eval_y, split.y_train[fold.eval_index])


def test_candidate_deadline_shares_what_is_left_of_the_budget() -> None:
    # 100 s budget, 40 s spent, 3 candidates left: each gets 20 s from now.
    assert stages.candidate_deadline(
        started=1000.0, budget_seconds=100.0, remaining=3, now=1040.0
    ) == pytest.approx(1060.0)
    # Budget spent: the deadline is now (each candidate still runs its first trial).
    assert stages.candidate_deadline(
        started=1000.0, budget_seconds=100.0, remaining=2, now=1500.0
    ) == pytest.approx(1500.0)


def test_winner_is_the_best_cv_score_and_model_flags_follow_feature_flags() -> None:
    feature_flag = LeakageFlag("feature", "refund_issued", 0.999, 0.98)
    results = [
        _result("random_forest", 0.84, 0.83),
        _result("xgboost", 0.86, 0.995),
        _result("lightgbm", 0.86, 0.85),
    ]

    selection = stages.select_winner(results, [feature_flag], model_limit=0.99)

    assert selection.winner.name == "xgboost"  # tie on CV: the shorter name
    assert [(f.kind, f.name) for f in selection.leakage_flags] == [
        ("feature", "refund_issued"),
        ("model", "xgboost"),
    ]
    assert [r.name for r in selection.candidates] == [r.name for r in results]
    with pytest.raises(ValueError, match="no candidate"):
        stages.select_winner([], [], model_limit=0.99)


@pytest.mark.slow
def test_bundle_example_is_made_up_not_a_training_row(
    tuned: tuple[stages.Split, Schema, stages.Selection],
) -> None:
    split, schema, selection = tuned
    packaged = stages.package_bundle(
        selection, split, schema, risk_bands=RiskBands(), data_fingerprint="abc"
    )

    (example,) = packaged.bundle.input_example
    assert schema.id_column not in example
    assert set(example) == set(schema.feature_names)
    features = split.train[schema.feature_names].astype(str)
    as_text = {k: str(v) for k, v in example.items()}
    matches = (features == pd.Series(as_text)).all(axis=1)
    assert not matches.any(), "the example is a real training row"


@pytest.fixture
def tuned() -> tuple[stages.Split, Schema, stages.Selection]:
    frame, schema = _customers()
    split = stages.split_data(frame, schema, test_size=0.25, seed=3)
    folds = stages.encode_cv_folds(split, schema, folds=3, seed=3)
    trials: list[tuple[int, float]] = []
    result = stages.tune_candidate(
        "logistic_regression",
        split,
        folds,
        schema,
        training=TrainingSettings(seed=3, n_jobs=1),
        business=BusinessSettings(),
        deadline=time.monotonic(),  # defaults only
        on_trial=lambda n, s: trials.append((n, s)),
    )
    assert result.n_trials == 1 and result.truncated is True
    assert [n for n, _ in trials] == [0] and trials[0][1] == pytest.approx(result.cv["roc_auc"])
    return split, schema, stages.select_winner([result], [], model_limit=0.99)


@pytest.mark.slow
def test_tuned_candidate_is_fitted_on_train_and_scored_on_test(
    tuned: tuple[stages.Split, Schema, stages.Selection],
) -> None:
    split, _, selection = tuned
    result = selection.winner

    assert 0.7 < result.cv["roc_auc"] < 0.95  # the synthetic churn is learnable, not trivial
    assert 0.7 < result.test["roc_auc"] < 0.95
    assert result.test_probability.shape == (len(split.test),)
    raw = result.pipeline.predict_proba(split.test)[:, 1]
    assert np.allclose(result.calibrator.apply(raw), result.test_probability)
    assert 0.0 < result.threshold < 1.0


@pytest.mark.slow
def test_packaged_bundle_scores_like_the_winner_and_carries_the_reference(
    tuned: tuple[stages.Split, Schema, stages.Selection],
) -> None:
    split, schema, selection = tuned

    packaged = stages.package_bundle(
        selection, split, schema, risk_bands=RiskBands(), data_fingerprint="f" * 64
    )

    bundle = packaged.bundle
    assert bundle.candidate == "logistic_regression" and bundle.data_fingerprint == "f" * 64
    assert bundle.profile.n_rows == len(split.train)
    assert bundle.profile.scores is not None and bundle.profile.scores.count == len(split.test)
    assert bundle.metrics["test"] == selection.winner.test
    assert set(packaged.importance) == set(Scorer(bundle).encoder.feature_names)
    assert packaged.importance["tenure"] > 0.0


@pytest.mark.slow
def test_stages_by_hand_log_register_and_gate_in_a_real_store(
    tuned: tuple[stages.Split, Schema, stages.Selection], tmp_path: Path
) -> None:
    """Run, register and gate the way a flow will: the client and run id passed, no active run."""
    split, schema, selection = tuned
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("stages", artifact_location=str(tmp_path / "art"))
    packaged = stages.package_bundle(
        selection, split, schema, risk_bands=RiskBands(), data_fingerprint="a" * 64
    )

    def train_once() -> tuple[str, stages.GateResult]:
        run_id = client.create_run(experiment).info.run_id
        runlog.log_selection(client, run_id, selection, allow_leakage=False)
        info = runlog.log_model(client, run_id, packaged, selection, split.y_test)
        version = stages.register_model(
            client, "m", info.model_uri, run_id=run_id, selection=selection, fingerprint="a" * 64
        )
        gate = stages.promotion_gate(
            client, "m", version, selection, split, margin=0.002, allow_leakage=False
        )
        runlog.log_gate(client, run_id, gate)
        return run_id, gate

    run_id, first = train_once()

    assert mlflow.active_run() is None
    assert first.decision.promote and first.champion_before == "none"
    assert first.aliases == [CHALLENGER, CHAMPION]
    run = client.get_run(run_id)
    assert run.data.params["winner"] == "logistic_regression"
    assert run.data.metrics["test_roc_auc"] == pytest.approx(selection.winner.test["roc_auc"])
    assert run.data.tags["churnops.promoted"] == "true"
    version = client.get_model_version("m", "1")
    assert version.run_id == run_id and version.tags["churnops.leakage"] == "false"
    served, _ = load_scorer("models:/m@champion")
    assert np.allclose(
        served.score_frame(split.test).probability, selection.winner.test_probability
    )

    _, second = train_once()  # the same model again: not better by the margin

    assert not second.decision.promote and second.champion_before == "1"
    assert second.aliases == [CHALLENGER]
    assert "does not beat champion" in second.decision.reason
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == "1"
