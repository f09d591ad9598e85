"""Pure builders of the Retraining page: the decisions as a table, and where the loop stands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from churnops.settings import RetrainingGuards
from churnops.store.decisions import Decision

COLUMNS = ("when (UTC)", "outcome", "trigger", "versions", "by", "why")


def reason_of(decision: Decision) -> str:
    """The decision's reasons in one line."""
    evidence = decision.evidence
    reasons = evidence.get("reasons") or [evidence.get("reason") or ""]
    return "; ".join(str(r) for r in reasons if r)


def versions_of(decision: Decision) -> str:
    if decision.from_version and decision.to_version:
        return f"v{decision.from_version} -> v{decision.to_version}"
    if decision.to_version:
        return f"v{decision.to_version}"
    return f"v{decision.from_version}" if decision.from_version else ""


def decisions_table(decisions: Sequence[Decision]) -> pd.DataFrame:
    """Newest first, one row per decision."""
    rows = [
        (
            d.created_at.strftime("%Y-%m-%d %H:%M") if d.created_at else "",
            d.outcome,
            d.trigger or "",
            versions_of(d),
            d.actor or "",
            reason_of(d),
        )
        for d in decisions
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


@dataclass(frozen=True)
class LoopStatus:
    last_started: datetime | None
    started_30_days: int
    next_allowed: datetime | None  # end of the cooldown, when it is still running
    awaiting_approval: list[Decision]


def loop_status(
    decisions: Sequence[Decision], guards: RetrainingGuards, *, now: datetime
) -> LoopStatus:
    """Retrainings started, the cooldown, and challengers held for a person (not yet promoted)."""
    started = sorted(
        (d.created_at for d in decisions if d.outcome == "started" and d.created_at), reverse=True
    )
    recent = [t for t in started if now - t < timedelta(days=30)]
    cooldown_end = started[0] + timedelta(hours=guards.cooldown_hours) if started else None
    promoted = {d.to_version for d in decisions if d.outcome == "promoted"}
    held = [d for d in decisions if d.outcome == "held" and d.to_version not in promoted]
    return LoopStatus(
        last_started=started[0] if started else None,
        started_30_days=len(recent),
        next_allowed=cooldown_end if cooldown_end and cooldown_end > now else None,
        awaiting_approval=held,
    )
