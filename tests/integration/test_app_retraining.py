"""The Retraining page under Streamlit's AppTest on a real store: the loop's decisions newest
first with their reasons, the cooldown and monthly budget, a held challenger waiting for approval;
no decisions and an unreachable store get words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from churnops.store import PredictionStore
from churnops.store.decisions import Decision, record_decision

pytestmark = pytest.mark.integration
PAGE = str(Path(__file__).resolve().parents[2] / "src/churnops/dashboard/pages/retraining.py")
NAME = "churn-model"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", url)
    return url


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_decisions_newest_first_with_reasons_cooldown_and_a_held_challenger(app_env: str) -> None:
    now = datetime.now(UTC)

    def at(hours: float) -> datetime:
        return now - timedelta(hours=hours)

    decisions = [
        Decision(
            "retraining",
            "started",
            NAME,
            trigger="dataset_drift",
            from_version="1",
            evidence={"reason": "dataset drift in the last 3 checks"},
            created_at=at(30),
        ),
        Decision(
            "retraining",
            "rejected",
            NAME,
            trigger="dataset_drift",
            from_version="1",
            to_version="2",
            evidence={"reasons": ["production: roc_auc 0.7 vs champion 0.8, not better by 0.002"]},
            created_at=at(29),
        ),
        Decision(
            "retraining",
            "started",
            NAME,
            trigger="performance",
            from_version="1",
            evidence={"reason": "realised ROC-AUC 0.090 below training"},
            created_at=at(2),
        ),
        Decision(
            "retraining",
            "held",
            NAME,
            trigger="performance",
            from_version="1",
            to_version="3",
            evidence={"reasons": ["production: roc_auc +0.0800"]},
            created_at=at(1),
        ),
        Decision(
            "retraining",
            "skipped",
            NAME,
            trigger="dataset_drift",
            evidence={"reason": "cooldown: the last retraining started 1.5 h ago"},
            created_at=at(0.5),
        ),
    ]
    with PredictionStore(app_env) as store:
        store.create()
        for d in decisions:
            record_decision(store, d)

    app = run_page()
    table = app.dataframe[0].value
    assert list(table["outcome"]) == ["skipped", "held", "started", "rejected", "started"]
    assert table["why"].iloc[0] == "cooldown: the last retraining started 1.5 h ago"
    assert table["versions"].iloc[1] == "v1 -> v3"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Retrainings in 30 days"] == "2 of 4"
    assert metrics["Cooldown until"] == f"{at(2) + timedelta(hours=24):%Y-%m-%d %H:%M}"
    (waiting,) = app.warning
    assert (
        "v3 is waiting for approval" in waiting.value
        and "churnops models promote 3" in waiting.value
    )


def test_no_decisions_and_an_unreachable_store_get_words(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PredictionStore(app_env) as store:
        store.create()
    app = run_page()
    assert "No retraining decisions yet" in app.info[0].value
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = run_page()
    assert "cannot be read right now" in app.error[0].value
