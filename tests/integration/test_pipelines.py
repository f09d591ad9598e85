"""churnops driven by other tools, as their users run them: `dvc repro` over the pipeline
`churnops export dvc` writes (in a temporary git repository), and `mlflow run` over the MLproject
at the repository root. Tiny tables and settings: each training takes seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.support.services import needs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY_TRAINING = {"budget_minutes": 0.01, "cv_folds": 3, "candidates": ["logistic_regression"]}


def loans(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    debt = rng.uniform(0, 1, n)
    grade = rng.choice(["A", "B", "C"], n)
    logit = 3 * debt + (grade == "C") * 1.0 - 2.0
    return pd.DataFrame(
        {
            "ref": [f"R{i}" for i in range(n)],
            "debt": debt.round(4),
            "grade": grade,
            "bad": np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no"),
        }
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The developer's environment without churnops/MLflow settings, this venv first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHURNOPS_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_dvc_repro_runs_changed_stages_only(tmp_path: Path) -> None:
    if not (BIN / "dvc").exists():
        needs("dvc", "install the dvc extra (make setup installs it)")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    loans().to_csv(project / "data" / "loans.csv", index=False)
    (project / "params.yaml").write_text(yaml.safe_dump({"training": TINY_TRAINING}))
    env = clean_env()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    assert run([*git, "init", "-q"], project, env).returncode == 0
    exported = run(
        [
            str(BIN / "churnops"),
            "export",
            "dvc",
            str(project),
            "--data",
            "project/data/loans.csv",  # from where the command runs; params.yaml gets it from DIR
            "--target",
            "bad",
            "--positive-label",
            "yes",
            "--id-column",
            "ref",
        ],
        tmp_path,
        env,
    )
    assert exported.returncode == 0, exported.stderr
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    assert list(pipeline["stages"]) == ["validate", "eda", "train", "evaluate"]
    assert "data/loans.csv" in pipeline["stages"]["train"]["deps"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["training"] == TINY_TRAINING, "the project's own settings are kept"
    assert params["data"]["target"] == "bad" and params["data"]["path"] == "data/loans.csv"
    assert run([str(BIN / "dvc"), "init", "-q"], project, env).returncode == 0
    assert run([*git, "add", "-A"], project, env).returncode == 0
    assert run([*git, "commit", "-qm", "pipeline"], project, env).returncode == 0

    first = run([str(BIN / "dvc"), "repro"], project, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert ran_stages(first.stdout) == ["validate", "eda", "train", "evaluate"]
    check = json.loads((project / "reports" / "data_check.json").read_text())
    assert check["ok"] is True and check["rows"] == 600
    summary = json.loads((project / "reports" / "train.json").read_text())
    assert summary["version"] == "1"

    second = run([str(BIN / "dvc"), "repro"], project, env)
    assert second.returncode == 0 and ran_stages(second.stdout) == []
    assert "up to date" in second.stdout

    params["training"]["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    third = run([str(BIN / "dvc"), "repro"], project, env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert ran_stages(third.stdout) == ["train", "evaluate"]
    assert json.loads((project / "reports" / "train.json").read_text())["version"] == "2"

    shown = run([str(BIN / "dvc"), "metrics", "show", "--json"], project, env)
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)[""]["data"]["reports/evaluation/metrics.json"]["data"]
    written = json.loads((project / "reports/evaluation/metrics.json").read_text())
    assert metrics == written and 0.5 < metrics["roc_auc"] <= 1.0 and metrics["rows"] == 120


def test_mlflow_run_train_predict_monitor(tmp_path: Path) -> None:
    """`mlflow run <repo> -e train -P data=...`: churnops trains inside the project's run."""
    table = tmp_path / "loans.csv"
    loans().to_csv(table, index=False)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"training": TINY_TRAINING}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = clean_env(
        MLFLOW_TRACKING_URI=uri,
        CHURNOPS_HOME=str(tmp_path / "home"),
        CHURNOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'predictions.db'}",
    )
    mlflow = [str(BIN / "mlflow"), "run", str(REPO_ROOT), "--env-manager", "local"]
    tiny = ["-P", f"config={config}"]
    trained = run(
        [
            *mlflow,
            "-e",
            "train",
            "-P",
            f"data={table}",
            "-P",
            "target=bad",
            "-P",
            "positive_label=yes",
            "-P",
            "id_column=ref",
            "-P",
            f"config={config}",
        ],
        tmp_path,
        env,
    )
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    client = MlflowClient(uri, uri)
    version = client.get_model_version_by_alias("churn-model", "champion")
    project_run = client.get_run(version.run_id)
    assert project_run.data.tags.get("mlflow.project.entryPoint") == "train"
    assert project_run.data.params["target"] == "bad", "churnops logged into the project's run"
    assert project_run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "lineage")}
    assert artifacts == {"lineage/manifest.json"}, "the project's run carries the lineage"

    scored = tmp_path / "scored.csv"
    predicted = run(
        [*mlflow, "-e", "predict", "-P", f"input={table}", "-P", f"output={scored}", *tiny],
        tmp_path,
        env,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len(pd.read_csv(scored)) == 600

    monitored = run(
        [*mlflow, "-e", "monitor", "-P", "window=1d", "-P", f"output_dir={tmp_path / 'r'}", *tiny],
        tmp_path,
        env,
    )
    # Exit 1 means "drift found" (the whole table against the held-out reference may drift):
    # either way the check ran over the batch just scored and wrote its report.
    assert monitored.returncode == 0 or "drift found" in monitored.stderr, monitored.stderr
    (report,) = (tmp_path / "r").glob("monitoring-*.json")
    assert json.loads(report.read_text())["n_rows"] == 600
