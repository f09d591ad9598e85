"""Replaying the policy over stored monitoring history: when it would have retrained, and why.

No training happens: a replayed retraining only starts the cooldown and the monthly budget for the
checks after it. Triggers that need the registry (champion age, new labels) are not replayed, and
every check is taken to watch the same champion (the replay cannot know what a retraining changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from churnops.retraining.checks import WindowCheck
from churnops.retraining.inputs import CHECKS_READ
from churnops.retraining.policy import ChampionState, PolicyInputs, evaluate
from churnops.settings import RetrainingSettings


@dataclass(frozen=True)
class ReplayedDecision:
    at: datetime
    window: str
    action: str  # "retrain" or "skip"
    trigger: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "window": self.window,
            "action": self.action,
            "trigger": self.trigger,
            "reason": self.reason,
        }


def replay(
    checks: Sequence[WindowCheck], settings: RetrainingSettings, *, model_name: str
) -> list[ReplayedDecision]:
    """The policy at each stored check, oldest first, with the retrainings it would have started."""
    ordered = sorted(checks, key=lambda c: (c.created_at, c.id))
    champion = ChampionState(model_name, None, None, None)
    started: list[datetime] = []
    used: set[str] = set()
    out: list[ReplayedDecision] = []
    for i, check in enumerate(ordered):
        history = ordered[max(0, i + 1 - CHECKS_READ) : i + 1][::-1]
        inputs = PolicyInputs(check.created_at, champion, history, started, 0, frozenset(used))
        result = evaluate(inputs, settings)
        if not result.triggers:
            continue
        first = result.triggers[0]
        if result.fire is not None:
            started.append(check.created_at)
            used.add(first.key(model_name))
            out.append(
                ReplayedDecision(
                    check.created_at, first.window, "retrain", first.name, first.reason
                )
            )
        else:
            out.append(
                ReplayedDecision(
                    check.created_at, first.window, "skip", first.name, str(result.blocked_by)
                )
            )
    return out
