"""One stored prediction by id, or a customer's latest: what `churnops lineage` starts from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.models import PredictionRow
from churnops.store.store import PredictionStore

PREDICTIONS: Table = PredictionRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class StoredPrediction:
    prediction_id: str
    created_at: datetime
    source: str
    request_id: str | None
    model_name: str
    model_version: str
    customer_id: str | None
    churn_probability: float
    will_churn: bool
    risk_level: str
    reasons: Any
    features: dict[str, Any]
    variant: str = "champion"  # which side of a deployment answered (champion or challenger)
    latency_us: int | None = None


def _one(store: PredictionStore, stmt: Any, what: str) -> StoredPrediction | None:
    try:
        with store.engine.connect() as conn:
            row = conn.execute(stmt.limit(1)).mappings().first()
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot {what}: {exc}") from exc
    return None if row is None else StoredPrediction(**dict(row))


def find_prediction(store: PredictionStore, prediction_id: str) -> StoredPrediction | None:
    """The prediction with this id, or None."""
    stmt = select(PREDICTIONS).where(PREDICTIONS.c.prediction_id == prediction_id)
    return _one(store, stmt, "look up a prediction")


def latest_prediction(store: PredictionStore, customer_id: str) -> StoredPrediction | None:
    """The customer's most recent prediction (ties: the larger id, as feedback attaches), or None."""
    p = PREDICTIONS
    stmt = (
        select(p)
        .where(p.c.customer_id == customer_id)
        .order_by(p.c.created_at.desc(), p.c.prediction_id.desc())
    )
    return _one(store, stmt, "look up a customer's predictions")
