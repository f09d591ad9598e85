"""The retraining policy: which triggers hold and which guard stops them. Pure functions.

Inputs are what the store and the registry say now (`PolicyInputs`, gathered by `inputs.py`); the
result names every trigger that holds, the one that fires, or the guard that blocks it. Each
trigger carries its window, so `(trigger, window)` is the idempotency key the database enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from churnops.retraining.checks import WindowCheck
from churnops.settings import RetrainingGuards, RetrainingSettings, RetrainingTriggers

TRIGGER_ORDER = (
    "performance",
    "dataset_drift",
    "prediction_drift",
    "new_labels",
    "champion_age",
    "forced",
)
RETRAIN_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ChampionState:
    """The champion the policy judges: version, since when, and how many rows it learnt from."""

    model_name: str
    version: str | None  # None: no champion yet
    since: datetime | None
    training_rows: int | None


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    now: datetime
    champion: ChampionState
    checks: Sequence[WindowCheck]  # newest first
    started: Sequence[datetime]  # retrainings started in the last 30 days
    labelled_rows: int  # labelled production rows since the champion took over
    used_keys: frozenset[str] = frozenset()  # idempotency keys already taken


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    window: str  # what it fired on: a check's window end, a day, a labels bucket
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def key(self, model_name: str) -> str:
        """The idempotency key: one retraining per (model, trigger, window)."""
        return f"retrain:{model_name}:{self.name}:{self.window}"


@dataclass(frozen=True, slots=True)
class PolicyResult:
    triggers: list[Trigger]
    blocked_by: str | None  # the guard's reason, when a trigger holds but may not fire

    @property
    def fire(self) -> Trigger | None:
        return self.triggers[0] if self.triggers and self.blocked_by is None else None

    @property
    def action(self) -> Literal["retrain", "skip", "none"]:
        if not self.triggers:
            return "none"
        return "skip" if self.blocked_by else "retrain"


def evidence_checks(
    checks: Sequence[WindowCheck], *, version: str | None, min_rows: int
) -> list[WindowCheck]:
    """Checks of the current champion with enough rows to count, newest first."""
    return [
        c
        for c in checks
        if c.n_rows >= min_rows and (version is None or c.model_version in (None, version))
    ]


def drift_triggers(checks: Sequence[WindowCheck], settings: RetrainingTriggers) -> list[Trigger]:
    """Dataset (and prediction) drift in each of the last K checks: one noisy window is not enough."""
    k = settings.drift_windows
    recent = list(checks[:k])
    if len(recent) < k:
        return []
    found: list[Trigger] = []
    windows = [c.window for c in recent]
    if all(c.dataset_drift for c in recent):
        reason = f"dataset drift in the last {k} checks (to {recent[0].window})"
        found.append(Trigger("dataset_drift", recent[0].window, reason, {"windows": windows}))
    if settings.prediction_drift and all(c.prediction_drift for c in recent):
        reason = f"prediction drift in the last {k} checks (to {recent[0].window})"
        found.append(Trigger("prediction_drift", recent[0].window, reason, {"windows": windows}))
    return found


def performance_trigger(
    checks: Sequence[WindowCheck], settings: RetrainingTriggers, *, min_labelled: int
) -> Trigger | None:
    """Realised ROC-AUC down by more than the margin; the estimate when labels are too few."""
    if not checks:
        return None
    latest = checks[0]
    realised = latest.realised_drop if latest.n_labelled >= min_labelled else None
    drop, basis = (
        (realised, "realised") if realised is not None else (latest.estimated_drop, "estimated")
    )
    if drop is None or drop <= settings.performance_drop:
        return None
    reason = f"{basis} ROC-AUC {drop:.3f} below training (> {settings.performance_drop})"
    evidence = {"basis": basis, "drop": drop, "n_labelled": latest.n_labelled}
    return Trigger("performance", latest.window, reason, evidence)


def age_trigger(
    champion: ChampionState, now: datetime, settings: RetrainingTriggers
) -> Trigger | None:
    limit = settings.max_champion_age_days
    if limit is None or champion.since is None:
        return None
    age = (now - champion.since).total_seconds() / 86_400
    if age <= limit:
        return None
    reason = f"champion v{champion.version} is {age:.1f} days old (> {limit:g})"
    return Trigger("champion_age", now.date().isoformat(), reason, {"age_days": round(age, 2)})


def labels_trigger(inputs: PolicyInputs, settings: RetrainingTriggers) -> Trigger | None:
    """New labelled rows above a share of the training set; fires again each time it doubles."""
    share_limit, rows = settings.new_labelled_share, inputs.champion.training_rows
    if share_limit is None or not rows:
        return None
    share = inputs.labelled_rows / rows
    if share <= share_limit:
        return None
    bucket = int(share // share_limit)
    reason = f"{inputs.labelled_rows} new labelled rows = {share:.0%} of the {rows} training rows"
    window = f"v{inputs.champion.version}-x{bucket}"
    return Trigger(
        "new_labels", window, reason, {"share": round(share, 4), "rows": inputs.labelled_rows}
    )


def find_triggers(inputs: PolicyInputs, settings: RetrainingSettings) -> list[Trigger]:
    """Every trigger that holds now and has not been acted on, most urgent first."""
    checks = evidence_checks(
        inputs.checks, version=inputs.champion.version, min_rows=settings.guards.min_rows_per_window
    )
    found = [
        *drift_triggers(checks, settings.triggers),
        performance_trigger(
            checks, settings.triggers, min_labelled=settings.guards.min_rows_per_window
        ),
        labels_trigger(inputs, settings.triggers),
        age_trigger(inputs.champion, inputs.now, settings.triggers),
    ]
    model = inputs.champion.model_name
    fresh = [t for t in found if t is not None and t.key(model) not in inputs.used_keys]
    return sorted(fresh, key=lambda t: TRIGGER_ORDER.index(t.name))


def guard(inputs: PolicyInputs, guards: RetrainingGuards) -> str | None:
    """Why a retraining may not start now (cooldown, monthly budget), or None."""
    recent = sorted((t for t in inputs.started if t <= inputs.now), reverse=True)
    if recent and inputs.now - recent[0] < timedelta(hours=guards.cooldown_hours):
        hours = (inputs.now - recent[0]).total_seconds() / 3600
        return (
            f"cooldown: the last retraining started {hours:.1f} h ago at "
            f"{recent[0].isoformat(timespec='seconds')} (cooldown {guards.cooldown_hours:g} h)"
        )
    month = [t for t in recent if inputs.now - t < RETRAIN_WINDOW]
    if len(month) >= guards.max_retrains_per_30_days:
        return f"limit: {len(month)} retrainings in the last 30 days (max {guards.max_retrains_per_30_days})"
    return None


def evaluate(inputs: PolicyInputs, settings: RetrainingSettings) -> PolicyResult:
    """The triggers that hold and, when any does, whether a guard blocks them."""
    triggers = find_triggers(inputs, settings)
    blocked = guard(inputs, settings.guards) if triggers else None
    return PolicyResult(triggers=triggers, blocked_by=blocked)


def forced_trigger(now: datetime, actor: str) -> Trigger:
    """`churnops retrain --force`: no trigger needed, no guard asked."""
    stamp = now.isoformat(timespec="seconds")
    return Trigger("forced", stamp, f"forced by {actor}", {"actor": actor})
