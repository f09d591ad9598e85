"""The reproducibility commands fail on bad arguments in one line, before the heavy imports, and
create nothing (as tests/integration/test_cli_safety.py checks for the others)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HEAVY = ("mlflow", "sklearn", "pandas", "pyarrow", "xgboost", "scipy", "sqlalchemy")


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNOPS_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = "import sys; from churnops.cli.main import app; sys.exit(app())"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["verify", "1"], "no MLflow tracking store at"),
        (["verify", "1", "--data", "missing.csv"], "--data file not found: missing.csv"),
        (["lineage", "some-id"], "no MLflow tracking store at"),
        (["lineage"], "give either a PREDICTION_ID or --customer ID"),
        (["lineage", "x", "--customer", "y"], "give either a PREDICTION_ID or --customer ID"),
        (["evaluate"], "no MLflow tracking store at"),
        (["evaluate", "--from-summary", "nope.json"], "--from-summary file not found"),
        (["evaluate", "--data", "missing.csv"], "--data file not found: missing.csv"),
        (["data", "check", "--data", "missing.csv"], "input not found: missing.csv"),
        (["export", "dvc", "--data", "missing.csv"], "input not found: missing.csv"),
    ],
)
def test_bad_arguments_fail_before_heavy_imports_and_create_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = _cli(tmp_path, *args)
    messages = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(messages) == 1 and expected in messages[0], messages
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert not imported & set(HEAVY)
    assert list(tmp_path.iterdir()) == [], "nothing created"
