"""Webhook endpoints, the outbox of threshold crossings, and their deliveries."""

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class WebhookEndpoint(Base):
    """Where alerts go; removing one keeps its row (the delivery log refers to it)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    company_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("companies.id"))
    ats_integration_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ats_integrations.id")
    )
    # The signing secret, "whsec_" + base64 of 32 bytes: it must be readable
    # to sign, so it is stored as is (like a database password), and shown once.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcMicros)


class ThresholdCrossing(Base):
    """The outbox: one row per company, period and threshold, ever.

    Written in the transaction of the events that crossed; the unique
    constraint is what makes eight concurrent batches fire a threshold once.
    """

    __tablename__ = "threshold_crossings"
    __table_args__ = (UniqueConstraint("company_id", "period_start", "threshold"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("companies.id"))
    period_start: Mapped[datetime] = mapped_column(UtcMicros)
    period_end: Mapped[datetime] = mapped_column(UtcMicros)
    threshold: Mapped[int] = mapped_column(SmallInteger)
    # The webhook body, fixed when the crossing is recorded: every retry and
    # every endpoint gets the same bytes.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class WebhookDelivery(Base):
    """One crossing to one endpoint; its id is the webhook-id of every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The worker's claim: due pending deliveries, oldest due first.
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "created_at"),
        Index(None, "created_at", "id"),
        Index(None, "crossing_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("webhook_endpoints.id"))
    crossing_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("threshold_crossings.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    # Why the last attempt failed, for people ("timeout", "refused: private address").
    last_error: Mapped[str | None] = mapped_column(String(200))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcMicros)
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcMicros)
