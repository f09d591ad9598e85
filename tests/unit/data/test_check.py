"""`churnops data check`: the verdict on a table, as JSON and as an exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.data.check import check_table
from churnops.datasets import demo_data_settings
from churnops.settings import DataSettings


@pytest.fixture(autouse=True)
def _no_churnops_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("CHURNOPS_")]:
        monkeypatch.delenv(key)


def test_the_bundled_table_is_fit_to_train() -> None:
    result = check_table(demo_data_settings())
    assert result.ok and result.rows == 7043 and result.target == "churn"
    assert result.positive_label == "Yes" and 0.2 < (result.positive_rate or 0) < 0.3
    assert "customer_id" not in result.features and len(result.fingerprint) == 64


def test_every_problem_is_listed(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ref": ["a", "a", *[f"r{i}" for i in range(28)]],
            "empty": [None] * 30,
            "flag": ["y"] * 25 + ["n"] * 5,
        }
    )
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = check_table(
        DataSettings(path=str(tmp_path / "bad.csv"), target="flag", id_column="ref")
    )
    assert not result.ok
    text = " | ".join(str(p) for p in result.problems)
    assert "too few rows of one class" in text
    assert "appear more than once" in text and "every value is missing" in text


def test_cli_writes_json_and_exits_1_on_problems(tmp_path: Path) -> None:
    pd.DataFrame({"x": range(30), "y": ["a"] * 28 + ["b"] * 2}).to_csv("t.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "data",
            "check",
            "-d",
            "t.csv",
            "--target",
            "y",
            "--positive-label",
            "b",
            "-o",
            "out/c.json",
        ],
    )
    assert result.exit_code == 1
    written = json.loads((tmp_path / "out" / "c.json").read_text())
    assert written["ok"] is False and written["rows"] == 30
    assert any("too few rows" in p for p in written["problems"])
    ok = CliRunner().invoke(app, ["data", "check", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["target"] == "churn"
    missing = CliRunner().invoke(app, ["data", "check", "--data", "nope.csv"])
    assert missing.exit_code == 2 and "input not found: nope.csv" in missing.output
    refused = CliRunner().invoke(app, ["data", "check", "--data", "", "--target", ""])
    assert refused.exit_code == 2, "an empty value is refused, never taken as 'not given'"
    # ... except through `churnops project`, as the MLproject's entry points call commands.
    project = CliRunner().invoke(
        app, ["project", "data", "check", "--data", "", "--target", "", "--json"]
    )
    assert project.exit_code == 0, project.output
    assert json.loads(project.stdout)["target"] == "churn", "the bundled table"
