"""Initial prediction store: predictions, feedback, batch_runs, monitoring_results.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.String(36), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("features", JSON_TYPE, nullable=False),
        sa.Column("churn_probability", sa.Float(), nullable=False),
        sa.Column("will_churn", sa.Boolean(), nullable=False),
        sa.Column("risk_level", sa.String(32), nullable=False),
        sa.Column("reasons", JSON_TYPE, nullable=True),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_index("ix_predictions_customer_id", "predictions", ["customer_id"])
    op.create_index("ix_predictions_model_created", "predictions", ["model_name", "created_at"])

    op.create_table(
        "feedback",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(36), nullable=True),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
    )
    op.create_index("ix_feedback_customer_id", "feedback", ["customer_id"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])
    op.create_index(
        "uq_feedback_orphan_customer",
        "feedback",
        ["customer_id"],
        unique=True,
        sqlite_where=sa.text("prediction_id IS NULL"),
        postgresql_where=sa.text("prediction_id IS NULL"),
    )

    op.create_table(
        "batch_runs",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("input_fingerprint", sa.String(128), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_scored", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("summary", JSON_TYPE, nullable=False),
        sa.Column("profile", JSON_TYPE, nullable=True),
    )
    op.create_index("ix_batch_runs_started_at", "batch_runs", ["started_at"])

    op.create_table(
        "monitoring_results",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("window_start", TS, nullable=True),
        sa.Column("window_end", TS, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("drift_detected", sa.Boolean(), nullable=False),
        sa.Column("summary", JSON_TYPE, nullable=False),
    )
    op.create_index("ix_monitoring_results_created_at", "monitoring_results", ["created_at"])
    op.create_index(
        "ix_monitoring_results_kind_created", "monitoring_results", ["kind", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("monitoring_results")
    op.drop_table("batch_runs")
    op.drop_table("feedback")
    op.drop_table("predictions")
