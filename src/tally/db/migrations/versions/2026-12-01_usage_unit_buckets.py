"""usage unit buckets: the running totals summed over every company of a billing system

A platform's chart reads its top-level buckets from these few rows per cost
key instead of a few per company (tally.usage.units). The rows are written
from usage_buckets here; folds keep them from then on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

import tally.db.types
from tally.usage import units

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_unit_buckets",
        sa.Column("billing_system", sa.String(length=16), nullable=False),
        sa.Column("cost_key", sa.String(length=64), nullable=False),
        sa.Column("granularity", sa.SmallInteger(), nullable=False),
        sa.Column("bucket_start", tally.db.types.UtcMicros(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("minutes", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("interviews", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "billing_system",
            "cost_key",
            "granularity",
            "bucket_start",
            name=op.f("pk_usage_unit_buckets"),
        ),
        sqlite_with_rowid=False,
    )
    # The totals of what is folded already; the tail is folded into both later.
    units.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("usage_unit_buckets")
