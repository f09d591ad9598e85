"""The use cases `churnops retrain` (and the flows) call: check, run once, backtest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from churnops.retraining.backtest import ReplayedDecision, replay
from churnops.retraining.context import loop_context
from churnops.retraining.loop import LoopReport, evaluate_policy, run_loop
from churnops.retraining.policy import PolicyResult
from churnops.retraining.rollback import watched_promotion
from churnops.retraining.store_reads import latest_checks
from churnops.settings import Settings

BACKTEST_LIMIT = 100_000


@dataclass(frozen=True)
class CheckResult:
    champion_version: str | None
    policy: PolicyResult
    watching: str | None  # the champion version inside its rollback watch period

    def to_dict(self) -> dict[str, object]:
        return {
            "champion_version": self.champion_version,
            "action": self.policy.action,
            "triggers": [asdict(t) for t in self.policy.triggers],
            "blocked_by": self.policy.blocked_by,
            "watching": self.watching,
        }


def check(settings: Settings, *, now: datetime | None = None) -> CheckResult:
    """What the policy says now; nothing is recorded, trained or moved."""
    with loop_context(settings, now=now, read_only=True) as ctx:
        champion, policy = evaluate_policy(ctx)
        watched = watched_promotion(ctx)
    return CheckResult(champion.version, policy, watched.to_version if watched else None)


def retrain(settings: Settings, *, force: bool = False, now: datetime | None = None) -> LoopReport:
    """One pass of the loop (rollback watch, policy, retraining, gate, decision)."""
    with loop_context(settings, now=now) as ctx:
        return run_loop(ctx, force=force)


def backtest(settings: Settings, *, since: datetime) -> list[ReplayedDecision]:
    """The policy replayed over the stored checks since `since`."""
    with loop_context(settings, read_only=True) as ctx:
        checks = latest_checks(ctx.store, limit=BACKTEST_LIMIT, since=since)
    return replay(checks, settings.retraining, model_name=settings.registry.model_name)
