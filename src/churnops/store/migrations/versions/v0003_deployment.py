"""Deployments: the policy every worker routes by, the variant of each prediction, shadow scores.

Revision ID: 0003_deployment
Revises: 0002_decisions
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_deployment"
down_revision: str | Sequence[str] | None = "0002_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(
            sa.Column("variant", sa.String(16), nullable=False, server_default="champion")
        )
        batch.add_column(sa.Column("latency_us", sa.Integer(), nullable=True))
    op.create_index("ix_predictions_variant_created", "predictions", ["variant", "created_at"])

    op.create_table(
        "shadow_predictions",
        sa.Column("prediction_id", sa.String(36), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("churn_probability", sa.Float(), nullable=False),
        sa.Column("will_churn", sa.Boolean(), nullable=False),
        sa.Column("risk_level", sa.String(32), nullable=False),
        sa.Column("latency_us", sa.Integer(), nullable=True),
    )
    op.create_index("ix_shadow_predictions_created_at", "shadow_predictions", ["created_at"])

    op.create_table(
        "deployment_policy",
        sa.Column("model_name", sa.String(255), primary_key=True),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("champion_version", sa.String(64), nullable=True),
        sa.Column("challenger_version", sa.String(64), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("steps", JSON_TYPE, nullable=False),
        sa.Column("live", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("timeout_ms", sa.Float(), nullable=False),
        sa.Column("thresholds", JSON_TYPE, nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("step_started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("reason", sa.String(1024), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("challenger_errors", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("challenger_timeouts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("champion_errors", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("shadow_dropped", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("evaluated_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("deployment_policy")
    op.drop_table("shadow_predictions")
    op.drop_index("ix_predictions_variant_created", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("latency_us")
        batch.drop_column("variant")
