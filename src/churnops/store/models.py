"""Tables of the prediction store, as typed SQLAlchemy 2 declarative models.

The Alembic migrations in `migrations/versions` are the source of truth for the DDL; these models
describe the same tables for queries and must be kept in step with them (a unit test checks this).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on Postgres (indexable, compact); plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive input is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware, on SQLite as on Postgres.

    SQLite has no time zone type and SQLAlchemy drops tzinfo when writing to it, so every value
    is converted to UTC before binding (writes and comparisons alike) and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_utc(value)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class PredictionRow(Base):
    """One scored record, online or batch."""

    __tablename__ = "predictions"

    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    churn_probability: Mapped[float] = mapped_column(Float)
    will_churn: Mapped[bool] = mapped_column(Boolean)
    risk_level: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[Any | None] = mapped_column(JSONType)
    # Which side of a deployment answered ("champion" or "challenger") and its scoring time.
    variant: Mapped[str] = mapped_column(String(16), server_default="champion")
    latency_us: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_predictions_model_created", "model_name", "created_at"),
        Index("ix_predictions_variant_created", "variant", "created_at"),
    )


class ShadowPredictionRow(Base):
    """A shadow challenger's score of a request, beside the answer given (same prediction_id)."""

    __tablename__ = "shadow_predictions"

    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64))
    churn_probability: Mapped[float] = mapped_column(Float)
    will_churn: Mapped[bool] = mapped_column(Boolean)
    risk_level: Mapped[str] = mapped_column(String(32))
    latency_us: Mapped[int | None] = mapped_column(Integer)


class DeploymentPolicyRow(Base):
    """The deployment policy of one model, read by every worker and replica (one row per model).

    `revision` grows with every change; writers compare-and-set on it, so two workers deciding the
    same step apply it once. The counters are added to by every worker (errors the store's
    prediction rows cannot show: a challenger that raised or ran out of time).
    """

    __tablename__ = "deployment_policy"

    model_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(36))
    revision: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    champion_version: Mapped[str | None] = mapped_column(String(64))
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer)
    steps: Mapped[Any] = mapped_column(JSONType)
    live: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    sample_rate: Mapped[float] = mapped_column(Float)
    timeout_ms: Mapped[float] = mapped_column(Float)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONType)
    auto: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime]
    step_started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(1024))
    actor: Mapped[str | None] = mapped_column(String(255))
    challenger_errors: Mapped[int] = mapped_column(BigInteger, server_default="0")
    challenger_timeouts: Mapped[int] = mapped_column(BigInteger, server_default="0")
    champion_errors: Mapped[int] = mapped_column(BigInteger, server_default="0")
    shadow_dropped: Mapped[int] = mapped_column(BigInteger, server_default="0")
    evaluated_at: Mapped[datetime | None]  # the evaluation lease (`claim_evaluation`)


class FeedbackRow(Base):
    """A ground-truth label for a prediction.

    At most one row per prediction (unique `prediction_id`); feedback that could not be attached to
    any prediction is kept once per customer (partial unique index). No foreign key on purpose: the
    prediction may still be on its way (queued or spooled by the writer) when its label arrives.
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str | None] = mapped_column(String(36))
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    label: Mapped[int] = mapped_column(SmallInteger)
    received_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (
        UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
        Index(
            "uq_feedback_orphan_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("prediction_id IS NULL"),
            postgresql_where=text("prediction_id IS NULL"),
        ),
    )


class BatchRunRow(Base):
    """One run of the batch scorer."""

    __tablename__ = "batch_runs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    input_fingerprint: Mapped[str | None] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(BigInteger)
    rows_scored: Mapped[int] = mapped_column(BigInteger)
    rows_rejected: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class MonitoringResultRow(Base):
    """One drift or performance check over a window of predictions."""

    __tablename__ = "monitoring_results"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(String(32))
    drift_detected: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (Index("ix_monitoring_results_kind_created", "kind", "created_at"),)


class DecisionRow(Base):
    """One decision of the retraining loop or a rollout: started, skipped, promoted, held,
    rejected, rolled back, stepped. `idempotency_key` (unique) lets the database, not the caller,
    decide which of two concurrent schedulers acts on the same (trigger, window)."""

    __tablename__ = "retraining_decisions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    model_name: Mapped[str] = mapped_column(String(255))
    from_version: Mapped[str | None] = mapped_column(String(64))
    to_version: Mapped[str | None] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(255))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_retraining_decisions_idempotency_key"),
        Index("ix_retraining_decisions_kind_created", "kind", "created_at"),
    )
