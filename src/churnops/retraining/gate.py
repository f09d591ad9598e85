"""The production promotion gate: champion and challenger scored on the same labelled rows.

Two evaluation sets: the most recent labelled production window (primary when it holds at least
`gate.min_labelled_rows` rows, else the held-out split is) and the challenger's held-out split.
Promote only when, on the primary set, the challenger beats the champion on the metric by the
margin with a paired-bootstrap lower bound above zero, its Brier score is not worse and its
expected profit (business values set) not lower; it must not be worse on the other set either,
and nothing may block it (`blocking_reasons`: leakage, schema, and whatever else is added there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from churnops.data.schema import Schema
from churnops.retraining.metrics import (
    brier,
    expected_profit,
    metric_value,
    paired_bootstrap,
    roc_auc,
)
from churnops.settings import BusinessSettings, PromotionGateSettings


@dataclass(frozen=True)
class Scored:
    """One evaluation set scored by both models (probabilities and each model's threshold)."""

    name: str  # "production" or "held_out"
    y: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray
    champion_threshold: float
    challenger_threshold: float


@dataclass(frozen=True)
class Comparison:
    name: str
    rows: int
    champion: dict[str, float | None]
    challenger: dict[str, float | None]
    difference: float  # challenger - champion on the metric
    lower_bound: float  # paired bootstrap


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: list[str]  # why not (empty when passed) or, when passed, why
    comparisons: list[Comparison] = field(default_factory=list)
    primary: str = ""

    def evidence(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "primary": self.primary,
            "comparisons": [c.__dict__ for c in self.comparisons],
        }

    def metric_of(self, who: str, metric: str) -> float | None:
        """A model's figure on the primary set (what rollback later compares with)."""
        for c in self.comparisons:
            if c.name == self.primary:
                return (c.champion if who == "champion" else c.challenger).get(metric)
        return None


def compare(
    scored: Scored, settings: PromotionGateSettings, business: BusinessSettings
) -> Comparison:
    """Metric, Brier and profit of both models on one set, and the paired bootstrap."""
    metric = settings.metric

    def figures(p: np.ndarray, threshold: float) -> dict[str, float | None]:
        return {
            "roc_auc": roc_auc(scored.y, p),  # always: rollback compares against it
            metric: metric_value(metric, scored.y, p),
            "brier": brier(scored.y, p),
            "profit": expected_profit(scored.y, p, threshold=threshold, business=business),
        }

    _, lower = paired_bootstrap(
        metric,
        scored.y,
        scored.champion,
        scored.challenger,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
    )
    champion = figures(scored.champion, scored.champion_threshold)
    challenger = figures(scored.challenger, scored.challenger_threshold)
    difference = float((challenger[metric] or 0.0) - (champion[metric] or 0.0))
    return Comparison(scored.name, len(scored.y), champion, challenger, difference, lower)


def primary_failures(c: Comparison, settings: PromotionGateSettings) -> list[str]:
    """Why the challenger does not win on the set that decides."""
    metric, reasons = settings.metric, []
    if not c.difference >= settings.margin:
        reasons.append(
            f"{c.name}: {metric} {c.challenger[metric]:.4f} vs champion {c.champion[metric]:.4f}, not better by {settings.margin}"
        )
    if not c.lower_bound > 0:
        reasons.append(
            f"{c.name}: paired bootstrap lower bound of the {metric} gain is {c.lower_bound:+.4f} (must be > 0)"
        )
    if (c.challenger["brier"] or 0.0) > (c.champion["brier"] or 0.0) + settings.brier_tolerance:
        reasons.append(
            f"{c.name}: Brier {c.challenger['brier']:.4f} worse than champion {c.champion['brier']:.4f}"
        )
    profit, champion_profit = c.challenger["profit"], c.champion["profit"]
    if profit is not None and champion_profit is not None and profit < champion_profit:
        reasons.append(
            f"{c.name}: expected profit {profit:.2f} per customer below champion {champion_profit:.2f}"
        )
    return reasons


def secondary_failures(c: Comparison, settings: PromotionGateSettings) -> list[str]:
    """The other set may not show the challenger worse by more than the margin."""
    if c.difference < -settings.margin:
        metric = settings.metric
        return [
            f"{c.name}: {metric} {c.challenger[metric]:.4f} below champion {c.champion[metric]:.4f}"
        ]
    return []


def schema_problems(champion: Schema, challenger: Schema) -> list[str]:
    """Compatible: the challenger needs no input the champion's callers do not send, same kinds."""
    known = {c.name: c for c in champion.features}
    missing = [c.name for c in challenger.features if c.name not in known]
    changed = [
        c.name for c in challenger.features if c.name in known and known[c.name].kind != c.kind
    ]
    problems = []
    if missing:
        problems.append(
            f"schema: the challenger needs inputs the champion's callers do not send: {missing[:5]}"
        )
    if changed:
        problems.append(f"schema: inputs of another kind than the champion's: {changed[:5]}")
    return problems


def blocking_reasons(
    *,
    leakage_flags: Sequence[str],
    allow_leakage: bool,
    champion_schema: Schema | None,
    challenger_schema: Schema,
    extra: Sequence[str] = (),
) -> list[str]:
    """Everything that stops a promotion whatever the figures say. THE place to add more checks
    (e.g. a data validation result): pass them in `extra`."""
    reasons: list[str] = []
    if leakage_flags and not allow_leakage:
        reasons.append(f"leakage flagged: {'; '.join(leakage_flags)}")
    if champion_schema is not None:
        reasons.extend(schema_problems(champion_schema, challenger_schema))
    reasons.extend(extra)
    return reasons


def decide(
    sets: Sequence[Scored],
    *,
    settings: PromotionGateSettings,
    business: BusinessSettings,
    blocking: Sequence[str],
) -> GateVerdict:
    """Compare on every set; the first set is primary. Pass only with no failure and no block."""
    comparisons = [compare(s, settings, business) for s in sets]
    if not comparisons:
        return GateVerdict(False, ["no labelled rows to compare the models on"], [], "")
    primary, *others = comparisons
    reasons = [*blocking, *primary_failures(primary, settings)]
    for other in others:
        reasons.extend(secondary_failures(other, settings))
    if reasons:
        return GateVerdict(False, reasons, comparisons, primary.name)
    why = f"{primary.name}: {settings.metric} +{primary.difference:.4f} (lower bound {primary.lower_bound:+.4f})"
    return GateVerdict(True, [why], comparisons, primary.name)
