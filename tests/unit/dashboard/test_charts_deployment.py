"""The Deployment page's pure builders: table cells with intervals, histogram shares, the log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from churnops.dashboard import charts_deployment as charts
from churnops.deployment.compare import Comparison, Estimate, VariantStats
from churnops.store.decisions import Decision


def _stats(variant: str, auc: Estimate | None) -> VariantStats:
    return VariantStats(
        variant=variant, model_version="3", requests=1234, errors=2, error_rate=0.0016,
        p50_ms=0.1, p99_ms=0.4, mean_probability=0.3, churn_rate=0.25, labels=10, roc_auc=auc,
    )  # fmt: skip


def test_table_shows_intervals_and_dashes() -> None:
    comparison = Comparison(
        mode="canary", deployment_id="d",
        variants={"champion": _stats("champion", Estimate(0.8, 0.75, 0.85)), "challenger": _stats("challenger", None)},
        score_counts={"champion": [1] * 10, "challenger": [0] * 9 + [4]},
    )  # fmt: skip
    table = charts.variants_table(comparison).set_index("figure")
    assert table.loc["ROC-AUC", "champion"] == "0.800 (0.750 to 0.850)"
    assert table.loc["ROC-AUC", "challenger"] == "-"
    assert table.loc["requests", "champion"] == "1,234"
    assert table.loc["error rate", "champion"] == "0.16%"
    figure = charts.score_histogram(comparison)
    shares = {bar.name: list(bar.y) for bar in figure.data}
    assert shares["champion"] == pytest.approx([0.1] * 10)
    assert shares["challenger"][-1] == 1.0


def test_decisions_log_newest_first_with_reason() -> None:
    decision = Decision(
        kind="deployment", outcome="stepped", model_name="m", to_version="2", from_version="1",
        actor="auto", evidence={"reason": "no regression", "mode": "canary", "weight": 25.0},
        created_at=datetime(2026, 12, 3, tzinfo=UTC),
    )  # fmt: skip
    table = charts.decisions_table([decision])
    assert table.iloc[0].to_dict()["reason"] == "no regression"
    assert table.iloc[0]["weight"] == 25.0
    assert charts.decisions_table([]).columns[0] == "when"
