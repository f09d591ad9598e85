"""A person's promotion (`churnops models promote`, the app): who approved, recorded as a decision
with the evidence of the held challenger it releases (so the rollback watch covers it too)."""

from __future__ import annotations

from churnops.retraining.context import KIND
from churnops.store.decisions import Decision, read_decisions, record_decision
from churnops.store.store import PredictionStore


def held_decision(store: PredictionStore, *, model_name: str, version: str) -> Decision | None:
    """The loop's `held` decision for `version`, if the gate held it for approval."""
    for decision in read_decisions(store, kind=KIND, model_name=model_name, limit=500):
        if decision.outcome == "held" and decision.to_version == version:
            return decision
    return None


def record_manual_promotion(
    store: PredictionStore,
    *,
    model_name: str,
    version: str,
    from_version: str | None,
    actor: str,
    why: str,
) -> int | None:
    """Record that `actor` made `version` champion; approving a held challenger says so."""
    held = held_decision(store, model_name=model_name, version=version)
    evidence: dict[str, object] = {"reason": why, "approved": held is not None}
    if held is not None:
        evidence |= {k: v for k, v in held.evidence.items() if k != "awaiting_approval"}
        evidence["reasons"] = [f"approved by {actor}: {why}"]
    return record_decision(
        store,
        Decision(
            kind=KIND,
            outcome="promoted",
            model_name=model_name,
            trigger="approval" if held is not None else "manual",
            from_version=from_version,
            to_version=version,
            mlflow_run_id=held.mlflow_run_id if held is not None else None,
            actor=actor,
            evidence=evidence,
        ),
    )


def record_manual_rollback(
    store: PredictionStore,
    *,
    model_name: str,
    from_version: str | None,
    to_version: str,
    actor: str,
    why: str,
) -> int | None:
    """Record that `actor` gave the champion alias back (the rollback watch's rows look alike)."""
    return record_decision(
        store,
        Decision(
            kind=KIND,
            outcome="rolled_back",
            model_name=model_name,
            trigger="manual",
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            evidence={"reason": why, "reasons": [f"rolled back by {actor}: {why}"]},
        ),
    )
