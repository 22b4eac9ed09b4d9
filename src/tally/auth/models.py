"""The API key table: only a hash of each key is stored."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base
from tally.db.types import UtcMicros


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('company', 'ats', 'platform')", name="kind"),
        CheckConstraint(
            "(kind = 'company' AND company_id IS NOT NULL AND ats_integration_id IS NULL)"
            " OR (kind = 'ats' AND ats_integration_id IS NOT NULL AND company_id IS NULL)"
            " OR (kind = 'platform' AND company_id IS NULL AND ats_integration_id IS NULL)",
            name="owner",
        ),
        # Authentication finds a key by the digest of the whole key (see keys.py).
        Index(None, "key_hash", unique=True),
        Index(None, "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    company_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("companies.id"))
    ats_integration_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ats_integrations.id")
    )
    # The non-secret part of the key ("sk_live_" plus 8 characters), shown as `prefix`.
    lookup_id: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    allowed_ips: Mapped[list[str] | None] = mapped_column(JSON)
    # Null: the default of the key's kind (tally.auth.ratelimit).
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    rate_limit_per_hour: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UtcMicros)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcMicros)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcMicros)
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
