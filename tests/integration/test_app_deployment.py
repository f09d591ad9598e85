"""The Deployment page under Streamlit's AppTest on a real store: the policy in force, champion
vs challenger per variant with intervals, the steps and rollbacks; no deployment gets words."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from churnops.deployment import controller
from churnops.store import PredictionStore
from tests.support.deployment import seed_traffic, start_policy

pytestmark = pytest.mark.integration
PAGE = str(Path(__file__).resolve().parents[2] / "src/churnops/dashboard/pages/deployment.py")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PredictionStore:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", url)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("CHURNOPS_REGISTRY__MODEL_NAME", "m")
    store = PredictionStore(url)
    store.create()
    return store


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_no_deployment_says_so(store: PredictionStore) -> None:
    app = run_page()
    assert any("No deployment has been set up" in i.value for i in app.info)


def test_shadow_with_labels_shows_both_variants_and_the_log(store: PredictionStore) -> None:
    start_policy(store, "shadow")
    seed_traffic(store, n=300, challenger_skill=0.5, shadow=True)
    controller.rollback(store, model_name="m", reason="too slow", actor="someone")
    app = run_page()
    assert any("No deployment running" in i.value for i in app.info)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Paired requests"] == "300"
    assert metrics["Agreement"].endswith("%")
    table = app.dataframe[0].value
    assert list(table.columns) == ["figure", "champion", "challenger"]
    row = table.set_index("figure").loc["ROC-AUC"]
    assert " to " in row["champion"] and " to " in row["challenger"]  # with their interval
    assert table.set_index("figure").loc["requests", "challenger"] == "300"
    log = app.dataframe[1].value
    assert log["outcome"].tolist() == ["rolled_back", "started"]
    assert log["reason"].iloc[0] == "too slow" and log["by"].iloc[0] == "someone"


def test_canary_in_force_names_its_weight(store: PredictionStore) -> None:
    start_policy(store, "canary", steps=[10.0, 100.0])
    app = run_page()
    assert any("answers 10% of customers" in m.value for m in app.markdown)
