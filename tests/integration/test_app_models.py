"""The Models page under Streamlit's AppTest on a real MLflow registry (a private copy of the
trained champion's SQLite store, with a second version registered): versions with aliases, metrics
and history, two versions side by side, promote and roll back recorded like the CLI's; no model
and an unreachable registry get words."""

from __future__ import annotations

import getpass
import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from streamlit.testing.v1 import AppTest

from churnops.modeling import registry
from churnops.settings import get_settings
from churnops.store import PredictionStore, read_decisions
from tests.support.models import TrainedModel
from tests.support.stores import free_port

pytestmark = pytest.mark.integration
PAGE = str(Path(__file__).resolve().parents[2] / "src/churnops/dashboard/pages/models.py")
NAME = "churn-model"


@pytest.fixture
def private_registry(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MlflowClient:
    """A copy of the champion's registry (artifacts stay where they are, read only) with v2."""
    source = Path(trained_model.settings.resolved_tracking_uri().removeprefix("sqlite:///"))
    copy = tmp_path / "mlflow.db"
    shutil.copy(source, copy)
    uri = f"sqlite:///{copy}"
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", uri)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = client.get_model_version(NAME, "1")
    moves = ("churnops.promoted", "churnops.rolled_back", "churnops.gate")
    tags = {k: v for k, v in first.tags.items() if not k.startswith(moves)}  # training tags only
    registry.register_version(
        client, name=NAME, model_uri=first.source, run_id=first.run_id, tags=tags
    )
    return client


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def button(app: AppTest, label: str):
    return next(b for b in app.button if b.label == label)


@pytest.mark.slow
def test_versions_with_aliases_metrics_history_and_comparison(
    private_registry: MlflowClient,
) -> None:
    app = run_page()

    versions = app.dataframe[0].value
    assert list(versions["version"]) == ["2", "1"]
    assert versions.set_index("version").loc["1", "aliases"] == "champion"
    assert versions.set_index("version").loc["2", "aliases"] == "challenger"
    v1 = private_registry.get_model_version(NAME, "1")
    assert versions.set_index("version").loc["1", "test ROC-AUC"] == pytest.approx(
        float(v1.tags["churnops.test_roc_auc"])
    )
    assert "Champion: **v1**" in app.markdown[0].value
    history = app.dataframe[1].value
    promoted = history[history["action"] == "promoted"]
    assert promoted["why"].iloc[0].startswith("training gate")
    assert "gate passed" in set(history["action"])
    comparison = app.table[0].value
    assert {"v1", "v2", "b - a"} <= set(comparison.columns)
    assert comparison.loc["test_roc_auc", "b - a"] == "+0.0000"  # the same model twice
    assert comparison.loc["test_roc_auc", "v1"] == f"{float(v1.tags['churnops.test_roc_auc']):.4f}"
    assert len(app.get("image")) == 2, [c.value for c in app.caption]  # the logged ROC plots
    assert len(app.get("plotly_chart")) == 1
    assert any("nothing to roll back to" in c.value for c in app.caption)


@pytest.mark.slow
def test_promote_and_roll_back_with_a_reason_are_recorded_like_the_cli(
    private_registry: MlflowClient,
) -> None:
    app = run_page()
    app.text_input(key="promote-why").input("recall matters more this quarter")
    app.checkbox[0].check()
    button(app, "Promote").click().run()

    assert not app.exception, [e.value for e in app.exception]
    assert any("v2 is now champion" in s.value for s in app.success)
    assert str(registry.alias_version(private_registry, NAME, "champion").version) == "2"
    tags = private_registry.get_model_version(NAME, "2").tags
    assert tags["churnops.promoted_why"] == "recall matters more this quarter"
    assert tags["churnops.promoted_by"] == getpass.getuser()
    assert tags["churnops.promoted_at"]
    history_tag = private_registry.get_registered_model(NAME).tags[registry.HISTORY_TAG]
    assert json.loads(history_tag)[-1] == "1"

    app = run_page()
    assert "Champion: **v2**" in app.markdown[0].value
    assert any("back to **v1**" in m.value for m in app.markdown)
    app.text_input(key="rollback-why").input("complaints from the retention team")
    app.checkbox[1].check()
    button(app, "Roll back").click().run()

    assert any("v1 is champion again" in s.value for s in app.success)
    assert str(registry.alias_version(private_registry, NAME, "champion").version) == "1"
    back_to = private_registry.get_model_version(NAME, "1").tags
    back_from = private_registry.get_model_version(NAME, "2").tags
    assert back_to["churnops.rolled_back_to_why"] == "complaints from the retention team"
    assert back_from["churnops.rolled_back_from_why"] == "complaints from the retention team"
    # Both moves are decision rows too, with who and why, as `churnops models` records them.
    with PredictionStore(get_settings().resolved_database_url()) as store:
        rows = read_decisions(store, model_name=NAME)
    assert [(d.outcome, d.from_version, d.to_version) for d in rows] == [
        ("rolled_back", "2", "1"),
        ("promoted", "1", "2"),
    ]
    assert {d.actor for d in rows} == {getpass.getuser()}
    assert rows[1].evidence["reason"] == "recall matters more this quarter"


@pytest.mark.slow
def test_no_change_without_a_reason_or_a_confirmation(private_registry: MlflowClient) -> None:
    app = run_page()
    app.checkbox[0].check()
    button(app, "Promote").click().run()  # no reason
    assert any("Give a reason" in e.value for e in app.error)

    app.text_input(key="promote-why").input("why not")
    app.checkbox[0].uncheck()
    button(app, "Promote").click().run()  # no confirmation
    assert any("confirmation" in e.value for e in app.error)
    assert str(registry.alias_version(private_registry, NAME, "champion").version) == "1"
    assert "churnops.promoted_why" not in private_registry.get_model_version(NAME, "2").tags


def test_no_registered_model_says_how_to_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))

    app = run_page()

    assert "No registered model named `churn-model`" in app.info[0].value
    assert "churnops train" in app.info[0].value


def test_unreachable_registry_gets_words_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")

    app = run_page()

    assert "cannot be read right now" in app.error[0].value
    assert "tracking_uri" in app.error[0].value
