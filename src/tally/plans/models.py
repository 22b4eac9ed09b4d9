"""The plans table: at most one plan per company."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class Plan(Base):
    """A company's allowance per period, in the company's unit (millionths)."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("period IN ('month', 'year')", name="period"),
        CheckConstraint("anchor_day BETWEEN 1 AND 28", name="anchor_day"),
        CheckConstraint("anchor_month BETWEEN 1 AND 12", name="anchor_month"),
        CheckConstraint("allowance > 0", name="allowance"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("companies.id"), primary_key=True
    )
    allowance: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(8))
    anchor_day: Mapped[int] = mapped_column(SmallInteger)
    # The month yearly periods start in; kept (and shown) for monthly plans too.
    anchor_month: Mapped[int] = mapped_column(SmallInteger)
    time_zone: Mapped[str] = mapped_column(String(64))
    # Sorted, distinct percents, comma separated ("80,100").
    thresholds: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    updated_at: Mapped[datetime] = mapped_column(UtcMicros)


class PlanUsage(Base):
    """What a planned company used in one period, as the outbox last counted it.

    Written only by the outbox (tally.webhooks.outbox), in the transaction of
    the batch it counted, and deleted by whatever else changes the usage of
    a period (a void, a new billing system, a plan put or deleted, a repair):
    a row is either exact for its period and unit or absent, never stale.
    """

    __tablename__ = "plan_usage"

    company_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("companies.id"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(UtcMicros)
    period_end: Mapped[datetime] = mapped_column(UtcMicros)
    billing_system: Mapped[str] = mapped_column(String(16))
    # Millionths of billing_system's unit used in [period_start, period_end).
    used: Mapped[int] = mapped_column(BigInteger)
