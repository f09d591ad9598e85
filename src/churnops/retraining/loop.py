"""The loop: (rollback watch) -> evaluate the policy -> retrain -> gate -> promote, hold or
reject -> record. `run_loop` is what `churnops retrain` and the retraining flow run; each step is
its own function so the flow can make it a task."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from churnops.errors import ChurnopsError, RetrainingError
from churnops.retraining.context import KIND, LoopContext
from churnops.retraining.inputs import champion_state, gather_inputs
from churnops.retraining.policy import (
    ChampionState,
    PolicyResult,
    Trigger,
    evaluate,
    forced_trigger,
)
from churnops.retraining.promotion import promote_challenger
from churnops.retraining.rollback import BASELINE, watch_rollback
from churnops.store.decisions import Decision

if TYPE_CHECKING:  # training imports sklearn, optuna and MLflow's model code: only when it trains
    from churnops.retraining.challenger import Challenger
    from churnops.retraining.gate import GateVerdict

Action = Literal[
    "none", "skipped", "duplicate", "promoted", "held", "rejected", "rolled_back", "failed"
]


@dataclass
class LoopReport:
    action: Action
    message: str
    policy: PolicyResult | None = None
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "message": self.message,
            "triggers": [asdict(t) for t in self.policy.triggers] if self.policy else [],
            "blocked_by": self.policy.blocked_by if self.policy else None,
            "decisions": [asdict(d) for d in self.decisions],
        }


def evaluate_policy(ctx: LoopContext) -> tuple[ChampionState, PolicyResult]:
    """The champion and what the policy says about it now."""
    champion = champion_state(ctx.client, ctx.model_name)
    inputs = gather_inputs(ctx.store, champion, ctx.settings.retraining, now=ctx.now)
    return champion, evaluate(inputs, ctx.settings.retraining)


def start(ctx: LoopContext, trigger: Trigger, champion: ChampionState) -> Decision | None:
    """Claim (trigger, window): the recorded `started` decision, or None if another took it."""
    return ctx.record(
        Decision(
            kind=KIND,
            outcome="started",
            model_name=ctx.model_name,
            trigger=trigger.name,
            idempotency_key=trigger.key(ctx.model_name),
            from_version=champion.version,
            evidence={"reason": trigger.reason, "window": trigger.window, **trigger.evidence},
        )
    )


def skip(ctx: LoopContext, policy: PolicyResult) -> Decision | None:
    """Record once per (trigger, window) that a guard stopped it, with the guard's reason."""
    trigger = policy.triggers[0]
    return ctx.record(
        Decision(
            kind=KIND,
            outcome="skipped",
            model_name=ctx.model_name,
            trigger=trigger.name,
            idempotency_key=f"{trigger.key(ctx.model_name)}:skipped",
            evidence={
                "reason": policy.blocked_by,
                "trigger_reason": trigger.reason,
                "triggers": [t.name for t in policy.triggers],
            },
        )
    )


def conclude(
    ctx: LoopContext, started: Decision, challenger: Challenger, verdict: GateVerdict
) -> Decision:
    """Promote (through the one promotion step), hold for approval, or reject; then record."""
    from churnops.modeling.registry import PromotionDecision, record_decision

    settings = ctx.settings.retraining
    outcome = (
        "rejected" if not verdict.passed else ("held" if settings.require_approval else "promoted")
    )
    why = "; ".join(verdict.reasons)
    record_decision(
        ctx.client,
        name=ctx.model_name,
        version=challenger.version,
        decision=PromotionDecision(verdict.passed, why),
    )
    if outcome == "promoted":
        promote_challenger(
            ctx.client,
            ctx.store,
            settings=ctx.settings,
            version=challenger.version,
            champion_version=started.from_version,
            why=f"production gate: {why}",
        )
    decision = Decision(
        kind=KIND,
        outcome=outcome,
        model_name=ctx.model_name,
        trigger=started.trigger,
        idempotency_key=f"{started.idempotency_key}:result",
        from_version=started.from_version,
        to_version=challenger.version,
        mlflow_run_id=challenger.outcome.run_id,
        evidence={
            "reasons": verdict.reasons,
            BASELINE: verdict.metric_of("champion", "roc_auc"),
            "challenger_roc_auc": verdict.metric_of("challenger", "roc_auc"),
            "gate": verdict.evidence(),
            "data": challenger.data.evidence(),
            "rollout": settings.rollout,
            "awaiting_approval": outcome == "held",
        },
    )
    return ctx.record(decision) or decision


def failed(ctx: LoopContext, started: Decision, exc: BaseException) -> Decision | None:
    return ctx.record(
        Decision(
            kind=KIND,
            outcome="failed",
            model_name=ctx.model_name,
            trigger=started.trigger,
            idempotency_key=f"{started.idempotency_key}:result",
            from_version=started.from_version,
            evidence={"reason": f"{type(exc).__name__}: {exc}"},
        )
    )


def retrain_and_gate(ctx: LoopContext, started: Decision) -> Decision:
    """Train on the table + production rows, run the production gate, conclude."""
    from churnops.retraining.challenger import train_on, training_data
    from churnops.retraining.judge import production_gate

    try:
        challenger = train_on(ctx, training_data(ctx))
        verdict = production_gate(ctx, challenger)
    except Exception as exc:
        failed(ctx, started, exc)
        if isinstance(exc, ChurnopsError):
            raise
        raise RetrainingError(
            f"the retraining ({started.trigger}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    return conclude(ctx, started, challenger, verdict)


def run_loop(ctx: LoopContext, *, force: bool = False) -> LoopReport:
    """One pass: the rollback watch, then the policy, then (when it fires) a retraining."""
    rolled = watch_rollback(ctx)
    if rolled is not None:
        return LoopReport("rolled_back", str(rolled.evidence.get("reason")), None, [rolled])
    champion, policy = evaluate_policy(ctx)
    if force:
        trigger = forced_trigger(ctx.now, ctx.actor)
    elif policy.fire is None:
        if policy.action == "none":
            return LoopReport("none", "no trigger holds", policy)
        skipped = skip(ctx, policy)
        return LoopReport("skipped", str(policy.blocked_by), policy, [skipped] if skipped else [])
    else:
        trigger = policy.fire
    started = start(ctx, trigger, champion)
    if started is None:
        return LoopReport(
            "duplicate",
            f"a retraining for {trigger.name} at {trigger.window} was already started",
            policy,
        )
    final = retrain_and_gate(ctx, started)
    message = "; ".join(str(r) for r in final.evidence.get("reasons", []))
    return LoopReport(final.outcome, message, policy, [started, final])  # type: ignore[arg-type]
