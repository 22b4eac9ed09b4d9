"""Pricing rules; amounts are integers of millionths."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class PricingRule(Base):
    """A price in force from effective_from; rules are never edited, only superseded."""

    __tablename__ = "pricing_rules"
    __table_args__ = (
        CheckConstraint(
            "base_cost >= 0 AND included_minutes >= 0 AND cost_per_minute >= 0",
            name="non_negative",
        ),
        Index(None, "cost_key", "effective_from"),
        Index(None, "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    cost_key: Mapped[str] = mapped_column(String(64))
    agent_focus: Mapped[str | None] = mapped_column(String(32))
    # Null means platform-wide; otherwise the override belongs to one company.
    company_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("companies.id"))
    base_cost: Mapped[int] = mapped_column(BigInteger)
    included_minutes: Mapped[int] = mapped_column(BigInteger)
    cost_per_minute: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[datetime] = mapped_column(UtcMicros)
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
