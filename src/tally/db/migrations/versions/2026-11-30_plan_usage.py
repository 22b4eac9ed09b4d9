"""plan usage: what each planned company used in its current period, as the outbox counted it

The outbox checks every batch's planned companies against their thresholds;
with this row it adds the batch's own events to what it counted before
instead of asking the report (running totals and the unfolded tail) again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tally.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_usage",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("period_end", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("billing_system", sa.String(length=16), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_plan_usage_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_plan_usage")),
    )


def downgrade() -> None:
    op.drop_table("plan_usage")
