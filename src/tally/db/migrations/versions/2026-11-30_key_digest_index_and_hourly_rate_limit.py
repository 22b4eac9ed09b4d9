"""key digest index and hourly rate limit

Keys are found by the SHA-256 of the whole key (unique index) instead of by
their clear lookup id, so every authentication attempt does the same work;
the lookup id stays, unindexed, as the `prefix` shown in lists. Keys get an
optional hourly rate limit beside the per-minute one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:24:53.144714
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limit_per_hour", sa.Integer(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_api_keys_lookup_id"))
        batch_op.create_index(batch_op.f("ix_api_keys_key_hash"), ["key_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_key_hash"))
        batch_op.create_index(batch_op.f("ix_api_keys_lookup_id"), ["lookup_id"], unique=False)
        batch_op.drop_column("rate_limit_per_hour")
