"""`churnops deploy ...` on a private copy of the trained registry (with a second version):
start, status, switch, rollback, promote; every refusal is one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner, Result

from churnops.cli.main import app
from churnops.modeling import registry
from churnops.store import PredictionStore, read_decisions
from churnops.store.deployment import read_policy
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration
NAME = "churn-model"


@pytest.fixture
def home(trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = Path(trained_model.settings.resolved_tracking_uri().removeprefix("sqlite:///"))
    copy = tmp_path / "mlflow.db"
    shutil.copy(source, copy)
    uri = f"sqlite:///{copy}"
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", uri)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'predictions.db'}")
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = client.get_model_version(NAME, "1")
    registry.register_version(
        client, name=NAME, model_uri=str(first.source), run_id=first.run_id, tags={}
    )
    return tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, ["deploy", *args])


def _one_error(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.output


@pytest.mark.slow
def test_blue_green_switch_rollback_and_canary_promote(home: Path) -> None:
    _one_error(_run("status"), "")  # no store yet: read-only commands never create one
    _one_error(_run("shadow", "9"), "no version 9")
    _one_error(_run("blue-green", "1"), "already the champion")
    assert _run("blue-green", "2").exit_code == 0
    _one_error(_run("canary", "2"), "is running")
    switched = _run("switch")
    assert switched.exit_code == 0 and "challenger answers" in switched.output
    assert _run("rollback", "--reason", "looked wrong").exit_code == 0
    _one_error(_run("switch"), "no deployment")
    _one_error(_run("canary", "2", "--steps", "50,5"), "grow")
    assert _run("canary", "2", "--steps", "10,100", "--manual").exit_code == 0
    status = _run("status", "--json")
    assert status.exit_code == 0
    payload = json.loads(status.output)
    assert payload["policy"]["mode"] == "canary" and payload["policy"]["weight"] == 10.0
    assert payload["comparison"]["variants"]["challenger"]["requests"] == 0
    table = _run("status")
    assert "challenger" in table.output and "ROC-AUC" in table.output
    assert _run("promote", "--reason", "looks good").exit_code == 0
    store = PredictionStore(f"sqlite:///{home / 'predictions.db'}")
    try:
        policy = read_policy(store, NAME)
        assert policy is not None and policy.mode == "none" and policy.champion_version == "2"
        outcomes = [d.outcome for d in read_decisions(store, kind="deployment")]
        assert outcomes == ["promoted", "started", "rolled_back", "switched", "started"]
    finally:
        store.close()
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
