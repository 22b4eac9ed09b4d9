"""Tables of companies and ATS integrations."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class AtsIntegration(Base):
    __tablename__ = "ats_integrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class Company(Base):
    """A tenant; its id is the company_id every tenant table carries."""

    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint("billing_system IN ('minutes', 'credits')", name="billing_system"),
        Index(None, "ats_integration_id"),
        Index(None, "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    billing_system: Mapped[str] = mapped_column(String(16))
    ats_integration_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ats_integrations.id")
    )
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
