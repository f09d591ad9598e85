"""Decisions are announced on the alert webhook once: a real HTTP receiver on 127.0.0.1 and a
real SQLite store; a decision whose idempotency key was taken is neither stored nor posted.
And `churnops retrain` refuses contradictory options in one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.retraining.context import LoopContext
from churnops.settings import Settings
from churnops.store import PredictionStore
from churnops.store.decisions import Decision, read_decisions


def test_a_recorded_decision_is_posted_once_and_a_duplicate_not_at_all(
    webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, received = webhook
    settings = Settings(home=str(tmp_path))
    settings.monitoring.webhook_url = url
    now = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
    with PredictionStore(f"sqlite:///{tmp_path / 'p.db'}") as store:
        store.create()
        ctx = LoopContext(settings, store, client=None, now=now, actor="cron")
        decision = Decision(
            kind="retraining",
            outcome="rejected",
            model_name="churn-model",
            trigger="dataset_drift",
            idempotency_key="retrain:churn-model:dataset_drift:w1:result",
            from_version="4",
            to_version="5",
            evidence={
                "reasons": ["production: roc_auc 0.71 vs champion 0.74, not better by 0.002"]
            },
        )
        recorded = ctx.record(decision)
        assert recorded is not None and recorded.created_at == now and recorded.actor == "cron"
        assert ctx.record(decision) is None
        assert len(read_decisions(store)) == 1
    (posted,) = received
    assert posted["kind"] == "retraining_rejected" and posted["action"] == "rejected"
    assert posted["message"] == (
        "churn-model retraining rejected v5 (champion was v4) [dataset_drift]: "
        "production: roc_auc 0.71 vs champion 0.74, not better by 0.002"
    )
    assert posted["details"]["to_version"] == "5" and posted["details"]["actor"] == "cron"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--check", "--force"], "choose one of --check, --force and --backtest"),
        (["--since", "2026-01-01"], "--since goes with --backtest"),
        (["--backtest", "--since", "yesterday-ish"], "invalid --since: bad date"),
    ],
)
def test_contradictory_retrain_options_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["retrain", *args],
        env={"CHURNOPS_HOME": str(tmp_path), "CHURNOPS_CONFIG": str(tmp_path / "x.yaml")},
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
