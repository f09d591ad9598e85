"""The decisions table: what the retraining loop and rollouts decided, and the evidence for it.

Shared by continuous training (retrain started, skipped, promoted, held, rejected, rolled back)
and deployment strategies (shadow, canary steps, switches, rollbacks). A decision that must happen
at most once per (trigger, window) carries an `idempotency_key`; the unique constraint makes the
database the arbiter, so two schedulers racing on the same key record one decision, never two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.models import DecisionRow, to_utc
from churnops.store.records import to_jsonable, utcnow
from churnops.store.store import PredictionStore

DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision to record (or as read back, with `id` and `created_at` set)."""

    kind: str  # "retraining", "promotion", "rollback", "deployment", ...
    outcome: str  # "started", "skipped", "promoted", "held", "rejected", "rolled_back", ...
    model_name: str
    trigger: str | None = None
    idempotency_key: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    mlflow_run_id: str | None = None
    actor: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    id: int | None = None


def record_decision(store: PredictionStore, decision: Decision) -> int | None:
    """Store `decision`; its id, or None when its idempotency key was already taken."""
    row = {
        "created_at": to_utc(decision.created_at or utcnow()),
        "kind": decision.kind,
        "trigger": decision.trigger,
        "outcome": decision.outcome,
        "idempotency_key": decision.idempotency_key,
        "model_name": decision.model_name,
        "from_version": decision.from_version,
        "to_version": decision.to_version,
        "mlflow_run_id": decision.mlflow_run_id,
        "actor": decision.actor,
        "evidence": to_jsonable(dict(decision.evidence)),
    }
    try:
        with store.engine.begin() as conn:
            result = conn.execute(insert(DECISIONS).values(**row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
    except IntegrityError:
        if decision.idempotency_key is None:
            raise StoreError("prediction store: cannot record a decision") from None
        return None  # another scheduler recorded this (trigger, window) first
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot record a decision: {exc}") from exc


def read_decisions(
    store: PredictionStore,
    *,
    kind: str | None = None,
    model_name: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Decision]:
    """Recorded decisions, newest first."""
    d = DECISIONS
    stmt = select(d).order_by(d.c.created_at.desc(), d.c.id.desc())
    if kind is not None:
        stmt = stmt.where(d.c.kind == kind)
    if model_name is not None:
        stmt = stmt.where(d.c.model_name == model_name)
    if since is not None:
        stmt = stmt.where(d.c.created_at >= to_utc(since))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot read decisions: {exc}") from exc
    return [Decision(**dict(row)) for row in rows]
