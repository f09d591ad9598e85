"""Rollback's rule and the Retraining page's status, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from churnops.dashboard.retraining_view import loop_status, versions_of
from churnops.retraining.rollback import Observed, rollback_reason
from churnops.settings import RetrainingGuards
from churnops.store.decisions import Decision

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_rollback_only_below_the_previous_champion_by_more_than_the_margin() -> None:
    assert (
        rollback_reason(baseline=0.80, observed=Observed(0.78, "realised", 500), margin=0.03)
        is None
    )
    assert rollback_reason(baseline=0.80, observed=Observed(None, "none", 3), margin=0.03) is None
    reason = rollback_reason(baseline=0.80, observed=Observed(0.70, "estimated", 900), margin=0.03)
    assert reason == (
        "estimated ROC-AUC 0.7000 on 900 rows is below the previous champion's 0.8000 by more than 0.03"
    )


def test_status_counts_the_month_the_cooldown_and_only_unapproved_held_versions() -> None:
    def d(outcome: str, hours: float, to: str | None = None) -> Decision:
        return Decision(
            "retraining", outcome, "m", to_version=to, created_at=NOW - timedelta(hours=hours)
        )

    rows = [
        d("held", 1, "5"),
        d("started", 2),
        d("promoted", 40, "4"),
        d("held", 50, "4"),
        d("started", 51),
        d("started", 24 * 40),
    ]
    status = loop_status(rows, RetrainingGuards(cooldown_hours=24), now=NOW)
    assert status.started_30_days == 2
    assert status.next_allowed == NOW - timedelta(hours=2) + timedelta(hours=24)
    assert [h.to_version for h in status.awaiting_approval] == ["5"]  # v4 was approved since
    assert (
        versions_of(Decision("retraining", "promoted", "m", from_version="4", to_version="5"))
        == "v4 -> v5"
    )
