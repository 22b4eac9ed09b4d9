"""Raw usage events, interviews and the usage buckets maintained on write.

Quantities are integers of millionths (see tally.core.quantities); instants
are integer microseconds since the epoch (see tally.core.instants).
"""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class UsageEvent(Base):
    """One billable event, stored once and kept for audit (voids only mark it)."""

    __tablename__ = "usage_events"
    __table_args__ = (
        # Seeks into the raw events at the edges of a window.
        Index(None, "company_id", "occurred_at"),
        # Finding an interview's next counted event after a void.
        Index(None, "interview_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("companies.id"))
    cost_key: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcMicros)
    minutes: Mapped[int] = mapped_column(BigInteger)
    interview_id: Mapped[str | None] = mapped_column(String(128))
    is_test: Mapped[bool] = mapped_column(Boolean)
    agent_focus: Mapped[str | None] = mapped_column(String(32))
    # Null when no rule priced the event (a minutes company without a rule).
    credits: Mapped[int | None] = mapped_column(BigInteger)
    pricing_rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(UtcMicros)
    voided_at: Mapped[datetime | None] = mapped_column(UtcMicros)


class Interview(Base):
    """Where each interview is counted: the instant of its first counted event."""

    __tablename__ = "interviews"
    __table_args__ = (
        Index(None, "company_id", "first_counted_at"),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("companies.id"))
    is_test: Mapped[bool] = mapped_column(Boolean)
    first_event_id: Mapped[str | None] = mapped_column(String(128))
    first_counted_at: Mapped[datetime | None] = mapped_column(UtcMicros)
    first_cost_key: Mapped[str | None] = mapped_column(String(64))


class UsageBucket(Base):
    """Running totals of counted events per company, cost key and UTC bucket.

    A row holds the total within its period through the end of its bucket:
    hours within their day, days within their month, months since the
    beginning (see tally.usage.buckets for why and how it is read).
    """

    __tablename__ = "usage_buckets"
    # Clustered on the primary key in SQLite: one B-tree, seeks by prefix.
    __table_args__ = {"sqlite_with_rowid": False}

    company_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("companies.id"), primary_key=True
    )
    cost_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # 0 = hour, 1 = day, 2 = month.
    granularity: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UtcMicros, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    minutes: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    interviews: Mapped[int] = mapped_column(BigInteger)


class UsageUnitBucket(Base):
    """Running totals summed over every company billed in a unit, per cost key.

    The same rows as usage_buckets (same granularities, same running totals
    per period), but one set per billing system ("minutes", "credits")
    instead of per company: the top-level buckets of a platform's chart read
    a few rows here instead of a few per company (tally.usage.units). Kept
    by the same folds that keep usage_buckets; a company changing billing
    system moves its history from one unit to the other.
    """

    __tablename__ = "usage_unit_buckets"
    __table_args__ = {"sqlite_with_rowid": False}

    billing_system: Mapped[str] = mapped_column(String(16), primary_key=True)
    cost_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    granularity: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UtcMicros, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    minutes: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    interviews: Mapped[int] = mapped_column(BigInteger)


class UsagePair(Base):
    """Every (company, cost key) that has ever had a counted event."""

    __tablename__ = "usage_pairs"
    __table_args__ = {"sqlite_with_rowid": False}

    company_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("companies.id"), primary_key=True
    )
    cost_key: Mapped[str] = mapped_column(String(64), primary_key=True)


class UsageDelta(Base):
    """Hourly changes not yet folded into usage_buckets: the append-only tail.

    Each ingestion batch or void appends its sums per (company, cost key, UTC
    hour) here, in its own transaction, instead of shifting running totals;
    the folder (tally.usage.fold) moves them into usage_buckets and deletes
    them; readers add what is still here (tally.reporting.service). The
    integer key grows with every append, so new rows go to the table's tail
    page. No foreign key: the rows come from events whose company was just
    checked, and a key would cost every append a lookup.
    """

    __tablename__ = "usage_deltas"
    __table_args__ = (
        # A reader finds one company's unfolded hours by time.
        Index(None, "company_id", "hour_start"),
    )

    # INTEGER on SQLite, so the key is the rowid and autoincrements.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    cost_key: Mapped[str] = mapped_column(String(64))
    hour_start: Mapped[datetime] = mapped_column(UtcMicros)
    events: Mapped[int] = mapped_column(BigInteger)
    minutes: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    interviews: Mapped[int] = mapped_column(BigInteger)
