"""The CLI as a user runs it: another table through flags alone, JSON output, readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnops.cli.main import app

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with its own MLflow store, whatever the developer's env says."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key in list(__import__("os").environ):
        if key.startswith("CHURNOPS_"):
            monkeypatch.delenv(key)
    (tmp_path / "params.yaml").write_text(
        "training:\n  budget_minutes: 0.01\n  candidates: [logistic_regression, lightgbm]\n"
    )
    return tmp_path


def loans(n: int = 1500, seed: int = 7) -> pd.DataFrame:
    """A credit-default table: nothing in common with the demo data's names or target."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n)
    debt_ratio = rng.uniform(0, 1, n)
    grade = rng.choice(["A", "B", "C", "D"], n)
    logit = 3 * debt_ratio - 0.00003 * income + (grade == "D") * 1.2 - 1.5
    return pd.DataFrame(
        {
            "loan_ref": [f"L{i}" for i in range(n)],
            "income": income,
            "debt_ratio": debt_ratio,
            "grade": grade,
            "defaulted": np.where(
                rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "default", "paid"
            ),
        }
    )


@pytest.mark.slow  # `churnops train` on a generated table
def test_other_table_trains_through_flags_alone(isolated: Path) -> None:
    loans().to_parquet(isolated / "loans.parquet")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            "loans.parquet",
            "--target",
            "defaulted",
            "--positive-label",
            "default",
            "--id-column",
            "loan_ref",
            "--model-name",
            "default-model",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model_name"] == "default-model" and summary["promoted"] is True
    assert summary["winner"]["test_roc_auc"] > 0.6
    assert {c["name"] for c in summary["candidates"]} == {"logistic_regression", "lightgbm"}
    client = MlflowClient(tracking_uri=f"sqlite:///{isolated / '.churnops' / 'mlflow.db'}")
    eda = [a.path for a in client.list_artifacts(summary["run_id"], "eda")]
    assert eda == ["eda/eda.html"], "the EDA report is logged with the training run"
    listed = CliRunner().invoke(app, ["models", "list", "--model-name", "default-model", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["aliases"] == ["challenger", "champion"]


def test_bad_inputs_give_one_readable_error(isolated: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "--data", "nope.csv", "--target", "x"])
    assert missing.exit_code == 2
    assert "input not found: nope.csv" in missing.output and "Traceback" not in missing.output
    frame = loans()
    frame.loc[:5, "loan_ref"] = "L1"
    frame.to_csv(isolated / "dupes.csv", index=False)
    dupes = runner.invoke(
        app,
        [
            "train",
            "--data",
            "dupes.csv",
            "--target",
            "defaulted",
            "--positive-label",
            "default",
            "--id-column",
            "loan_ref",
        ],
    )
    assert dupes.exit_code == 2 and "loan_ref" in dupes.output and "more than once" in dupes.output
    wrong_target = runner.invoke(app, ["train", "--data", "dupes.csv", "--target", "nope"])
    assert wrong_target.exit_code == 2 and "nope" in wrong_target.output
    rollback = runner.invoke(app, ["models", "rollback", "--model-name", "ghost"])
    assert rollback.exit_code == 2 and "ghost" in rollback.output
    (isolated / "params.yaml").write_text("training: [oops")
    bad_yaml = runner.invoke(app, ["train"])
    assert bad_yaml.exit_code == 2 and "not valid YAML" in bad_yaml.output


def test_eda_command_writes_a_report(isolated: Path) -> None:
    loans(300).to_csv(isolated / "loans.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "eda",
            "--data",
            "loans.csv",
            "--target",
            "defaulted",
            "--positive-label",
            "default",
            "-o",
            "out/eda.html",
        ],
    )
    assert result.exit_code == 0, result.output
    html = (isolated / "out" / "eda.html").read_text()
    assert "debt_ratio" in html and "grade" in html
