"""Plans, threshold crossings (the webhook outbox), webhook endpoints and deliveries.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-30 10:24:14.015558
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tally.db.types

revision: str = "0003"
# integrator: set to "0002" at merge
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("allowance", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("anchor_day", sa.SmallInteger(), nullable=False),
        sa.Column("anchor_month", sa.SmallInteger(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("thresholds", sa.String(length=200), nullable=False),
        sa.Column("created_at", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("updated_at", tally.db.types.UtcMicros(), nullable=False),
        sa.CheckConstraint("period IN ('month', 'year')", name=op.f("ck_plans_period")),
        sa.CheckConstraint("allowance > 0", name=op.f("ck_plans_allowance")),
        sa.CheckConstraint("anchor_day BETWEEN 1 AND 28", name=op.f("ck_plans_anchor_day")),
        sa.CheckConstraint("anchor_month BETWEEN 1 AND 12", name=op.f("ck_plans_anchor_month")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_plans_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_plans")),
    )
    op.create_table(
        "threshold_crossings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("period_end", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("threshold", sa.SmallInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", tally.db.types.UtcMicros(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_threshold_crossings_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threshold_crossings")),
        sa.UniqueConstraint(
            "company_id",
            "period_start",
            "threshold",
            name=op.f("uq_threshold_crossings_company_id_period_start_threshold"),
        ),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("ats_integration_id", sa.Uuid(), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_at", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("deleted_at", tally.db.types.UtcMicros(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ats_integration_id"],
            ["ats_integrations.id"],
            name=op.f("fk_webhook_endpoints_ats_integration_id_ats_integrations"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_webhook_endpoints_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_created_at_id"), ["created_at", "id"], unique=False
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("crossing_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.SmallInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("next_attempt_at", tally.db.types.UtcMicros(), nullable=True),
        sa.Column("created_at", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("delivered_at", tally.db.types.UtcMicros(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["crossing_id"],
            ["threshold_crossings.id"],
            name=op.f("fk_webhook_deliveries_crossing_id_threshold_crossings"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_crossing_id"), ["crossing_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_endpoint_id_created_at"),
            ["endpoint_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_endpoint_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_crossing_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_created_at_id"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_created_at_id"))

    op.drop_table("webhook_endpoints")
    op.drop_table("threshold_crossings")
    op.drop_table("plans")
