"""Decisions announced on the alert webhook (the same endpoint monitoring alerts go to)."""

from __future__ import annotations

import logging

from churnops.store.decisions import Decision

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 3.0


def payload(decision: Decision) -> dict[str, object]:
    """The JSON posted: `kind` is `retraining_<outcome>` so receivers can route on it."""
    return {
        "source": "churnops",
        "kind": f"{decision.kind}_{decision.outcome}",
        "action": decision.outcome,
        "at": decision.created_at.isoformat() if decision.created_at else None,
        "message": describe(decision),
        "details": {
            "model_name": decision.model_name,
            "trigger": decision.trigger,
            "from_version": decision.from_version,
            "to_version": decision.to_version,
            "mlflow_run_id": decision.mlflow_run_id,
            "actor": decision.actor,
            "evidence": dict(decision.evidence),
        },
    }


def describe(decision: Decision) -> str:
    """One line: what was decided, on which versions, and why."""
    versions = ""
    if decision.to_version:
        versions = f" v{decision.to_version}" + (
            f" (champion was v{decision.from_version})" if decision.from_version else ""
        )
    reasons = decision.evidence.get("reasons") or [decision.evidence.get("reason", "")]
    why = "; ".join(str(r) for r in reasons if r)
    trigger = f" [{decision.trigger}]" if decision.trigger else ""
    return f"{decision.model_name} {decision.kind} {decision.outcome}{versions}{trigger}: {why}".rstrip(
        ": "
    )


def announce(decision: Decision, *, webhook_url: str | None) -> bool:
    """Log the decision and POST it when a webhook is set; True when delivered (or none set)."""
    from churnops.monitoring.alerts import post_webhook

    logger.warning("churnops %s", describe(decision))
    if not webhook_url:
        return True
    return post_webhook(webhook_url, payload(decision), timeout=TIMEOUT_SECONDS)
