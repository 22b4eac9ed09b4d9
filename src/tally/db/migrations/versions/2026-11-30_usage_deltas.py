"""usage deltas: the append-only tail of hourly changes, folded in the background

Ingestion and voids append their hourly sums to usage_deltas instead of
shifting the running totals in usage_buckets; a folder moves them into
usage_buckets later (tally.usage.fold) and readers add the unfolded rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tally.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("cost_key", sa.String(length=64), nullable=False),
        sa.Column("hour_start", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("minutes", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("interviews", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_deltas")),
    )
    with op.batch_alter_table("usage_deltas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_deltas_company_id_hour_start"),
            ["company_id", "hour_start"],
            unique=False,
        )


def downgrade() -> None:
    # Dropping unfolded changes would lose usage: fold them first.
    left = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM usage_deltas")).scalar()
    if left:
        raise RuntimeError(
            f"usage_deltas holds {left} unfolded change(s); run `tally verify` (it folds"
            " them into usage_buckets) before downgrading"
        )
    with op.batch_alter_table("usage_deltas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_deltas_company_id_hour_start"))
    op.drop_table("usage_deltas")
