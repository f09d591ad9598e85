"""`retraining_flow`: the continuous-training loop as tasks: rollback watch -> evaluate the
policy -> claim (trigger, window) -> training data -> train -> production gate -> promote, hold
or reject -> record. The same functions `churnops retrain` calls, in the same order."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from churnops.flows.tasks import load_settings, once, retrying
from churnops.retraining import challenger as challengers
from churnops.retraining import judge, loop, rollback
from churnops.retraining.context import loop_context
from churnops.retraining.policy import forced_trigger

ARTIFACT_KEY = "churnops-retraining"

watch_rollback = retrying("rollback watch")(rollback.watch_rollback)
evaluate_policy = retrying("evaluate policy")(loop.evaluate_policy)
claim = retrying("claim trigger and window")(loop.start)
record_skip = retrying("record skip")(loop.skip)
training_data = retrying("training data")(challengers.training_data)
train = once("train challenger")(challengers.train_on)
production_gate = retrying("production gate")(judge.production_gate)
conclude = retrying("promote, hold or reject")(loop.conclude)


def decided(ctx: Any, started: Any) -> Any:
    """Train, gate and conclude a claimed retraining; a failure is recorded, then raised."""
    try:
        challenger = train(ctx, training_data(ctx))
        verdict = production_gate(ctx, challenger)
    except Exception as exc:
        loop.failed(ctx, started, exc)
        raise
    return conclude(ctx, started, challenger, verdict)


def report(action: str, message: str, decisions: list[Any]) -> dict[str, Any]:
    lines = [f"# Retraining: {action}", "", message or "-", ""]
    lines += [f"- {d.outcome} {d.trigger or ''} v{d.to_version or '-'}" for d in decisions]
    create_markdown_artifact("\n".join(lines), key=ARTIFACT_KEY)
    return {"action": action, "message": message, "decisions": [d.id for d in decisions]}


@flow(name="churnops-retraining", log_prints=True)
def retraining_flow(config: str | None = None, force: bool = False) -> dict[str, Any]:
    """One pass of the loop; what happened is returned and left as a markdown artifact."""
    settings = load_settings(config)
    with loop_context(settings) as ctx:
        rolled = watch_rollback(ctx)
        if rolled is not None:
            return report("rolled_back", str(rolled.evidence.get("reason")), [rolled])
        champion, policy = evaluate_policy(ctx)
        trigger = forced_trigger(ctx.now, ctx.actor) if force else policy.fire
        if trigger is None:
            if policy.action == "none":
                return report("none", "no trigger holds", [])
            skipped = record_skip(ctx, policy)
            return report("skipped", str(policy.blocked_by), [skipped] if skipped else [])
        started = claim(ctx, trigger, champion)
        if started is None:
            return report(
                "duplicate", f"{trigger.name} at {trigger.window} was already started", []
            )
        final = decided(ctx, started)
        return report(
            final.outcome, "; ".join(map(str, final.evidence.get("reasons", []))), [started, final]
        )
