"""Running the production gate for a challenger: load both models, score the same rows, decide."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnops.retraining.challenger import Challenger
from churnops.retraining.context import LoopContext
from churnops.retraining.gate import GateVerdict, Scored, blocking_reasons, decide
from churnops.retraining.store_reads import LABEL_COLUMN, labelled_rows

if TYPE_CHECKING:
    from churnops.modeling.scorer import Scorer


def production_window(ctx: LoopContext) -> pd.DataFrame:
    """The most recent labelled production rows (`gate.production_window_days`)."""
    days = ctx.settings.retraining.gate.production_window_days
    return labelled_rows(ctx.store, since=ctx.now - timedelta(days=days), until=ctx.now)


def scored(
    name: str, frame: pd.DataFrame, y: np.ndarray, champion: Scorer, challenger: Scorer
) -> Scored:
    return Scored(
        name=name,
        y=np.asarray(y, dtype=np.int8),
        champion=champion.score_frame(frame).probability,
        challenger=challenger.score_frame(frame).probability,
        champion_threshold=champion.threshold,
        challenger_threshold=challenger.threshold,
    )


def evaluation_sets(
    ctx: LoopContext, challenger: Challenger, champion: Scorer, new: Scorer
) -> list[Scored]:
    """The production window first when it has enough labels, then the held-out split."""
    from churnops.modeling.stages import split_data

    training = ctx.settings.training
    split = split_data(
        challenger.data.frame,
        challenger.data.schema,
        test_size=training.test_size,
        seed=training.seed,
    )
    held_out = scored("held_out", split.test, split.y_test, champion, new)
    window = production_window(ctx)
    if (
        len(window) < ctx.settings.retraining.gate.min_labelled_rows
        or window[LABEL_COLUMN].nunique() < 2
    ):
        return [held_out]
    return [scored("production", window, window[LABEL_COLUMN].to_numpy(), champion, new), held_out]


def more_blocking_reasons(ctx: LoopContext, challenger: Challenger) -> list[str]:
    """Reasons from other checks that must block a promotion: the one place to add them.

    Today the model validation logged when the challenger was trained (segments against the
    champion, fairness, behaviour), read back the way `churnops validate` and the training gate
    read it, with the configured overrides (`validation.allow`)."""
    validation = ctx.settings.validation
    if not validation.enabled:
        return []
    from churnops.modeling.validate import validation_blockers

    return validation_blockers(
        ctx.client,
        model_name=ctx.model_name,
        version=challenger.version,
        allow=validation.allow,
    )


def production_gate(
    ctx: LoopContext, challenger: Challenger, *, extra_blocking: Sequence[str] = ()
) -> GateVerdict:
    """Champion vs challenger on production and held-out rows; `extra_blocking` adds reasons."""
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.registry import CHAMPION, alias_version

    name, settings = ctx.model_name, ctx.settings
    new, _ = load_scorer(f"models:/{name}/{challenger.version}")
    current = alias_version(ctx.client, name, CHAMPION)
    champion = load_scorer(f"models:/{name}/{current.version}")[0] if current is not None else None
    blocking = blocking_reasons(
        leakage_flags=[str(f) for f in challenger.outcome.leakage_flags],
        allow_leakage=settings.training.allow_leakage,
        champion_schema=champion.schema if champion is not None else None,
        challenger_schema=new.schema,
        extra=[*extra_blocking, *more_blocking_reasons(ctx, challenger)],
    )
    if champion is None:
        return GateVerdict(not blocking, blocking or ["no champion yet"])
    if blocking and any(r.startswith("schema") for r in blocking):
        return GateVerdict(False, blocking)  # the champion cannot score the challenger's rows
    sets = evaluation_sets(ctx, challenger, champion, new)
    return decide(
        sets, settings=settings.retraining.gate, business=settings.business, blocking=blocking
    )
