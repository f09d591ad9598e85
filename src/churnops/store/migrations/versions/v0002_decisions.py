"""Decisions: every retraining, promotion, rollout step and rollback, with its evidence.

Revision ID: 0002_decisions
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_decisions"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retraining_decisions",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("from_version", sa.String(64), nullable=True),
        sa.Column("to_version", sa.String(64), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("evidence", JSON_TYPE, nullable=False),
        sa.UniqueConstraint("idempotency_key", name="uq_retraining_decisions_idempotency_key"),
    )
    op.create_index("ix_retraining_decisions_created_at", "retraining_decisions", ["created_at"])
    op.create_index(
        "ix_retraining_decisions_kind_created", "retraining_decisions", ["kind", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("retraining_decisions")
