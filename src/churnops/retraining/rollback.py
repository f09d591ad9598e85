"""Automatic rollback: within the watch period after a promotion, the new champion's realised
(or, without labels, estimated) ROC-AUC below the previous champion's by the margin puts the
champion alias back, once, recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from churnops.retraining.context import KIND, LoopContext
from churnops.retraining.store_reads import (
    LABEL_COLUMN,
    PROBABILITY_COLUMN,
    labelled_rows,
    latest_checks,
)
from churnops.store.decisions import Decision, read_decisions

BASELINE = "baseline_roc_auc"  # the previous champion's figure, recorded with the promotion


@dataclass(frozen=True)
class Observed:
    roc_auc: float | None
    basis: str  # "realised", "estimated" or "none"
    rows: int


def rollback_reason(*, baseline: float, observed: Observed, margin: float) -> str | None:
    """Why to roll back, or None: observed below baseline by more than the margin."""
    if observed.roc_auc is None or observed.roc_auc >= baseline - margin:
        return None
    return (
        f"{observed.basis} ROC-AUC {observed.roc_auc:.4f} on {observed.rows} rows is below the "
        f"previous champion's {baseline:.4f} by more than {margin}"
    )


def observed_performance(ctx: LoopContext, *, version: str, since: datetime) -> Observed:
    """The version's realised ROC-AUC on its own labelled traffic; else its latest estimate."""
    from churnops.retraining.metrics import roc_auc

    rows = labelled_rows(
        ctx.store, since=since, until=ctx.now, model_name=ctx.model_name, model_version=version
    )
    y = rows[LABEL_COLUMN].to_numpy() if len(rows) else np.array([], dtype=int)
    if len(rows) >= ctx.settings.retraining.gate.min_labelled_rows and 0 < y.sum() < len(y):
        return Observed(roc_auc(y, rows[PROBABILITY_COLUMN].to_numpy()), "realised", len(rows))
    for check in latest_checks(ctx.store, limit=50, since=since):
        if check.model_version == version and check.estimated_roc_auc is not None:
            return Observed(float(check.estimated_roc_auc), "estimated", check.n_rows)
    return Observed(None, "none", len(rows))


def watched_promotion(ctx: LoopContext) -> Decision | None:
    """The latest promotion, if it is still inside its watch period and still the champion."""
    from churnops.modeling.registry import CHAMPION, alias_version

    promoted = read_decisions(ctx.store, kind=KIND, model_name=ctx.model_name, limit=200)
    latest = next((d for d in promoted if d.outcome in ("promoted", "rolled_back")), None)
    if latest is None or latest.outcome != "promoted" or latest.created_at is None:
        return None
    if ctx.now - latest.created_at > timedelta(days=ctx.settings.retraining.rollback_watch_days):
        return None
    current = alias_version(ctx.client, ctx.model_name, CHAMPION)
    if (
        current is None
        or str(current.version) != latest.to_version
        or BASELINE not in latest.evidence
    ):
        return None
    return latest


def watch_rollback(ctx: LoopContext) -> Decision | None:
    """Roll back the watched champion when it underperforms; the recorded decision, or None."""
    from churnops.modeling.registry import rollback

    promotion = watched_promotion(ctx)
    if promotion is None or promotion.to_version is None or promotion.created_at is None:
        return None
    observed = observed_performance(ctx, version=promotion.to_version, since=promotion.created_at)
    baseline = float(promotion.evidence[BASELINE])
    reason = rollback_reason(
        baseline=baseline, observed=observed, margin=ctx.settings.retraining.rollback_margin
    )
    if reason is None:
        return None
    claimed = ctx.record(
        Decision(
            kind=KIND,
            outcome="rolled_back",
            model_name=ctx.model_name,
            trigger="rollback_watch",
            idempotency_key=f"rollback:{ctx.model_name}:{promotion.to_version}",
            from_version=promotion.to_version,
            to_version=promotion.from_version,
            evidence={
                "reason": reason,
                "baseline_roc_auc": baseline,
                "observed": observed.__dict__,
            },
        )
    )
    if claimed is not None:
        rollback(ctx.client, name=ctx.model_name, why=f"automatic rollback: {reason}")
    return claimed
